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
    // Every request's path comes through here: one pass without branches decides that a
    // path is fine; only a bad one is looked at again, for the first fault in the rules'
    // order (a bad character anywhere, then a trailing `/`, then the first `//`).
    let bytes = path.as_bytes();
    let (mut allowed, mut double, mut after_slash) = (true, false, false);
    for &b in bytes {
        let slash = b == b'/';
        allowed &= PATH_BYTES[usize::from(b)];
        double |= after_slash & slash;
        after_slash = slash;
    }
    let trailing = after_slash && bytes.len() > 1;
    if allowed && !double && !trailing {
        return Ok(());
    }
    if let Some(at) = bytes.iter().position(|&b| !PATH_BYTES[usize::from(b)]) {
        // `at` starts a character: every byte before it is ASCII.
        let found = path[at..].chars().next().unwrap_or('\u{fffd}');
        return Err(PathError::BadChar { found, at });
    }
    if trailing {
        return Err(PathError::TrailingSlash);
    }
    let at = bytes
        .windows(2)
        .position(|w| w == b"//")
        .map_or(0, |i| i + 1);
    Err(PathError::EmptySegment { at })
}

/// Whether `b` may appear in a path: `A-Z a-z 0-9 _ / - .`.
const fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-' | b'.')
}

/// [`is_path_byte`] of every byte value, looked up by [`check_path`].
const PATH_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_path_byte(b as u8);
        b += 1;
    }
    table
};

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
        assert_eq!(
            check_path("/a//b//c"),
            Err(PathError::EmptySegment { at: 3 })
        );
        assert!(matches!(
            check_path("/a//b c"),
            Err(PathError::BadChar { found: ' ', at: 5 })
        ));
    }

    /// The rules after the prefix checks (for paths that start with `/` and are short),
    /// as separate passes in their order of precedence.
    fn check_path_by_rules(path: &str) -> Result<(), PathError> {
        if let Some((at, found)) = path
            .char_indices()
            .find(|(_, c)| !c.is_ascii() || !is_path_byte(*c as u8))
        {
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

    proptest::proptest! {
        #[test]
        fn one_pass_agrees_with_the_rules(path in "/[/a._ é-]{0,12}") {
            proptest::prop_assert_eq!(check_path(&path), check_path_by_rules(&path));
        }
    }
}
