//! The `leader` command: which server leads and the role of every server.
//!
//! Owns: asking the cluster's proc nodes for the leader and the server list and printing
//! them. Must never implement protocol behaviour.

use pyxis_tokio::Client;

use crate::commands::{print, read};
use crate::exit::CliError;
use crate::output::{self, LeaderView};

/// `pyxis leader`: prints the leader and every server's role.
pub async fn leader(client: &Client, json: bool) -> Result<(), CliError> {
    let leader = read(client, "leader", "/pyxis/cluster/leader", false).await?;
    let servers = read(client, "leader", "/pyxis/cluster/addrlist", false).await?;
    let view = LeaderView {
        leader: String::from_utf8_lossy(&leader.data).into_owned(),
        servers: String::from_utf8_lossy(&servers.data)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    if json {
        return print(&output::json(&view));
    }
    let rows: Vec<Vec<String>> = view
        .servers
        .iter()
        .map(|s| {
            let role = if *s == view.leader {
                "leader"
            } else {
                "follower"
            };
            vec![s.clone(), role.to_owned()]
        })
        .collect();
    print(&output::table(&["SERVER", "ROLE"], &rows))
}
