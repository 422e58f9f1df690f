//! The I/O shell's own rules, with a real socket and a router channel the
//! test controls (the connection's rules are tested in `session::tests`).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Poll;
use tungstenite::Message;

use super::{waker, Worker, WorkerParts, WorkerSettings};
use crate::config::Config;
use crate::doorbell::BellSender;
use crate::messages::{RouterCmd, WorkerMsg};
use crate::metrics::Metrics;

const PATIENCE: Duration = Duration::from_secs(20);

/// A worker on an ephemeral loopback port whose router is busy: its
/// one-slot command queue is full until the test reads from it.
struct BusyRouterWorker {
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    wake: Arc<mio::Waker>,
    shutdown: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// The worker's message queue (the router's answers).
    to_worker: crossbeam_channel::Sender<WorkerMsg>,
}

impl BusyRouterWorker {
    fn start(
        settings: WorkerSettings,
    ) -> (BusyRouterWorker, crossbeam_channel::Receiver<RouterCmd>) {
        Self::start_with(settings, 1, true)
    }

    /// A worker whose router queue holds `room` commands, full to start
    /// with when `busy`.
    fn start_with(
        settings: WorkerSettings,
        room: usize,
        busy: bool,
    ) -> (BusyRouterWorker, crossbeam_channel::Receiver<RouterCmd>) {
        let poll = Poll::new().unwrap();
        let wake = waker(&poll).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (router_tx, router_rx) = crossbeam_channel::bounded(room);
        if busy {
            router_tx
                .send(RouterCmd::DropInterest {
                    worker: 0,
                    selectors: vec![],
                })
                .unwrap();
        }
        let (to_worker, rx) = crossbeam_channel::bounded(16);
        let metrics = Arc::new(Metrics::new(1));
        let shutdown = Arc::new(AtomicBool::new(false));
        let thread = Worker::spawn(
            "worker-test".into(),
            WorkerParts {
                id: 0,
                poll,
                listener,
                tls_listener: None,
                rx,
                slices_queued: Arc::new(AtomicUsize::new(0)),
                router_tx: BellSender::unheard(router_tx),
                settings: Arc::new(settings),
                metrics: metrics.clone(),
                open_connections: Arc::new(AtomicUsize::new(0)),
                ip_counts: Default::default(),
                shutdown: shutdown.clone(),
            },
        )
        .unwrap();
        let w = BusyRouterWorker {
            addr,
            metrics,
            wake,
            shutdown,
            thread,
            to_worker,
        };
        (w, router_rx)
    }

    /// Answers `cmd`, as the router does, if it is a subscribe (or a
    /// batch of them): an activation with nothing stored. Returns how many
    /// subscribes it answered.
    fn answer(&self, cmd: RouterCmd) -> usize {
        match cmd {
            RouterCmd::Batch(cmds) => cmds.into_iter().map(|c| self.answer(c)).sum(),
            RouterCmd::Subscribe {
                conn,
                request,
                selectors,
                seed,
                ..
            } => {
                let activate = WorkerMsg::Activate {
                    conn,
                    request,
                    selectors,
                    snapshots: Vec::new(),
                    replayed: 0,
                    more: false,
                    unrecovered: None,
                    seed,
                };
                self.to_worker.send(activate).unwrap();
                self.wake.wake().unwrap();
                1
            }
            _ => 0,
        }
    }

    fn stop(self) {
        self.shutdown.store(true, Ordering::Release);
        self.wake.wake().unwrap();
        self.thread.join().unwrap();
    }
}

/// A worker's settings from the default config (no TLS, no `[auth]`).
fn default_settings() -> WorkerSettings {
    WorkerSettings::from_config(
        &Config::default(),
        Arc::new(crate::epoch::Epoch::fixed("e")),
        None,
        None,
        Arc::new(crate::metrics::Metrics::new(1)),
    )
}

