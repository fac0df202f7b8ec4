//! Small steps every recipe takes on nodes: creating the persistent parents of a path,
//! unique tokens that mark which attempt created an ephemeral node, and the check that
//! a node is the one this client created.
//!
//! Owns: [`ensure_parents`], [`Token`], [`create_owned`]. Must never retry an operation
//! whose outcome is unknown without first reading what happened.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_lite::future;
use pyxis_client_common::{AsyncClient, CreateMode, Error as ClientError, EventMask, Node};

use crate::runtime::{sleep, RETRY_PAUSE};

/// Creates every missing ancestor of `path` as an empty persistent node.
pub(crate) async fn ensure_parents(client: &AsyncClient, path: &str) -> Result<(), ClientError> {
    let mut end = 0;
    while let Some(next) = path[end + 1..].find('/') {
        end += 1 + next;
        create_if_missing(client, &path[..end]).await?;
    }
    Ok(())
}

/// Creates the empty persistent node `path` unless it exists (its parent must).
async fn create_if_missing(client: &AsyncClient, path: &str) -> Result<(), ClientError> {
    match client
        .create(path, Bytes::new(), CreateMode::Persistent)
        .await
    {
        Ok(()) | Err(ClientError::Exists { .. }) => Ok(()),
        // A create lost with the connection may have been applied: look.
        Err(e) if e.is_outcome_unknown() => match client.exists(path).await? {
            Some(_) => Ok(()),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// A value unique to one attempt of this process to create a node: written as (the
/// start of) the node's data, it tells this attempt's node from any other, even one of
/// the same session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token(Bytes);

impl Token {
    pub(crate) fn new() -> Token {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = std::collections::hash_map::RandomState::new().hash_one(n);
        Token(Bytes::from(format!("{random:016x}{n:016x}")))
    }

    /// The data to store: the token followed by the caller's payload.
    pub(crate) fn with_payload(&self, payload: &[u8]) -> Bytes {
        let mut data = Vec::with_capacity(self.0.len() + payload.len());
        data.extend_from_slice(&self.0);
        data.extend_from_slice(payload);
        Bytes::from(data)
    }

    /// Whether `node` was created by this attempt.
    pub(crate) fn marks(&self, node: &Node) -> bool {
        node.data.starts_with(&self.0)
    }

    /// The caller's payload of a node created with a token (any token).
    pub(crate) fn payload(data: &Bytes) -> Bytes {
        if data.len() >= TOKEN_LEN {
            data.slice(TOKEN_LEN..)
        } else {
            Bytes::new()
        }
    }
}

/// The length of a token's text.
const TOKEN_LEN: usize = 32;

/// What one attempt to create an ephemeral node ended with.
#[derive(Debug)]
pub(crate) enum Created {
    /// This attempt's node exists, owned by session `sid`.
    Mine {
        /// The owning session.
        sid: u64,
    },
    /// Another node holds the path (possibly already gone again).
    Taken,
}

/// Creates the ephemeral node `path` with `token` + `payload`, creating missing
/// parents, and says whether this attempt's node now holds the path. A create whose
/// outcome is unknown is settled by reading the node.
pub(crate) async fn create_owned(
    client: &AsyncClient,
    path: &str,
    token: &Token,
    payload: &[u8],
) -> Result<Created, ClientError> {
    let data = token.with_payload(payload);
    let outcome = match client.create_ephemeral(path, data.clone()).await {
        Err(ClientError::NotFound { .. }) => {
            ensure_parents(client, path).await?;
            client.create_ephemeral(path, data).await
        }
        other => other,
    };
    match outcome {
        Ok(()) | Err(ClientError::Exists { .. }) => {}
        Err(e) if e.is_outcome_unknown() => {}
        Err(e) => return Err(e),
    }
    // Read who holds it: the create's own reply does not say under which session it
    // ran, and an `Exists` may be this attempt's own node (an earlier unknown outcome).
    match client.exists(path).await? {
        Some(node) if token.marks(&node) => Ok(Created::Mine { sid: node.owner }),
        _ => Ok(Created::Taken),
    }
}

/// Waits until the node at `path` is deleted, or a session timeout has passed (the
/// caller then looks again, whatever happened to the watch). The look and the watch are
/// one server step, so a deletion between them is not missed. Returns at once when the
/// node is already gone or the client is closed; other errors pause before returning.
pub(crate) async fn wait_deleted(client: &AsyncClient, path: &str) {
    match client
        .exists_and_watch(path, EventMask::DELETE, false)
        .await
    {
        Ok((Some(_), mut watch)) => {
            future::or(
                async {
                    watch.next().await;
                },
                sleep(client.session_timeout()),
            )
            .await;
        }
        Ok((None, _)) | Err(ClientError::Closed) => {}
        Err(_) => sleep(RETRY_PAUSE).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(data: Bytes) -> Node {
        Node {
            path: "/l".into(),
            data,
            children: Vec::new(),
            flags: 1,
            version: 0,
            owner: 7,
        }
    }

    #[test]
    fn a_token_marks_only_its_own_attempt_and_keeps_the_payload_apart() {
        let (a, b) = (Token::new(), Token::new());
        assert_ne!(a, b);
        let data = a.with_payload(b"host-a");
        assert!(a.marks(&node(data.clone())));
        assert!(!b.marks(&node(data.clone())));
        assert_eq!(Token::payload(&data), Bytes::from_static(b"host-a"));
        assert_eq!(Token::payload(&Bytes::from_static(b"short")), Bytes::new());
    }
}
