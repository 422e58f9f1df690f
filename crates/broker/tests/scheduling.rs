//! The feed thread's scheduling policy (Linux): the router (which reads the
//! producers too) runs as `SCHED_BATCH`, so waking it does not preempt a
//! busy worker (docs/decisions.md); workers keep the default policy. There
//! is no ingest thread of its own.

#![cfg(target_os = "linux")]

#[path = "e2e/common/mod.rs"]
mod common;

use std::fs;

/// `SCHED_OTHER` and `SCHED_BATCH` as `/proc/<pid>/task/<tid>/stat` shows them.
const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;

/// (thread name, scheduling policy) of every thread of this process.
fn thread_policies() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task entry").path();
        let (Ok(comm), Ok(stat)) = (
            fs::read_to_string(path.join("comm")),
            fs::read_to_string(path.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the parenthesised name start at field 3 (state);
        // the policy is field 41.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let policy = after_name
            .split_whitespace()
            .nth(41 - 3)
            .and_then(|p| p.parse().ok())
            .expect("a policy field");
        out.push((comm.trim().to_string(), policy));
    }
    out
}

/// The policies of the threads called `name`.
fn policies_of(threads: &[(String, u32)], name: &str) -> Vec<u32> {
    threads
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, p)| *p)
        .collect()
}

#[test]
fn the_feed_thread_yields_to_workers_and_workers_keep_the_default_policy() {
    let _broker = common::start();
    // Each thread names itself and sets its own policy once it runs, which
    // may be after the broker already answers: wait for both.
    let router_batch = |threads: &[(String, u32)]| {
        let policies = policies_of(threads, "router");
        policies.len() == 1 && policies.iter().all(|&p| p == SCHED_BATCH)
    };
    let mut threads = Vec::new();
    let settled = common::wait_until(|| {
        threads = thread_policies();
        router_batch(&threads)
    });
    assert!(settled, "one router thread, run SCHED_BATCH: {threads:?}");
    assert!(
        policies_of(&threads, "ingest").is_empty(),
        "no ingest thread: {threads:?}"
    );
    let workers = policies_of(&threads, "worker-0");
    assert!(!workers.is_empty(), "a worker runs: {threads:?}");
    assert!(
        workers.iter().all(|&p| p == SCHED_OTHER),
        "workers keep the default policy: {threads:?}"
    );
}
