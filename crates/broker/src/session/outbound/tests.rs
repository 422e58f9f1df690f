use std::io::{self, Write};

use super::*;
use crate::messages::{Format, SharedQuote};

/// The shell's write loop over [`Outbound::transmit`] and
/// [`Outbound::advance`], for tests with a `Write` as the socket: writes
/// until the queue is empty (`Ok(true)`), the writer would block
/// (`Ok(false)`) or `limit` bytes went out (`Ok(false)`).
pub(crate) trait WriteTo {
    fn write_to<W: Write>(
        &mut self,
        w: &mut W,
        limit: usize,
        written: &mut usize,
        on_sent: &mut impl FnMut(&OutFrame),
    ) -> io::Result<bool>;
}

impl WriteTo for Outbound {
    fn write_to<W: Write>(
        &mut self,
        w: &mut W,
        limit: usize,
        written: &mut usize,
        on_sent: &mut impl FnMut(&OutFrame),
    ) -> io::Result<bool> {
        let mut buf = Vec::new();
        loop {
            let n = self.transmit(&mut buf, usize::MAX);
            if n == 0 {
                return Ok(true);
            }
            if *written >= limit {
                return Ok(false);
            }
            match w.write(&buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => {
                    *written += k;
                    self.advance(k, on_sent);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A writer that accepts at most `cap` bytes per call and `budget` in all.
struct Trickle {
    out: Vec<u8>,
    cap: usize,
    budget: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.cap).min(self.budget);
        self.out.extend_from_slice(&buf[..n]);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn quote(topic: &str, body: &[u8]) -> LocalQuote {
    LocalQuote::from(SharedQuote {
        topic: topic.into(),
        seq: 0,
        accepted: 0,
        json_frame: body.into(),
        binary_frame: body.into(),
        changed: None,
        lazy: Default::default(),
        decoded_at: std::time::Instant::now(),
    })
}

#[test]
fn control_frames_overtake_data_but_never_split_a_frame() {
    let mut out = Outbound::default();
    out.push_data(OutFrame::Quote(
        quote("A", b"aaaa"),
        Wire::plain(Format::Json),
    ));
    out.push_data(OutFrame::Quote(
        quote("B", b"bbbb"),
        Wire::plain(Format::Json),
    ));
    let mut w = Trickle {
        out: Vec::new(),
        cap: 2,
        budget: 2,
    };
    let mut written = 0;
    let mut sent = Vec::new();
    let mut on_sent = |f: &OutFrame| sent.push(f.bytes().to_vec());
    assert!(!out
        .write_to(&mut w, usize::MAX, &mut written, &mut on_sent)
        .unwrap());
    out.push_priority(b"PP".to_vec());
    w.budget = usize::MAX;
    assert!(out
        .write_to(&mut w, usize::MAX, &mut written, &mut on_sent)
        .unwrap());
    assert_eq!(sent, [b"aaaa".to_vec(), b"PP".to_vec(), b"bbbb".to_vec()]);
    // "aa" was in flight: its frame completes, then the pong, then data.
    assert_eq!(w.out, b"aaaaPPbbbb");
    assert_eq!(written, 10);
    assert_eq!(out.queued_bytes(), 0);
}

#[test]
fn retain_and_clear_keep_byte_count_exact() {
    let mut out = Outbound::default();
    out.push_data(OutFrame::Quote(
        quote("A", b"123"),
        Wire::plain(Format::Binary),
    ));
    out.push_data(OutFrame::Quote(
        quote("B", b"45"),
        Wire::plain(Format::Binary),
    ));
    out.push_priority(b"x".to_vec());
    out.retain_quotes(|t| t != "A");
    assert_eq!(out.queued_bytes(), 3);
    out.clear_data();
    assert_eq!(out.queued_bytes(), 1);
    assert_eq!(out.priority_bytes(), 1);
}

fn quote_seq(topic: &str, seq: u8) -> LocalQuote {
    quote(topic, &[seq; 10])
}

#[test]
fn over_budget_keeps_the_newest_per_topic_and_never_sends_stale_after_new() {
    let mut out = Outbound::new(25); // two 10-byte frames fit, a third does not
    assert_eq!(
        out.push_quote(quote_seq("A", 1), Wire::plain(Format::Json), Instant::now()),
        Pushed::Queued
    );
    assert_eq!(
        out.push_quote(quote_seq("B", 1), Wire::plain(Format::Json), Instant::now()),
        Pushed::Queued
    );
    assert_eq!(
        out.push_quote(quote_seq("A", 2), Wire::plain(Format::Json), Instant::now()),
        Pushed::Conflated { replaced: false }
    );
    assert_eq!(
        out.push_quote(quote_seq("C", 1), Wire::plain(Format::Json), Instant::now()),
        Pushed::Conflated { replaced: false }
    );
    assert_eq!(
        out.push_quote(quote_seq("A", 3), Wire::plain(Format::Json), Instant::now()),
        Pushed::Conflated { replaced: true }
    );
    // Once conflating, even a quote that would fit waits its turn.
    assert!(out.is_conflating());
    assert_eq!(out.queued_bytes(), 20, "the budget is strict");

    let mut w = Trickle {
        out: Vec::new(),
        cap: usize::MAX,
        budget: usize::MAX,
    };
    let mut written = 0;
    assert!(out
        .write_to(&mut w, usize::MAX, &mut written, &mut |_: &OutFrame| {})
        .unwrap());
    let frames: Vec<u8> = w.out.chunks(10).map(|c| c[0]).collect();
    // A1 B1 queued in order; then A's newest (3), then C1. A2 was replaced.
    assert_eq!(frames, [1, 1, 3, 1]);
    assert!(!out.is_conflating());
    assert!(out.is_empty());
    assert_eq!(
        out.push_quote(quote_seq("A", 4), Wire::plain(Format::Json), Instant::now()),
        Pushed::Queued
    );
}

#[test]
fn unsubscribe_and_close_drop_conflated_slots_too() {
    let mut out = Outbound::new(10);
    out.push_quote(quote_seq("A", 1), Wire::plain(Format::Json), Instant::now());
    out.push_quote(quote_seq("B", 1), Wire::plain(Format::Json), Instant::now());
    out.push_quote(quote_seq("C", 1), Wire::plain(Format::Json), Instant::now());
    out.retain_quotes(|t| t != "B");
    let mut w = Trickle {
        out: Vec::new(),
        cap: usize::MAX,
        budget: usize::MAX,
    };
    let mut n = 0;
    assert!(out
        .write_to(&mut w, usize::MAX, &mut n, &mut |_: &OutFrame| {})
        .unwrap());
    assert_eq!(n, 20, "A and C, not B");
    out.push_quote(quote_seq("A", 2), Wire::plain(Format::Json), Instant::now());
    out.push_quote(quote_seq("B", 2), Wire::plain(Format::Json), Instant::now());
    out.clear_data();
    assert!(out.is_empty() && !out.is_conflating());
}

#[test]
fn a_flush_stops_after_its_byte_limit_and_the_next_one_goes_on() {
    let mut out = Outbound::default();
    for topic in ["A", "B", "C", "D", "E"] {
        out.push_data(OutFrame::Quote(
            quote(topic, &[b'x'; 60]),
            Wire::plain(Format::Json),
        ));
    }
    // One frame per write call, so the limit is checked between writes.
    let mut w = Trickle {
        out: Vec::new(),
        cap: 60,
        budget: usize::MAX,
    };
    let mut written = 0;
    let drained = out
        .write_to(&mut w, 100, &mut written, &mut |_: &OutFrame| {})
        .unwrap();
    assert!(!drained);
    assert_eq!(written, 120, "stops at the first write past the limit");
    assert_eq!(out.queued_bytes(), 180);
    let mut turns = 1;
    loop {
        let mut more = 0;
        turns += 1;
        if out
            .write_to(&mut w, 100, &mut more, &mut |_: &OutFrame| {})
            .unwrap()
        {
            break;
        }
        assert!(more >= 100, "only the limit stops a flush here");
    }
    assert_eq!(turns, 3);
    assert_eq!(w.out.len(), 300);
}

#[test]
fn an_emptied_queue_gives_its_memory_back_on_request_and_only_then() {
    let mut out = Outbound::default();
    out.push_data(OutFrame::Quote(
        quote("A", b"aaaa"),
        Wire::plain(Format::Json),
    ));
    out.push_data(OutFrame::Quote(
        quote("B", b"bbbb"),
        Wire::plain(Format::Json),
    ));
    out.free_buffers();
    assert_eq!(out.queued_bytes(), 8, "nothing dropped while frames wait");
    assert!(out.data.capacity() > 0);
    let mut w = Trickle {
        out: Vec::new(),
        cap: usize::MAX,
        budget: usize::MAX,
    };
    let mut n = 0;
    assert!(out
        .write_to(&mut w, usize::MAX, &mut n, &mut |_: &OutFrame| {})
        .unwrap());
    assert!(out.data.capacity() > 0, "kept between ticks");
    out.free_buffers();
    assert_eq!(out.data.capacity(), 0);
    assert!(out.priority.is_none());
}

fn drain(out: &mut Outbound) -> Vec<u8> {
    let mut w = Trickle {
        out: Vec::new(),
        cap: usize::MAX,
        budget: usize::MAX,
    };
    let mut n = 0;
    assert!(out
        .write_to(&mut w, usize::MAX, &mut n, &mut |_: &OutFrame| {})
        .unwrap());
    w.out
}

#[test]
fn one_frame_at_a_time_needs_no_queue_buffer() {
    let mut out = Outbound::default();
    out.push_priority(b"HTTP".to_vec());
    assert_eq!(drain(&mut out), b"HTTP");
    out.push_data(OutFrame::Owned(b"ack".to_vec().into_boxed_slice()));
    assert_eq!(out.reply_bytes(), 3);
    assert_eq!(drain(&mut out), b"ack");
    assert_eq!(out.reply_bytes(), 0);
    out.push_data(OutFrame::Quote(
        quote("A", b"aaaa"),
        Wire::plain(Format::Json),
    ));
    assert_eq!(drain(&mut out), b"aaaa");
    assert_eq!(out.data.capacity(), 0);
    assert!(out.priority.is_none());
    assert_eq!(out.queued_bytes(), 0);
}

#[test]
fn control_frames_overtake_an_unstarted_frame_in_the_head_slot() {
    let mut out = Outbound::default();
    out.push_data(OutFrame::Owned(b"ack".to_vec().into_boxed_slice()));
    out.push_priority(b"PONG".to_vec());
    out.push_priority(b"CLOSE".to_vec());
    assert_eq!(out.priority_bytes(), 9);
    assert_eq!(out.reply_bytes(), 3);
    assert_eq!(drain(&mut out), b"PONGCLOSEack");
    assert_eq!((out.priority_bytes(), out.reply_bytes()), (0, 0));
}

#[test]
fn filtering_and_clearing_reach_the_head_slot_but_not_a_started_frame() {
    let mut out = Outbound::default();
    out.push_data(OutFrame::Quote(
        quote("A", b"aaaa"),
        Wire::plain(Format::Json),
    ));
    out.retain_quotes(|topic| topic != "A");
    assert_eq!(out.queued_bytes(), 0);
    assert!(out.is_empty());

    out.push_data(OutFrame::Quote(
        quote("B", b"bbbb"),
        Wire::plain(Format::Json),
    ));
    out.clear_data();
    assert_eq!(out.queued_bytes(), 0);

    // Half written: it must finish even when its topic is dropped.
    out.push_data(OutFrame::Quote(
        quote("C", b"cccc"),
        Wire::plain(Format::Json),
    ));
    let mut w = Trickle {
        out: Vec::new(),
        cap: 2,
        budget: usize::MAX,
    };
    let mut n = 0;
    let _ = out.write_to(&mut w, 1, &mut n, &mut |_: &OutFrame| {});
    assert_eq!(w.out, b"cc");
    out.retain_quotes(|_| false);
    out.clear_data();
    assert_eq!(out.queued_bytes(), 2);
    assert_eq!(drain(&mut out), b"cc");
}

#[test]
fn frames_of_one_transmit_are_laid_out_contiguously_in_wire_order() {
    let mut out = Outbound::default();
    for body in [&b"aa"[..], b"bbb", b"c"] {
        out.push_data(OutFrame::Owned(body.into()));
    }
    let mut buf = Vec::new();
    assert_eq!(out.transmit(&mut buf, usize::MAX), 6);
    assert_eq!(buf, b"aabbbc", "one contiguous buffer, one send");
    // Nothing is consumed until the socket takes it: a short send of 3
    // bytes goes on in the middle of the second frame.
    out.advance(3, &mut |_: &OutFrame| {});
    assert_eq!(out.transmit(&mut buf, usize::MAX), 3);
    assert_eq!(buf, b"bbc");
    // The byte limit cuts the last frame; what follows keeps the order.
    assert_eq!(out.transmit(&mut buf, 2), 2);
    assert_eq!(buf, b"bb");
    out.advance(3, &mut |_: &OutFrame| {});
    assert_eq!(out.transmit(&mut buf, usize::MAX), 0, "drained");
}

#[test]
fn one_transmit_lays_out_at_most_max_frames() {
    let mut out = Outbound::default();
    for _ in 0..MAX_FRAMES + 10 {
        out.push_data(OutFrame::Owned(b"x".as_slice().into()));
    }
    let mut buf = Vec::new();
    assert_eq!(out.transmit(&mut buf, usize::MAX), MAX_FRAMES);
    out.advance(MAX_FRAMES, &mut |_: &OutFrame| {});
    assert_eq!(out.transmit(&mut buf, usize::MAX), 10);
}
