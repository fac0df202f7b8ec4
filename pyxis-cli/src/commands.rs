//! The tree commands: `ls`, `get`, `create`, `set`, `rm`, `tree`, `watch`, `sessions`,
//! `leader`, each one session of a `pyxis-tokio` client (`rm`/`tree` in [`crate::walk`],
//! `leader` in [`crate::leader`]).
//!
//! Owns: opening the command's session, running its operations, and handing the results
//! to [`crate::output`]. Must never implement protocol behaviour (retries, redirects,
//! re-arming watches): the client does all of that; a command only asks and prints.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pyxis_core::{EventMask, Node};
use pyxis_tokio::{Client, CreateMode, Options, ReadOptions, SessionEvent, WatchError};

use crate::args::{Command, EventKind, GlobalArgs, WatchArgs};
use crate::exit::CliError;
use crate::output::{self, EventView, NodeView, SessionView};
use crate::walk::child_path;
use crate::{leader, walk};

/// Opens a session with the cluster, waiting at most `--timeout`.
///
/// A one-shot command (`fail_fast`) gives up as soon as every server has failed in turn
/// (refused, unresolved, no leader known), and its later requests likewise, instead of
/// waiting out `--timeout`; a command that holds its session (watch, lock, elect, an
/// ephemeral create) rides through such windows. Either way the error says why, in the
/// client's words ("connection refused by 127.0.0.1:7000").
pub async fn connect(global: &GlobalArgs, fail_fast: bool) -> Result<Client, CliError> {
    let options = Options::new()
        .request_timeout(global.timeout)
        .connect_timeout(global.timeout.min(Duration::from_secs(2)))
        .fail_fast(fail_fast);
    let list = global.addrs();
    let addrs = list.join(",");
    let started = std::time::Instant::now();
    let client = Client::connect(list.clone(), options)
        .await
        .map_err(|e| CliError::Usage(format!("--addrs {addrs}: {e}")))?;
    if let Err(error) = client.wait_connected(global.timeout).await {
        let waited = started.elapsed().min(global.timeout);
        // No session was opened, so there is nothing to unregister: close at once.
        client.close().await;
        let reason = match error.cause() {
            Some(cause) => cause.to_string(),
            None => error.to_string(),
        };
        return Err(CliError::Connect {
            addrs,
            waited: Duration::from_millis(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)),
            reason,
        });
    }
    Ok(client)
}

/// Runs one tree command on a fresh session and closes it.
pub async fn run(global: &GlobalArgs, command: Command) -> Result<(), CliError> {
    let holds_its_session = matches!(
        command,
        Command::Watch(_)
            | Command::Lock(_)
            | Command::Elect(_)
            | Command::Tree { follow: true, .. }
            | Command::Create {
                ephemeral: true,
                ..
            }
    );
    let client = connect(global, !holds_its_session).await?;
    let result = dispatch(&client, global, command).await;
    client.close().await;
    result
}

