//! The `/pyxis` proc tree as the original server shows it ([protocol](pyxis_proto::protocol)
//! §8).
//!
//! Owns: resolving a path that starts with `/pyxis` to a proc node, rendered from the
//! model's state at the time of the read: `/pyxis` (`cluster`, `db`, `eventlog`,
//! `session`, `snapshot`), `/pyxis/cluster/{leader,addrlist}`, `/pyxis/session` and
//! `/pyxis/session/<sid>` (the original's one-line JSON), `/pyxis/db` (storage property
//! names, one of which, `leveldb.num-files-at-level<N>`, is not a valid path) and the
//! write-only `/pyxis/eventlog` and `/pyxis/snapshot`, with the original's loose matching
//! (`/pyxis/` as `/pyxis`, `/pyxis/cluster/leader/x` as the leader, any other
//! `/pyxis/cluster…` an empty node). Must never change state: these nodes are views.

use bytes::Bytes;
use pyxis_proto::{store, ErrorType};

use super::store::Refusal;
use super::ClusterModel;

/// The children `/pyxis/db` lists: the storage engine's property names, as the original
/// (LevelDB) lists them. The first is a name pattern, not a valid path.
pub(crate) const DB_PROPERTIES: [&str; 3] = [
    "leveldb.num-files-at-level<N>",
    "leveldb.stats",
    "leveldb.sstables",
];

/// LevelDB's number of levels: `leveldb.num-files-at-level0` ..`6` exist.
const DB_LEVELS: u32 = 7;

/// The data of the write-only proc nodes.
const WRITE_ONLY: &str = "write only";

fn view(data: impl Into<Bytes>, children: Vec<String>) -> store::Node {
    store::Node {
        data: Some(data.into()),
        children,
        flags: Some(0),
        version: Some(0),
        sid: None,
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Whether a write to `path` (a proc path that resolves) succeeds: at or below
/// `/pyxis/snapshot` or `/pyxis/eventlog`.
pub(crate) fn is_writable_proc(path: &str) -> bool {
    ["/pyxis/snapshot", "/pyxis/eventlog"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// The rest of `path` after `prefix` when it is the node itself or below it.
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The text of `leveldb.stats` on an empty database.
fn db_stats() -> String {
    format!(
        "{:>31}Compactions\nLevel  Files Size(MB) Time(sec) Read(MB) Write(MB)\n{}\n",
        "",
        "-".repeat(50)
    )
}

/// The text of `leveldb.sstables` on an empty database.
fn db_sstables() -> String {
    (0..DB_LEVELS)
        .map(|l| format!("--- level {l} ---\n"))
        .collect()
}

impl ClusterModel {
    /// The proc node at `path` (a path starting with `/pyxis`): `Ok(None)` when nothing
    /// is there (kNotFound), an error where the original answers one (an unknown
    /// storage property: kInternal).
    pub(crate) fn proc_node(&self, path: &str) -> Result<Option<store::Node>, Refusal> {
        let Some(rest) = path.strip_prefix("/pyxis") else {
            return Ok(None);
        };
        if rest.is_empty() || rest == "/" {
            return Ok(Some(view(
                Bytes::new(),
                names(&["cluster", "db", "eventlog", "session", "snapshot"]),
            )));
        }
        if let Some(cluster) = rest.strip_prefix("/cluster") {
            return Ok(Some(self.cluster_node(cluster)));
        }
        if let Some(db) = under(rest, "/db") {
            return self.db_node(path, db).map(Some);
        }
        if under(rest, "/snapshot").is_some() || under(rest, "/eventlog").is_some() {
            // Only the data field: no flags, no version.
            return Ok(Some(store::Node {
                data: Some(Bytes::from_static(WRITE_ONLY.as_bytes())),
                ..Default::default()
            }));
        }
        if let Some(session) = under(rest, "/session") {
            return Ok(self.session_node(session));
        }
        Ok(None)
    }

    fn cluster_node(&self, rest: &str) -> store::Node {
        if rest.is_empty() || rest == "/" {
            return view(Bytes::new(), names(&["leader", "addrlist"]));
        }
        if under(rest, "/leader").is_some() {
            let addr = self.leader.map(|l| self.node_addr(l)).unwrap_or_default();
            return view(addr, Vec::new());
        }
        if under(rest, "/addrlist").is_some() {
            let list: Vec<String> = (0..self.nodes.len()).map(|n| self.node_addr(n)).collect();
            return view(list.join(","), Vec::new());
        }
        // The original answers any other `/pyxis/cluster…` path with an empty node.
        view(Bytes::new(), Vec::new())
    }

    fn db_node(&self, path: &str, rest: &str) -> Result<store::Node, Refusal> {
        let name = rest.trim_start_matches('/');
        if name.is_empty() {
            return Ok(view(Bytes::new(), names(&DB_PROPERTIES)));
        }
        let data = match name {
            "leveldb.stats" => db_stats(),
            "leveldb.sstables" => db_sstables(),
            other => match other
                .strip_prefix("leveldb.num-files-at-level")
                .and_then(|l| l.parse::<u32>().ok())
            {
                Some(level) if level < DB_LEVELS => "0".to_owned(),
                _ => {
                    return Err(Refusal::new(
                        ErrorType::KInternal,
                        format!("{path} Invalid argument: InvalidArgument:bad request {name}"),
                    ))
                }
            },
        };
        Ok(view(data, Vec::new()))
    }

    fn session_node(&self, rest: &str) -> Option<store::Node> {
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            return Some(view(
                Bytes::new(),
                self.sessions.keys().map(|sid| sid.to_string()).collect(),
            ));
        }
        // `/pyxis/session/<sid>/anything` reads as the session node.
        let text = rest.split('/').next().unwrap_or("");
        let sid: u64 = text.parse().ok()?;
        if sid.to_string() != text {
            return None; // "+5" or "05" name no session
        }
        let session = self.sessions.get(&sid)?;
        Some(view(self.session_json(sid, session), Vec::new()))
    }

    /// The original's session JSON: one line, keys in alphabetical order, `sid` as a
    /// string, `node` (sorted) and `watch` (by path) left out when empty.
    fn session_json(&self, sid: u64, session: &super::session::Session) -> String {
        let mut fields = vec![
            format!("\"join\":{}", self.wall_secs(session.joined)),
            format!("\"last\":{}", self.wall_secs(session.last_refresh)),
        ];
        if !session.ephemerals.is_empty() {
            let nodes: Vec<String> = session
                .ephemerals
                .iter()
                .map(|p| serde_json::Value::String(p.clone()).to_string())
                .collect();
            fields.push(format!("\"node\":[{}]", nodes.join(",")));
        }
        fields.push(format!("\"sid\":\"{sid}\""));
        fields.push(format!("\"timeout\":{}", session.timeout.as_millis()));
        let watches: Vec<String> = self
            .watches
            .of_session(sid)
            .into_iter()
            .map(|(path, w)| {
                format!(
                    "{{\"path\":{},\"recursive\":{},\"type\":{}}}",
                    serde_json::Value::String(path),
                    w.recursive,
                    w.mask
                )
            })
            .collect();
        if !watches.is_empty() {
            fields.push(format!("\"watch\":[{}]", watches.join(",")));
        }
        format!("{{{}}}\n", fields.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_only_and_db_texts() {
        assert!(is_writable_proc("/pyxis/snapshot"));
        assert!(is_writable_proc("/pyxis/eventlog/x"));
        assert!(!is_writable_proc("/pyxis/snapshotx"));
        assert!(db_stats().starts_with(&" ".repeat(31)));
        assert!(db_sstables().ends_with("--- level 6 ---\n"));
    }
}
