//! The buffer a connection's bytes are read into, shared by the adapters' readers.
//!
//! Owns: [`ReadBuffer`] and its sizing policy. Must never hold more than
//! [`READ_MAX`] bytes nor look at what it holds (the core parses frames).

/// The read buffer's size while reads are small (what an idle client holds).
pub const READ_MIN: usize = 1024;
/// The read buffer's largest size, reached by doubling while reads fill it.
pub const READ_MAX: usize = 64 * 1024;
/// Reads in a row that fit [`READ_MIN`] before a grown buffer shrinks back.
pub const SHRINK_AFTER: u32 = 16;

/// A socket read buffer: small while the traffic is (an idle client holds only
/// [`READ_MIN`] bytes), doubled up to [`READ_MAX`] whenever a read fills it, so that
/// large frames arrive in few reads, and shrunk back after [`SHRINK_AFTER`] reads in a
/// row that would have fit the small size.
///
/// ```
/// use pyxis_client_common::__private::read_buffer::{ReadBuffer, READ_MIN};
///
/// let mut buf = ReadBuffer::new();
/// let n = buf.space().len(); // a read filled it
/// assert_eq!(buf.filled(n).len(), READ_MIN);
/// buf.fit(n);
/// assert_eq!(buf.space().len(), 2 * READ_MIN);
/// ```
#[derive(Debug)]
pub struct ReadBuffer {
    bytes: Vec<u8>,
    small_reads: u32,
}

impl Default for ReadBuffer {
    fn default() -> ReadBuffer {
        ReadBuffer::new()
    }
}

impl ReadBuffer {
    /// A buffer of [`READ_MIN`] bytes.
    pub fn new() -> ReadBuffer {
        ReadBuffer {
            bytes: vec![0; READ_MIN],
            small_reads: 0,
        }
    }

    /// Where the next read goes (its whole length may be filled).
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The first `n` bytes read (at most the buffer's length).
    pub fn filled(&self, n: usize) -> &[u8] {
        &self.bytes[..n.min(self.bytes.len())]
    }

    /// Adapts the size to a read of `n` bytes; call it once they have been consumed.
    pub fn fit(&mut self, n: usize) {
        let len = self.bytes.len();
        if n >= len && len < READ_MAX {
            self.bytes.resize((len * 2).min(READ_MAX), 0);
            self.small_reads = 0;
        } else if len > READ_MIN && n <= READ_MIN {
            self.small_reads += 1;
            if self.small_reads >= SHRINK_AFTER {
                self.bytes.truncate(READ_MIN);
                self.bytes.shrink_to_fit();
                self.small_reads = 0;
            }
        } else {
            self.small_reads = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_when_filled_and_shrinks_after_small_reads() {
        let mut buf = ReadBuffer::new();
        assert_eq!(buf.space().len(), READ_MIN);
        // Full reads double it, up to the largest size.
        let mut sizes = Vec::new();
        for _ in 0..10 {
            let n = buf.space().len();
            buf.fit(n);
            sizes.push(buf.space().len());
        }
        assert_eq!(sizes[0], 2 * READ_MIN);
        assert_eq!(*sizes.last().unwrap_or(&0), READ_MAX);
        // A large read in between keeps it; only a run of small reads shrinks it.
        for _ in 0..SHRINK_AFTER - 1 {
            buf.fit(10);
        }
        buf.fit(READ_MAX / 2);
        for _ in 0..SHRINK_AFTER - 1 {
            buf.fit(10);
        }
        assert_eq!(
            buf.space().len(),
            READ_MAX,
            "not yet {SHRINK_AFTER} in a row"
        );
        buf.fit(10);
        assert_eq!(buf.space().len(), READ_MIN);
        assert_eq!(buf.filled(3).len(), 3);
    }
}
