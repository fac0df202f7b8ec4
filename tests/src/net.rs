//! The simulated network: one [`Link`] per client connection, carrying two FIFO byte
//! streams (client → server, server → client) on virtual time.
//!
//! Owns: per-link queues of chunks with their due times, fragmentation of writes into
//! random pieces, the rule that a stream never reorders (a chunk is never due before the
//! one queued ahead of it), and the link's fault flags (reset, blackholed). Reordering
//! happens only *between* links, because each link draws its own delays. Must never call
//! into a client core or the server model: the world drains due chunks and delivers them.

use std::collections::VecDeque;

use bytes::Bytes;

/// What travels on one direction of a link, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// The connection is established (server → client only; first item of that stream).
    Open,
    /// Bytes.
    Data(Bytes),
    /// The sending side closed (or the link was reset): the receiver sees the close.
    Fin,
}

/// Delay and fragmentation settings of a run's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetParams {
    /// Smallest one-way delay, µs.
    pub min_delay_us: u64,
    /// Extra random delay, up to this many µs.
    pub jitter_us: u64,
    /// Largest piece a write is split into (bytes, ≥ 1).
    pub max_fragment: usize,
    /// Per-mille chance that a connect attempt is refused outright.
    pub refuse_per_mille: u32,
}

/// One direction of a link.
#[derive(Debug, Default)]
pub struct Stream {
    queue: VecDeque<(u64, Chunk)>,
    last_due: u64,
}

impl Stream {
    /// Queues `chunk`, due after a random delay but never before the chunk ahead of it.
    pub fn push(&mut self, now: u64, delay: u64, chunk: Chunk) -> u64 {
        let due = (now + delay).max(self.last_due);
        self.last_due = due;
        self.queue.push_back((due, chunk));
        due
    }

    /// Every chunk due at or before `now`, in order (several pieces coalesce here).
    pub fn take_due(&mut self, now: u64) -> Vec<Chunk> {
        let mut out = Vec::new();
        while let Some((due, _)) = self.queue.front() {
            if *due > now {
                break;
            }
            if let Some((_, c)) = self.queue.pop_front() {
                out.push(c);
            }
        }
        out
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Bytes waiting in this direction.
    pub fn queued_bytes(&self) -> usize {
        self.queue
            .iter()
            .map(|(_, c)| match c {
                Chunk::Data(b) => b.len(),
                _ => 0,
            })
            .sum()
    }
}

/// A simulated TCP connection between one client incarnation and one server node.
#[derive(Debug)]
pub struct Link {
    /// The client incarnation (index into the world's clients).
    pub client: usize,
    /// The id the client core gave the connection.
    pub core_conn: pyxis_core::ConnId,
    /// The server node it goes to.
    pub node: usize,
    /// Established at the server (the model knows it).
    pub established: bool,
    /// The client closed it (or crashed): nothing more reaches the client.
    pub client_gone: bool,
    /// The server closed or forgot it: nothing more reaches the server.
    pub server_gone: bool,
    /// Reset: nothing new is carried; only the queued `Fin`s still arrive.
    pub reset: bool,
    /// Silently drops everything in both directions, forever, with no close.
    pub blackholed: bool,
    /// Client → server.
    pub up: Stream,
    /// Server → client.
    pub down: Stream,
    /// Stalled in the middle of a frame: `Some(false)` cuts the next server frame
    /// halfway, `Some(true)` once cut (nothing more reaches the client, with no close).
    pub stall: Option<bool>,
    /// Reassembles what reaches the client, to count complete frames.
    pub delivered: pyxis_proto::FrameDecoder,
    /// When the client last received a complete frame on it (or the link opened), µs.
    pub last_frame_at: u64,
    /// Reassembles server frames a broken variant rewrites (or reads) before the client
    /// sees them.
    pub rewrite: pyxis_proto::FrameDecoder,
    /// Reassembles what the client core was given on it and has not handled yet, when
    /// the core handles a bounded number of frames per input (see `clients`).
    pub turns: pyxis_proto::FrameDecoder,
    /// Its watch registrations in flight (see `registrations`).
    pub(crate) arms: crate::registrations::LinkArms,
}

impl Link {
    /// A link being opened by `client` towards `node`.
    pub fn new(client: usize, core_conn: pyxis_core::ConnId, node: usize) -> Link {
        Link {
            client,
            core_conn,
            node,
            established: false,
            client_gone: false,
            server_gone: false,
            reset: false,
            blackholed: false,
            up: Stream::default(),
            down: Stream::default(),
            stall: None,
            delivered: pyxis_proto::FrameDecoder::new(),
            last_frame_at: 0,
            rewrite: pyxis_proto::FrameDecoder::new(),
            turns: pyxis_proto::FrameDecoder::new(),
            arms: crate::registrations::LinkArms::default(),
        }
    }

    /// Whether the link still carries data.
    pub fn carries(&self) -> bool {
        !self.reset && !self.blackholed
    }

    /// Whether both ends are done with it.
    pub fn is_dead(&self) -> bool {
        self.client_gone && (self.server_gone || !self.established)
    }
}

/// Splits `data` into pieces of at most `max` bytes, sizes drawn from `rng`.
pub fn fragment(data: &Bytes, max: usize, rng: &mut fastrand::Rng) -> Vec<Bytes> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let left = data.len() - at;
        let n = if left <= 1 {
            left
        } else {
            rng.usize(1..=left.min(max))
        };
        out.push(data.slice(at..at + n));
        at += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_never_reorders_and_coalesces_due_chunks() {
        let mut s = Stream::default();
        assert_eq!(s.push(0, 50, Chunk::Data(Bytes::from_static(b"a"))), 50);
        // Drawn a shorter delay, but still due after the chunk ahead.
        assert_eq!(s.push(10, 5, Chunk::Data(Bytes::from_static(b"b"))), 50);
        assert_eq!(s.push(60, 5, Chunk::Fin), 65);
        assert!(s.take_due(49).is_empty());
        assert_eq!(s.queued_bytes(), 2);
        assert_eq!(s.take_due(50).len(), 2);
        assert_eq!(s.take_due(100), vec![Chunk::Fin]);
    }

    #[test]
    fn fragments_cover_the_data_in_order() {
        let mut rng = fastrand::Rng::with_seed(3);
        let data = Bytes::from((0u8..200).collect::<Vec<u8>>());
        let pieces = fragment(&data, 7, &mut rng);
        assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= 7));
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(joined, data.to_vec());
    }
}
