//! Reading a connection: the upgrade response (and whether it accepted
//! permessage-deflate), WebSocket frames (an allocation-free fast path for
//! whole uncompressed data frames, `FrameDecoder` for the rest, compressed
//! ones included), what each message means (ack, error, quote or delta →
//! latency, gaps), and the bytes read after the upgrade (`wire_bytes`).

use std::io::{ErrorKind, Read};
use std::sync::atomic::Ordering;

use tickwire_client::tls_io;
use tickwire_ws::frame::encode_masked_frame;
use tickwire_ws::handshake::{parse_client_response, ResponseParse};
use tickwire_ws::{Event, OpCode};

use super::conn::{decoder, flush, micros, send_subscribe, Conn, Ctx, Fail, State};
use super::upgrade;
use super::{FAST_PATH_MAX, MAX_READS_PER_TURN, SCRATCH};
use crate::parse::{self, TextKind};
use crate::sys;

pub(super) fn read(ctx: &mut Ctx<'_>, c: &mut Conn, scratch: &mut [u8]) -> Result<bool, Fail> {
    for _ in 0..MAX_READS_PER_TURN {
        let Some(sock) = c.sock.as_mut() else {
            return Ok(false);
        };
        let got = match c.tls.as_mut() {
            Some(tls) => tls_io::read_plain(tls, sock, scratch),
            None => sock.read(scratch),
        };
        match got {
            Ok(0) => return Err(Fail::Closed),
            Ok(n) => {
                let now_ns = sys::wall_ns();
                on_bytes(ctx, c, &scratch[..n], now_ns)?;
                if c.state == State::Parked || c.state == State::Closed {
                    return Ok(false);
                }
                if !c.wbuf.is_empty() {
                    flush(c)?;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(Fail::Closed),
        }
    }
    Ok(true)
}

fn on_bytes(ctx: &mut Ctx<'_>, c: &mut Conn, data: &[u8], now_ns: u64) -> Result<(), Fail> {
    if c.state == State::Handshake {
        c.rbuf.extend_from_slice(data);
        match parse_client_response(&c.rbuf, &c.key, 8192) {
            Ok(ResponseParse::Partial) => return Ok(()),
            Ok(ResponseParse::Complete { len }) => {
                if ctx.cfg.deflate {
                    if upgrade::deflate_accepted(c.rbuf.get(..len).unwrap_or_default()) {
                        ctx.deflate_negotiated += 1;
                    } else {
                        // Declined: a compressed frame now is a violation.
                        c.dec = decoder(false);
                    }
                }
                // What came behind the head is already frame data.
                ctx.wire_bytes += c.rbuf.len().saturating_sub(len) as u64;
                c.rbuf.drain(..len);
                send_subscribe(ctx, c);
                c.state = State::AwaitAck;
                flush(c)?;
                let buf = std::mem::take(&mut c.rbuf);
                let used = frames(ctx, c, &buf, now_ns)?;
                if c.state != State::Parked {
                    c.rbuf = buf;
                    c.rbuf.drain(..used);
                }
                return Ok(());
            }
            Err(_) => return Err(Fail::Handshake),
        }
    }
    ctx.wire_bytes += data.len() as u64;
    if c.rbuf.is_empty() {
        let used = frames(ctx, c, data, now_ns)?;
        if used < data.len() && c.state != State::Parked {
            c.rbuf.extend_from_slice(&data[used..]);
        }
    } else {
        c.rbuf.extend_from_slice(data);
        let mut buf = std::mem::take(&mut c.rbuf);
        let used = frames(ctx, c, &buf, now_ns)?;
        if c.state != State::Parked {
            buf.drain(..used);
            if buf.is_empty() && buf.capacity() > SCRATCH {
                buf = Vec::new();
            }
            c.rbuf = buf;
        }
    }
    Ok(())
}

/// Header of a complete-able, unfragmented, unmasked, uncompressed
/// text/binary frame: (is_binary, header length, payload length). None →
/// use FrameDecoder (a compressed frame, first byte 0xC1/0xC2 with RSV1,
/// is inflated there).
#[inline]
fn fast_header(b: &[u8]) -> Option<(bool, usize, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let binary = match b0 {
        0x81 => false,
        0x82 => true,
        _ => return None,
    };
    if b1 & 0x80 != 0 {
        return None;
    }
    let (hl, pl) = match b1 & 0x7F {
        126 => (
            4,
            usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
        ),
        127 => {
            let len = u64::from_be_bytes(b.get(2..10)?.try_into().ok()?);
            (10, usize::try_from(len).ok()?)
        }
        n => (2, usize::from(n)),
    };
    (pl <= FAST_PATH_MAX).then_some((binary, hl, pl))
}

/// Consumes whole frames from `buf`; returns the bytes used.
fn frames(ctx: &mut Ctx<'_>, c: &mut Conn, buf: &[u8], now_ns: u64) -> Result<usize, Fail> {
    let mut off = 0;
    while off < buf.len() {
        if c.state == State::Parked {
            return Ok(buf.len());
        }
        let b = &buf[off..];
        if c.dec.is_idle() {
            if let Some((binary, hl, pl)) = fast_header(b) {
                if b.len() < hl + pl {
                    break;
                }
                message(ctx, c, binary, &b[hl..hl + pl], now_ns)?;
                off += hl + pl;
                continue;
            }
        }
        match c.dec.decode(b) {
            Ok((0, _)) => break,
            Ok((n, ev)) => {
                off += n;
                match ev {
                    None | Some(Event::Pong(_)) => {}
                    Some(Event::Text(t)) => message(ctx, c, false, t.as_bytes(), now_ns)?,
                    Some(Event::Binary(v)) => message(ctx, c, true, &v, now_ns)?,
                    Some(Event::Ping(p)) => {
                        let mask = ctx.mask();
                        encode_masked_frame(&mut c.wbuf, OpCode::Pong, true, &p, mask);
                    }
                    Some(Event::Close(_)) => {
                        let mask = ctx.mask();
                        tickwire_ws::frame::encode_masked_close(&mut c.wbuf, 1000, "", mask);
                        let _ = flush(c);
                        return Err(Fail::Closed);
                    }
                }
            }
            Err(_) => return Err(Fail::Protocol),
        }
    }
    Ok(off)
}

#[inline]
fn message(
    ctx: &mut Ctx<'_>,
    c: &mut Conn,
    binary: bool,
    p: &[u8],
    now_ns: u64,
) -> Result<(), Fail> {
    let q = if binary {
        parse::binary_quote(p)
    } else {
        match parse::text_kind(p) {
            TextKind::Quote => parse::json_quote(p),
            TextKind::Subscribed => {
                if c.state == State::AwaitAck {
                    on_ack(ctx, c);
                }
                return Ok(());
            }
            TextKind::Error => {
                ctx.errors.server_error += 1;
                if c.state == State::AwaitAck {
                    return Err(Fail::Refused);
                }
                return Ok(());
            }
            TextKind::Authed => {
                ctx.authed += 1;
                return Ok(());
            }
            TextKind::Unsubscribed | TextKind::Other => return Ok(()),
        }
    };
    let Some(q) = q else {
        ctx.errors.protocol += 1;
        return Ok(());
    };
    ctx.deliveries += 1;
    ctx.last_delivery_ns = now_ns;
    let us = if now_ns >= q.ts {
        ((now_ns - q.ts) / 1000).max(1)
    } else {
        ctx.negative_latency += 1;
        1
    };
    ctx.latency.saturating_record(us);
    // Empty with a single --ws address: one bounds check, nothing recorded.
    if let Some(w) = ctx.by_ws.get_mut(c.ws) {
        w.latency.saturating_record(us);
    }
    let topics = ctx.cfg.topics;
    match parse::topic_index(q.topic, &ctx.prefix) {
        Some(i) if i < topics => {
            let j = (i + topics - c.first_topic) % topics;
            match c.trackers.get_mut(j) {
                Some(t) => t.observe(q.seq),
                None => ctx.errors.unexpected_topic += 1,
            }
        }
        _ => ctx.errors.unexpected_topic += 1,
    }
    Ok(())
}

fn on_ack(ctx: &mut Ctx<'_>, c: &mut Conn) {
    let _ = ctx.subscribe_ack.record(micros(c.started.elapsed()));
    ctx.inflight = ctx.inflight.saturating_sub(1);
    ctx.subscribed += 1;
    if let Some(w) = ctx.by_ws.get_mut(c.ws) {
        w.subscribed += 1;
    }
    ctx.shared.ready.fetch_add(1, Ordering::Relaxed);
    if c.slow {
        // Stop reading for good: no more readiness events, buffers freed.
        if let Some(sock) = c.sock.as_mut() {
            let _ = ctx.poll.registry().deregister(sock);
        }
        c.rbuf = Vec::new();
        c.state = State::Parked;
        ctx.slow += 1;
    } else {
        c.state = State::Streaming;
    }
}

#[cfg(test)]
mod tests {
    use super::fast_header;
    use crate::parse::{self, QuoteRef, TextKind};
    use crate::receiver::conn::decoder;
    use tickwire_protocol::server::{binary_delta, json_delta};
    use tickwire_ws::deflate::encode_deflated_message;
    use tickwire_ws::{Event, OpCode};

    #[test]
    fn compressed_deltas_go_through_the_inflating_decoder() {
        let values = [100.25, 100.26, 100.0, 200.0, 100.255, 7.0];
        let mut json = Vec::new();
        json_delta(
            "lt.3",
            43,
            1_700_000_000_000_000_001,
            &values,
            0b11_0011,
            &mut json,
        );
        let mut bin = Vec::new();
        binary_delta(
            "lt.3",
            43,
            1_700_000_000_000_000_001,
            &values,
            0b11_0011,
            &mut bin,
        );
        let want = || QuoteRef {
            topic: b"lt.3",
            seq: 43,
            ts: 1_700_000_000_000_000_001,
        };
        for (opcode, payload) in [(OpCode::Text, &json), (OpCode::Binary, &bin)] {
            let mut frame = Vec::new();
            encode_deflated_message(&mut frame, opcode, payload);
            assert_eq!(frame[0] & 0x40, 0x40, "RSV1 set");
            assert_eq!(fast_header(&frame), None, "no fast path when compressed");
            let (used, ev) = decoder(true).decode(&frame).expect("inflates");
            assert_eq!(used, frame.len());
            match ev {
                Some(Event::Text(t)) => {
                    assert_eq!(t.as_bytes(), &json[..]);
                    assert_eq!(parse::text_kind(t.as_bytes()), TextKind::Quote);
                    assert_eq!(parse::json_quote(t.as_bytes()), Some(want()));
                }
                Some(Event::Binary(b)) => {
                    assert_eq!(b, bin);
                    assert_eq!(parse::binary_quote(&b), Some(want()));
                }
                other => panic!("{other:?}"),
            }
            // Without a negotiated extension, RSV1 is a protocol error.
            assert!(decoder(false).decode(&frame).is_err());
        }
    }

    #[test]
    fn fast_header_takes_only_whole_unmasked_data_frames() {
        assert_eq!(fast_header(&[0x81, 5]), Some((false, 2, 5)));
        assert_eq!(fast_header(&[0x82, 126, 1, 0]), Some((true, 4, 256)));
        assert_eq!(fast_header(&[0x81]), None);
        // Fragment (FIN clear), control frame, masked frame.
        assert_eq!(fast_header(&[0x01, 5]), None);
        assert_eq!(fast_header(&[0x89, 0]), None);
        assert_eq!(fast_header(&[0x81, 0x85]), None);
        // Compressed (RSV1): the decoder inflates it.
        assert_eq!(fast_header(&[0xC1, 5]), None);
        assert_eq!(fast_header(&[0xC2, 5]), None);
    }
}
