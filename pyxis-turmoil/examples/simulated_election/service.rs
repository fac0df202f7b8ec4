//! The service under test: each instance registers itself under `/services` (an
//! ephemeral node) and the instances elect one leader through `/election/leader` (an
//! ephemeral node: whoever creates it leads; the others watch it and try again when it
//! is deleted).
//!
//! The service's own promise is that **at most one instance acts as leader at a time**.
//! Holding the node is not enough for that: an instance cut off from Pyxis still "holds"
//! it until the server expires its session, and by then another instance may have taken
//! over. So an instance acts as leader only under a lease: every answer from Pyxis proves
//! its session was alive when the request was sent (each request refreshes it), so the
//! server cannot expire it before `sent + session_timeout` (less the server's rounding of
//! expiry to its check interval). The instance leads until `sent + session_timeout -
//! margin` after the last answer that showed it the holder, and steps down when that
//! passes without a newer one, or at once when the client reports the session
//! `Suspended` (connection lost) or `Lost`.
//!
//! Nothing here knows about the simulation: it takes a `pyxis_tokio::Client` and uses
//! `tokio::time`, so the same code runs in production and under turmoil.

use std::future::Future;
use std::time::Duration;

use pyxis_tokio::{Client, CreateMode, Error, EventMask, SessionEvent, Watch};
use tokio::time::{sleep, sleep_until, Instant};

/// Where instances register.
pub const SERVICES: &str = "/services";
/// The node whose holder leads.
pub const LEADER: &str = "/election/leader";

/// What an instance tells its owner (a log in production, the test's ledger here).
pub trait Report {
    /// The instance starts (`true`) or stops (`false`) acting as leader.
    fn leading(&self, name: &str, leading: bool);
}

/// One instance of the service.
pub struct Instance<R: Report> {
    name: String,
    client: Client,
    /// How long an answer keeps the lease (session timeout less the margin).
    lease: Duration,
    /// How often the instance checks in when nothing happens.
    heartbeat: Duration,
    role: Role<R>,
}

/// Whether the instance acts as leader, and until when.
struct Role<R: Report> {
    name: String,
    report: R,
    leading_until: Option<Instant>,
}

impl<R: Report> Instance<R> {
    /// An instance named `name` on `client`, whose session timeout is `session_timeout`.
    pub fn new(name: &str, client: Client, session_timeout: Duration, report: R) -> Self {
        Instance {
            name: name.to_owned(),
            client,
            // The server rounds expiry to its check interval (1 s on real servers: up to
            // half of it earlier); a quarter of the timeout is more than that.
            lease: session_timeout - session_timeout / 4,
            heartbeat: session_timeout / 5,
            role: Role {
                name: name.to_owned(),
                report,
                leading_until: None,
            },
        }
    }

    /// Replaces the lease: how long after sending a request whose answer showed this
    /// instance the holder it keeps acting as leader. Longer than the session timeout
    /// is unsafe: the server may expire the session, and another instance take over,
    /// before it runs out (the test uses that to show it catches the mistake).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Runs the instance until its task is dropped.
    pub async fn run(mut self) {
        let mut session = self.client.session_events();
        let mut holder_deleted: Option<Watch> = None;
        // The parents, once (they are persistent); retried until the cluster answers.
        while ensure_persistent(&self.client, SERVICES).await.is_err()
            || ensure_persistent(&self.client, "/election").await.is_err()
        {
            sleep(self.heartbeat).await;
        }
        loop {
            let sent = Instant::now();
            // A round that hangs (the cluster out of reach) is given up on after half a
            // session timeout, so that the next one notices news sooner.
            let patience = self.lease / 2;
            let round = tokio::time::timeout(patience, round(&self.client, &self.name));
            match self.role.under_lease(round).await {
                Ok(Ok(Holder::Me)) => self.role.lead_until(sent + self.lease),
                Ok(Ok(Holder::Other(watch))) => {
                    self.role.step_down();
                    holder_deleted = watch.or(holder_deleted.take());
                }
                // Not confirmed: the lease runs out by itself unless a later round renews it.
                Ok(Err(_)) | Err(_) => {}
            }
            // Wait for the next round: a heartbeat, the holder's deletion, or news of the
            // session. The lease is watched throughout.
            let heartbeat = self.heartbeat;
            let wait = async {
                tokio::select! {
                    biased;
                    event = session.next() => matches!(
                        event,
                        Some(Ok(SessionEvent::Suspended
                            | SessionEvent::Lost
                            | SessionEvent::Expired { .. }))
                    ),
                    () = deleted(&mut holder_deleted) => false,
                    () = sleep(heartbeat) => false,
                }
            };
            if self.role.under_lease(wait).await {
                // Suspended (the connection is gone), or worse: whatever the lease says,
                // stop now; the next round that shows this session the holder leads again.
                self.role.step_down();
            }
        }
    }
}

/// Who holds the leader node, as one round saw it.
enum Holder {
    /// This instance's session.
    Me,
    /// Another session (or nobody, just now); the watch fires when its node is deleted.
    Other(Option<Watch>),
}

/// One check-in: make sure the instance `name` is registered, then try to hold the
/// leader node.
async fn round(client: &Client, name: &str) -> Result<Holder, Error> {
    let me = format!("{SERVICES}/{name}");
    if client.exists(&me).await?.is_none() {
        match client.create_ephemeral(&me, name.to_owned()).await {
            // Exists: the node of this instance's previous session, until it expires.
            Ok(()) | Err(Error::Exists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // The holder and a watch for its deletion, in one server step: no deletion can
    // slip in between the look and the watch.
    let (holder, deleted) = client
        .exists_and_watch(LEADER, EventMask::DELETE, false)
        .await?;
    match holder {
        Some(node) if Some(node.owner) == client.sid() => Ok(Holder::Me),
        Some(_) => Ok(Holder::Other(Some(deleted))),
        None => match client.create_ephemeral(LEADER, name.to_owned()).await {
            Ok(()) => Ok(Holder::Me),
            // Another instance was quicker: the next round watches its node.
            Err(Error::Exists { .. }) => Ok(Holder::Other(None)),
            Err(e) => Err(e),
        },
    }
}

impl<R: Report> Role<R> {
    /// Runs `work`, stepping down the moment the lease runs out while it waits.
    async fn under_lease<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let Some(until) = self.leading_until else {
                return work.await;
            };
            tokio::select! {
                biased;
                () = sleep_until(until) => self.step_down(),
                out = &mut work => return out,
            }
        }
    }

    fn lead_until(&mut self, until: Instant) {
        if until <= Instant::now() {
            return self.step_down();
        }
        if self.leading_until.is_none() {
            self.report.leading(&self.name, true);
        }
        self.leading_until = Some(until);
    }

    fn step_down(&mut self) {
        if self.leading_until.take().is_some() {
            self.report.leading(&self.name, false);
        }
    }
}

/// Creates the persistent node `path` unless it exists.
async fn ensure_persistent(client: &Client, path: &str) -> Result<(), Error> {
    match client.create(path, "", CreateMode::Persistent).await {
        Ok(()) | Err(Error::Exists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Completes when `watch` yields (its node was deleted, or it ended), and forgets it;
/// pending forever without a watch.
async fn deleted(watch: &mut Option<Watch>) {
    match watch {
        Some(w) => {
            w.next().await;
            *watch = None;
        }
        None => std::future::pending().await,
    }
}
