//! `/sse` at the session: the stream opens with its one subscribe, events
//! in the JSON of the WebSocket protocol, quote ids only when the stream is
//! complete up to them, the keepalive, and shutdown after what is queued.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::messages::{CatchUp, ResumeFrom};

/// An `/sse` connection; returns it and what it wrote after the head.
fn open(query: &str, headers: &str) -> (Client, String) {
    let mut c = Client::upgraded_sse(config(), query, headers);
    let out = c.text();
    (c, out)
}

impl Client {
    fn upgraded_sse(config: SessionConfig, query: &str, headers: &str) -> Client {
        let mut c = Client::fresh(config);
        let request = format!("GET /sse?{query} HTTP/1.0\r\nHost: t\r\n{headers}\r\n");
        c.conn.on_bytes(request.as_bytes(), c.now, &mut c.fx);
        c
    }

    /// Everything written so far, as text.
    fn text(&mut self) -> String {
        self.write_all();
        let text = String::from_utf8_lossy(&self.wire).into_owned();
        self.wire.clear();
        text
    }
}

fn sse_quote(topic: &str, seq: u64, accepted: u64) -> LocalQuote {
    let mut frame = Vec::new();
    let json = format!(r#"{{"type":"quote","topic":"{topic}","seq":{seq}}}"#);
    encode_frame(&mut frame, OpCode::Text, json.as_bytes());
    LocalQuote::from(SharedQuote {
        topic: topic.into(),
        seq,
        accepted,
        json_frame: frame.clone().into(),
        binary_frame: frame.into(),
        changed: None,
        lazy: Default::default(),
        decoded_at: Instant::now(),
    })
}

#[test]
fn the_stream_opens_with_its_subscribe_and_quotes_carry_ids() {
    let (mut c, head) = open("topics=A,B.%2A", "");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream\r\n"));
    let actions = c.take_actions();
    assert!(actions.contains(&Action::OpenedSse), "{actions:?}");
    assert!(actions.iter().any(
        |a| matches!(a, Action::Subscribe { catch_up, .. } if *catch_up == CatchUp::snapshot(true))
    ));
    c.conn.on_command_taken(&mut c.fx);
    assert_eq!(c.text(), "", "the ack goes with the activation");
    let (a, b) = (sel("A"), sel("B.*"));
    c.answer(0, &[a, b], vec![sse_quote("A", 4, 10)], false, None);
    c.conn
        .on_quote(&sse_quote("B.X", 1, 11), None, c.now, &mut c.fx);
    assert_eq!(
        c.text(),
        "data: {\"type\":\"subscribed\",\"topics\":[\"A\",\"B.*\"],\"epoch\":\"e\"}\n\n\
         data: {\"type\":\"quote\",\"topic\":\"A\",\"seq\":4}\n\n\
         id: 0000000000000000.0000000000005e5e.b\ndata: {\"type\":\"quote\",\"topic\":\"B.X\",\"seq\":1}\n\n",
        "the snapshot has no id, the live quote has"
    );
}

/// While the catch-up still comes in slices, live quotes go without `id:`
/// too: an id must only name a point up to which the stream is complete.
#[test]
fn no_ids_while_the_stream_catches_up() {
    let (mut c, _) = open("topics=T.%2A", "");
    c.conn.on_command_taken(&mut c.fx);
    c.text();
    c.answer(0, &[sel("T.*")], vec![sse_quote("T.1", 1, 1)], true, None);
    c.conn
        .on_quote(&sse_quote("T.9", 5, 20), None, c.now, &mut c.fx);
    let text = c.text();
    assert!(!text.contains("id: "), "{text}");
    c.slice(0, vec![sse_quote("T.2", 1, 2)], false);
    c.conn
        .on_quote(&sse_quote("T.9", 6, 21), None, c.now, &mut c.fx);
    let text = c.text();
    assert!(text.ends_with("id: 0000000000000000.0000000000005e5e.15\ndata: {\"type\":\"quote\",\"topic\":\"T.9\",\"seq\":6}\n\n"), "{text}");
}

/// `Last-Event-ID` of this broker resumes from its accept count (and wins
/// over `since=`); another broker's id resumes with every topic
/// unrecovered; a malformed one is ignored.
#[test]
fn last_event_id_asks_the_router_to_resume_every_topic() {
    let id = "0000000000000001.0000000000005e5e.2a";
    let since = "%7B%22epoch%22%3A%22e%22%2C%22seqs%22%3A%7B%22A%22%3A1%7D%7D";
    for (header, want) in [
        (format!("Last-Event-ID: {id}\r\n"), Some((42, true))),
        (
            "Last-Event-ID: 0000000000000001.00000000000000ff.2a\r\n".to_owned(),
            Some((42, false)),
        ),
        ("Last-Event-ID: garbage\r\n".to_owned(), None),
    ] {
        let (mut c, _) = open(&format!("topics=A&since={since}"), &header);
        let actions = c.take_actions();
        let catch_up = actions
            .iter()
            .find_map(|a| match a {
                Action::Subscribe { catch_up, .. } => Some(catch_up.clone()),
                _ => None,
            })
            .expect("a subscribe");
        match want {
            Some((accepted, valid)) => {
                assert_eq!(
                    catch_up.resume_from,
                    Some(ResumeFrom {
                        accepted,
                        newest_only: false
                    }),
                    "{header}"
                );
                assert_eq!(catch_up.epoch_matches, valid, "{header}");
                assert!(catch_up.resume.is_empty(), "Last-Event-ID wins over since");
            }
            None => {
                assert_eq!(catch_up.resume_from, None);
                assert_eq!(catch_up.resume.len(), 1, "since applies");
            }
        }
        // The ack waits for the router's answer.
        c.conn.on_command_taken(&mut c.fx);
        assert!(!c.text().contains("subscribed"));
        c.answer(0, &[sel("A")], vec![], false, Some(&[Arc::from("A")]));
        assert!(c
            .text()
            .contains(r#""recovered":false,"unrecovered":["A"]"#));
    }
}

#[test]
fn refused_requests_get_a_status_and_nothing_opens() {
    for (query, status) in [
        ("topics=BAD%20ONE", "400"),
        ("topics=A&rewind=2000", "400"),
        ("nothing=1", "400"),
    ] {
        let (mut c, text) = open(query, "");
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{query}: {text}"
        );
        assert!(text.contains("application/json"), "{text}");
        assert!(!c.take_actions().contains(&Action::OpenedSse));
    }
}

#[test]
fn a_quiet_stream_gets_a_comment_and_shutdown_sends_what_is_queued() {
    let (mut c, _) = open("topics=A", "");
    c.conn.on_command_taken(&mut c.fx);
    c.answer(0, &[sel("A")], vec![], false, None);
    c.text();
    let due = c.conn.poll_timeout().expect("a deadline");
    assert!(due <= c.now + Duration::from_secs(15));
    let later = c.at(Duration::from_secs(15));
    c.conn.on_tick(later, &mut c.fx);
    assert_eq!(c.text(), ":\n\n");
    c.conn
        .on_quote(&sse_quote("A", 1, 3), None, c.now, &mut c.fx);
    let now = c.now;
    c.conn.begin_shutdown(now, &mut c.fx);
    assert!(c
        .text()
        .ends_with("data: {\"type\":\"quote\",\"topic\":\"A\",\"seq\":1}\n\n"));
    assert!(c.take_actions().contains(&Action::LeftSse));
}
