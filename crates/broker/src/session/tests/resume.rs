//! v1.2 resume at the session: what the core asks the router for, and the
//! ack that waits for the router's answer.

use std::sync::Arc;

use super::*;
use crate::messages::{CatchUp, Resume};

fn resume(topic: &str, after: u64, newest_only: bool) -> Resume {
    Resume {
        topic: Arc::from(topic),
        after,
        newest_only,
    }
}

/// The ack of a resume names the unrecovered topics, so it is made by the
/// router's answer: before it nothing is sent, not even a later reply;
/// then the ack, then the replay, in that order.
#[test]
fn the_resume_ack_is_made_by_the_activation_and_precedes_the_replay() {
    let mut c = Client::upgraded(config());
    c.send(r#"{"op":"subscribe","topics":["AAPL","FX.*"],"id":5,"since":{"epoch":"e","seqs":{"AAPL":7,"FX.EUR":3}}}"#);
    let actions = c.take_actions();
    let Some(Action::Subscribe { catch_up, .. }) = actions.last() else {
        panic!("a subscribe: {actions:?}");
    };
    assert_eq!(
        *catch_up,
        CatchUp {
            snapshot: true,
            rewind: 0,
            resume: vec![resume("AAPL", 7, false), resume("FX.EUR", 3, false)],
            resume_from: None,
            epoch_matches: true,
            window: 2048,
        }
    );
    c.send(r#"{"op":"unsubscribe","topics":["NONE"],"id":6}"#);
    c.conn.on_command_taken(&mut c.fx);
    assert!(
        c.frames().is_empty(),
        "the ack waits for the router's answer"
    );

    let unrecovered = [Arc::from("FX.EUR")];
    let (aapl, fx) = (sel("AAPL"), sel("FX.*"));
    c.answer(
        0,
        &[aapl, fx],
        vec![quote("AAPL", 8), quote("FX.EUR", 9)],
        false,
        Some(&unrecovered),
    );
    let frames = c.frames();
    assert_eq!(
        kinds(&frames),
        ["subscribed", "unsubscribed", "Q AAPL 8", "Q FX.EUR 9"]
    );
    assert_eq!(
        frames[0],
        r#"{"type":"subscribed","id":5,"topics":["AAPL","FX.*"],"epoch":"e","recovered":false,"unrecovered":["FX.EUR"]}"#
    );
}

/// Another epoch: the router is told (every topic then unrecovered); an
/// empty `seqs` is recovered at once; a `max_hz` entry (the most specific,
/// an earlier request's) asks for the newest quote only; `rewind` passes.
#[test]
fn what_a_resume_asks_the_router_for() {
    let mut c = Client::upgraded(config());
    c.send(r#"{"op":"subscribe","topics":["AAPL"],"max_hz":2}"#);
    c.conn.on_command_taken(&mut c.fx);
    c.answer(0, &[sel("AAPL")], vec![], false, None);
    c.take_actions();
    c.send(r#"{"op":"subscribe","topics":["A*"],"id":2,"rewind":5,"since":{"epoch":"old","seqs":{"AAPL":1,"AMZN":2}}}"#);
    let actions = c.take_actions();
    let Some(Action::Subscribe { catch_up, .. }) = actions.last() else {
        panic!("a subscribe: {actions:?}");
    };
    assert_eq!(
        *catch_up,
        CatchUp {
            snapshot: true,
            rewind: 5,
            resume: vec![resume("AAPL", 1, true), resume("AMZN", 2, false)],
            resume_from: None,
            epoch_matches: false,
            window: 2048,
        }
    );
    c.conn.on_command_taken(&mut c.fx);
    c.send(r#"{"op":"subscribe","topics":["B"],"id":3,"since":{"epoch":"e","seqs":{}}}"#);
    c.conn.on_command_taken(&mut c.fx);
    let frames = c.frames();
    assert!(
        frames.iter().all(|f| !f.contains(r#""id":3"#)),
        "behind the resume of id 2"
    );
    c.answer(
        1,
        &[sel("A*")],
        vec![],
        false,
        Some(&[Arc::from("AAPL"), Arc::from("AMZN")]),
    );
    c.answer(2, &[sel("B")], vec![], false, None);
    let frames = c.frames();
    assert_eq!(kinds(&frames), ["subscribed", "subscribed"]);
    assert!(frames[0].contains(r#""recovered":false,"unrecovered":["AAPL","AMZN"]"#));
    assert!(
        frames[1].ends_with(r#""epoch":"e","recovered":true}"#),
        "{}",
        frames[1]
    );
}

/// Bad `since` or `rewind`: `bad_request`, nothing applied.
#[test]
fn a_malformed_since_applies_nothing() {
    let mut c = Client::upgraded(config());
    for bad in [
        r#"{"op":"subscribe","topics":["AAPL"],"id":1,"since":{"epoch":"e","seqs":{"MSFT":1}}}"#,
        r#"{"op":"subscribe","topics":["A*"],"id":1,"since":{"epoch":"e","seqs":{"A*":1}}}"#,
        r#"{"op":"subscribe","topics":["AAPL"],"id":1,"since":{"epoch":"e","seqs":{"AAPL":9007199254740992}}}"#,
        r#"{"op":"subscribe","topics":["AAPL"],"id":1,"since":{"epoch":7,"seqs":{}}}"#,
        r#"{"op":"subscribe","topics":["AAPL"],"id":1,"rewind":0}"#,
        r#"{"op":"subscribe","topics":["AAPL"],"id":1,"rewind":5,"snapshot":false}"#,
    ] {
        let actions = c.request(bad);
        assert_eq!(
            actions,
            [Action::RequestError(ErrorCode::BadRequest)],
            "{bad}"
        );
        assert_eq!(c.conn.subscription_count(), 0, "{bad}");
        let frames = c.frames();
        assert!(frames[0].contains(r#""code":"bad_request""#), "{bad}");
    }
}
