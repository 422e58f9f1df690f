//! What the threads send each other, and what ingest hands the router on
//! its own thread (decoded quotes, `IngestBatch`). Worker → router: interest and subscribe commands. Router → worker: shared
//! encoded quotes and subscription activations (on one channel, so a worker
//! sees them in the router's order).

use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::{Quote, Selector};

use crate::encodings::LazyEncodings;

/// A quote as the router accepted it: numbered and encoded once per wire
/// format, as complete WebSocket frames. Every subscriber's outbound queue
/// holds an `Arc` to these same bytes.
#[derive(Debug)]
pub struct SharedQuote {
    pub topic: Arc<str>,
    /// The quote's `seq` in its topic: what history and resume compare.
    pub seq: u64,
    /// The router's accept count at this quote: its place in the broker's
    /// one order of quotes (an SSE stream's `Last-Event-ID` resumes from it).
    pub accepted: u64,
    pub json_frame: Box<[u8]>,
    pub binary_frame: Box<[u8]>,
    /// The fields (bit i: field i, in wire order) that differ from the
    /// quote of `seq - 1`, when the router had that quote; `None` when it
    /// did not: such a quote always goes full.
    pub changed: Option<u8>,
    /// Deltas, compressed frames and SSE events of this quote, each made
    /// once when first needed (see [`crate::encodings`]).
    pub lazy: LazyEncodings,
    /// When ingest decoded the frame that carried this quote: the start of
    /// the delivery latency.
    pub decoded_at: Instant,
}

#[cfg(test)]
impl SharedQuote {
    /// A stand-in with empty frames, for tests that look at its topic and
    /// numbers only.
    pub(crate) fn for_test(topic: &str, seq: u64) -> SharedQuote {
        SharedQuote {
            topic: topic.into(),
            seq,
            accepted: seq,
            json_frame: Box::default(),
            binary_frame: Box::default(),
            changed: None,
            lazy: LazyEncodings::default(),
            decoded_at: Instant::now(),
        }
    }

    /// The router's own encoding of [`sample_quote`] numbered `seq`, for
    /// tests whose client reads the frames.
    pub(crate) fn encoded_for_test(topic: &str, seq: u64) -> SharedQuote {
        let quote = sample_quote(topic);
        let order = (seq, seq);
        let scratch = &mut Vec::new();
        crate::router::encode::encode(&quote, topic.into(), order, Instant::now(), None, scratch)
    }
}

/// A quote with fixed prices, for tests.
#[cfg(test)]
pub(crate) fn sample_quote(topic: &str) -> Quote {
    Quote {
        topic: topic.into(),
        bid: 1.0,
        ask: 2.0,
        bid_size: 3.0,
        ask_size: 4.0,
        last: 1.5,
        volume: 5.0,
        ts: 6,
    }
}

/// A worker's handle on a shared quote, cloned once per delivery. Its count
/// is the worker's own (an `Rc` around the router's `Arc`, made once per
/// quote per worker): cloning the `Arc` per delivery would be an atomic
/// write to a cache line every worker writes, and that alone held two
/// workers to less than one worker's deliveries/s (`benches/fanout_threads`).
///
/// A snapshot is the exception: the router clones the `Arc` for the one
/// connection that asked, which delivers it once. Its handle is that `Arc`
/// itself ([`LocalQuote::single`]): an `Rc` around it would be an
/// allocation per snapshot (ten per subscriber in a reconnect storm)
/// bought for counts nobody makes.
#[derive(Clone)]
pub struct LocalQuote(Handle);

// The extra allocation of `Fanned` is the point: one per quote per worker
// buys a count no other thread touches.
#[allow(clippy::redundant_allocation)]
#[derive(Clone)]
enum Handle {
    Fanned(Rc<Arc<SharedQuote>>),
    Single(Arc<SharedQuote>),
}

impl LocalQuote {
    /// A handle for one connection's single delivery (a snapshot, a
    /// replay): no worker-local count.
    pub fn single(quote: Arc<SharedQuote>) -> LocalQuote {
        LocalQuote(Handle::Single(quote))
    }
}

impl From<Arc<SharedQuote>> for LocalQuote {
    fn from(quote: Arc<SharedQuote>) -> Self {
        LocalQuote(Handle::Fanned(Rc::new(quote)))
    }
}

impl From<SharedQuote> for LocalQuote {
    fn from(quote: SharedQuote) -> Self {
        LocalQuote::from(Arc::new(quote))
    }
}

impl Deref for LocalQuote {
    type Target = SharedQuote;

    fn deref(&self) -> &SharedQuote {
        match &self.0 {
            Handle::Fanned(quote) => quote,
            Handle::Single(quote) => quote,
        }
    }
}

impl std::fmt::Debug for LocalQuote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Subscriber wire format, chosen by `?format=` at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Binary,
    /// `/sse`: a `quote` event with its `id:` line.
    Sse,
    /// `/sse` while the stream catches up (snapshot, replay, rewind): the
    /// event without `id:`, so a browser's `Last-Event-ID` only ever
    /// names a point before which the stream has everything.
    SseBare,
}

/// Identifies one connection of one worker: slot index plus a serial, so a
/// late router reply for a closed connection never reaches a new one that
/// reused the slot. The serial is the worker's connection count, wrapping
/// at 2^32 (a u32 fits in the worker's per-connection slot beside a flag):
/// a reply would have to outlive four billion connections of that worker
/// and land on the very slot to be misdirected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId {
    pub slot: usize,
    pub serial: u32,
}

