//! One connection's outbound queue.
//!
//! Quotes are queued as `Arc`s to the router's encoded frames, never copied
//! into the queue, and flushed many frames per write (the worker's writer
//! copies one call's frames into one contiguous `send`). Control frames
//! (pong, ping, close, HTTP responses) have their own lane that is written
//! before any queued data at the next frame boundary, so they are never
//! delayed behind quotes. Buffers are released once drained (large ones at
//! once, the rest on the idle tick) so an idle connection holds no queue
//! memory.
//!
//! Quotes respect a strict byte budget. A quote that does not fit switches
//! the queue to conflated delivery: each topic gets one slot holding its
//! newest pending quote (an `Arc`, so the memory is bounded by the number of
//! topics, whatever the feed rate). Slots move into the queue, oldest topic
//! first, as the socket accepts bytes; when they are empty, delivery is in
//! order again. An older quote of a topic is always in the queue ahead of
//! its slot, so nothing stale follows something newer.

use std::collections::VecDeque;
use std::time::Instant;

use crate::encodings::Wire;
use crate::messages::LocalQuote;
use last_sent::LastSent;
use slots::Slots;

/// Frames laid out for one write call: under load a subscriber gets ~20
/// frames a turn, and the copy of 64 small frames costs less than the
/// kernel's per-call work (docs/performance.md).
pub const MAX_FRAMES: usize = 64;

/// Queues that grew past this many frames are released, not kept, when
/// drained (the rest wait for the idle tick). 64, not 16: a subscriber of a
/// busy feed gets ~20 frames a turn, and a queue freed after every flush was
/// regrown by doubling the next turn (~3% of a saturated worker in malloc).
const KEEP_CAPACITY: usize = 64;

/// What `push_quote` did with a quote.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued in order.
    Queued,
    /// Kept in its topic's slot; `replaced` when it overwrote an older quote
    /// that will now never be sent.
    Conflated { replaced: bool },
}

pub struct Outbound {
    /// The frame at the front of the line and how much of it is written:
    /// one a previous write stopped in the middle of (it must be finished
    /// before anything else goes out), or an unstarted one queued onto an
    /// empty outbound, so the common case of one frame per loop turn (and a
    /// new connection's handshake and ack) needs no queue buffer at all.
    head: Option<(OutFrame, usize)>,
    /// The control lane; boxed and allocated only while two or more
    /// control frames wait (or one waits behind data): rare, and every idle
    /// connection pays for the inline size.
    #[allow(clippy::box_collection)]
    priority: Option<Box<VecDeque<Box<[u8]>>>>,
    data: VecDeque<OutFrame>,
    queued_bytes: usize,
    /// u32, beside `budget`: one word for both (every idle connection pays
    /// for the inline size); the control lane holds far less than 4 GiB.
    priority_bytes: u32,
    /// Bytes of replies (acks, errors) in the data lane, not yet started.
    reply_bytes: usize,
    /// Quote bytes the queue may hold (control frames and replies aside).
    budget: u32,
    /// Allocated only while conflating: idle and keeping-up connections pay
    /// one pointer for it.
    slots: Option<Box<Slots>>,
    /// Field deltas (`delta=1` connections only): the last seq per topic
    /// that entered the ordered lane.
    last_sent: Option<Box<LastSent>>,
}

impl Default for Outbound {
    /// No budget: everything is queued in order.
    fn default() -> Self {
        Outbound::new(usize::MAX)
    }
}

impl Outbound {
    pub fn new(budget: usize) -> Outbound {
        Outbound {
            head: None,
            priority: None,
            data: VecDeque::new(),
            queued_bytes: 0,
            priority_bytes: 0,
            reply_bytes: 0,
            budget: u32::try_from(budget).unwrap_or(u32::MAX),
            slots: None,
            last_sent: None,
        }
    }

    /// Delta mode: quote frames that may go as deltas do so when they
    /// follow the last quote of their topic this queue let through.
    pub fn track_deltas(&mut self) {
        self.last_sent.get_or_insert_with(Box::default);
    }

    /// Topics whose last seq the queue remembers for deltas.
    pub fn delta_topics(&self) -> usize {
        self.last_sent.as_ref().map_or(0, |l| l.len())
    }

    /// Queues a live quote if it fits the budget and nothing is conflated;
    /// otherwise keeps it as its topic's newest pending quote.
    pub fn push_quote(&mut self, quote: LocalQuote, wire: Wire, now: Instant) -> Pushed {
        self.push_shared(OutFrame::Quote(quote, wire), now)
    }

    /// Queues a snapshot like a live quote (it conflates with its topic's
    /// live quotes alike).
    pub fn push_snapshot(&mut self, quote: LocalQuote, wire: Wire, now: Instant) -> Pushed {
        self.push_shared(OutFrame::Snapshot(quote, wire), now)
    }

