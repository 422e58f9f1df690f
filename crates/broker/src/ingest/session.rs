//! One producer connection as a state machine without I/O, in the manner of
//! quinn-proto's `Connection` and the subscriber side's `session::Connection`:
//! the ingest shell on the router's thread feeds it the bytes it read and the time,
//! and it answers with an [`Outcome`] — the quotes to forward as one batch,
//! whether the producer just got admitted, and the reason to close it — plus
//! its admission deadline ([`ProducerSession::poll_timeout`]).
//!
//! It owns the producer protocol: the admission deadline (a secure-transport
//! handshake, then `Hello` with a valid token when tokens are configured),
//! `Hello` only as the first frame, topic grants, framing and decoding. It
//! never sees a socket, a channel, a clock or a metric, so every rule is
//! unit-tested with injected time (`session/tests.rs`, `session/props.rs`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_protocol::ingest::{decode_frame, IngestError, IngestFrame};
use tickwire_protocol::Quote;

use super::access::{Grants, ProducerAuth};
use crate::config::IngestConfig;
use crate::metrics::RejectReason;

/// The length prefix of a frame (`u32` little-endian), as in
/// `tickwire_protocol::ingest`, which keeps its own constant private.
const PREFIX_LEN: usize = 4;
/// A partial-frame buffer at most this large is kept once its frame is
/// complete: a producer streaming small frames ends most reads mid-frame and
/// would otherwise allocate on every read. A larger one (a big batch) is
/// freed so an idle producer does not hold it.
const KEEP_CAPACITY: usize = 4 * 1024;

/// What every producer session obeys, resolved once at start and shared.
pub struct Rules {
    pub auth: ProducerAuth,
    /// Largest frame payload; a prefix announcing more closes the producer.
    pub max_frame_bytes: usize,
    /// From accept to admission (handshake done and, with tokens, `Hello`).
    pub handshake_timeout: Duration,
}

impl Rules {
    pub fn from_config(config: &IngestConfig, handshake_timeout: Duration) -> Rules {
        Rules {
            auth: ProducerAuth::from_config(config),
            max_frame_bytes: config.max_frame_bytes,
            handshake_timeout,
        }
    }
}

/// Why a producer is closed: the counter to bump and a line for the log.
/// The token itself never appears in `why`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: RejectReason,
    pub why: Cow<'static, str>,
}

impl Reject {
    fn new(reason: RejectReason, why: impl Into<Cow<'static, str>>) -> Reject {
        Reject {
            reason,
            why: why.into(),
        }
    }
}

/// The answer to one read. The shell forwards `quotes` (one batch, when not
/// empty) *before* closing for `close`: quotes ahead of a bad frame stand.
#[derive(Debug, Default)]
#[must_use]
pub struct Outcome {
    pub quotes: Vec<Quote>,
    /// The producer became admitted during this call.
    pub admitted: bool,
    /// Close the producer and count this; the session takes nothing more.
    pub close: Option<Reject>,
}

pub struct ProducerSession {
    rules: Arc<Rules>,
    /// Accept time plus the handshake timeout.
    deadline: Instant,
    /// The shell's secure transport (TLS) has not finished its handshake.
    transport_pending: bool,
    /// What it may publish; None until a `Hello` with a valid token when
    /// tokens are required.
    grants: Option<Grants>,
    hello_seen: bool,
    quote_seen: bool,
    closed: bool,
    /// The start of a frame that a read ended inside of, and only that: at
    /// most `PREFIX_LEN + max_frame_bytes` bytes, since an oversized prefix
    /// is refused before its payload is buffered.
    buf: Vec<u8>,
}

impl ProducerSession {
    /// A producer accepted at `now`; `transport_pending` when it must first
    /// finish a TLS handshake (reported with [`Self::on_transport_ready`]).
    pub fn new(rules: Arc<Rules>, now: Instant, transport_pending: bool) -> ProducerSession {
        let grants = (!rules.auth.required()).then_some(Grants::All);
        ProducerSession {
            deadline: now + rules.handshake_timeout,
            rules,
            transport_pending,
            grants,
            hello_seen: false,
            quote_seen: false,
            closed: false,
            buf: Vec::new(),
        }
    }

    /// Past the transport handshake (if any) and authorized (if tokens are
    /// set): from here on it has no deadline.
    pub fn admitted(&self) -> bool {
        self.grants.is_some() && !self.transport_pending
    }