/// Polls `cond` for up to PATIENCE.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn a_full_deferred_queue_stops_reading_requests_until_the_router_catches_up() {
    let mut settings = default_settings();
    settings.deferred_limit = 2;
    let (w, router_rx) = BusyRouterWorker::start(settings);
    let (addr, metrics) = (w.addr, w.metrics.clone());

    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).unwrap();
    let entries = || metrics.subscriptions.load(Ordering::Relaxed);
    for (i, topic) in ["A", "B"].iter().enumerate() {
        let request = format!(r#"{{"op":"subscribe","topics":["{topic}"],"snapshot":false}}"#);
        ws.send(Message::Text(request.into())).unwrap();
        assert!(eventually(|| entries() == i as i64 + 1));
    }
    // Two commands wait for the router: the limit. The third request is
    // not read (so it makes no third command)...
    ws.send(Message::Text(
        r#"{"op":"subscribe","topics":["C"],"snapshot":false}"#.into(),
    ))
    .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // a window for a bug to show
    assert_eq!(entries(), 2, "read past the deferred-queue bound");
    // ... until the router takes what waits: the filler, then both
    // subscribes as one message.
    router_rx.recv_timeout(PATIENCE).unwrap();
    let Ok(RouterCmd::Batch(waited)) = router_rx.recv_timeout(PATIENCE) else {
        panic!("the two waiting subscribes go together");
    };
    let topics: Vec<String> = waited
        .iter()
        .map(|cmd| match cmd {
            RouterCmd::Subscribe { selectors, .. } => selectors[0].as_written().into_owned(),
            _ => "?".to_owned(),
        })
        .collect();
    assert_eq!(topics, ["A", "B"]);
    assert!(eventually(|| entries() == 3));
    let Ok(RouterCmd::Subscribe { selectors, .. }) = router_rx.recv_timeout(PATIENCE) else {
        panic!("the third subscribe reaches the router");
    };
    assert_eq!(selectors[0].as_written(), "C");

    w.stop();
}

#[test]
fn the_ack_is_not_written_before_the_router_has_taken_the_subscribe() {
    let settings = default_settings();
    let (w, router_rx) = BusyRouterWorker::start(settings);
    let (addr, metrics) = (w.addr, w.metrics.clone());

    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/ws"), stream).unwrap();
    ws.send(Message::Text(
        r#"{"op":"subscribe","topics":["AAPL"],"id":1}"#.into(),
    ))
    .unwrap();
    // The worker has handled the request (the entry is counted) ...
    let deadline = Instant::now() + PATIENCE;
    while metrics.subscriptions.load(Ordering::Relaxed) != 1 {
        assert!(Instant::now() < deadline, "the request was never handled");
        std::thread::sleep(Duration::from_millis(5));
    }
    // ... but its command waits for room in the router's queue, and so
    // does the ack: a client that saw it could publish a quote the router
    // would number before the subscribe.
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    match ws.read() {
        Err(tungstenite::Error::Io(e)) => assert!(matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        )),
        other => panic!("nothing may arrive before the router has the command: {other:?}"),
    }
    // The router takes the old command; the worker's retry delivers the
    // subscribe, and only then the ack.
    assert!(matches!(
        router_rx.recv_timeout(PATIENCE),
        Ok(RouterCmd::DropInterest { .. })
    ));
    let subscribe = router_rx.recv_timeout(PATIENCE);
    let Ok(RouterCmd::Subscribe { selectors, .. }) = &subscribe else {
        panic!("the deferred subscribe reaches the router");
    };
    assert_eq!(selectors.len(), 1);
    // The ack goes with the router's answer.
    assert_eq!(w.answer(subscribe.unwrap()), 1);
    ws.get_mut().set_read_timeout(Some(PATIENCE)).unwrap();
    let ack = ws.read().unwrap().into_text().unwrap();
    assert!(ack.contains(r#""type":"subscribed""#), "{ack}");

    w.stop();
}

/// A connection's slot in the worker (peerbench's scenario C counts it per
/// idle subscriber, times the slab's growth): its serial, transport and
/// protocol state with the subscriber's inline, and the read-pause flags
/// in their padding. The figure is for 64-bit targets.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_connections_slot_stays_small() {
    let size = std::mem::size_of::<super::Conn>();
    assert!(size <= 344, "{size}");
}

