//! Turning server answers into results: every answer classified once (success, a final
//! error for the caller, or a session-level [`Fault`]), a stat answer's `data` into a
//! [`Node`], and a kNotLeader answer's `data` into a leader address.
//!
//! Owns: the classification and decoding of answer payloads. Must never decide what
//! happens next (retry, reconnect, redirect): the session module's fault policy does that
//! with what this module returns.

use bytes::Bytes;
use pyxis_proto::{rpc, ErrorType};

use crate::config::is_host_port;
use crate::error::Error;
use crate::session::Fault;
use crate::types::Node;

/// A server answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// No error (`err` absent or kNone).
    Success,
    /// Everything the caller gets as is (not found, exists, invalid argument, internal,
    /// unknown codes).
    Final(Error),
    /// kNotLeader, kAgain or kSessionExpired: about the connection or the session, not
    /// the request (see `session::Fault`).
    Fault(Fault),
}

fn lossy(data: Option<&Bytes>) -> String {
    data.map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default()
}

/// What `rsp` says. `path` is the requested path, used when a kNotFound/kExist answer
/// names none.
#[inline]
pub(crate) fn classify(rsp: &rpc::Response, path: &str) -> Answer {
    let Some(err) = rsp.err.as_ref() else {
        return Answer::Success;
    };
    let text = || {
        let t = lossy(err.data.as_ref());
        if t.is_empty() {
            path.to_owned()
        } else {
            t
        }
    };
    match ErrorType::try_from(err.r#type) {
        Ok(ErrorType::KNone) => Answer::Success,
        Ok(ErrorType::KNotLeader) => {
            let leader = lossy(err.data.as_ref()).trim().to_owned();
            Answer::Fault(Fault::NotLeader(Some(leader).filter(|a| is_host_port(a))))
        }
        Ok(ErrorType::KAgain) => Answer::Fault(Fault::Again),
        Ok(ErrorType::KSessionExpired) => Answer::Fault(Fault::SessionExpired),
        Ok(ErrorType::KNotFound) => Answer::Final(Error::NotFound { path: text() }),
        Ok(ErrorType::KExist) => Answer::Final(Error::Exists { path: text() }),
        Ok(ErrorType::KInvalidArgument) => Answer::Final(Error::InvalidArgument {
            reason: lossy(err.data.as_ref()),
        }),
        Ok(ErrorType::KInternal) => Answer::Final(Error::Internal {
            reason: lossy(err.data.as_ref()),
        }),
        Err(_) => Answer::Final(Error::Unknown {
            code: err.r#type,
            reason: lossy(err.data.as_ref()),
        }),
    }
}

/// Decodes a stat answer's `data` as the node at `path`, children sorted and, when
/// `hide_hidden`, `_`-prefixed children dropped.
pub(crate) fn decode_node(
    path: String,
    data: Option<&Bytes>,
    hide_hidden: bool,
) -> Result<Node, Error> {
    let empty = Bytes::new();
    let raw = pyxis_proto::decode_node(data.unwrap_or(&empty)).map_err(|e| Error::Protocol {
        reason: format!("stat answer for {path} is not a node: {e}"),
    })?;
    let mut children = raw.children;
    if hide_hidden {
        children.retain(|c| !c.starts_with('_'));
    }
    children.sort_unstable();
    Ok(Node {
        path,
        data: raw.data.unwrap_or_default(),
        children,
        flags: raw.flags.unwrap_or(0),
        version: raw.version.unwrap_or(0),
        owner: raw.sid.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use pyxis_proto::store;

    use super::*;

    fn err_rsp(code: i32, data: &str) -> rpc::Response {
        rpc::Response {
            xid: Some(1),
            err: Some(rpc::Error {
                r#type: code,
                data: Some(Bytes::copy_from_slice(data.as_bytes())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn error_codes_map_to_variants() {
        assert_eq!(classify(&rpc::Response::default(), "/a"), Answer::Success);
        assert_eq!(classify(&err_rsp(0, ""), "/a"), Answer::Success);
        assert_eq!(
            classify(&err_rsp(1, "h:7000"), "/a"),
            Answer::Fault(Fault::NotLeader(Some("h:7000".into())))
        );
        assert_eq!(
            classify(&err_rsp(1, "garbage"), "/a"),
            Answer::Fault(Fault::NotLeader(None))
        );
        assert_eq!(
            classify(&err_rsp(2, ""), "/a"),
            Answer::Final(Error::NotFound { path: "/a".into() })
        );
        assert_eq!(
            classify(&err_rsp(2, "/p"), "/p/c"),
            Answer::Final(Error::NotFound { path: "/p".into() })
        );
        assert_eq!(
            classify(&err_rsp(8, ""), "/a"),
            Answer::Final(Error::Exists { path: "/a".into() })
        );
        assert_eq!(
            classify(&err_rsp(5, "too big"), "/a"),
            Answer::Final(Error::InvalidArgument {
                reason: "too big".into()
            })
        );
        assert_eq!(
            classify(&err_rsp(7, "disk"), "/a"),
            Answer::Final(Error::Internal {
                reason: "disk".into()
            })
        );
        assert_eq!(
            classify(&err_rsp(3, "x"), "/a"),
            Answer::Final(Error::Unknown {
                code: 3,
                reason: "x".into()
            })
        );
        assert_eq!(classify(&err_rsp(6, ""), "/a"), Answer::Fault(Fault::Again));
        assert_eq!(
            classify(&err_rsp(4, ""), "/a"),
            Answer::Fault(Fault::SessionExpired)
        );
    }

    #[test]
    fn node_decoding_sorts_and_filters_children() {
        let raw = store::Node {
            data: Some(Bytes::from_static(b"d")),
            children: vec!["b".into(), "_h".into(), "a".into()],
            flags: Some(1),
            version: Some(3),
            sid: Some(9),
        };
        let bytes = Bytes::from(raw.encode_to_vec());
        let n = decode_node("/p".into(), Some(&bytes), true).unwrap();
        assert_eq!(n.children, vec!["a", "b"]);
        assert!(n.is_ephemeral());
        assert_eq!((n.version, n.owner), (3, 9));
        let n = decode_node("/p".into(), Some(&bytes), false).unwrap();
        assert_eq!(n.children, vec!["_h", "a", "b"]);
        let bad = Bytes::from_static(&[0xff, 0xff]);
        assert!(matches!(
            decode_node("/p".into(), Some(&bad), true),
            Err(Error::Protocol { .. })
        ));
    }
}
