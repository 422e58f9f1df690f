//! Where a connection's quotes go: its outbound queue, on its wire (SSE
//! events prepared first, catch-up quotes that must go full marked so),
//! counting what conflation replaced; and the catch-up slices the router
//! sends.

use std::time::Instant;

use super::outbound::{Outbound, Pushed};
use super::Effects;
use crate::encodings::Wire;
use crate::messages::{Format, LocalQuote};

/// A slice of a subscribe's catch-up: its first `replayed` quotes are a
/// resume's replay, the rest snapshots and rewinds (a topic's run of
/// quotes oldest first).
pub struct CatchUpSlice {
    pub quotes: Vec<LocalQuote>,
    pub replayed: usize,
}

/// Snapshots and rewinds only (no replay).
impl From<Vec<LocalQuote>> for CatchUpSlice {
    fn from(quotes: Vec<LocalQuote>) -> Self {
        CatchUpSlice {
            quotes,
            replayed: 0,
        }
    }
}

impl FromIterator<LocalQuote> for CatchUpSlice {
    fn from_iter<I: IntoIterator<Item = LocalQuote>>(iter: I) -> Self {
        CatchUpSlice::from(iter.into_iter().collect::<Vec<_>>())
    }
}

/// Where quotes go: the connection's outbound queue, on its wire.
pub(super) struct QuoteSink<'a> {
    pub out: &'a mut Outbound,
    pub wire: Wire,
    pub now: Instant,
    pub fx: &'a mut Effects,
    /// SSE: writes a quote's event `id:` for its accept count.
    pub ids: &'a dyn Fn(u64, &mut Vec<u8>),
    /// SSE: the stream is still catching up; its live quotes go without
    /// `id:` too (an id must only name a point the stream is complete to).
    pub catching_up: bool,
}

impl QuoteSink<'_> {
    pub(super) fn push(&mut self, quote: LocalQuote) {
        let mut wire = self.wire;
        if wire.format == Format::Sse && self.catching_up {
            wire.format = Format::SseBare;
        }
        quote.prepare_sse(wire, self.ids);
        let pushed = self.out.push_quote(quote, wire, self.now);
        self.count(pushed);
    }

    /// A catch-up quote (snapshot, replay, rewind): on SSE without `id:`;
    /// `full`: never as a delta.
    pub(super) fn push_snapshot(&mut self, quote: LocalQuote, full: bool) {
        let mut wire = self.wire;
        if wire.format == Format::Sse {
            wire.format = Format::SseBare;
        }
        wire.delta &= !full;
        quote.prepare_sse(wire, self.ids);
        let pushed = self.out.push_snapshot(quote, wire, self.now);
        self.count(pushed);
    }

    fn count(&mut self, pushed: Pushed) {
        if let Pushed::Conflated { replaced: true } = pushed {
            self.fx.conflated += 1;
        }
    }
}
