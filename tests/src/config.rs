//! What one simulated run is: its seed, length, variant and trace settings, and the
//! deliberately broken client variants the checker must catch.
//!
//! Owns: [`SimConfig`], [`Variant`] and [`InputTurns`]. Must never hold run state.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

/// A client variant: the correct core, or one wrapped to break a rule on purpose (to
/// prove the oracles catch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Variant {
    /// The core as it is.
    #[default]
    Correct,
    /// Watch re-registrations sent after a reconnect are dropped on their way out.
    NoWatchReregistration,
    /// The application resubmits a write that completed with an unknown outcome.
    RetryUnknownWrites,
    /// The ping deadline is pushed an hour out, so a silently dead connection is never
    /// noticed.
    NoPingLiveness,
    /// The connection is given up at the first kNotLeader answer, failing the other
    /// writes in flight on it as unknown although their refusals are on the way.
    DropOnNotLeader,
    /// Any answer to the Unregister of `close` is taken as done (kNotLeader and kAgain
    /// answers are rewritten to success before the core sees them).
    CloseTakesAnyAnswer,
    /// A Register in flight when `close` was called is taken to have made no session
    /// (its answers naming a session are rewritten to kNotLeader before the core sees
    /// them), so the session it made outlives `close`.
    CloseIgnoresRegister,
    /// A write answered kAgain is taken as refused with nothing applied and sent again
    /// (kAgain answers to operations are rewritten to kNotLeader naming the node that
    /// answered, before the core sees them).
    RetryAgainWrites,
    /// Every ping answer is taken for an early release: every watched path is
    /// re-registered after each (the stat + watch frames are written for the client,
    /// with xids the core ignores).
    RearmOnEveryAnswer,
}

impl Variant {
    /// Every variant, correct first.
    pub const ALL: [Variant; 9] = [
        Variant::Correct,
        Variant::NoWatchReregistration,
        Variant::RetryUnknownWrites,
        Variant::NoPingLiveness,
        Variant::DropOnNotLeader,
        Variant::CloseTakesAnyAnswer,
        Variant::CloseIgnoresRegister,
        Variant::RetryAgainWrites,
        Variant::RearmOnEveryAnswer,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::NoWatchReregistration => "no-watch-reregistration",
            Variant::RetryUnknownWrites => "retry-unknown-writes",
            Variant::NoPingLiveness => "no-ping-liveness",
            Variant::DropOnNotLeader => "drop-on-not-leader",
            Variant::CloseTakesAnyAnswer => "close-takes-any-answer",
            Variant::CloseIgnoresRegister => "close-ignores-register",
            Variant::RetryAgainWrites => "retry-again-writes",
            Variant::RearmOnEveryAnswer => "rearm-on-every-answer",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Variant, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown variant {s:?}"))
    }
}

/// How many answer frames one input hands a client core (`Config::frames_per_input`).
/// With a bound, the simulated client resumes the input held in the core after each
/// turn, as the adapters' loops do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputTurns {
    /// No bound (the core's default): every complete frame received is handled at once.
    #[default]
    Unbounded,
    /// Every client handles at most this many frames per input.
    Fixed(NonZeroUsize),
    /// Each client process draws its own: no bound, 1, 2 or one of the adapters' bounds
    /// (`pyxis_client_common::driver::FRAMES_PER_TURN`, and `PARALLEL_FRAMES_PER_TURN`
    /// on a multi-thread runtime).
    Drawn,
}

impl InputTurns {
    /// The bounds [`InputTurns::Drawn`] picks from, each as likely.
    pub const DRAWN_FROM: [Option<usize>; 5] = [
        None,
        Some(1),
        Some(2),
        Some(pyxis_client_common::driver::PARALLEL_FRAMES_PER_TURN),
        Some(pyxis_client_common::driver::FRAMES_PER_TURN),
    ];
}

impl fmt::Display for InputTurns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputTurns::Unbounded => f.write_str("none"),
            InputTurns::Fixed(n) => write!(f, "{n}"),
            InputTurns::Drawn => f.write_str("drawn"),
        }
    }
}

impl FromStr for InputTurns {
    type Err = String;
    fn from_str(s: &str) -> Result<InputTurns, String> {
        match s {
            "none" => Ok(InputTurns::Unbounded),
            "drawn" => Ok(InputTurns::Drawn),
            n => n
                .parse::<NonZeroUsize>()
                .map(InputTurns::Fixed)
                .map_err(|e| format!("frames per input {n:?}: {e} (a number >= 1, none or drawn)")),
        }
    }
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Every random choice of the run comes from this seed.
    pub seed: u64,
    /// Virtual length of the run, seconds (at least 30: faults stop 25 s before the end).
    pub virtual_secs: u64,
    /// The client variant.
    pub variant: Variant,
    /// How many of the last steps to keep readable (0: hash only, the fast path).
    pub trace_tail: usize,
    /// Keep every step readable (for `--trace` replay).
    pub keep_all: bool,
    /// The known gaps of the core (see the crate docs, "Known gaps") this run drives
    /// and checks; none by default, so that CI checks everything else strictly.
    pub exercise: Vec<KnownGap>,
    /// The answer frames one input hands each client core (unbounded by default).
    pub input_turns: InputTurns,
}

/// A behaviour of the current core that misses what an oracle demands (see the crate
/// docs, "Known gaps"). Default runs stay clear of each; `SimConfig::exercise` drives it.
/// Numbers are kept across fixes (gap 1, the baseline forgotten after an event, is
/// fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KnownGap {
    /// 2: a leadership change that ends on the node a client is connected to while the
    /// cluster holds no ping of that client (one in flight or paced, or a paused client).
    LeaderChangeWithoutHeldPing = 2,
}

impl KnownGap {
    /// Every known gap.
    pub const ALL: [KnownGap; 1] = [KnownGap::LeaderChangeWithoutHeldPing];

    /// The gap numbered `n` (1-based, as in the crate docs).
    pub fn from_number(n: u64) -> Option<KnownGap> {
        KnownGap::ALL.into_iter().find(|g| *g as u64 == n)
    }
}

impl SimConfig {
    /// Whether this run drives `gap`.
    pub fn exercises(&self, gap: KnownGap) -> bool {
        self.exercise.contains(&gap)
    }

    /// A run of `seed` for `virtual_secs` seconds with the correct client, hashing only.
    pub fn new(seed: u64, virtual_secs: u64) -> SimConfig {
        SimConfig {
            seed,
            virtual_secs,
            variant: Variant::Correct,
            trace_tail: 0,
            keep_all: false,
            exercise: Vec::new(),
            input_turns: InputTurns::Unbounded,
        }
    }

    /// The command that replays this run with a full trace.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p pyxis-sim --bin sim -- --seed {} --virtual-secs {} --trace",
            self.seed, self.virtual_secs
        );
        if self.variant != Variant::Correct {
            cmd.push_str(&format!(" --variant {}", self.variant));
        }
        for gap in &self.exercise {
            cmd.push_str(&format!(" --exercise-gap {}", *gap as u8));
        }
        if self.input_turns != InputTurns::Unbounded {
            cmd.push_str(&format!(" --frames-per-input {}", self.input_turns));
        }
        cmd
    }
}
