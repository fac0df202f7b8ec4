//! How results are shown: aligned tables for people, JSON documents for scripts.
//!
//! Owns: the serializable views of nodes, trees, sessions and events, the table layout,
//! the rendering of node data (UTF-8 text or hex), session ids and event times, the
//! escaping of server-supplied text for the terminal, and writing to stdout (a closed
//! stdout is [`CliError::StdoutClosed`]). Must never talk to the cluster or choose exit
//! codes: commands hand it finished values.
//!
//! Session ids are shown in hex (`0x8bcfe568000001`), as the client library's messages
//! show them; where the server's proc tree is involved (`sessions`, a node's owner) the
//! decimal form it uses in `/pyxis/session/<sid>` is shown too. JSON carries them as
//! numbers.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::SystemTime;

use crate::exit::CliError;

use pyxis_core::{Node, WatchEvent};
use serde::Serialize;

/// A node as printed by `get` (and inside `--json` output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// The node's path.
    pub path: String,
    /// The data as text when it is valid UTF-8.
    pub data: Option<String>,
    /// The data as lowercase hex when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_hex: Option<String>,
    /// Data length in bytes.
    pub data_len: usize,
    /// Grows by one on each write.
    pub version: u64,
    /// Whether the node is ephemeral.
    pub ephemeral: bool,
    /// Raw flags.
    pub flags: u32,
    /// The session that created it.
    pub owner: u64,
    /// Child names, sorted.
    pub children: Vec<String>,
}

impl NodeView {
    /// The view of a node read from the cluster.
    pub fn of(node: &Node) -> NodeView {
        let (data, data_hex) = match std::str::from_utf8(&node.data) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(hex(&node.data))),
        };
        NodeView {
            path: node.path.clone(),
            data,
            data_hex,
            data_len: node.data.len(),
            version: node.version,
            // protocol §2: the ephemeral flag is tested as `flags & 1`.
            ephemeral: node.flags & 1 != 0,
            flags: node.flags,
            owner: node.owner,
            children: node.children.clone(),
        }
    }

    /// The human rendering: the data, then a table of the stat fields.
    pub fn human(&self) -> String {
        let data = match (&self.data, &self.data_hex) {
            (Some(text), _) => text.clone(),
            (None, Some(hex)) => format!("(binary, hex) {hex}"),
            (None, None) => String::new(),
        };
        let kind = if self.ephemeral {
            "ephemeral"
        } else {
            "persistent"
        };
        let rows = vec![
            vec!["path".to_owned(), self.path.clone()],
            vec!["data".to_owned(), data],
            vec!["size".to_owned(), format!("{} bytes", self.data_len)],
            vec!["version".to_owned(), self.version.to_string()],
            vec!["flags".to_owned(), format!("{kind} ({})", self.flags)],
            vec!["owner".to_owned(), owner(self.owner)],
            vec!["children".to_owned(), self.children.len().to_string()],
        ];
        table(&[], &rows)
    }
}

/// One node of `pyxis tree --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeView {
    /// The node's path.
    pub path: String,
    /// Its children, sorted by name (empty past `--depth`).
    pub children: Vec<TreeView>,
    /// Whether children exist beyond the requested depth (or the node limit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Why the node could not be read (a listed name that is not a valid path, as
    /// `/pyxis/db` shows one, or a failed read); the walk goes on past it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TreeView {
    /// The human rendering, one node per line with box-drawing branches.
    pub fn human(&self) -> String {
        let mut out = format!("{}\n", escape(&self.path));
        self.human_children("", &mut out);
        out
    }

    fn human_children(&self, prefix: &str, out: &mut String) {
        let count = self.children.len();
        for (i, child) in self.children.iter().enumerate() {
            let last = i + 1 == count;
            let name = child.path.rsplit('/').next().unwrap_or(&child.path);
            let more = match &child.error {
                Some(e) => format!("  [not read: {}]", escape(e)),
                None if child.truncated => " …".to_owned(),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{prefix}{}{}{more}",
                if last { "└── " } else { "├── " },
                escape(name)
            );
            let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
            child.human_children(&deeper, out);
        }
    }
}

/// A watch event as printed by `pyxis watch` (one JSON line each with `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    /// When `pyxis` received the event (the server does not time events): RFC 3339, UTC,
    /// milliseconds.
    pub time: String,
    /// The node the event is about.
    pub path: String,
    /// `create`, `delete`, `modify`, `children` (or a hex mask).
    pub event: String,
    /// Inferred by the client after a reconnect (the server's event was lost).
    pub inferred: bool,
}

impl EventView {
    /// The view of a watch event received at `time`.
    pub fn of(event: &WatchEvent, time: SystemTime) -> EventView {
        EventView {
            time: humantime::format_rfc3339_millis(time).to_string(),
            path: event.path.clone(),
            event: event.kind.to_string(),
            inferred: event.inferred,
        }
    }

    /// The human rendering: `<time> <event> <path>`.
    pub fn human(&self) -> String {
        let inferred = if self.inferred { " (inferred)" } else { "" };
        format!(
            "{}  {:<8} {}{inferred}",
            self.time,
            self.event,
            escape(&self.path)
        )
    }
}

