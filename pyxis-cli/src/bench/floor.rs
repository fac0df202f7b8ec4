//! The floor: the benchmark's requests as pre-encoded frames on a raw pipelined TCP
//! connection (one per client the client side uses), with no client machinery (no core,
//! no driver task, no channels).
//!
//! Owns: [`RawSession`] (a registered session on one socket: frames out, answers in),
//! the frames of a slot and which slot an answer is for (shared with
//! [`super::task_floor`]), and [`run`], which keeps a session's share of the `C`
//! requests in flight from a [`Plan`] exactly as the client side does. Must never
//! retry, reconnect or follow more than a few redirects: anything unexpected is an
//! error, since the floor must stay the cheapest possible client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use pyxis_proto::rpc::{
    CreateRequest, DeleteRequest, RegisterRequest, Request, Response, StatRequest,
    UnRegisterRequest, WatchRequest, WriteRequest,
};
use pyxis_proto::{encode_frame, encode_request, ErrorType, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::stats::Recorder;
use crate::bench::workload::{Budget, OpKind, Plan, Schedule};
use crate::exit::CliError;

/// How long the floor waits for any answer before declaring the server stuck.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Session timeout the floor registers with (long enough for any phase).
const FLOOR_SESSION_MS: i32 = 60_000;
/// Redirects followed while looking for the leader.
const MAX_REDIRECTS: usize = 4;
/// The xid of the floor's own register/unregister (slots use 1..=C).
const CONTROL_XID: u64 = u64::MAX;

fn bench_error(what: impl std::fmt::Display) -> CliError {
    CliError::Bench(format!("floor: {what}"))
}

/// A session registered on one raw connection to the leader.
#[derive(Debug)]
pub struct RawSession {
    stream: TcpStream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
    /// The session id.
    pub sid: u64,
}

impl RawSession {
    /// Connects to `addrs[0]`, follows kNotLeader redirects, and registers a session.
    pub async fn open(addrs: &[String]) -> Result<RawSession, CliError> {
        let mut addr = addrs
            .first()
            .cloned()
            .ok_or_else(|| bench_error("no address"))?;
        for _ in 0..MAX_REDIRECTS {
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|e| bench_error(format!("connect {addr}: {e}")))?;
            stream.set_nodelay(true)?;
            let mut session = RawSession {
                stream,
                decoder: FrameDecoder::new(),
                buf: vec![0; 16 * 1024],
                sid: 0,
            };
            let register = Request {
                xid: Some(CONTROL_XID),
                register: Some(RegisterRequest {
                    timeout: Some(FLOOR_SESSION_MS),
                }),
                ..Default::default()
            };
            session.send(&encode_request(&register)).await?;
            let answer = session.answer().await?;
            match (answer.err, answer.sid) {
                (Some(err), _) if err.r#type == ErrorType::KNotLeader as i32 => {
                    addr = String::from_utf8_lossy(&err.data.unwrap_or_default()).into_owned();
                }
                (Some(err), _) if err.r#type != ErrorType::KNone as i32 => {
                    return Err(bench_error(format!("register refused: {}", err.r#type)))
                }
                (_, Some(sid)) => {
                    session.sid = sid;
                    return Ok(session);
                }
                (_, None) => return Err(bench_error("register answer without sid")),
            }
        }
        Err(bench_error("too many redirects"))
    }

    /// Writes `frames` (one or more whole frames).
    pub async fn send(&mut self, frames: &[u8]) -> Result<(), CliError> {
        self.stream.write_all(frames).await?;
        Ok(())
    }

    /// The next answer (waiting at most 10 s).
    pub async fn answer(&mut self) -> Result<Response, CliError> {
        loop {
            if let Some(answer) = self.decoder.next_response().map_err(bench_error)? {
                return Ok(answer);
            }
            self.fill().await?;
        }
    }

    /// Reads what the socket has into the decoder (waiting at most 10 s). Cancel safe:
    /// dropped before it completes, it has read nothing.
    pub(super) async fn fill(&mut self) -> Result<(), CliError> {
        let n = tokio::time::timeout(ANSWER_TIMEOUT, self.stream.read(&mut self.buf))
            .await
            .map_err(|_| bench_error("no answer within 10 s"))??;
        if n == 0 {
            return Err(bench_error("connection closed by the server"));
        }
        self.decoder.extend(&self.buf[..n]);
        Ok(())
    }

    /// The next answer already read ([`fill`](Self::fill) reads more), if whole.
    pub(super) fn next_buffered(&mut self) -> Result<Option<Response>, CliError> {
        self.decoder.next_response().map_err(bench_error)
    }

    /// Ends the session.
    pub async fn close(mut self) {
        let unregister = Request {
            sid: Some(self.sid),
            xid: Some(CONTROL_XID),
            unregister: Some(UnRegisterRequest {}),
            ..Default::default()
        };
        if self.send(&encode_request(&unregister)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.answer()).await;
        }
    }

    /// Arms a creation watch (stat + watch, as the client re-arms) on each path, all
    /// pipelined in one write, and waits for every answer; returns the elapsed time.
    pub async fn arm_watches(&mut self, paths: &[String], mask: u32) -> Result<Duration, CliError> {
        let mut out = BytesMut::new();
        for (i, path) in paths.iter().enumerate() {
            let req = Request {
                sid: Some(self.sid),
                xid: Some(i as u64 + 1),
                stat: Some(StatRequest { path: path.clone() }),
                watch: Some(WatchRequest {
                    path: Some(path.clone()),
                    watch: Some(mask),
                    recursive: Some(false),
                }),
                ..Default::default()
            };
            encode_frame(&req, &mut out);
        }
        let start = Instant::now();
        self.send(&out).await?;
        let mut answered = 0;
        // Anything but one answer per watch (plus a few strays) is a broken server.
        let mut budget = paths.len() + 16;
        while answered < paths.len() {
            let answer = self.answer().await?;
            if answer
                .xid
                .is_some_and(|x| x >= 1 && x <= paths.len() as u64)
            {
                answered += 1;
            }
            budget = budget
                .checked_sub(1)
                .ok_or_else(|| bench_error("unexpected answers while arming watches"))?;
        }
        Ok(start.elapsed())
    }
}

