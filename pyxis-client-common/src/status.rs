//! The session id as the driver last saw it, shared with client handles so that
//! `Client::sid` answers without a round trip to the driver.
//!
//! Owns: [`Status`]. Must never be written by anything but the driver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shared, lock-free view of the current session id (0 stands for none: the server
/// never hands out 0).
#[derive(Debug, Clone, Default)]
pub struct Status {
    sid: Arc<AtomicU64>,
}

impl Status {
    /// The current session id, or the one being resumed while reconnecting.
    pub fn sid(&self) -> Option<u64> {
        match self.sid.load(Ordering::Acquire) {
            0 => None,
            sid => Some(sid),
        }
    }

    pub(crate) fn set_sid(&self, sid: Option<u64>) {
        self.sid.store(sid.unwrap_or(0), Ordering::Release);
    }
}
