//! Entitlements in the session: atomic rejection, coverage, refresh that
//! narrows, expiry — with an injected clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::auth::tests::{hs256, hs256_config, now};
use crate::auth::Entitlements;

/// A connection with `[auth]` (anonymous grant `DEMO.*`) whose clock reads
/// real Unix time at `c.now`.
fn authed_client() -> (Client, u64) {
    let mut cfg = config();
    cfg.max_subscriptions = 16;
    cfg.auth = Some(Arc::new(Entitlements::load(&hs256_config()).unwrap()));
    let c = Client::upgraded(cfg);
    let unix = now();
    (c, unix)
}

fn with_wall(mut c: Client, unix: u64) -> Client {
    // Align the connection's wall clock: `c.now` is Unix time `unix`.
    let mut cfg = (*c.conn.config).clone();
    cfg.wall = WallClock {
        at: c.now,
        unix: Duration::from_secs(unix),
    };
    c.conn.config = Arc::new(cfg);
    c
}

fn reply(c: &mut Client) -> serde_json::Value {
    let frames = c.frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    serde_json::from_str(&frames[0]).unwrap()
}

#[test]
fn before_auth_only_anonymous_topics_and_a_request_is_all_or_nothing() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    c.request_answered(r#"{"op":"subscribe","topics":["DEMO.A","DEMO.*"],"id":1}"#);
    assert_eq!(reply(&mut c)["type"], "subscribed");
    let actions = c.request(r#"{"op":"subscribe","topics":["DEMO.B","AAPL","MSFT"],"id":2}"#);
    assert_eq!(actions, [Action::RequestError(ErrorCode::NotAuthorized)]);
    let r = reply(&mut c);
    assert_eq!(
        (r["code"].as_str(), r["id"].as_u64()),
        (Some("not_authorized"), Some(2))
    );
    assert!(
        r["message"].as_str().unwrap().contains("AAPL"),
        "names the first: {r}"
    );
    assert_eq!(c.conn.subscription_count(), 2, "DEMO.B was not added");
}

#[test]
fn auth_grants_topics_and_patterns_by_the_coverage_rule() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let token = hs256(json!({"exp": unix + 600, "sub": "alice", "topics": ["AAPL", "NASDAQ.*"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{token}","id":7}}"#));
    let r = reply(&mut c);
    assert_eq!(
        r,
        json!({"type": "authed", "id": 7, "sub": "alice", "exp": unix + 600})
    );
    for ok in [
        r#"["AAPL"]"#,
        r#"["NASDAQ.MSFT","NASDAQ.A*"]"#,
        r#"["DEMO.X"]"#,
    ] {
        c.request_answered(&format!(r#"{{"op":"subscribe","topics":{ok}}}"#));
        assert_eq!(reply(&mut c)["type"], "subscribed", "{ok}");
    }
    for denied in [r#"["NASDAQ"]"#, r#"["NAS*"]"#, r#"["*"]"#, r#"["AAPL2"]"#] {
        c.request(&format!(r#"{{"op":"subscribe","topics":{denied}}}"#));
        assert_eq!(reply(&mut c)["code"], "not_authorized", "{denied}");
    }
}

#[test]
fn a_bad_token_keeps_what_was_granted_before() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let token = hs256(json!({"exp": unix + 600, "topics": ["AAPL"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{token}"}}"#));
    assert_eq!(reply(&mut c)["type"], "authed");
    c.request(r#"{"op":"auth","token":"not.a.jwt","id":3}"#);
    let r = reply(&mut c);
    assert_eq!(
        (r["code"].as_str(), r["id"].as_u64()),
        (Some("not_authorized"), Some(3))
    );
    let expired = hs256(json!({"exp": unix, "topics": ["*"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{expired}"}}"#));
    assert_eq!(reply(&mut c)["message"], "token expired");
    c.request_answered(r#"{"op":"subscribe","topics":["AAPL"]}"#);
    assert_eq!(reply(&mut c)["type"], "subscribed");
}

/// The revoked entries are listed in order, whatever the map's own order
/// (a hash table's past sixteen entries, which follows the process's hash
/// key and is never shown).
#[test]
fn revoked_entries_are_reported_in_order() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let mut cfg = (*c.conn.config).clone();
    cfg.max_subscriptions = 32;
    c.conn.config = Arc::new(cfg);
    let wide = hs256(json!({"exp": unix + 600, "topics": ["T*"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{wide}"}}"#));
    let topics: Vec<String> = (0..24).map(|i| format!("T{i:02}")).collect();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    c.request(&format!(
        r#"{{"op":"subscribe","topics":{},"snapshot":false}}"#,
        serde_json::to_string(&names).unwrap()
    ));
    c.activate(0, &names, vec![]);
    c.frames();
    c.take_actions();
    let narrow = hs256(json!({"exp": unix + 600, "topics": ["T0*"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{narrow}"}}"#));
    let frames = c.frames();
    assert_eq!(kinds(&frames), ["authed", "unsubscribed"]);
    let gone: serde_json::Value = serde_json::from_str(&frames[1]).unwrap();
    let want: Vec<String> = (10..24).map(|i| format!("T{i}")).collect();
    assert_eq!(gone["topics"], json!(want));
    assert_eq!(c.conn.subscription_count(), 10);
}

#[test]
fn a_refresh_that_narrows_removes_and_reports_the_entries_it_no_longer_covers() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let wide = hs256(json!({"exp": unix + 600, "topics": ["AAPL", "MSFT", "NYSE.*"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{wide}"}}"#));
    c.request(r#"{"op":"subscribe","topics":["AAPL","MSFT","NYSE.*","DEMO.X"],"snapshot":false}"#);
    c.activate(0, &["AAPL", "MSFT", "NYSE.*", "DEMO.X"], vec![]);
    c.frames();
    c.take_actions();
    c.live(&quote("MSFT", 1), None); // queued, not yet read
    let narrow = hs256(json!({"exp": unix + 600, "topics": ["AAPL"]}));
    let actions = c.request(&format!(r#"{{"op":"auth","token":"{narrow}"}}"#));
    assert!(actions.contains(&Action::Unroute(sel("MSFT"))));
    assert!(actions.contains(&Action::Unroute(sel("NYSE.*"))));
    assert!(!actions.contains(&Action::Unroute(sel("AAPL"))));
    assert!(
        !actions.contains(&Action::Unroute(sel("DEMO.X"))),
        "anonymous grants stay"
    );
    let frames = c.frames();
    // The queued MSFT quote is purged; authed, then the removal notice.
    assert_eq!(kinds(&frames), ["authed", "unsubscribed"]);
    let gone: serde_json::Value = serde_json::from_str(&frames[1]).unwrap();
    assert_eq!(gone["reason"], "not_authorized");
    let mut topics: Vec<&str> = gone["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    topics.sort();
    assert_eq!(topics, ["MSFT", "NYSE.*"]);
    assert!(gone.get("id").is_none());
    assert_eq!(c.conn.subscription_count(), 2);
}

#[test]
fn the_connection_is_closed_at_exp_unless_refreshed() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let t0 = c.now;
    let token = hs256(json!({"exp": unix + 60, "topics": ["AAPL"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{token}"}}"#));
    c.frames();
    c.conn.on_tick(t0 + Duration::from_secs(59), &mut c.fx);
    assert!(c.take_actions().is_empty());
    // A refresh at 50 s moves the deadline to its own exp.
    c.now = t0 + Duration::from_secs(50);
    let later = hs256(json!({"exp": unix + 120, "topics": ["AAPL"]}));
    c.request(&format!(r#"{{"op":"auth","token":"{later}"}}"#));
    c.frames();
    c.conn.on_tick(t0 + Duration::from_secs(60), &mut c.fx);
    assert!(c.take_actions().is_empty(), "refreshed");
    c.conn.on_tick(t0 + Duration::from_secs(120), &mut c.fx);
    assert!(c.take_actions().contains(&Action::CloseSent {
        code: 1008,
        slow_consumer: false
    }));
    assert_eq!(c.frames(), ["close 1008 token expired"]);
}

#[test]
fn auth_without_auth_configured_is_a_bad_request() {
    let mut c = Client::upgraded(config());
    c.request(r#"{"op":"auth","token":"a.b.c","id":1}"#);
    let r = reply(&mut c);
    assert_eq!(r["code"], "bad_request");
    // And subscribe is not gated at all.
    c.request_answered(r#"{"op":"subscribe","topics":["*"]}"#);
    assert_eq!(reply(&mut c)["type"], "subscribed");
}

#[test]
fn an_empty_token_is_not_authorized_and_a_missing_one_is_a_bad_request() {
    let (c, unix) = authed_client();
    let mut c = with_wall(c, unix);
    let actions = c.request(r#"{"op":"auth","token":"","id":1}"#);
    assert_eq!(actions, [Action::RequestError(ErrorCode::NotAuthorized)]);
    let r = reply(&mut c);
    assert_eq!(
        (r["code"].as_str(), r["id"].as_u64()),
        (Some("not_authorized"), Some(1))
    );
    for malformed in [
        r#"{"op":"auth","id":2}"#,
        r#"{"op":"auth","token":7,"id":2}"#,
    ] {
        let actions = c.request(malformed);
        assert_eq!(actions, [Action::RequestError(ErrorCode::BadRequest)]);
        assert_eq!(reply(&mut c)["code"], "bad_request", "{malformed}");
    }
}
