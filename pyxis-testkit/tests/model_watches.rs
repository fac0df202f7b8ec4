//! Model tests of watches ([protocol](pyxis_proto::protocol) §6).

mod common;

use common::*;
use pyxis_proto::rpc::Response;
use pyxis_proto::{event_type, ErrorType};

/// Pings once and returns (watched path, event path, type), or `None` if the ping is held.
fn next_event(
    h: &mut Harness,
    conn: pyxis_testkit::model::ConnId,
    sid: u64,
    xid: u64,
) -> Option<(String, String, u32)> {
    h.send(conn, &ping(sid, xid));
    let got: Vec<Response> = h.take(conn);
    // An earlier ping may still be held and take the event first: any answer counts.
    let _ = xid;
    let r = got.into_iter().find(|r| r.watch.is_some())?;
    let w = r.watch?;
    Some((r.path.unwrap_or_default(), w.path, w.r#type))
}

fn setup() -> (Harness, u64) {
    let mut h = Harness::new(1);
    h.connect(0, C1);
    let sid = h.register(C1, 60_000);
    (h, sid)
}

#[test]
fn watches_are_one_shot() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/a", 0, b"")));
    assert_ok(&h.call(C1, &watch(sid, 2, "/a", event_type::MODIFY, false)));
    assert_ok(&h.call(C1, &write(sid, 3, "/a", b"1")));
    assert_ok(&h.call(C1, &write(sid, 4, "/a", b"2")));
    assert_eq!(
        next_event(&mut h, C1, sid, 5),
        Some(("/a".into(), "/a".into(), event_type::MODIFY))
    );
    assert_eq!(
        next_event(&mut h, C1, sid, 6),
        None,
        "the second write found no watch"
    );
}

#[test]
fn registering_again_while_set_is_a_no_op_and_masks_are_not_merged() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/a", 0, b"")));
    assert_ok(&h.call(C1, &watch(sid, 2, "/a", event_type::DELETE, false)));
    assert_ok(&h.call(C1, &watch(sid, 3, "/a", event_type::MODIFY, false)));
    assert_ok(&h.call(C1, &write(sid, 4, "/a", b"1")));
    assert_eq!(
        next_event(&mut h, C1, sid, 5),
        None,
        "Modify was not added to the mask"
    );
    assert!(h.model.has_watch(sid, "/a"));
    assert_ok(&h.call(C1, &delete(sid, 6, "/a")));
    assert_eq!(
        next_event(&mut h, C1, sid, 7),
        Some(("/a".into(), "/a".into(), event_type::DELETE))
    );
}

#[test]
fn mask_filters_event_types() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &watch(sid, 1, "/m", event_type::DELETE, false)));
    assert_ok(&h.call(C1, &create(sid, 2, "/m", 0, b"")));
    assert_eq!(next_event(&mut h, C1, sid, 3), None);
    assert!(h.model.has_watch(sid, "/m"));
}

#[test]
fn create_raises_create_on_the_node_and_children_on_the_parent() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/p", 0, b"")));
    assert_ok(&h.call(C1, &watch(sid, 2, "/p", event_type::ALL, false)));
    assert_ok(&h.call(C1, &watch(sid, 3, "/p/c", event_type::ALL, false)));
    assert_ok(&h.call(C1, &create(sid, 4, "/p/c", 0, b"")));
    assert_eq!(
        next_event(&mut h, C1, sid, 5),
        Some(("/p".into(), "/p".into(), event_type::CHILDREN))
    );
    assert_eq!(
        next_event(&mut h, C1, sid, 6),
        Some(("/p/c".into(), "/p/c".into(), event_type::CREATE))
    );
}