    fn push_shared(&mut self, frame: OutFrame, now: Instant) -> Pushed {
        let frame = if self.slots.is_none() {
            match self.try_enter(frame, false) {
                Ok(()) => return Pushed::Queued,
                Err(frame) => frame,
            }
        } else {
            frame
        };
        let Some(topic) = frame.shared().map(|q| q.topic.clone()) else {
            self.push_data(frame);
            return Pushed::Queued;
        };
        let slots = self.slots.get_or_insert_with(|| Box::new(Slots::new(now)));
        let replaced = slots.put(topic, frame);
        Pushed::Conflated { replaced }
    }

    /// True while quotes are being conflated (the reader is behind).
    pub fn is_conflating(&self) -> bool {
        self.slots.is_some()
    }

    /// Since when quotes have been conflated, if they are.
    pub fn conflating_since(&self) -> Option<Instant> {
        self.slots.as_ref().map(|s| s.since)
    }

    /// True when nothing at all waits to be written.
    pub fn is_empty(&self) -> bool {
        self.queued_bytes == 0 && self.slots.is_none()
    }

    /// Moves conflated quotes into the queue while they fit the budget;
    /// back to ordered delivery once the slots are empty.
    fn refill(&mut self) {
        let Some(mut slots) = self.slots.take() else {
            return;
        };
        while let Some((topic, frame)) = slots.take_oldest() {
            // Onto an empty queue it goes, whatever its size.
            if let Err(frame) = self.try_enter(frame, self.queued_bytes == 0) {
                slots.put_back(topic, frame);
                self.slots = Some(slots);
                return;
            }
        }
    }

    /// Puts a frame in the ordered lane if it fits the budget (or `force`).
    /// On a delta connection this decides whether a quote goes as a delta,
    /// in one lookup: decided, sized, noted. A frame that does not fit is
    /// handed back undecided (a conflated quote is decided when it leaves
    /// its slot).
    fn try_enter(&mut self, frame: OutFrame, force: bool) -> Result<(), OutFrame> {
        let (queued, budget) = (self.queued_bytes, self.budget());
        let fits = |len: usize| force || queued + len <= budget;
        let frame = match (&mut self.last_sent, &frame) {
            (Some(last), OutFrame::Quote(q, wire) | OutFrame::Snapshot(q, wire)) => {
                match last.admit(q, *wire, |w| fits(q.frame(w).len())) {
                    Some(decided) => frame.on_wire(decided),
                    None => return Err(frame),
                }
            }
            _ if fits(frame.bytes().len()) => frame,
            _ => return Err(frame),
        };
        self.push_data(frame);
        Ok(())
    }

    pub fn push_priority(&mut self, frame: Vec<u8>) {
        self.queued_bytes += frame.len();
        self.priority_bytes = self.priority_bytes.saturating_add(len32(frame.len()));
        // An unstarted data frame in the head slot goes back to its lane:
        // control frames overtake data.
        if matches!(&self.head, Some((f, 0)) if !matches!(f, OutFrame::Control(_))) {
            if let Some((f, _)) = self.head.take() {
                self.data.push_front(f);
            }
        }
        if self.head.is_none() && self.priority.is_none() && self.data.is_empty() {
            self.head = Some((OutFrame::Control(frame.into_boxed_slice()), 0));
        } else {
            self.priority
                .get_or_insert_with(Box::default)
                .push_back(frame.into_boxed_slice());
        }
    }

    /// Room in the ordered lane for `frames` more (a snapshot slice's
    /// quotes), made at once rather than by doubling as they come.
    pub fn reserve_data(&mut self, frames: usize) {
        self.data.reserve(frames);
    }

    pub fn push_data(&mut self, frame: OutFrame) {
        debug_assert!(
            !matches!(frame, OutFrame::Control(_)),
            "control frames go through push_priority"
        );
        let len = frame.bytes().len();
        self.queued_bytes += len;
        if let OutFrame::Owned(_) = frame {
            self.reply_bytes += len;
        }
        if self.head.is_none() && self.priority.is_none() && self.data.is_empty() {
            self.head = Some((frame, 0));
        } else {
            self.data.push_back(frame);
        }
    }

    /// Takes an unstarted data frame out of the head slot (to drop it or
    /// filter it like the queued ones); a started or control frame stays.
    fn take_unstarted_data(&mut self) -> Option<OutFrame> {
        match &self.head {
            Some((OutFrame::Control(_), _)) | Some((_, 1..)) | None => None,
            Some((_, 0)) => self.head.take().map(|(f, _)| f),
        }
    }

    /// Reply bytes (acks, errors) queued and not yet being written.
    pub fn reply_bytes(&self) -> usize {
        self.reply_bytes
    }

    /// Bytes queued and not yet accepted by the socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Control-lane bytes waiting; a peer that makes us queue many pongs
    /// without reading them is not read from until they drain.
    pub fn priority_bytes(&self) -> usize {
        self.priority_bytes as usize
    }