async fn dispatch(client: &Client, global: &GlobalArgs, command: Command) -> Result<(), CliError> {
    let json = global.json;
    match command {
        Command::Ls { path, all } => {
            let node = read(client, "ls", &path, all).await?;
            if json {
                print(&output::json(&serde_json::json!({
                    "path": node.path,
                    "children": node.children,
                })))
            } else {
                print(
                    &node
                        .children
                        .iter()
                        .map(|c| format!("{}\n", output::escape(c)))
                        .collect::<String>(),
                )
            }
        }
        Command::Get { path, raw } => {
            let node = read(client, "get", &path, false).await?;
            if raw {
                output::write_stdout(&node.data)
            } else if json {
                print(&output::json(&NodeView::of(&node)))
            } else {
                print(&NodeView::of(&node).human())
            }
        }
        Command::Create {
            path,
            data,
            ephemeral,
            hold,
            parents,
        } => {
            let how = CreateHow {
                ephemeral,
                hold,
                parents,
            };
            create(client, json, &path, data.as_deref(), how).await
        }
        Command::Set { path, data } => {
            let data = data_argument(Some(&data))?.unwrap_or_default();
            client
                .write(&path, data)
                .await
                .map_err(|e| CliError::request("set", &path, e))?;
            let node = read(client, "set", &path, false).await?;
            report(json, "set", &path, &format!("version {}", node.version))
        }
        Command::Rm { path, recursive } => walk::rm(client, json, &path, recursive).await,
        Command::Tree {
            path,
            depth,
            all,
            follow: false,
        } => walk::tree(client, json, &path, depth, all).await,
        Command::Tree {
            path,
            depth,
            all,
            follow: true,
        } => crate::recipes::follow_tree(client, json, &path, depth, all).await,
        Command::Watch(args) => watch(client, json, args).await,
        Command::Sessions => sessions(client, json).await,
        Command::Leader => leader::leader(client, json, global.timeout).await,
        Command::Lock(args) => crate::recipes::lock(client, args).await,
        Command::Elect(args) => crate::recipes::elect(client, json, args).await,
        Command::Dev(_) | Command::Bench(_) | Command::Completions { .. } | Command::Man { .. } => {
            Err(CliError::Usage(
                "dev, bench, completions and man do not run on a client session".into(),
            ))
        }
    }
}

/// Writes `text` to stdout (see [`output::write_stdout`]).
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    output::write_stdout(text.as_bytes())
}

/// Prints the outcome of a change: `<verb> <path> (<detail>)` or a JSON object.
fn report(json: bool, verb: &str, path: &str, detail: &str) -> Result<(), CliError> {
    if json {
        print(&output::json(&serde_json::json!({
            "op": verb,
            "path": path,
            "detail": detail,
        })))
    } else {
        print(&format!("{verb} {} ({detail})\n", output::escape(path)))
    }
}

pub(crate) async fn read(
    client: &Client,
    op: &'static str,
    path: &str,
    all: bool,
) -> Result<Node, CliError> {
    let options = if all {
        ReadOptions::show_hidden(true)
    } else {
        ReadOptions::default()
    };
    client
        .read_with(path, options)
        .await
        .map_err(|e| CliError::request(op, path, e))
}

/// The data of a `create`/`set` argument: `-` reads stdin, absent means none.
fn data_argument(data: Option<&str>) -> Result<Option<Bytes>, CliError> {
    match data {
        None => Ok(None),
        Some("-") => {
            let mut buf = Vec::new();
            // Bounded: one byte past the node size limit is enough to be refused.
            std::io::stdin()
                .lock()
                .take(pyxis_proto::limits::MAX_NODE_SIZE as u64 + 1)
                .read_to_end(&mut buf)?;
            Ok(Some(Bytes::from(buf)))
        }
        Some(text) => Ok(Some(Bytes::copy_from_slice(text.as_bytes()))),
    }
}

/// The options of `create` besides the path and data.
#[derive(Debug, Clone, Copy)]
struct CreateHow {
    ephemeral: bool,
    hold: Option<Duration>,
    parents: bool,
}

