//! The read-only `/pyxis` proc tree ([protocol](pyxis_proto::protocol) §8).
//!
//! Owns: rendering `/pyxis`, `/pyxis/cluster/{leader,addrlist}`, `/pyxis/session`,
//! `/pyxis/session/<sid>` and `/pyxis/db` from the model's state at the time of the read.
//! Must never change state: these nodes are views, never stored.

use bytes::Bytes;
use pyxis_proto::store;

use super::ClusterModel;

fn view(data: impl Into<Bytes>, children: Vec<String>) -> store::Node {
    store::Node {
        data: Some(data.into()),
        children,
        flags: Some(0),
        version: Some(0),
        sid: None,
    }
}

impl ClusterModel {
    /// The proc node at `path` (a path at or under `/pyxis`), if it exists.
    pub(crate) fn proc_node(&self, path: &str) -> Option<store::Node> {
        let rest = path.strip_prefix("/pyxis")?;
        match rest {
            "" => Some(view(
                Bytes::new(),
                vec!["cluster".into(), "db".into(), "session".into()],
            )),
            "/cluster" => Some(view(Bytes::new(), vec!["addrlist".into(), "leader".into()])),
            "/cluster/leader" => {
                let addr = self.leader.map(|l| self.node_addr(l)).unwrap_or_default();
                Some(view(addr, Vec::new()))
            }
            "/cluster/addrlist" => {
                let list: Vec<String> = (0..self.nodes.len()).map(|n| self.node_addr(n)).collect();
                Some(view(list.join(","), Vec::new()))
            }
            "/session" => Some(view(
                Bytes::new(),
                self.sessions.keys().map(|sid| sid.to_string()).collect(),
            )),
            "/db" => Some(view(
                format!(
                    "{{\"nodes\":{},\"sessions\":{},\"applied\":{}}}",
                    self.store.len(),
                    self.sessions.len(),
                    self.applied_seq
                ),
                Vec::new(),
            )),
            other => {
                let text = other.strip_prefix("/session/")?;
                let sid: u64 = text.parse().ok()?;
                if sid.to_string() != text {
                    return None; // "+5" or "05" name no session
                }
                let session = self.sessions.get(&sid)?;
                let json = format!(
                    "{{\"sid\":{},\"timeout\":{},\"ephemeral_nodes\":{},\"watches\":{},\"pending_events\":{}}}",
                    sid,
                    session.timeout.as_millis(),
                    session.ephemerals.len(),
                    self.watches.count_for(sid),
                    session.pending.len()
                );
                Some(view(json, Vec::new()))
            }
        }
    }
}
