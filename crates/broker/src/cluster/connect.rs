//! The NATS connection: options from `[cluster]` (credentials, TLS),
//! reconnect backoff with jitter, and the link marked down the moment the
//! client says so.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;

use super::link::Shared;
use crate::config::ms;
use crate::metrics;

/// Connects in the background (`retry_on_initial_connect`): returns at
/// once; connection events arrive on `state_tx`.
pub async fn connect(
    shared: &Arc<Shared>,
    state_tx: mpsc::UnboundedSender<Event>,
) -> Result<Client, String> {
    let c = &shared.config;
    let mut options = match &c.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("cluster.creds_file {path:?}: {e}"))?,
        None => ConnectOptions::new(),
    };
    if let Some(token) = &c.token {
        options = options.token(token.clone());
    }
    if let (Some(user), Some(password)) = (&c.user, &c.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &c.ca_file {
        options = options.add_root_certificates(ca.into()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&c.cert_file, &c.key_file) {
        options = options.add_client_certificate(cert.into(), key.into());
    }
    let max_delay = ms(c.reconnect_max_ms);
    let shared = shared.clone();
    let urls: Vec<String> = std::iter::once(c.nats_url.clone())
        .chain(c.nats_urls.iter().cloned())
        .collect();
    options
        .name(format!("tickwire-{:016x}", shared.origin))
        // Our own quotes never come back to us.
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(move |attempts| backoff(attempts, max_delay))
        .event_callback(move |event| {
            let tx = state_tx.clone();
            let shared = shared.clone();
            async move {
                // Marked down here, at once, even while the event loop
                // is busy: /healthz and the router's publish gate see it.
                if matches!(event, Event::Disconnected | Event::Closed) {
                    mark_down(&shared);
                }
                let _ = tx.send(event);
            }
        })
        .connect(urls.as_slice())
        .await
        .map_err(|e| format!("cluster.nats_url: {e}"))
}

pub fn mark_down(shared: &Shared) {
    if shared.metrics.cluster.up.swap(false, Relaxed) {
        metrics::add(&shared.metrics.cluster.disconnects, 1);
        tracing::warn!("cluster link down; serving local producers only, reconnecting");
    }
}

/// Reconnect pause: doubling from 50 ms up to `max`, with ±25% jitter so a
/// fleet of brokers does not reconnect in step after a NATS restart.
fn backoff(attempts: usize, max: Duration) -> Duration {
    let exp = 50u64.saturating_mul(1u64 << attempts.min(16));
    let base = Duration::from_millis(exp).min(max);
    let jitter = crate::epoch::random_u64() % 501; // 0..=500 ‰ of a half
    base.mul_f64(0.75 + jitter as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let max = Duration::from_secs(5);
        for attempts in 0..40 {
            let d = backoff(attempts, max);
            let base = Duration::from_millis(50u64 << attempts.min(16)).min(max);
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{attempts}: {d:?}"
            );
        }
    }
}
