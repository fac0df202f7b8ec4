//! The task floor: the benchmark's requests sent the plainest way a task-per-request
//! client sends them. Each of the `C` slots is a task that hands its pre-encoded frame to
//! its session's connection task over a channel (tokio's `mpsc`) and awaits the answer on
//! a `oneshot`; the connection task writes what the channel holds in one write and hands
//! each answer back. Slot `i` is on session `i mod K`, as on the client side.
//!
//! It measures what the runtime's scheduling of `C` tasks and two channel hops per
//! request cost on top of the raw [`super::floor`], so that `client / task floor` says
//! how the client's own machinery compares with that plain design on the same runtime,
//! with the same number of tasks.
//!
//! Owns: [`phase`]. Must never grow client machinery (no core, no timeouts but the
//! floor's, no retries, no tuning of when tasks run): anything unexpected is an error,
//! as on the raw floor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::bench::floor::{self, RawSession, SlotFrames};
use crate::bench::stats::Recorder;
use crate::bench::workload::{Budget, OpKind, Plan, Schedule};
use crate::exit::CliError;

/// Requests the connection task takes from its channel for one write, at most.
const ASKS_PER_WRITE: usize = 256;

/// One request of a slot: the frame, and where its outcome goes (`true`: the server
/// accepted it).
struct Ask {
    /// The slot's index among its session's slots (its xid less one).
    index: usize,
    frame: Bytes,
    reply: oneshot::Sender<bool>,
}

/// One task floor phase over `raws` (K sessions), until `budget` is spent. Returns the
/// sessions, each slot's recorder and the phase's length, timed as the other phases
/// are: from before the tasks start to the last one's end.
///
/// # Errors
///
/// A session failed (closed, silent for 10 s, or an answer no slot waits for); the
/// first such error is returned once every task has ended.
pub async fn phase(
    raws: Vec<RawSession>,
    plan: &Plan,
    budget: Arc<Budget>,
    progress: Arc<AtomicU64>,
) -> Result<(Vec<RawSession>, Vec<Recorder>, Duration), CliError> {
    let sessions = raws.len().max(1);
    let mut recorders: Vec<Recorder> = (0..plan.concurrency).map(|_| Recorder::new()).collect();
    let start = Instant::now();
    let mut channels = Vec::with_capacity(sessions);
    let mut connections = JoinSet::new();
    for (k, raw) in raws.into_iter().enumerate() {
        let (asks, inbox) = mpsc::unbounded_channel();
        let sid = raw.sid;
        let slots = plan.concurrency.saturating_sub(k).div_ceil(sessions);
        connections.spawn(async move { (k, serve(raw, inbox, slots).await) });
        channels.push((asks, sid));
    }
    let mut tasks = JoinSet::new();
    for slot in 0..plan.concurrency {
        let Some((asks, sid)) = channels.get(slot % sessions).cloned() else {
            break;
        };
        let index = slot / sessions;
        let frames = SlotFrames::new(plan, slot, index as u64 + 1, sid);
        let mut recorder = recorders.pop().unwrap_or_default();
        let mut schedule = Schedule::new(plan.mix, slot);
        let budget = Arc::clone(&budget);
        let progress = Arc::clone(&progress);
        tasks.spawn(async move {
            let ask = |frame: &Bytes| {
                let (reply, answer) = oneshot::channel();
                let sent = asks.send(Ask {
                    index,
                    frame: frame.clone(),
                    reply,
                });
                async move {
                    sent.ok()?;
                    answer.await.ok()
                }
            };
            // One clock read per operation, as on the other sides.
            let mut now = Instant::now();
            while budget.take(now) {
                let started = now;
                let accepted = match schedule.next_kind() {
                    OpKind::Read => ask(&frames.read).await,
                    OpKind::Write => ask(&frames.write).await,
                    OpKind::CreateDelete => match ask(&frames.create).await {
                        Some(created) => ask(&frames.delete).await.map(|d| d && created),
                        None => None,
                    },
                };
                // None: the connection task is gone; its error is the phase's.
                let Some(accepted) = accepted else { break };
                now = Instant::now();
                recorder.record(now - started);
                if !accepted {
                    recorder.errors += 1;
                }
                progress.fetch_add(1, Ordering::Relaxed);
            }
            recorder
        });
    }
    drop(channels);
    let mut done = Vec::with_capacity(plan.concurrency);
    while let Some(task) = tasks.join_next().await {
        done.push(task.map_err(|e| CliError::Bench(format!("task floor slot: {e}")))?);
    }
    let mut back = Vec::with_capacity(sessions);
    let mut failure = None;
    while let Some(task) = connections.join_next().await {
        match task.map_err(|e| CliError::Bench(format!("task floor connection: {e}")))? {
            (k, Ok(raw)) => back.push((k, raw)),
            (_, Err(e)) => failure = failure.or(Some(e)),
        }
    }
    let elapsed = start.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((floor::in_session_order(back), done, elapsed))
}

/// The connection task of one session: writes the frames its slots hand it, and hands
/// each answer to the slot that waits for it, until every slot is gone and nothing is in
/// flight. `slots`: how many slots the session serves.
async fn serve(
    mut session: RawSession,
    mut inbox: mpsc::UnboundedReceiver<Ask>,
    slots: usize,
) -> Result<RawSession, CliError> {
    // Slot index -> where its answer goes; at most one request per slot is in flight.
    let mut waiting: Vec<Option<oneshot::Sender<bool>>> = (0..slots).map(|_| None).collect();
    let mut in_flight = 0usize;
    let mut open = true;
    let mut batch = Vec::with_capacity(ASKS_PER_WRITE);
    let mut out = BytesMut::new();
    while open || in_flight > 0 {
        tokio::select! {
            taken = inbox.recv_many(&mut batch, ASKS_PER_WRITE), if open => {
                if taken == 0 {
                    open = false;
                    continue;
                }
                for ask in batch.drain(..) {
                    let Some(slot) = waiting.get_mut(ask.index) else {
                        return Err(CliError::Bench(format!(
                            "task floor: slot index {} beyond the session's {slots} slots",
                            ask.index
                        )));
                    };
                    *slot = Some(ask.reply);
                    out.extend_from_slice(&ask.frame);
                    in_flight += 1;
                }
                session.send(&out).await?;
                out.clear();
            }
            filled = session.fill(), if in_flight > 0 => {
                filled?;
                while let Some(answer) = session.next_buffered()? {
                    let index = floor::answer_slot(&answer, slots)?;
                    let reply = waiting[index]
                        .take()
                        .ok_or_else(|| floor::unexpected_answer(index))?;
                    in_flight -= 1;
                    // The slot stops waiting only when the phase is torn down.
                    let _ = reply.send(!floor::failed(&answer));
                }
            }
        }
    }
    Ok(session)
}
