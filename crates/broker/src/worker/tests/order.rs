//! The order in which a connection gets what the router sent: whatever
//! the worker batches within a turn (a grouping of a turn's quotes by
//! connection was tried and measured, docs/performance.md, ninth round),
//! each connection gets the router's messages in the router's order.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::Message;

use super::{default_settings, BusyRouterWorker, PATIENCE};
use crate::messages::{RouterCmd, SharedQuote, WorkerMsg};

/// Waits for the router's next subscribe command and returns it (other
/// commands, interest, are dropped: the test's router keeps no state).
fn next_subscribe(router_rx: &crossbeam_channel::Receiver<RouterCmd>) -> RouterCmd {
    loop {
        let Ok(cmd) = router_rx.recv_timeout(PATIENCE) else {
            panic!("the subscribe reaches the router");
        };
        let cmds = match cmd {
            RouterCmd::Batch(cmds) => cmds,
            cmd => vec![cmd],
        };
        if let Some(subscribe) = cmds
            .into_iter()
            .find(|c| matches!(c, RouterCmd::Subscribe { .. }))
        {
            return subscribe;
        }
    }
}

fn send(ws: &mut tungstenite::WebSocket<TcpStream>, text: &str) {
    ws.send(Message::Text(text.into())).unwrap();
}

fn read_text(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    ws.read().unwrap().into_text().unwrap().to_string()
}

/// The router's encoding of a quote of `topic` numbered `seq`.
fn shared(topic: &str, seq: u64) -> Arc<SharedQuote> {
    Arc::new(SharedQuote::encoded_for_test(topic, seq))
}

#[test]
fn a_quote_the_router_sent_before_an_answer_arrives_before_it() {
    let (w, router_rx) = BusyRouterWorker::start_with(default_settings(), 16, false);
    let addr = w.addr;
    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).unwrap();
    ws.get_mut().set_read_timeout(Some(PATIENCE)).unwrap();

    // Live on AAPL.
    send(&mut ws, r#"{"op":"subscribe","topics":["AAPL"],"id":1}"#);
    assert_eq!(w.answer(next_subscribe(&router_rx)), 1);
    let ack = read_text(&mut ws);
    assert!(ack.contains(r#""id":1"#), "{ack}");

    // A second subscribe, of MSFT. The router numbers a quote of AAPL,
    // then takes the subscribe and answers it with MSFT's snapshot: both
    // wait in the worker's queue for one turn, in that order.
    send(&mut ws, r#"{"op":"subscribe","topics":["MSFT"],"id":2}"#);
    let RouterCmd::Subscribe {
        conn,
        request,
        selectors,
        seed,
        ..
    } = next_subscribe(&router_rx)
    else {
        unreachable!("next_subscribe returns a subscribe");
    };
    w.to_worker
        .send(WorkerMsg::Quotes {
            quotes: vec![shared("AAPL", 7)],
            sent_at: Instant::now(),
        })
        .unwrap();
    w.to_worker
        .send(WorkerMsg::Activate {
            conn,
            request,
            selectors,
            snapshots: vec![shared("MSFT", 9)],
            replayed: 0,
            more: false,
            unrecovered: None,
            seed,
        })
        .unwrap();
    w.wake.wake().unwrap();

    // The ack goes before anything delivered once the router has taken
    // the subscribe (the connection's rule); then the router's order.
    let ack = read_text(&mut ws);
    assert!(ack.contains(r#""id":2"#), "the ack: {ack}");
    let quote = read_text(&mut ws);
    assert!(
        quote.contains(r#""topic":"AAPL""#) && quote.contains(r#""seq":7"#),
        "the live quote the router sent first: {quote}"
    );
    let snapshot = read_text(&mut ws);
    assert!(
        snapshot.contains(r#""topic":"MSFT""#) && snapshot.contains(r#""seq":9"#),
        "then the answer's snapshot: {snapshot}"
    );
    w.stop();
}