/// 70 subscribes in one read leave 70 commands waiting for the router (past
/// the 64 that pause reading) and are all taken at once: reading must
/// resume, so a request sent after them is answered. (A release applied
/// before the same event's pause once left the connection unread.)
#[test]
fn subscribes_taken_at_once_resume_reading_after_a_pause_in_the_same_read() {
    let settings = default_settings();
    let (w, router_rx) = BusyRouterWorker::start_with(settings, 1024, false);
    let stream = TcpStream::connect(w.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, _) = tungstenite::client::client(format!("ws://{}/ws", w.addr), stream).unwrap();
    for i in 0..70 {
        let request =
            format!(r#"{{"op":"subscribe","topics":["T{i}"],"snapshot":false,"id":{i}}}"#);
        ws.write(Message::Text(request.into())).unwrap();
    }
    ws.flush().unwrap(); // one write: the worker reads them together
    let mut answered = 0;
    while answered < 70 {
        answered += w.answer(router_rx.recv_timeout(PATIENCE).unwrap());
    }
    let mut acks = 0;
    while acks < 70 {
        if let Message::Text(t) = ws.read().unwrap() {
            assert!(t.contains("subscribed"), "{t}");
            acks += 1;
        }
    }
    ws.send(Message::Text(
        r#"{"op":"unsubscribe","topics":["T0"],"id":99}"#.into(),
    ))
    .unwrap();
    let reply = loop {
        if let Message::Text(t) = ws.read().expect("the request after them is answered") {
            break t;
        }
    };
    assert!(
        reply.contains("unsubscribed") && reply.contains("99"),
        "{reply}"
    );
    w.stop();
}

/// A topic another connection just subscribed is not yet followed as far
/// as the router knows while that subscribe waits in the deferred queue:
/// a subscribe of it — even without a snapshot — goes to the router too,
/// and its ack waits for it (answered on the worker, the ack could come
/// before the router numbers quotes for this worker).
#[test]
fn a_subscribe_behind_an_interest_the_router_has_not_taken_goes_to_the_router() {
    let (w, router_rx) = BusyRouterWorker::start(default_settings());
    let (addr, metrics) = (w.addr, w.metrics.clone());
    let connect = || {
        let stream = TcpStream::connect(addr).unwrap();
        tungstenite::client::client(format!("ws://{addr}/ws"), stream)
            .unwrap()
            .0
    };
    let (mut first, mut second) = (connect(), connect());
    let request = r#"{"op":"subscribe","topics":["A"],"snapshot":false}"#;
    first.send(Message::Text(request.into())).unwrap();
    assert!(eventually(
        || metrics.subscriptions.load(Ordering::Relaxed) == 1
    ));
    second.send(Message::Text(request.into())).unwrap();
    assert!(eventually(
        || metrics.subscriptions.load(Ordering::Relaxed) == 2
    ));
    assert_eq!(
        metrics
            .subscribes_answered_by_worker
            .load(Ordering::Relaxed),
        0
    );
    // The filler, then both subscribes: the first with the interest.
    assert!(matches!(
        router_rx.recv_timeout(PATIENCE),
        Ok(RouterCmd::DropInterest { .. })
    ));
    let mut interest = Vec::new();
    while interest.len() < 2 {
        let Ok(cmd) = router_rx.recv_timeout(PATIENCE) else {
            panic!("both subscribes reach the router: {interest:?}");
        };
        let cmds = match cmd {
            RouterCmd::Batch(cmds) => cmds,
            cmd => vec![cmd],
        };
        for cmd in cmds {
            if let RouterCmd::Subscribe { interest_add, .. } = &cmd {
                interest.push(interest_add.len());
            }
            w.answer(cmd);
        }
    }
    assert_eq!(interest, [1, 0]);
    for ws in [&mut first, &mut second] {
        let ack = ws.read().unwrap().into_text().unwrap();
        assert!(ack.contains(r#""type":"subscribed""#), "{ack}");
    }
    w.stop();
}

mod order;