/// A live session as printed by `pyxis sessions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    /// The session id.
    pub sid: u64,
    /// The server's description (`/pyxis/session/<sid>` data; JSON when it parses).
    pub info: serde_json::Value,
    /// Whether this is the session of the `pyxis` command itself.
    pub this: bool,
}

/// Lays out rows in aligned columns (two spaces apart); `header` may be empty. Every cell
/// is [`escape`]d.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; columns];
    let header_row: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let all = std::iter::once(&header_row).chain(rows.iter());
    for row in all.clone() {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in all {
        if row.is_empty() {
            continue;
        }
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` with every control character (C0, DEL, C1) and every bidirectional-override
/// character escaped Rust-style (`\n`, `\u{1b}`, `\u{202e}`), so that text from the
/// server (paths, node data, error reasons) stays on its line and cannot move the cursor,
/// recolour the terminal or reorder what follows. Other characters are kept.
pub fn escape(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A session id as shown to people: hex, as the client library prints it.
pub fn sid(sid: u64) -> String {
    format!("{sid:#x}")
}

/// A node's owner session: hex, and the decimal name of its `/pyxis/session` node.
pub fn owner(owner: u64) -> String {
    format!("{} (/pyxis/session/{owner})", sid(owner))
}

/// Writes `bytes` to stdout and flushes. A reader that went away (`| head -1`) is
/// [`CliError::StdoutClosed`], which ends the command quietly.
///
/// # Errors
///
/// [`CliError::StdoutClosed`] when the reader closed the pipe, [`CliError::Io`] for any
/// other write failure.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::StdoutClosed),
        Err(e) => Err(CliError::Io(e)),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Pretty JSON of `value` followed by a newline.
pub fn json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Serializing these plain views cannot fail; say so rather than print nothing.
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn node(data: &'static [u8], flags: u32) -> Node {
        Node {
            path: "/svc/a".into(),
            data: Bytes::from_static(data),
            children: vec!["x".into(), "y".into()],
            flags,
            version: 3,
            owner: 0x10,
        }
    }

    #[test]
    fn text_data_is_shown_as_text_and_binary_as_hex() {
        let text = NodeView::of(&node(b"hello", 1));
        assert_eq!(text.data.as_deref(), Some("hello"));
        assert!(text.ephemeral);
        let human = text.human();
        assert!(human.contains("data      hello"), "{human}");
        assert!(human.contains("ephemeral (1)"), "{human}");
        assert!(
            human.contains("owner     0x10 (/pyxis/session/16)"),
            "{human}"
        );
        let binary = NodeView::of(&node(&[0xff, 0x00], 0));
        assert_eq!(binary.data, None);
        assert_eq!(binary.data_hex.as_deref(), Some("ff00"));
        let value: serde_json::Value = serde_json::from_str(&json(&binary)).unwrap();
        assert_eq!(value["data_hex"], "ff00");
        assert_eq!(value["children"][1], "y");
        assert_eq!(value["ephemeral"], false);
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["1".to_owned(), "a".to_owned()],
            vec!["100".to_owned(), "b".to_owned()],
        ];
        assert_eq!(table(&["N", "X"], &rows), "N    X\n1    a\n100  b\n");
    }

    #[test]
    fn trees_draw_branches() {
        let leaf = |p: &str| TreeView {
            path: p.into(),
            children: vec![],
            truncated: false,
            error: None,
        };
        let tree = TreeView {
            path: "/".into(),
            children: vec![
                TreeView {
                    path: "/a".into(),
                    children: vec![leaf("/a/b")],
                    truncated: false,
                    error: None,
                },
                TreeView {
                    error: Some("not a valid path".into()),
                    ..leaf("/a<N>")
                },
                leaf("/c"),
            ],
            truncated: false,
            error: None,
        };
        assert_eq!(
            tree.human(),
            "/\n├── a\n│   └── b\n├── a<N>  [not read: not a valid path]\n└── c\n"
        );
    }

    #[test]
    fn server_text_is_escaped_in_tables_trees_and_events() {
        assert_eq!(escape("plain /a/b ü"), "plain /a/b ü");
        assert_eq!(
            escape("a\nb\tc\u{1b}[31m\u{7f}\u{85}"),
            "a\\nb\\tc\\u{1b}[31m\\u{7f}\\u{85}"
        );
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        let rows = vec![vec!["k".to_owned(), "line1\nFAKE line".to_owned()]];
        assert_eq!(table(&[], &rows), "k  line1\\nFAKE line\n");
        let tree = TreeView {
            path: "/\u{1b}]0;t".into(),
            children: vec![TreeView {
                path: "/x/n\ra".into(),
                children: vec![],
                truncated: false,
                error: None,
            }],
            truncated: false,
            error: None,
        };
        assert_eq!(tree.human(), "/\\u{1b}]0;t\n└── n\\ra\n");
        let event = WatchEvent {
            path: "/w\n".into(),
            kind: pyxis_core::EventType::Create,
            inferred: false,
            last: false,
        };
        let view = EventView::of(&event, SystemTime::UNIX_EPOCH);
        assert_eq!(view.time, "1970-01-01T00:00:00.000Z");
        assert_eq!(view.human(), "1970-01-01T00:00:00.000Z  create   /w\\n");
    }
}
