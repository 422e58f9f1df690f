//! What a receiving thread measured: histograms, counters, error counts.

use hdrhistogram::Histogram;

use crate::gaps::GapCounts;

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ErrorCounts {
    /// TCP connect failed or timed out.
    pub connect: u64,
    /// WebSocket upgrade refused, malformed or timed out.
    pub handshake: u64,
    /// No `subscribed` ack before the connect deadline.
    pub subscribe: u64,
    /// `{"type":"error"}` replies from the broker.
    pub server_error: u64,
    /// EOF, reset or close frame from the broker during the run.
    pub unexpected_close: u64,
    /// WebSocket protocol violations and unparseable quotes.
    pub protocol: u64,
    /// Quotes for topics this subscriber did not subscribe to.
    pub unexpected_topic: u64,
    /// Publisher connect/write failures.
    pub publisher: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.handshake += o.handshake;
        self.subscribe += o.subscribe;
        self.server_error += o.server_error;
        self.unexpected_close += o.unexpected_close;
        self.protocol += o.protocol;
        self.unexpected_topic += o.unexpected_topic;
        self.publisher += o.publisher;
    }

    pub fn total(&self) -> u64 {
        self.connect
            + self.handshake
            + self.subscribe
            + self.server_error
            + self.unexpected_close
            + self.protocol
            + self.unexpected_topic
            + self.publisher
    }
}

/// Latency histogram in microseconds: 1 µs .. 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one receiving thread measured for the subscribers of one `--ws`
/// address (kept only with more than one address).
pub struct WsResult {
    /// Same as `RecvResult::latency`, restricted to this address.
    pub latency: Histogram<u64>,
    /// Subscribers that subscribed through this address (slow ones included).
    pub subscribed: usize,
}

impl WsResult {
    pub fn new() -> WsResult {
        WsResult {
            latency: new_histogram(),
            subscribed: 0,
        }
    }

    /// Adds another thread's figures for the same address.
    pub fn add(&mut self, o: &WsResult) {
        let _ = self.latency.add(&o.latency);
        self.subscribed += o.subscribed;
    }
}

impl Default for WsResult {
    fn default() -> Self {
        WsResult::new()
    }
}

/// What one receiving thread measured.
pub struct RecvResult {
    pub latency: Histogram<u64>,
    /// Indexed like `RecvConfig::ws`; empty with a single address.
    pub latency_by_ws: Vec<WsResult>,
    pub connect: Histogram<u64>,
    pub subscribe_ack: Histogram<u64>,
    pub deliveries: u64,
    /// Quotes whose `ts` was in the future (clock skew); recorded as 1 µs.
    pub negative_latency: u64,
    pub gaps: GapCounts,
    pub errors: ErrorCounts,
    pub subscribed: usize,
    pub slow: usize,
    /// CPU used by this thread during the measurement phase / its wall time.
    pub busy_share: f64,
    /// Wall-clock ns of the last quote received (0 = none).
    pub last_delivery_ns: u64,
    /// Bytes read from the subscriber sockets after their 101 responses:
    /// WebSocket frames as they came (headers included, compressed with
    /// permessage-deflate), acks included. With `--tls`, counted after
    /// decryption (the WebSocket bytes, not the TLS records).
    pub wire_bytes: u64,
    /// Connections whose 101 response accepted permessage-deflate.
    pub deflate_negotiated: usize,
    /// `authed` replies received (with `RecvConfig::auth`: first tokens
    /// and refreshes).
    pub authed: u64,
    /// Token refreshes sent (`auth` on a connection already streaming).
    pub auth_refreshes: u64,
    /// TLS 1.3 KeyUpdates sent on streaming connections, each asking the
    /// broker to update its keys too (`TlsClient::key_update_every`).
    pub tls_key_updates: u64,
}