async fn create(
    client: &Client,
    json: bool,
    path: &str,
    data: Option<&str>,
    how: CreateHow,
) -> Result<(), CliError> {
    let CreateHow {
        ephemeral,
        hold,
        parents,
    } = how;
    let data = data_argument(data)?.unwrap_or_default();
    let mode = if ephemeral {
        CreateMode::Ephemeral
    } else {
        CreateMode::Persistent
    };
    let mut made_parents = Vec::new();
    match client.create(path, data.clone(), mode).await {
        Ok(()) => {}
        // The parent is missing: with -p, create the missing ancestors and try again.
        Err(pyxis_core::Error::NotFound { .. }) if parents => {
            made_parents = create_parents(client, path).await?;
            client
                .create(path, data, mode)
                .await
                .map_err(|e| CliError::request("create", path, e))?;
        }
        Err(e) => return Err(CliError::request("create", path, e)),
    }
    if !json {
        for parent in &made_parents {
            print(&format!("created {} (parent)\n", output::escape(parent)))?;
        }
    }
    let report = |detail: &str| {
        if json {
            print(&output::json(&serde_json::json!({
                "op": "created",
                "path": path,
                "detail": detail,
                "parents": made_parents,
            })))
        } else {
            print(&format!("created {} ({detail})\n", output::escape(path)))
        }
    };
    if !ephemeral {
        return report("persistent");
    }
    let sid = output::sid(client.sid().unwrap_or(0));
    // Registered before the line below is printed, so an early Ctrl-C is not lost.
    let interrupted = crate::interrupt()?;
    let until = match hold {
        Some(d) => format!("for {} or until Ctrl-C", humantime::format_duration(d)),
        None => "until Ctrl-C".to_owned(),
    };
    report(&format!("ephemeral, session {sid}, held {until}"))?;
    let mut events = client.session_events();
    // Until Ctrl-C, or the end of `--hold` if that comes first.
    let held = async {
        match hold {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = interrupted => {}
                }
            }
            None => interrupted.await,
        }
    };
    tokio::select! {
        () = held => Ok(()),
        expired = session_lost(&mut events) => Err(CliError::request("create", path, expired)),
    }
}

/// Creates the missing ancestors of `path` (persistent, no data), from the top down;
/// returns the ones this call created (an ancestor that exists, or is created meanwhile
/// by someone else, is left as it is).
async fn create_parents(client: &Client, path: &str) -> Result<Vec<String>, CliError> {
    let mut created = Vec::new();
    for (i, _) in path.match_indices('/').skip(1) {
        let ancestor = &path[..i];
        match client
            .create(ancestor, Bytes::new(), CreateMode::Persistent)
            .await
        {
            Ok(()) => created.push(ancestor.to_owned()),
            Err(pyxis_core::Error::Exists { .. }) => {}
            Err(e) => return Err(CliError::request("create", ancestor, e)),
        }
    }
    Ok(created)
}

/// Completes when the session expires or the client closes (the ephemeral node is gone).
async fn session_lost(events: &mut pyxis_tokio::SessionEvents) -> pyxis_core::Error {
    loop {
        match events.next().await {
            Some(Ok(SessionEvent::Expired { .. })) => return pyxis_core::Error::SessionExpired,
            Some(Ok(SessionEvent::Closed)) | None => return pyxis_core::Error::Closed,
            Some(_) => {}
        }
    }
}

/// The watch mask for `--events` (all node events when empty).
pub fn event_mask(kinds: &[EventKind]) -> EventMask {
    if kinds.is_empty() {
        return EventMask(pyxis_proto::event_type::NODE_EVENTS);
    }
    kinds.iter().fold(EventMask(0), |mask, kind| {
        mask | match kind {
            EventKind::Create => EventMask::CREATE,
            EventKind::Delete => EventMask::DELETE,
            EventKind::Modify => EventMask::MODIFY,
            EventKind::Children => EventMask::CHILDREN,
        }
    })
}

