//! The software of one application host: a client and every recipe it uses, with a
//! workload that takes the lock, contends for leadership, passes the rounds of a double
//! barrier and changes the watched data.
//!
//! Owns: [`start`] (one run of the host's software, from connect until its host
//! crashes or the simulation ends) and [`Views`] (what the driver reads of the host's
//! recipes). Must never read the system clock or the global RNG (the seed is the host's),
//! nor check an oracle (the driver does, from the ledger and the views).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, CreateMode, SessionEvent};
use pyxis_recipes::{
    ConfigValue, Configuration, Discovery, DoubleBarrier, Election, Leadership, Lock, Registration,
    TreeCache,
};
use pyxis_tokio::Options;
use pyxis_turmoil::connect;

use super::ledger::{Ledger, Role};
use super::views::{entry, NaiveMirror, Tree};
use super::{Broken, APPS, BARRIER, CONFIG, ELECTION, LOCK, SERVICE, TREE};

/// Most nodes a cache may hold (the workload makes at most 13 under [`TREE`]).
const CACHE_BOUND: usize = 1_000;
/// The lock waits at most this long per attempt.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A barrier's `enter` waits at most this long per attempt.
const ENTER_TIMEOUT: Duration = Duration::from_secs(10);
/// A barrier's `leave` waits at most this long.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the driver reads of an application's recipes.
pub enum Views {
    /// The recipes' own views (the correct workload).
    Recipes {
        /// The service's instances.
        discovery: Discovery,
        /// The mirror of [`TREE`].
        cache: TreeCache,
        /// The value of [`CONFIG`].
        config: Configuration<Bytes>,
    },
    /// Naive mirrors that ignore inferred events (the broken variant).
    Naive {
        /// A mirror of [`SERVICE`].
        services: NaiveMirror,
        /// A mirror of [`TREE`].
        tree: NaiveMirror,
        /// The value of [`CONFIG`].
        config: Configuration<Bytes>,
    },
}

impl Views {
    /// The instances seen (name → data).
    pub fn instances(&self) -> BTreeMap<String, Bytes> {
        match self {
            Views::Recipes { discovery, .. } => discovery.instances(),
            Views::Naive { services, .. } => {
                let prefix = format!("{SERVICE}/");
                services
                    .snapshot()
                    .into_iter()
                    .filter_map(|(path, (data, _, _))| {
                        let name = path.strip_prefix(&prefix)?;
                        Some((name.to_owned(), data))
                    })
                    .collect()
            }
        }
    }

    /// The subtree seen (`None` once the cache stopped).
    pub fn tree(&self) -> Option<Tree> {
        match self {
            Views::Recipes { cache, .. } => cache
                .snapshot()
                .ok()
                .map(|nodes| nodes.iter().map(|(p, n)| (p.clone(), entry(n))).collect()),
            Views::Naive { tree, .. } => Some(tree.snapshot()),
        }
    }

    /// The configuration seen: `Some(None)` for an absent node, `None` while loading.
    pub fn config(&self) -> Option<Option<Bytes>> {
        let config = match self {
            Views::Recipes { config, .. } | Views::Naive { config, .. } => config,
        };
        match config.get() {
            ConfigValue::Present { value, .. } => Some(Some(value)),
            ConfigValue::Absent => Some(None),
            _ => None,
        }
    }
}

/// What a host's software is given.
#[derive(Clone)]
pub struct Host {
    /// The application's name (its turmoil host, instance name and candidate payload).
    pub name: &'static str,
    /// The cluster's addresses.
    pub addrs: Vec<String>,
    /// The seed of this run of the host (client and workload).
    pub seed: u64,
    /// The variant run.
    pub broken: Broken,
    /// Where beliefs are recorded.
    pub ledger: Ledger,
    /// The workload changes data only before this instant (since the start).
    pub changes_until: Duration,
    /// Where the host puts its client and views for the driver.
    pub slot: Rc<RefCell<Slot>>,
}

/// The parts of a running host the driver reads.
#[derive(Default)]
pub struct Slot {
    /// The client (for its session id).
    pub client: Option<AsyncClient>,
    /// The recipes' views.
    pub views: Option<Views>,
}

/// Runs the host's software until its host crashes or the simulation ends.
pub async fn start(host: Host) -> turmoil::Result {
    // Kept for the whole run: the recipes use its `AsyncClient`.
    let owner = connect(host.addrs.clone(), Options::new().seed(host.seed)).await?;
    let client: AsyncClient = (*owner).clone();
    let name = host.name;
    let _registration = Registration::register(&client, SERVICE, name, format!("{name}:80"))?;
    let config = Configuration::watch(&client, CONFIG)?;
    let views = if host.broken == Broken::ViewsIgnoreInferred {
        let (services, tree) = (NaiveMirror::default(), NaiveMirror::default());
        tokio::spawn(services.clone().follow(client.clone(), SERVICE.to_owned()));
        tokio::spawn(tree.clone().follow(client.clone(), TREE.to_owned()));
        Views::Naive {
            services,
            tree,
            config,
        }
    } else {
        Views::Recipes {
            discovery: Discovery::watch(&client, SERVICE)?,
            cache: TreeCache::watch(&client, TREE, CACHE_BOUND)?,
            config,
        }
    };
    {
        let mut slot = host.slot.borrow_mut();
        slot.client = Some(client.clone());
        slot.views = Some(views);
    }
    let election = Election::join(&client, ELECTION, name)?;
    future::zip(
        future::zip(
            follow_leadership(&host, &client, &election),
            hold_locks(&host, &client),
        ),
        future::zip(change_data(&host, &client), pass_barriers(&host, &client)),
    )
    .await;
    drop(owner);
    Ok(())
}

