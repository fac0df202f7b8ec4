//! The `leader` command: which server leads and what every listed server is doing now.
//!
//! Owns: asking the cluster's proc nodes for the leader and the server list, probing each
//! listed server with one request of its own (a fresh connection, an empty request
//! without a session) to tell leader, follower, no leader, down or silent apart, and
//! printing the result. Must never implement protocol behaviour of the client (retries,
//! redirects): a probe reads one answer and reports it.

use std::time::Duration;

use pyxis_proto::rpc::Request;
use pyxis_proto::{encode_request, ErrorType, FrameDecoder};
use pyxis_tokio::Client;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::commands::{print, read};
use crate::exit::CliError;
use crate::output;

/// What a probe found a server doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It served the request itself.
    Leader,
    /// It answered kNotLeader, naming this leader.
    Follower {
        /// The leader it named.
        leader: String,
    },
    /// It answered kAgain: it knows no leader (an election is under way).
    NoLeader,
    /// The connection failed.
    Down {
        /// Why.
        reason: String,
    },
    /// It accepted the connection but did not answer in time, or closed it.
    Silent,
}

impl Role {
    /// The table text.
    pub fn human(&self) -> String {
        match self {
            Role::Leader => "leader".to_owned(),
            Role::Follower { leader } => format!("follower (leader {leader})"),
            Role::NoLeader => "no leader (election)".to_owned(),
            Role::Down { reason } => format!("down ({reason})"),
            Role::Silent => "not answering".to_owned(),
        }
    }
}

/// One listed server and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerView {
    /// Its client address.
    pub server: String,
    /// What the probe found.
    pub role: Role,
}

/// The leader and server list as printed by `pyxis leader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderView {
    /// The leader's client address, as the cluster's proc node names it.
    pub leader: String,
    /// Every server's client address.
    pub servers: Vec<String>,
    /// Every server's role, probed.
    pub roles: Vec<ServerView>,
}

/// Probes one server: connect, send an empty request without a session, read one answer.
pub async fn probe(addr: &str, timeout: Duration) -> Role {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| Role::Down {
            reason: e.to_string(),
        })?;
        let request = Request {
            xid: Some(1),
            ..Default::default()
        };
        stream
            .write_all(&encode_request(&request))
            .await
            .map_err(|_| Role::Silent)?;
        let mut decoder = FrameDecoder::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.map_err(|_| Role::Silent)?;
            if n == 0 {
                return Err(Role::Silent);
            }
            decoder.extend(&buf[..n]);
            match decoder.next_response() {
                Ok(Some(rsp)) => return Ok(rsp),
                Ok(None) => {}
                Err(_) => return Err(Role::Silent),
            }
        }
    };
    let answer = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(rsp)) => rsp,
        Ok(Err(role)) => return role,
        Err(_) => return Role::Silent,
    };
    match answer.err.map(|e| (ErrorType::try_from(e.r#type), e.data)) {
        Some((Ok(ErrorType::KNotLeader), data)) => Role::Follower {
            leader: String::from_utf8_lossy(data.as_deref().unwrap_or_default()).into_owned(),
        },
        Some((Ok(ErrorType::KAgain), _)) => Role::NoLeader,
        // Served (kSessionExpired, for a request without a session): it leads.
        _ => Role::Leader,
    }
}

/// `pyxis leader`: prints the leader and every server's probed role.
///
/// # Errors
///
/// The proc nodes cannot be read, or output cannot be written.
pub async fn leader(client: &Client, json: bool, timeout: Duration) -> Result<(), CliError> {
    let leader = read(client, "leader", "/pyxis/cluster/leader", false).await?;
    let servers = read(client, "leader", "/pyxis/cluster/addrlist", false).await?;
    let servers: Vec<String> = String::from_utf8_lossy(&servers.data)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let probe_timeout = timeout.min(Duration::from_secs(2));
    // All probes at once, so down servers cost one timeout, not one each.
    let probes: Vec<_> = servers
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { probe(&s, probe_timeout).await })
        })
        .collect();
    let mut roles = Vec::with_capacity(servers.len());
    for (server, probe) in servers.iter().zip(probes) {
        roles.push(ServerView {
            server: server.clone(),
            role: probe.await.unwrap_or(Role::Silent),
        });
    }
    let view = LeaderView {
        leader: String::from_utf8_lossy(&leader.data).into_owned(),
        servers,
        roles,
    };
    if json {
        return print(&output::json(&view));
    }
    let rows: Vec<Vec<String>> = view
        .roles
        .iter()
        .map(|s| vec![s.server.clone(), s.role.human()])
        .collect();
    print(&output::table(&["SERVER", "ROLE"], &rows))
}