pub struct IngestBatch {
    pub quotes: Vec<Quote>,
    pub decoded_at: Instant,
}

/// What a subscribe wants before its live quotes (v1: the snapshot; v1.2:
/// a resume of some topics from the client's `seq`, or a rewind).
#[derive(Debug, Clone, PartialEq)]
pub struct CatchUp {
    /// Send each topic's newest quote (the v1 snapshot).
    pub snapshot: bool,
    /// Send up to this many recent quotes per topic instead (0: none).
    pub rewind: u16,
    /// Topics to resume after the client's `seq` (`since.seqs`).
    pub resume: Vec<Resume>,
    /// SSE `Last-Event-ID`: resume every topic of the request from this
    /// broker's accept count (each topic's position is where its history
    /// stands at that count); `newest_only` as for [`Resume`].
    pub resume_from: Option<ResumeFrom>,
    /// Whether `since.epoch` is the broker's (the session checks it);
    /// otherwise every topic of `resume` is unrecovered.
    pub epoch_matches: bool,
    /// Frame bytes one slice of a replay or rewind may hold (half the
    /// connection's outbound budget): such a catch-up is paced, each next
    /// slice waiting for the connection's [`RouterCmd::CatchUpCredit`], so
    /// a client that reads gets every replayed quote, none conflated.
    /// 0: not paced.
    pub window: usize,
}

/// Where an SSE stream resumes: every quote accepted after `accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeFrom {
    pub accepted: u64,
    pub newest_only: bool,
}

/// One topic of a `since`: the quotes after `after`, or with
/// `newest_only` (its deciding entry has `max_hz`) only the newest one.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub topic: Arc<str>,
    pub after: u64,
    pub newest_only: bool,
}

impl CatchUp {
    /// The v1 catch-up: the snapshot or nothing.
    pub fn snapshot(snapshot: bool) -> CatchUp {
        CatchUp {
            snapshot,
            rewind: 0,
            resume: Vec::new(),
            resume_from: None,
            epoch_matches: true,
            window: 0,
        }
    }

    /// Whether the router sends any quote before the live ones.
    pub fn sends_quotes(&self) -> bool {
        self.snapshot || !self.resume.is_empty() || self.resume_from.is_some()
    }

    /// Whether the router answers which topics it recovered.
    pub fn resumes(&self) -> bool {
        !self.resume.is_empty() || self.resume_from.is_some()
    }

    /// The v1 catch-up, snapshot or not: no resume, no rewind.
    pub fn is_plain(&self) -> bool {
        self.rewind == 0 && !self.resumes()
    }
}

pub enum RouterCmd {
    /// A connection subscribed to `selectors`. `interest_add` lists those this
    /// worker had no subscriber for until now. The router replies `Activate`.
    Subscribe {
        worker: usize,
        conn: ConnId,
        request: u32,
        selectors: Vec<Selector>,
        catch_up: CatchUp,
        interest_add: Vec<Selector>,
        /// Set for a plain snapshot (see [`CatchUp::is_plain`]), whose
        /// activation the worker keeps as its newest values of the topics
        /// it follows: the worker's number of this subscribe, handed back
        /// in `Activate` (see `worker::following`).
        seed: Option<u64>,
    },
    /// Connection `conn` went away while its snapshot was being sent in
    /// slices: stop collecting it.
    CancelSnapshots { worker: usize, conn: ConnId },
    /// Connection `conn` has room for the next slice of its catch-up (its
    /// queue drained to half its budget since the last slice).
    CatchUpCredit { worker: usize, conn: ConnId },
    /// This worker no longer has any subscriber for these selectors.
    DropInterest {
        worker: usize,
        selectors: Vec<Selector>,
    },
    /// The commands of one worker turn, in order: one message and one wake
    /// of the router instead of one each (on a shared core, each wake was a
    /// switch to the router and back per subscribe in a reconnect storm).
    /// Never nested.
    Batch(Vec<RouterCmd>),
}

pub enum WorkerMsg {
    Quotes {
        quotes: Vec<Arc<SharedQuote>>,
        sent_at: Instant,
    },
    /// The router has processed a subscribe: quotes sent after this message
    /// are newer than `snapshots`, so the worker activates the entries now.
    /// `selectors` are the request's own, handed back so the connection
    /// knows exactly which entries the request named. A large snapshot
    /// comes in slices: `more` says `Snapshots` messages follow.
    Activate {
        conn: ConnId,
        request: u32,
        selectors: Vec<Selector>,
        snapshots: Vec<Arc<SharedQuote>>,
        /// The first `replayed` of `snapshots` are a resume's replay (field
        /// deltas may follow in it); the rest are snapshots and rewinds,
        /// each topic's run oldest first (its first quote goes full).
        replayed: usize,
        more: bool,
        /// For a request whose `since` reached the router: the topics of
        /// its `seqs` that were not recovered (they got the snapshot).
        unrecovered: Option<Vec<Arc<str>>>,
        /// The subscribe's `seed`, handed back.
        seed: Option<u64>,
    },
    /// The next slice of an activation's snapshot, collected later and
    /// interleaved with live quotes. It leaves out every topic that had a
    /// quote since the activation: the worker already got that newer quote
    /// for the connection, which then stands as the topic's snapshot.
    Snapshots {
        conn: ConnId,
        request: u32,
        quotes: Vec<Arc<SharedQuote>>,
        /// As in `Activate`.
        replayed: usize,
        more: bool,
    },
}
