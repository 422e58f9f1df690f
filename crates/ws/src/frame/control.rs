//! Control frames: ping, pong and close (with its payload rules).

use super::message::unmasked;
use super::{err, Event, Header, OpCode, ProtocolError};
use crate::close;

/// Builds the event for a complete control frame.
pub(super) fn control_event(header: &Header, payload: &[u8]) -> Result<Event, ProtocolError> {
    let data = unmasked(payload, header.mask);
    match header.opcode {
        OpCode::Ping => Ok(Event::Ping(data)),
        OpCode::Pong => Ok(Event::Pong(data)),
        _ => parse_close(&data).map(Event::Close),
    }
}

/// Validates a close payload: empty, or a valid code plus UTF-8 reason.
fn parse_close(data: &[u8]) -> Result<Option<(u16, String)>, ProtocolError> {
    let (code, reason) = match data {
        [] => return Ok(None),
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
        [_] => return Err(err(close::PROTOCOL_ERROR, "close payload of 1 byte")),
    };
    if !close::is_valid_close_code(code) {
        return Err(err(close::PROTOCOL_ERROR, "invalid close code"));
    }
    let reason = std::str::from_utf8(reason)
        .map_err(|_| err(close::INVALID_PAYLOAD, "close reason is not UTF-8"))?;
    Ok(Some((code, reason.to_owned())))
}
