//! Readable one-line summaries of the frames in a chunk of bytes, for traces.
//!
//! Owns: turning whole request/response frames into short text. Must never be used for
//! anything but display (a bad frame is shown, never acted on).

/// A one-line summary of the whole request frames in `data` (for readable traces).
pub fn describe_requests(data: &[u8]) -> String {
    let mut d = pyxis_proto::FrameDecoder::new();
    d.extend(data);
    let mut parts = Vec::new();
    loop {
        match d.next_request() {
            Ok(Some(r)) => {
                let what = if r.register.is_some() {
                    "register".to_owned()
                } else if r.unregister.is_some() {
                    "unregister".to_owned()
                } else if r.ping.is_some() {
                    "ping".to_owned()
                } else if let Some(c) = &r.create {
                    format!("create {} f{}", c.path, c.flags)
                } else if let Some(c) = &r.delete {
                    format!("delete {}", c.path)
                } else if let Some(c) = &r.write {
                    format!("write {}", c.path)
                } else if let Some(c) = &r.stat {
                    format!("stat {}", c.path)
                } else if let Some(c) = &r.read {
                    format!("read {}", c.path)
                } else {
                    "empty".to_owned()
                };
                let watch = r
                    .watch
                    .as_ref()
                    .map(|w| {
                        format!(
                            "+watch({:#x}{})",
                            w.watch.unwrap_or(0),
                            if w.recursive == Some(true) {
                                ",rec"
                            } else {
                                ""
                            }
                        )
                    })
                    .unwrap_or_default();
                parts.push(format!("x{} {what}{watch}", r.xid.unwrap_or(0)));
            }
            Ok(None) => break,
            Err(e) => {
                parts.push(format!("<bad frame: {e}>"));
                break;
            }
        }
    }
    parts.join(", ")
}

/// A one-line summary of the whole response frames in `data`.
pub fn describe_responses(data: &[u8]) -> String {
    let mut d = pyxis_proto::FrameDecoder::new();
    d.extend(data);
    let mut parts = Vec::new();
    loop {
        match d.next_response() {
            Ok(Some(r)) => {
                let mut s = format!("x{}", r.xid.unwrap_or(0));
                if let Some(e) = &r.err {
                    s.push_str(&format!(" err{}", e.r#type));
                }
                if let Some(sid) = r.sid {
                    s.push_str(&format!(" sid {sid:#x}"));
                }
                if let Some(w) = &r.watch {
                    s.push_str(&format!(
                        " event {:#x} {} on {}",
                        w.r#type,
                        w.path,
                        r.path.as_deref().unwrap_or("?")
                    ));
                }
                if r.data.is_some() {
                    s.push_str(" data");
                }
                parts.push(s);
            }
            Ok(None) => break,
            Err(e) => {
                parts.push(format!("<bad frame: {e}>"));
                break;
            }
        }
    }
    parts.join(", ")
}