/// Records this candidate's leadership as it is told (the broken variant: as its
/// session events tell, ignoring a lapsed lease).
async fn follow_leadership(host: &Host, client: &AsyncClient, election: &Election) {
    let mut events = election.events();
    let mut session = client.session_events();
    let broken = host.broken == Broken::ElectionIgnoresSuspension;
    loop {
        let next = future::or(async { Some(events.next().await) }, async {
            match session.next().await {
                Some(Ok(
                    SessionEvent::Lost | SessionEvent::Expired { .. } | SessionEvent::Closed,
                )) if broken => None,
                Some(_) => std::future::pending().await,
                None => std::future::pending().await,
            }
        })
        .await;
        match next {
            Some(Some(Ok(Leadership::Elected))) => {
                host.ledger.believe(host.name, Role::Leader, true)
            }
            // Changes dropped: believe what the candidate says now.
            Some(Some(Err(_))) if !broken => {
                host.ledger
                    .believe(host.name, Role::Leader, election.is_leader())
            }
            Some(Some(_)) if !broken => host.ledger.believe(host.name, Role::Leader, false),
            Some(Some(_)) => {}
            Some(None) => return,
            None => host.ledger.believe(host.name, Role::Leader, false),
        }
    }
}

/// Takes the lock again and again, holding it 0.5-12 s each time, or until told it is
/// lost (the broken variant: for the whole time, whatever it is told).
async fn hold_locks(host: &Host, client: &AsyncClient) {
    let mut rng = fastrand::Rng::with_seed(host.seed ^ 0x10c);
    let lock = Lock::new(client, LOCK).with_payload(host.name);
    loop {
        if let Ok(guard) = lock.acquire(ACQUIRE_TIMEOUT).await {
            if guard.is_held() {
                host.ledger.believe(host.name, Role::Lock, true);
                let hold = tokio::time::sleep(Duration::from_millis(rng.u64(500..12_000)));
                if host.broken == Broken::LockIgnoresLoss {
                    hold.await;
                } else {
                    future::or(guard.lost(), hold).await;
                }
                host.ledger.believe(host.name, Role::Lock, false);
            }
            let _ = guard.release().await;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..1_000))).await;
    }
}

/// Passes the double barrier of each round in turn with the other applications: arrives
/// (the books keep the round across this host's crashes), waits in `enter`, stays
/// 0.1-1 s, leaves. An `enter` that times out (a participant's session ended, or the
/// others went on while this host's old session still held its name) tries again in the
/// newest round on the server. The broken variant's barrier fills at one participant.
async fn pass_barriers(host: &Host, client: &AsyncClient) {
    let mut rng = fastrand::Rng::with_seed(host.seed ^ 0xba2e);
    let count = match host.broken {
        Broken::BarrierPassesAlone => 1,
        _ => APPS.len(),
    };
    loop {
        let round = host.ledger.round(host.name);
        let dir = format!("{BARRIER}/{round}");
        let barrier = DoubleBarrier::new(client, dir, host.name, count);
        host.ledger.arrive(host.name, round);
        if barrier.enter(ENTER_TIMEOUT).await.is_ok() {
            host.ledger.pass(host.name, round);
            tokio::time::sleep(Duration::from_millis(rng.u64(100..1_000))).await;
            let _ = barrier.leave(LEAVE_TIMEOUT).await;
            host.ledger.set_round(host.name, round + 1);
            continue;
        }
        let newest = match client.read(BARRIER).await {
            Ok(node) => node.children.iter().filter_map(|c| c.parse().ok()).max(),
            Err(_) => None,
        };
        host.ledger
            .set_round(host.name, newest.unwrap_or(round).max(round));
        tokio::time::sleep(Duration::from_millis(rng.u64(0..500))).await;
    }
}

/// Until [`Host::changes_until`], every 0.2-1 s: creates, writes or deletes a node under
/// [`TREE`], or writes [`CONFIG`]. Failures (faults) are ignored: the oracles compare
/// views with whatever the server ended up with.
async fn change_data(host: &Host, client: &AsyncClient) {
    let mut rng = fastrand::Rng::with_seed(host.seed ^ 0xda7a);
    let _ = client.create(TREE, "", CreateMode::Persistent).await;
    while pyxis_turmoil::since_start(pyxis_turmoil::now()) < host.changes_until {
        tokio::time::sleep(Duration::from_millis(rng.u64(200..1_000))).await;
        let top = format!("{TREE}/{}", ["a", "b", "c"][rng.usize(0..3)]);
        let path = if rng.bool() {
            top
        } else {
            format!("{top}/{}", ["x", "y", "z"][rng.usize(0..3)])
        };
        let data = format!("{}-{}", host.name, rng.u32(..));
        let _ = match rng.u8(0..5) {
            0 | 1 => client.create(&path, data, CreateMode::Persistent).await,
            2 => client.write(&path, data).await,
            3 => client.delete(&path).await,
            _ => match client.write(CONFIG, data.clone()).await {
                Err(pyxis_client_common::Error::NotFound { .. }) => {
                    client.create(CONFIG, data, CreateMode::Persistent).await
                }
                other => other,
            },
        };
    }
    std::future::pending::<()>().await;
}