/// The sessions a phase hands back, each with its index among the K sessions, in that
/// order again (the tasks that used them end in any order).
pub(super) fn in_session_order(mut back: Vec<(usize, RawSession)>) -> Vec<RawSession> {
    back.sort_by_key(|(k, _)| *k);
    back.into_iter().map(|(_, raw)| raw).collect()
}

/// The pre-encoded frames of one slot of a session (xid: its index there + 1).
pub(super) struct SlotFrames {
    pub(super) read: Bytes,
    pub(super) write: Bytes,
    pub(super) create: Bytes,
    pub(super) delete: Bytes,
}

impl SlotFrames {
    pub(super) fn new(plan: &Plan, slot: usize, xid: u64, sid: u64) -> SlotFrames {
        let base = Request {
            sid: Some(sid),
            xid: Some(xid),
            ..Default::default()
        };
        let node = plan.node(slot);
        let scratch = plan.scratch(slot);
        SlotFrames {
            read: encode_request(&Request {
                stat: Some(StatRequest { path: node.clone() }),
                ..base.clone()
            }),
            write: encode_request(&Request {
                write: Some(WriteRequest {
                    path: node,
                    data: plan.data.clone(),
                }),
                ..base.clone()
            }),
            create: encode_request(&Request {
                create: Some(CreateRequest {
                    path: scratch.clone(),
                    flags: 0,
                    data: Some(plan.data.clone()),
                }),
                ..base.clone()
            }),
            delete: encode_request(&Request {
                delete: Some(DeleteRequest { path: scratch }),
                ..base
            }),
        }
    }
}