    /// Still waiting for the transport handshake.
    pub fn transport_pending(&self) -> bool {
        self.transport_pending
    }

    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes of a partial frame held between reads.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// When [`Self::handle_timeout`] must be called: the admission deadline
    /// while not admitted; None once admitted or closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.closed && !self.admitted()).then_some(self.deadline)
    }

    /// The transport finished its handshake. True if that admits the
    /// producer (no token required).
    pub fn on_transport_ready(&mut self) -> bool {
        let was = self.admitted();
        self.transport_pending = false;
        !was && self.admitted()
    }

    /// Closes a producer not admitted by its deadline: one that connects
    /// and stalls must not hold a producer slot. The reason tells which
    /// step it did not finish.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Reject> {
        if self.poll_timeout().is_some_and(|d| now >= d) {
            self.closed = true;
            let reason = if self.transport_pending {
                RejectReason::Tls
            } else {
                RejectReason::Unauthorized
            };
            return Some(Reject::new(
                reason,
                "not admitted within the handshake timeout",
            ));
        }
        None
    }

    /// Bytes read from the producer at `now`. Whole frames are decoded
    /// straight from `data`; only a frame the read ended inside of is copied,
    /// to be completed by the next reads.
    pub fn on_bytes(&mut self, data: &[u8], now: Instant) -> Outcome {
        let mut out = Outcome::default();
        if self.closed {
            return out;
        }
        // The deadline holds even if the shell reads before it sweeps.
        if let Some(reject) = self.handle_timeout(now) {
            out.close = Some(reject);
            return out;
        }
        let was_admitted = self.admitted();
        let result = self.decode(data, &mut out.quotes);
        out.admitted = !was_admitted && self.admitted();
        if let Err(reject) = result {
            self.closed = true;
            // Nothing more will be read: free the partial frame now.
            self.buf = Vec::new();
            out.close = Some(reject);
        }
        out
    }

    fn decode(&mut self, mut data: &[u8], quotes: &mut Vec<Quote>) -> Result<(), Reject> {
        if !self.buf.is_empty() {
            match self.complete_buffered(data, quotes)? {
                Some(rest) => data = rest,
                // Every byte went into the partial frame, still incomplete.
                None => return Ok(()),
            }
        }
        let max = self.rules.max_frame_bytes;
        let mut offset = 0;
        loop {
            let input = data.get(offset..).unwrap_or_default();
            match decode_frame(input, max).map_err(frame_error)? {
                Some((frame, used)) => {
                    offset += used;
                    self.accept_frame(frame, quotes)?;
                }
                None => {
                    // An incomplete frame: its length, if known, is at most
                    // `max` (decode_frame refused a larger prefix).
                    self.append(input, frame_len(input));
                    return Ok(());
                }
            }
        }
    }

    /// Tops the buffered partial frame up from `data`, taking only the bytes
    /// that frame still lacks. When it completes, it is decoded and the rest
    /// of `data` is returned for decoding in place; None when `data` ran out
    /// first.
    fn complete_buffered<'a>(
        &mut self,
        mut data: &'a [u8],
        quotes: &mut Vec<Quote>,
    ) -> Result<Option<&'a [u8]>, Reject> {
        let max = self.rules.max_frame_bytes;
        loop {
            // The prefix first; once it is in, the whole frame (checked
            // against `max` by decode_frame before any payload is taken).
            let want = frame_len(&self.buf);
            let take = want.saturating_sub(self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.append(head, want);
            data = rest;
            match decode_frame(&self.buf, max).map_err(frame_error)? {
                Some((frame, _)) => {
                    if self.buf.capacity() > KEEP_CAPACITY {
                        self.buf = Vec::new();
                    } else {
                        self.buf.clear();
                    }
                    self.accept_frame(frame, quotes)?;
                    return Ok(Some(data));
                }
                None if data.is_empty() => return Ok(None),
                // The prefix just completed: go on with the payload.
                None => {}
            }
        }
    }

    /// Appends to the partial frame, growing the buffer geometrically but
    /// never past `frame_len`, so its capacity too stays within one frame.
    fn append(&mut self, bytes: &[u8], frame_len: usize) {
        let need = self.buf.len() + bytes.len();
        if need > self.buf.capacity() {
            let target = (self.buf.capacity() * 2).min(frame_len).max(need);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    fn accept_frame(&mut self, frame: IngestFrame, quotes: &mut Vec<Quote>) -> Result<(), Reject> {
        match frame {
            IngestFrame::Hello { token } => {
                if self.hello_seen || self.quote_seen {
                    return Err(Reject::new(
                        RejectReason::UnexpectedHello,
                        "Hello must be the first frame, once",
                    ));
                }
                self.hello_seen = true;
                if self.rules.auth.required() {
                    match self.rules.auth.check(&token) {
                        Some(grants) => self.grants = Some(grants),
                        None => return Err(Reject::new(RejectReason::Unauthorized, "wrong token")),
                    }
                }
                Ok(())
            }
            IngestFrame::Quote(quote) => {
                self.check_granted(std::slice::from_ref(&quote))?;
                self.quote_seen = true;
                quotes.push(quote);
                Ok(())
            }
            IngestFrame::Batch(batch) => {
                // All or nothing: one quote outside the grants rejects the frame.
                self.check_granted(&batch)?;
                // An empty batch does nothing, so it is not "a quote" before Hello.
                self.quote_seen |= !batch.is_empty();
                quotes.extend(batch);
                Ok(())
            }
        }
    }

    /// The producer said `Hello` with a valid token (when required) and
    /// every quote's topic is within its grants.
    fn check_granted(&self, quotes: &[Quote]) -> Result<(), Reject> {
        let Some(grants) = &self.grants else {
            return Err(Reject::new(
                RejectReason::Unauthorized,
                "Hello with a token required first",
            ));
        };
        match quotes.iter().find(|q| !grants.covers(&q.topic)) {
            Some(q) => Err(Reject::new(
                RejectReason::NotAuthorized,
                format!("topic {:?} is outside this producer's grants", q.topic),
            )),
            None => Ok(()),
        }
    }
}

/// The whole length of the frame starting at `partial`, prefix included,
/// or just the prefix's length while that is incomplete.
fn frame_len(partial: &[u8]) -> usize {
    match partial.first_chunk::<PREFIX_LEN>() {
        Some(prefix) => {
            let len = usize::try_from(u32::from_le_bytes(*prefix)).unwrap_or(usize::MAX);
            PREFIX_LEN.saturating_add(len)
        }
        None => PREFIX_LEN,
    }
}

fn frame_error(e: IngestError) -> Reject {
    let reason = match e {
        IngestError::TooLong { .. } => RejectReason::TooLong,
        IngestError::Decode(_) => RejectReason::Decode,
        IngestError::BadTopic(_) => RejectReason::BadTopic,
    };
    Reject::new(reason, e.to_string())
}

// The tests live in their own files, so `tests::session_names_no_io` can
// check every line of this one.
#[cfg(test)]
mod props;
#[cfg(test)]
pub(super) mod tests;
