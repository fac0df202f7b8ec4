//! How long this process may act on owning an ephemeral node (a lock, a leadership):
//! a **lease** renewed by every answer that shows the node still this attempt's.
//!
//! Why a lease and not the session state: the server expires a session about one
//! session timeout `T` after the last request it received from it (never earlier than
//! `T` less its check interval's rounding), and then deletes its ephemeral nodes, so
//! someone else can take them. A client cut off from the servers may not notice for
//! longer than that (a silent network only shows as a missing ping answer). But every
//! answer proves the session was alive, and refreshed, when its request was sent. So a
//! holder that last had an answer to a request sent at `s` can be sure nobody else holds
//! the node before `s + T`, and acts as holder until `s + T - T/4` ([`Terms`]). Past
//! that, without a newer answer, it stops, *before* the server could have expired the
//! session, whatever the connection looks like.
//!
//! Owns: [`Lease`] (the shared "held until" state) and [`keep`], the task that renews
//! it. Must never extend a lease from an answer to a request sent before the one that
//! set it, nor from a node it cannot prove is this attempt's (owner and token).

use std::future::Future;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, Error as ClientError, EventMask, SessionEvent};

use crate::node::Token;
use crate::runtime::{now, sleep, sleep_until_opt};

/// The lease and heartbeat lengths of a client, from its session timeout `T`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    /// How long an answer keeps the lease: `T - T/4`. The quarter covers the server's
    /// rounding of expiry to its check interval (1 s on real servers, where `T ≥ 5 s`).
    pub(crate) lease: Duration,
    /// How often the holder checks in while nothing happens: `T/5`, so about three
    /// check-ins fall inside each lease.
    pub(crate) heartbeat: Duration,
}