/// Where one slot stands.
struct SlotState {
    schedule: Schedule,
    started: Instant,
    /// The create of a create+delete is in flight (the delete comes next).
    creating: bool,
    busy: bool,
}

/// Runs the plan's load on `session` until `budget` is spent, then waits for every
/// request in flight; `progress` counts completed operations. The session serves the
/// plan's slots `share.0, share.0 + share.1, ...` (session k of K takes the slots client
/// k of K takes on the client side): `(0, 1)` for all of them.
pub async fn run(
    session: &mut RawSession,
    plan: &Plan,
    share: (usize, usize),
    budget: &Budget,
    progress: &AtomicU64,
) -> Result<Recorder, CliError> {
    let (first, step) = (share.0, share.1.max(1));
    let mine: Vec<usize> = (first..plan.concurrency).step_by(step).collect();
    let frames: Vec<SlotFrames> = mine
        .iter()
        .enumerate()
        .map(|(i, &slot)| SlotFrames::new(plan, slot, i as u64 + 1, session.sid))
        .collect();
    // Made before the clock starts, as the client side's recorders are.
    let mut recorder = Recorder::new();
    let start = Instant::now();
    let mut slots: Vec<SlotState> = mine
        .iter()
        .map(|&slot| SlotState {
            schedule: Schedule::new(plan.mix, slot),
            started: start,
            creating: false,
            busy: false,
        })
        .collect();
    let mut out = BytesMut::new();
    let mut in_flight = 0usize;
    for (slot, state) in slots.iter_mut().enumerate() {
        if budget.take(start) {
            start_op(state, &frames[slot], start, &mut out);
            in_flight += 1;
        }
    }
    session.send(&out).await?;
    out.clear();
    while in_flight > 0 {
        session.fill().await?;
        let now = Instant::now();
        while let Some(answer) = session.next_buffered()? {
            let slot = answer_slot(&answer, slots.len())?;
            let state = &mut slots[slot];
            if !state.busy {
                return Err(unexpected_answer(slot));
            }
            if failed(&answer) {
                recorder.errors += 1;
            }
            if state.creating {
                state.creating = false;
                out.extend_from_slice(&frames[slot].delete);
                continue;
            }
            recorder.record(now - state.started);
            progress.fetch_add(1, Ordering::Relaxed);
            state.busy = false;
            if budget.take(now) {
                start_op(state, &frames[slot], now, &mut out);
            } else {
                in_flight -= 1;
            }
        }
        if !out.is_empty() {
            session.send(&out).await?;
            out.clear();
        }
    }
    recorder.elapsed = start.elapsed();
    Ok(recorder)
}

/// The slot (index among the session's slots) an answer is for: its xid less one.
///
/// # Errors
///
/// The xid names no slot of the session.
pub(super) fn answer_slot(answer: &Response, slots: usize) -> Result<usize, CliError> {
    answer
        .xid
        .and_then(|x| usize::try_from(x).ok())
        .and_then(|x| x.checked_sub(1))
        .filter(|s| *s < slots)
        .ok_or_else(|| bench_error(format!("answer with unknown xid {:?}", answer.xid)))
}

/// The error for an answer to a slot with no request in flight.
pub(super) fn unexpected_answer(slot: usize) -> CliError {
    bench_error(format!("unexpected answer for slot {slot}"))
}

/// Whether the server refused the request the answer is for.
pub(super) fn failed(answer: &Response) -> bool {
    answer
        .err
        .as_ref()
        .is_some_and(|e| e.r#type != ErrorType::KNone as i32)
}

fn start_op(state: &mut SlotState, frames: &SlotFrames, now: Instant, out: &mut BytesMut) {
    state.started = now;
    state.busy = true;
    let frame = match state.schedule.next_kind() {
        OpKind::Read => &frames.read,
        OpKind::Write => &frames.write,
        OpKind::CreateDelete => {
            state.creating = true;
            &frames.create
        }
    };
    out.extend_from_slice(frame);
}