async fn watch(client: &Client, json: bool, args: WatchArgs) -> Result<(), CliError> {
    let mask = event_mask(&args.events);
    let mut events = client
        .watch_persistent(&args.path, mask, args.recursive)
        .await
        .map_err(|e| CliError::request("watch", &args.path, e))?;
    let mut session = client.session_events();
    let interrupted = crate::interrupt()?;
    tokio::pin!(interrupted);
    // Armed on the server: scripts (and the tests) wait for this line on stderr.
    eprintln!("watching {} for {mask}", output::escape(&args.path));
    let mut seen = 0u64;
    // The session stream ends after `Closed`: stop polling it then (the watch ends too).
    let mut session_open = true;
    while args.count.is_none_or(|n| seen < n) {
        tokio::select! {
            _ = &mut interrupted => break,
            state = session.next(), if session_open => match state {
                Some(Ok(SessionEvent::Suspended)) => eprintln!("disconnected; reconnecting"),
                Some(Ok(SessionEvent::Connected { sid })) => {
                    eprintln!("connected (session {})", output::sid(sid))
                }
                Some(Ok(SessionEvent::Lost)) => {
                    eprintln!("disconnected past the session timeout; the session has most likely expired")
                }
                Some(Ok(SessionEvent::Expired { old_sid })) => eprintln!(
                    "session {} expired; watch re-armed on the new session",
                    output::sid(old_sid)
                ),
                // Events the server raised meanwhile are lost: the watch's own node is
                // compared and its differences come as inferred events.
                Some(Ok(SessionEvent::WatchesRearmed)) => {
                    eprintln!("watch registered again; changes meanwhile come as inferred events")
                }
                Some(Err(lagged)) => eprintln!("session events: {lagged}"),
                Some(Ok(_)) => {}
                None => session_open = false,
            },
            event = events.next() => match event {
                Some(Ok(event)) => {
                    seen += 1;
                    let view = EventView::of(&event, SystemTime::now());
                    if json {
                        // One compact JSON document per line (NDJSON).
                        let line = serde_json::to_string(&view).unwrap_or_default();
                        print(&format!("{line}\n"))?;
                    } else {
                        print(&format!("{}\n", view.human()))?;
                    }
                }
                Some(Err(WatchError::Lagged(n))) => eprintln!("{n} events dropped (output too slow)"),
                Some(Err(e)) => {
                    return Err(CliError::WatchEnded { path: args.path, reason: e.to_string() })
                }
                None => {
                    return Err(CliError::WatchEnded { path: args.path, reason: "client closed".into() })
                }
            },
        }
    }
    Ok(())
}

async fn sessions(client: &Client, json: bool) -> Result<(), CliError> {
    const ROOT: &str = "/pyxis/session";
    let mine = client.sid();
    let list = read(client, "sessions", ROOT, true).await?;
    let mut views = Vec::with_capacity(list.children.len());
    for name in &list.children {
        let Some(sid) = parse_sid(name) else { continue };
        let path = child_path(ROOT, name);
        let info = match client.read(&path).await {
            Ok(node) => match serde_json::from_slice(&node.data) {
                Ok(value) => value,
                Err(_) => serde_json::Value::String(String::from_utf8_lossy(&node.data).into()),
            },
            // The session ended between the listing and this read.
            Err(pyxis_core::Error::NotFound { .. }) => continue,
            Err(e) => return Err(CliError::request("sessions", &path, e)),
        };
        views.push(SessionView {
            sid,
            info,
            this: Some(sid) == mine,
        });
    }
    views.sort_by_key(|v| v.sid);
    if json {
        return print(&output::json(&views));
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let info = match &v.info {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let this = if v.this { " (this command)" } else { "" };
            vec![
                format!("{}{this}", output::sid(v.sid)),
                v.sid.to_string(),
                info,
            ]
        })
        .collect();
    print(&output::table(
        &["SESSION", "/pyxis/session/", "INFO"],
        &rows,
    ))
}

/// A session id as named under `/pyxis/session`: decimal, or hex with `0x`.
pub fn parse_sid(name: &str) -> Option<u64> {
    match name.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => name.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids() {
        assert_eq!(parse_sid("12345"), Some(12345));
        assert_eq!(parse_sid("0x1f"), Some(31));
        assert_eq!(parse_sid("db"), None);
    }

    #[test]
    fn event_masks_follow_the_selection() {
        assert_eq!(event_mask(&[]).0, 0x0f);
        assert_eq!(
            event_mask(&[EventKind::Create, EventKind::Children]).0,
            0x09
        );
    }
}