    /// Quote bytes the queue may hold.
    fn budget(&self) -> usize {
        self.budget as usize
    }

    /// Drops queued data frames (not the partly written one, not control
    /// frames), e.g. before a close frame.
    pub fn clear_data(&mut self) {
        let unstarted = self.take_unstarted_data();
        let dropped: usize = unstarted
            .iter()
            .chain(self.data.iter())
            .map(|f| f.bytes().len())
            .sum();
        self.queued_bytes -= dropped;
        self.reply_bytes = 0;
        self.data = VecDeque::new();
        self.slots = None;
    }

    /// Keeps only the queued quotes for which `keep(topic)` holds.
    pub fn retain_quotes(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut dropped = 0;
        let mut kept = |f: &OutFrame| match f {
            OutFrame::Quote(q, wire) | OutFrame::Snapshot(q, wire) if !keep(&q.topic) => {
                dropped += q.frame(*wire).len();
                false
            }
            _ => true,
        };
        if let Some(frame) = self.take_unstarted_data() {
            if kept(&frame) {
                self.head = Some((frame, 0));
            }
        }
        self.data.retain(|f| kept(f));
        self.queued_bytes -= dropped;
        if let Some(last) = self.last_sent.as_mut() {
            // The client will not get those quotes: its next one of such
            // a topic (after a re-subscribe) must be full.
            last.retain(&mut keep);
        }
        if let Some(slots) = self.slots.as_mut() {
            if slots.retain(keep) {
                self.slots = None;
            }
        }
    }

    /// Copies the next bytes to write into `buf` (cleared first): the
    /// rest of a started frame, then control frames, then data, at most
    /// [`MAX_FRAMES`] frames and `max` bytes (the last frame may be cut:
    /// the caller treats that like a short write). Moves conflated quotes
    /// into the queue first, and gives idle memory back when nothing is
    /// left. Nothing is consumed until [`Outbound::advance`].
    pub fn transmit(&mut self, buf: &mut Vec<u8>, max: usize) -> usize {
        buf.clear();
        self.refill();
        if self.queued_bytes == 0 {
            self.release();
            return 0;
        }
        let started = self
            .head
            .iter()
            .map(|(frame, offset)| frame.bytes().get(*offset..).unwrap_or_default());
        let control = self.priority.iter().flat_map(|p| p.iter()).map(|c| &c[..]);
        let data = self.data.iter().map(OutFrame::bytes);
        for bytes in started.chain(control).chain(data).take(MAX_FRAMES) {
            let room = max.saturating_sub(buf.len());
            if room == 0 {
                break;
            }
            buf.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
        }
        buf.len()
    }

    /// Consumes `k` written bytes in the order `transmit` laid them out,
    /// calling `on_sent` for each frame now written in full.
    pub fn advance(&mut self, mut k: usize, on_sent: &mut impl FnMut(&OutFrame)) {
        self.queued_bytes -= k;
        while k > 0 {
            let Some((frame, offset)) = self.head.take().or_else(|| self.next_frame()) else {
                debug_assert!(false, "advance past queued bytes");
                return;
            };
            if offset == 0 {
                // Started now: no longer waiting in its lane.
                match &frame {
                    OutFrame::Control(c) => {
                        self.priority_bytes = self.priority_bytes.saturating_sub(len32(c.len()))
                    }
                    OutFrame::Owned(reply) => self.reply_bytes -= reply.len(),
                    _ => {}
                }
            }
            let left = frame.bytes().len() - offset;
            if k < left {
                self.head = Some((frame, offset + k));
                return;
            }
            k -= left;
            on_sent(&frame);
        }
    }

    /// The next frame from the lanes, control first.
    fn next_frame(&mut self) -> Option<(OutFrame, usize)> {
        let frame = match self.priority.as_mut().and_then(|p| p.pop_front()) {
            Some(control) => OutFrame::Control(control),
            None => self.data.pop_front()?,
        };
        Some((frame, 0))
    }

    /// True when nothing waits but the queues still hold memory that
    /// [`Outbound::free_buffers`] would give back.
    pub fn buffers_to_free(&self) -> bool {
        self.is_empty() && (self.priority.is_some() || self.data.capacity() > 0)
    }

    /// Gives the queues' memory back when nothing waits: called on the
    /// periodic tick, so an idle connection holds no queue buffer while a
    /// busy one keeps reusing its own between ticks.
    pub fn free_buffers(&mut self) {
        if self.is_empty() {
            self.priority = None;
            self.data = VecDeque::new();
        }
    }

    fn release(&mut self) {
        if self.priority.as_ref().is_some_and(|p| p.is_empty()) {
            self.priority = None;
        }
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = VecDeque::new();
        }
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

mod frame;
mod last_sent;
mod slots;

pub use frame::OutFrame;
#[cfg(test)]
pub mod tests;