impl Terms {
    pub(crate) fn of(client: &AsyncClient) -> Terms {
        let t = client.session_timeout();
        Terms {
            lease: t - t / 4,
            heartbeat: t / 5,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Held until this instant (exclusive), unless `gone`.
    until: Option<Instant>,
    /// The node is gone for good (deleted, session lost, released).
    gone: bool,
}

/// Whether, and until when, this process holds a node. Shared by the task that renews
/// it and the handles that read it.
#[derive(Debug)]
pub(crate) struct Lease {
    state: Mutex<State>,
    /// Once the lease lapses it is gone for good (a lock); otherwise a later answer can
    /// renew it (a leadership, whose candidate still holds the node).
    lapse_is_final: bool,
    changed: Event,
}

impl Lease {
    /// A lease held until `until`.
    pub(crate) fn new(until: Instant, lapse_is_final: bool) -> Lease {
        Lease {
            state: Mutex::new(State {
                until: Some(until),
                gone: false,
            }),
            lapse_is_final,
            changed: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the node is held at `now`.
    pub(crate) fn holds_at(&self, now: Instant) -> bool {
        let state = self.lock();
        !state.gone && state.until.is_some_and(|until| now < until)
    }

    /// Whether the node is held now.
    pub(crate) fn holds(&self) -> bool {
        self.holds_at(now())
    }

    /// Until when it is held (`None` once gone).
    pub(crate) fn until(&self) -> Option<Instant> {
        let state = self.lock();
        if state.gone {
            None
        } else {
            state.until
        }
    }

    /// An answer to a request sent at `sent` showed the node still held.
    fn renew(&self, sent: Instant, terms: Terms) {
        let now = now();
        let mut state = self.lock();
        if state.gone {
            return;
        }
        let lapsed = state.until.is_none_or(|until| until <= now);
        if lapsed && self.lapse_is_final {
            state.gone = true;
        } else if let Some(until) = sent.checked_add(terms.lease) {
            state.until = Some(state.until.map_or(until, |old| old.max(until)));
        }
        drop(state);
        self.changed.notify(usize::MAX);
    }

    /// The node is gone for good.
    pub(crate) fn end(&self) {
        self.lock().gone = true;
        self.changed.notify(usize::MAX);
    }

    /// Whether it is gone for good.
    pub(crate) fn is_gone(&self) -> bool {
        self.lock().gone
    }

    /// Completes when the node is not held (at once if it is not now).
    pub(crate) async fn lapsed(&self) {
        loop {
            let listener = self.changed.listen();
            let Some(until) = self.until().filter(|u| now() < *u) else {
                return;
            };
            future::or(listener, sleep_until_opt(Some(until))).await;
        }
    }

    /// Completes at the next change (renewal or end) or when the lease lapses; once it
    /// has lapsed, only at the next change (a lapse is one change, not a ready timer:
    /// callers loop on this while they wait for something else).
    pub(crate) async fn changed(&self) {
        let listener = self.changed.listen();
        let lapses = self.until().filter(|until| now() < *until);
        future::or(listener, sleep_until_opt(lapses)).await;
    }
}

/// Runs `work` while reporting every change of whether the lease is held through
/// `report` (including a lapse that happens while `work` waits).
async fn reporting<T>(
    lease: &Lease,
    held: &mut bool,
    report: &mut impl FnMut(bool),
    work: impl Future<Output = T>,
) -> T {
    let mut work = pin!(work);
    loop {
        let now = lease.holds();
        if now != *held {
            *held = now;
            report(now);
        }
        let step = future::or(async { Some((&mut work).await) }, async {
            lease.changed().await;
            None
        });
        if let Some(out) = step.await {
            let now = lease.holds();
            if now != *held {
                *held = now;
                report(now);
            }
            return out;
        }
    }
}

/// Renews `lease` on the node `path`, created by `token` for session `sid`, until the
/// node is gone (deleted, replaced, its session lost or expired, the client closed).
/// `report` hears every change of "held" (`true` at first, as the caller holds it).
/// Returns once the lease has ended for good.
pub(crate) async fn keep(
    client: &AsyncClient,
    path: &str,
    token: &Token,
    sid: u64,
    lease: &Lease,
    mut report: impl FnMut(bool),
) {
    let terms = Terms::of(client);
    let mut session = client.session_events();
    let mut held = true;
    // Armed once the node is known to exist: its deletion ends the lease at once.
    let mut deleted = reporting(lease, &mut held, &mut report, async {
        client.watch(path, EventMask::DELETE, false).await.ok()
    })
    .await;
    while !lease.is_gone() {
        let sent = now();
        let round = reporting(lease, &mut held, &mut report, client.exists(path)).await;
        match round {
            Ok(Some(node)) if token.marks(&node) && node.owner == sid => {
                lease.renew(sent, terms);
            }
            // Deleted, or the path holds another node: this attempt's node is gone.
            Ok(_) => lease.end(),
            Err(ClientError::SessionExpired | ClientError::Closed) => lease.end(),
            // No answer: the lease runs out by itself unless a later round renews it.
            Err(_) => {}
        }
        if client.sid().is_some_and(|now| now != sid) {
            lease.end();
        }
        if lease.is_gone() {
            break;
        }
        let next = async {
            future::or(
                async {
                    sleep(terms.heartbeat).await;
                    false
                },
                future::or(
                    async {
                        loop {
                            match session.next().await {
                                Some(Ok(SessionEvent::Lost | SessionEvent::Closed))
                                | Some(Ok(SessionEvent::Expired { .. }))
                                | None => return true,
                                _ => {}
                            }
                        }
                    },
                    async {
                        match &mut deleted {
                            Some(watch) => {
                                watch.next().await;
                                deleted = None;
                                false
                            }
                            None => std::future::pending().await,
                        }
                    },
                ),
            )
            .await
        };
        if reporting(lease, &mut held, &mut report, next).await {
            lease.end();
        }
    }
    if held {
        report(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERMS: Terms = Terms {
        lease: Duration::from_secs(3),
        heartbeat: Duration::from_secs(1),
    };

    #[test]
    fn a_lease_holds_until_its_end_and_renewals_never_shorten_it() {
        let now = now();
        let lease = Lease::new(now + Duration::from_secs(10), false);
        assert!(lease.holds_at(now));
        assert!(!lease.holds_at(now + Duration::from_secs(10)));
        // An answer to an older request cannot pull the end back.
        lease.renew(now, TERMS);
        assert_eq!(lease.until(), Some(now + Duration::from_secs(10)));
        lease.end();
        assert!(!lease.holds_at(now));
        assert_eq!(lease.until(), None);
    }

    #[test]
    fn a_lapsed_lease_reports_no_change_until_one_happens() {
        // A renewable lease that lapsed stays lapsed until renewed or ended: waiting
        // for its next change must wait (a ready lapse would make `reporting` spin).
        let lease = Lease::new(now() - Duration::from_secs(1), false);
        let waiting = future::block_on(future::poll_once(pin!(lease.changed())));
        assert!(waiting.is_none(), "a past lapse was reported as a change");
        let mut renewed = pin!(lease.changed());
        assert!(future::block_on(future::poll_once(&mut renewed)).is_none());
        lease.renew(now(), TERMS);
        assert!(future::block_on(future::poll_once(renewed)).is_some());
    }

    #[test]
    fn a_final_lease_that_lapsed_is_not_renewed_but_a_renewable_one_is() {
        let past = now() - Duration::from_secs(5);
        let lock = Lease::new(past, true);
        lock.renew(now(), TERMS);
        assert!(lock.is_gone(), "a lapsed lock stays lost");
        let leadership = Lease::new(past, false);
        leadership.renew(now(), TERMS);
        assert!(
            leadership.holds(),
            "a leadership whose node is still its own returns"
        );
    }
}