#[test]
fn ancestors_match_only_recursive_watches() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/pb", 0, b"")));
    assert_ok(&h.call(C1, &create(sid, 2, "/pb/a", 0, b"")));
    assert_ok(&h.call(C1, &watch(sid, 3, "/", event_type::ALL, false)));
    assert_ok(&h.call(C1, &watch(sid, 4, "/pb", 0x0f, true)));
    assert_ok(&h.call(C1, &create(sid, 5, "/pb/a/b", 0, b"")));
    // The recursive watch on /pb fires on the Create of /pb/a/b (golden
    // rep_ping_event_recursive_create); the plain watch on / does not.
    h.raw.clear();
    assert_eq!(
        next_event(&mut h, C1, sid, 51),
        Some(("/pb".into(), "/pb/a/b".into(), event_type::CREATE))
    );
    assert_eq!(h.raw[&C1], golden_frame("rep_ping_event_recursive_create"));
    assert_eq!(next_event(&mut h, C1, sid, 52), None);
    assert!(h.model.has_watch(sid, "/"));
}

#[test]
fn a_recursive_watch_on_root_sees_children_events_of_deep_parents() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/a", 0, b"")));
    assert_ok(&h.call(C1, &watch(sid, 2, "/", event_type::CHILDREN, true)));
    assert_ok(&h.call(C1, &create(sid, 3, "/a/b", 0, b"")));
    assert_eq!(
        next_event(&mut h, C1, sid, 4),
        Some(("/".into(), "/a".into(), event_type::CHILDREN))
    );
}

#[test]
fn stat_with_watch_on_a_missing_node_registers_a_creation_watch() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/pb", 0, b"")));
    let mut req = stat(sid, 54, "/pb/later");
    req.watch = Some(watch_req("/pb/later", event_type::CREATE, false));
    h.raw.clear();
    let rsp = h.call(C1, &req);
    assert_err(&rsp, ErrorType::KNotFound, "/pb/later");
    assert_eq!(
        h.raw[&C1],
        golden_frame("rep_stat_notfound_watch_registered")
    );
    assert!(h.model.has_watch(sid, "/pb/later"));
    assert_ok(&h.call(C1, &create(sid, 2, "/pb/later", 0, b"")));
    assert_eq!(
        next_event(&mut h, C1, sid, 3),
        Some(("/pb/later".into(), "/pb/later".into(), event_type::CREATE))
    );
}

#[test]
fn read_with_watch_on_a_missing_node_registers_nothing() {
    let (mut h, sid) = setup();
    let mut req = read(sid, 1, "/nope");
    req.watch = Some(watch_req("/nope", event_type::CREATE, false));
    assert_err(&h.call(C1, &req), ErrorType::KNotFound, "/nope");
    assert!(!h.model.has_watch(sid, "/nope"));
    // On an existing node it registers.
    assert_ok(&h.call(C1, &create(sid, 2, "/yes", 0, b"d")));
    let mut req = read(sid, 3, "/yes");
    req.watch = Some(watch_req("/yes", event_type::MODIFY, false));
    assert_eq!(h.call(C1, &req).data.as_deref(), Some(&b"d"[..]));
    assert!(h.model.has_watch(sid, "/yes"));
}

#[test]
fn watch_alone_registers_on_any_path_without_checking_it() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &watch(sid, 1, "/not/yet", event_type::CREATE, false)));
    assert!(h.model.has_watch(sid, "/not/yet"));
    // As on the original: a watch alone does not check its path.
    for odd in ["bad", "/a b", ""] {
        assert_ok(&h.call(C1, &watch(sid, 2, odd, 1, false)));
        assert!(h.model.has_watch(sid, odd));
    }
}

#[test]
fn write_raises_modify_with_the_golden_frame() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &create(sid, 1, "/pb", 0, b"")));
    assert_ok(&h.call(C1, &create(sid, 2, "/pb/eph", 1, b"")));
    assert_ok(&h.call(C1, &watch(sid, 3, "/pb/eph", event_type::MODIFY, false)));
    assert_ok(&h.call(C1, &write(sid, 4, "/pb/eph", b"v2")));
    h.raw.clear();
    h.send(C1, &ping(sid, 50));
    assert_eq!(h.raw[&C1], golden_frame("rep_ping_event_modify"));
}

#[test]
fn a_session_end_drops_its_watches() {
    let (mut h, sid) = setup();
    assert_ok(&h.call(C1, &watch(sid, 1, "/w", event_type::ALL, false)));
    assert_ok(&h.call(C1, &unregister(sid, 2)));
    assert!(!h.model.has_watch(sid, "/w"));
}
