use super::*;
use crate::router::topics::quote_all;
use crate::router::HistoryLimits;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn the_cover_drops_covered_and_repeated_selectors() {
    let request: Vec<Selector> = ["AAPL", "A*", "AA*", "MSFT", "MSFT", "B*", "*X", "BC"]
        .iter()
        .filter_map(|s| Selector::parse(s))
        .collect();
    let cover: Vec<Selector> = disjoint_cover(&request).into_iter().collect();
    assert_eq!(cover, [sel("A*"), sel("MSFT"), sel("B*")]);
    let everything = [sel("AAPL"), sel("*"), sel("Z*")];
    assert_eq!(disjoint_cover(&everything), [sel("*")]);
    // Exact topics only (the short path): repeats go, order stays.
    let exact = [sel("B"), sel("A"), sel("B"), sel("C"), sel("A")];
    assert_eq!(disjoint_cover(&exact), [sel("B"), sel("A"), sel("C")]);
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("T.{i:04}")).collect()
}

fn table(names: &[String]) -> TopicTable {
    let mut table = TopicTable::new(10_000, HistoryLimits::default(), Default::default());
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    quote_all(&mut table, &all);
    table
}

fn slice_topics(msg: &WorkerMsg) -> (Vec<String>, bool) {
    match msg {
        WorkerMsg::Snapshots { quotes, more, .. } => {
            (quotes.iter().map(|q| q.topic.to_string()).collect(), *more)
        }
        _ => panic!("a slice expected"),
    }
}

const CONN: ConnId = ConnId { slot: 3, serial: 1 };

/// A v1 snapshot's start: its first slice and whether more follow.
fn start(
    jobs: &mut SnapshotJobs,
    worker: usize,
    conn: ConnId,
    request: u32,
    selectors: &[Selector],
    topics: &TopicTable,
) -> (Vec<Arc<SharedQuote>>, bool) {
    let s = jobs.start(
        worker,
        conn,
        request,
        selectors,
        CatchUp::snapshot(true),
        topics,
    );
    (s.first, s.more)
}

/// Slices walk the topics in order, each at most once, and leave out
/// those accepted since the subscription went live (they reach the
/// worker live instead).
#[test]
fn a_job_yields_ordered_slices_without_topics_accepted_since() {
    let all = names(600);
    let mut topics = table(&all);
    let mut jobs = SnapshotJobs::default();
    let (first, more) = start(&mut jobs, 0, CONN, 9, &[sel("T.*"), sel("T.0001")], &topics);
    assert_eq!(first.len(), SNAPSHOT_SLICE);
    assert!(more && !jobs.is_empty());
    quote_all(&mut topics, &["T.0100", "T.0300", "T.0599"]);

    let mut got: Vec<String> = first.iter().map(|q| q.topic.to_string()).collect();
    loop {
        let (worker, msg) = jobs.next_slice(&topics, |_| true).expect("a slice");
        assert_eq!(worker, 0);
        let (slice, more) = slice_topics(&msg);
        got.extend(slice);
        if !more {
            break;
        }
    }
    assert!(jobs.is_empty());
    let expected: Vec<&String> = all
        .iter()
        .filter(|t| !["T.0300", "T.0599"].contains(&t.as_str()))
        .collect();
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        expected,
        "T.0100 was in the first slice"
    );
}

#[test]
fn a_worker_behind_waits_and_cancelled_or_gone_jobs_stop() {
    let topics = table(&names(1000));
    let mut jobs = SnapshotJobs::default();
    let other = ConnId { slot: 4, serial: 1 };
    assert!(start(&mut jobs, 0, CONN, 1, &[sel("*")], &topics).1);
    assert!(start(&mut jobs, 1, other, 2, &[sel("*")], &topics).1);
    assert!(start(&mut jobs, 1, CONN, 3, &[sel("*")], &topics).1);
    let behind = |w: usize| w != 0;
    assert!(jobs.ready(behind));
    assert!(!jobs.ready(|_| false));
    assert!(jobs.next_slice(&topics, |_| false).is_none());
    // Worker 0 is behind: worker 1's oldest job goes.
    let (worker, msg) = jobs.next_slice(&topics, behind).unwrap();
    assert!(worker == 1 && matches!(msg, WorkerMsg::Snapshots { request: 2, .. }));

    jobs.cancel(1, CONN);
    jobs.cancel(0, other);
    jobs.worker_gone(1);
    assert!(!jobs.ready(behind), "only worker 0's job is left");
    let (worker, _) = jobs.next_slice(&topics, |_| true).unwrap();
    assert_eq!(worker, 0);
    jobs.worker_gone(0);
    assert!(jobs.is_empty());
}
