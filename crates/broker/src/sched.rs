//! A scheduling hint for the thread that feeds the workers.

/// Marks the calling thread `SCHED_BATCH` (Linux): when it wakes, it does
/// not preempt the thread running on its core, it waits for that thread to
/// block or use up its slice. The router's thread (which reads the
/// producers) wakes for every producer packet; where it shares a core with
/// a busy worker, preempting it each time cost tens of thousands of context
/// switches a second and split the feed into small batches (measured in
/// docs/performance.md). On an idle core it runs at once, as before, so
/// latency at moderate load is unchanged. Best effort: a refusal only costs that speed-up.
pub fn yield_to_workers() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads `param`, a valid local;
        // pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "SCHED_BATCH refused; feed threads keep the default policy"
            );
        }
    }
}
