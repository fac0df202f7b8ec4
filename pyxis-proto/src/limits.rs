//! Limits and path rules the server enforces ([protocol](crate::protocol) §8, §9).
//!
//! Owns: the numeric limits and the path syntax check shared by every crate that must
//! agree with the server. Must never decide what a client or server *does* with a bad
//! path: it only says whether a path is well formed and why not.

/// Longest accepted path, in bytes (a path must be shorter than 4 096 bytes).
pub const MAX_PATH_LEN: usize = 4095;
/// Largest node data, and largest serialized node, in bytes (1 MiB).
pub const MAX_NODE_SIZE: usize = 1024 * 1024;
/// Smallest session timeout the server accepts by default, in milliseconds.
pub const MIN_SESSION_TIMEOUT_MS: u32 = 5_000;
/// Largest session timeout the server accepts by default, in milliseconds.
pub const MAX_SESSION_TIMEOUT_MS: u32 = 120_000;
/// The server's default session expiry check interval, in milliseconds.
pub const SESSION_CHECK_INTERVAL_MS: u32 = 1_000;
/// The server's read-only proc tree.
pub const PROC_ROOT: &str = "/pyxis";

/// Why a path is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// The path is 4 096 bytes or longer.
    #[error("path is {len} bytes; the limit is {MAX_PATH_LEN}")]
    TooLong {
        /// The path's length in bytes.
        len: usize,
    },
    /// The path contains a character outside `A-Z a-z 0-9 _ / - .`.
    #[error("path contains {found:?} at byte {at}; allowed: A-Z a-z 0-9 _ / - .")]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// The path ends with `/` (only the root may).
    #[error("path must not end with '/'")]
    TrailingSlash,
    /// The path has an empty segment (`//`).
    #[error("path has an empty segment ('//') at byte {at}")]
    EmptySegment {
        /// The offset of the second `/`.
        at: usize,
    },
}

/// Checks a path against the server's rules ([protocol](crate::protocol) §8), and refuses
/// two kinds of path the server accepts but handles in ways no caller wants: a trailing
/// `/` (only create refuses it; other requests look the literal key up and answer
/// kNotFound) and empty segments (`/a//b` reads kNotFound, and a create of `//x` stores a
/// node `/` lists as `x` that `/x` does not reach). A client calls this before sending, so
/// such paths fail locally with the reason.
///
/// ```
/// use pyxis_proto::limits::{check_path, PathError};
/// assert!(check_path("/").is_ok());
/// assert!(check_path("/svc/web-1.a_b").is_ok());
/// assert_eq!(check_path("/a/"), Err(PathError::TrailingSlash));
/// assert_eq!(check_path("//x"), Err(PathError::EmptySegment { at: 1 }));
/// assert!(matches!(check_path("/a b"), Err(PathError::BadChar { found: ' ', at: 2 })));
/// ```
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: path.len() });
    }
    if let Some(at) = path.bytes().position(|b| !is_path_byte(b)) {
        // `at` starts a character: every byte before it is ASCII.
        let found = path[at..].chars().next().unwrap_or('\u{fffd}');
        return Err(PathError::BadChar { found, at });
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    if let Some(at) = path.find("//") {
        return Err(PathError::EmptySegment { at: at + 1 });
    }
    Ok(())
}

/// Whether `b` may appear in a path: `A-Z a-z 0-9 _ / - .`.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-' | b'.')
}

/// The parent of a well-formed path (`None` for the root).
///
/// ```
/// use pyxis_proto::limits::parent;
/// assert_eq!(parent("/a/b"), Some("/a"));
/// assert_eq!(parent("/a"), Some("/"));
/// assert_eq!(parent("/"), None);
/// ```
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert_eq!(check_path(""), Err(PathError::Empty));
        assert_eq!(check_path("a"), Err(PathError::NotAbsolute));
        assert!(check_path(&format!("/{}", "a".repeat(4094))).is_ok());
        assert_eq!(
            check_path(&format!("/{}", "a".repeat(4095))),
            Err(PathError::TooLong { len: 4096 })
        );
        assert!(matches!(
            check_path("/é"),
            Err(PathError::BadChar { at: 1, .. })
        ));
        assert_eq!(check_path("/a//b"), Err(PathError::EmptySegment { at: 3 }));
        assert_eq!(check_path("/a//"), Err(PathError::TrailingSlash));
        assert_eq!(check_path("/a/./.."), Ok(()));
    }
}
