//! CPU time (user + system) spent during a benchmark phase, from `getrusage`.
//!
//! Owns: reading the clock ([`CpuScope::now`]) and what it covers. Must never time
//! anything else: callers read it before and after a phase and record the difference.
//!
//! With the current-thread runtime every task of the floor and of the client runs on the
//! thread that called `block_on`, so the time of that thread (`RUSAGE_THREAD`, Linux) is
//! exactly the benchmark side's, without the embedded servers' threads. Otherwise the
//! whole process's time is all there is (`RUSAGE_SELF`): it includes an embedded
//! cluster's work, and the report says so.

use std::time::Duration;

use serde::Serialize;

/// Whose CPU time is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuScope {
    /// The calling thread (the current-thread runtime's).
    RuntimeThread,
    /// The whole process (servers embedded in it included).
    Process,
}

impl CpuScope {
    /// The scope for a runtime with `threads` workers: its thread when there is one and
    /// the platform measures threads, else the process.
    pub fn for_threads(threads: usize) -> CpuScope {
        if threads <= 1 && cfg!(any(target_os = "linux", target_os = "android")) {
            CpuScope::RuntimeThread
        } else {
            CpuScope::Process
        }
    }

    /// User + system time used so far by this scope; `None` where `getrusage` is
    /// unavailable or fails.
    pub fn now(self) -> Option<Duration> {
        #[cfg(unix)]
        {
            use nix::sys::resource::{getrusage, UsageWho};
            use nix::sys::time::TimeValLike as _;
            let who = match self {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                CpuScope::RuntimeThread => UsageWho::RUSAGE_THREAD,
                _ => UsageWho::RUSAGE_SELF,
            };
            let usage = getrusage(who).ok()?;
            let micros =
                usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
            Some(Duration::from_micros(u64::try_from(micros).ok()?))
        }
        #[cfg(not(unix))]
        {
            let _ = self;
            None
        }
    }

    /// Words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            CpuScope::RuntimeThread => "the runtime thread (user+system)",
            CpuScope::Process => "the whole process, embedded servers included (user+system)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_thread_clock_advances_with_work_on_it() {
        let scope = CpuScope::for_threads(1);
        let before = scope.now().expect("getrusage");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = scope.now().expect("getrusage") - before;
        assert!(
            used > Duration::ZERO,
            "no CPU time counted for 50 ms of work"
        );
    }
}
