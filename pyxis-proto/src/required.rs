//! proto2 `required` enforcement for decoded messages ([protocol](crate::protocol) §2).
//!
//! Owns: decoding `Request` / `Response` payloads through a mirror in which required
//! fields are optional, then refusing any message that lacks one, naming the field.
//! Must never accept a message the original Go or C++ decoders would refuse for a missing
//! required field.

use bytes::Buf;
use prost::Message;

use crate::messages::{rpc, wire};

/// Why a payload is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid protobuf for the message.
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A proto2 `required` field is absent.
    #[error("required field {message}.{field} is missing")]
    MissingField {
        /// The message type, e.g. `CreateRequest`.
        message: &'static str,
        /// The field name, e.g. `path`.
        field: &'static str,
    },
}

fn required<T>(v: Option<T>, message: &'static str, field: &'static str) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::MissingField { message, field })
}

/// Decodes a `Request` payload, refusing one with a required field missing.
///
/// With a `Bytes` payload the `bytes` fields share its memory (no copy); with a slice
/// they are copied.
pub fn decode_request(payload: impl Buf) -> Result<rpc::Request, DecodeError> {
    let w = wire::Request::decode(payload)?;
    Ok(rpc::Request {
        sid: w.sid,
        xid: w.xid,
        register: w
            .register
            .map(|r| rpc::RegisterRequest { timeout: r.timeout }),
        unregister: w.unregister.map(|_| rpc::UnRegisterRequest {}),
        ping: w.ping.map(|_| rpc::PingRequest {}),
        create: w
            .create
            .map(|c| {
                Ok::<_, DecodeError>(rpc::CreateRequest {
                    path: required(c.path, "CreateRequest", "path")?,
                    flags: required(c.flags, "CreateRequest", "flags")?,
                    data: c.data,
                })
            })
            .transpose()?,
        delete: w
            .delete
            .map(|d| {
                Ok::<_, DecodeError>(rpc::DeleteRequest {
                    path: required(d.path, "DeleteRequest", "path")?,
                })
            })
            .transpose()?,
        write: w
            .write
            .map(|d| {
                Ok::<_, DecodeError>(rpc::WriteRequest {
                    path: required(d.path, "WriteRequest", "path")?,
                    data: required(d.data, "WriteRequest", "data")?,
                })
            })
            .transpose()?,
        read: w
            .read
            .map(|d| {
                Ok::<_, DecodeError>(rpc::ReadRequest {
                    path: required(d.path, "ReadRequest", "path")?,
                })
            })
            .transpose()?,
        stat: w
            .stat
            .map(|d| {
                Ok::<_, DecodeError>(rpc::StatRequest {
                    path: required(d.path, "StatRequest", "path")?,
                })
            })
            .transpose()?,
        watch: w.watch.map(|d| rpc::WatchRequest {
            path: d.path,
            watch: d.watch,
            recursive: d.recursive,
        }),
    })
}

/// Decodes a `Response` payload, refusing one with a required field missing.
///
/// With a `Bytes` payload the `bytes` fields share its memory (no copy); with a slice
/// they are copied.
pub fn decode_response(payload: impl Buf) -> Result<rpc::Response, DecodeError> {
    let w = wire::Response::decode(payload)?;
    Ok(rpc::Response {
        xid: w.xid,
        err: w
            .err
            .map(|e| {
                Ok::<_, DecodeError>(rpc::Error {
                    r#type: required(e.r#type, "Error", "type")?,
                    data: e.data,
                })
            })
            .transpose()?,
        data: w.data,
        watch: w
            .watch
            .map(|e| {
                Ok::<_, DecodeError>(rpc::WatchEvent {
                    path: required(e.path, "WatchEvent", "path")?,
                    r#type: required(e.r#type, "WatchEvent", "type")?,
                })
            })
            .transpose()?,
        sid: w.sid,
        path: w.path,
    })
}
