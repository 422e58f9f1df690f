//! Message assembly: a data frame's payload unmasked, fragments joined,
//! UTF-8 checked as it comes, compressed messages inflated (bounded by the
//! message limit) and the whole message turned into its event.

use super::{err, Event, FrameDecoder, Header, OpCode, ProtocolError};
use crate::close;
use crate::deflate::{inflate_message, InflateError};
use crate::mask::apply_mask;
use crate::utf8::{validate_tail, Utf8Check};

/// A fragmented data message being reassembled.
#[derive(Debug)]
pub(super) struct Partial {
    /// Text or Binary, from the first fragment.
    pub(super) opcode: OpCode,
    /// Unmasked payload of all fragments so far.
    pub(super) data: Vec<u8>,
    /// `data[..valid_up_to]` is known valid UTF-8 (text only), so each
    /// fragment only costs validating its own bytes.
    valid_up_to: usize,
    /// RSV1 was set on the first frame: `data` is compressed (its UTF-8 is
    /// checked once inflated).
    compressed: bool,
}

/// What a decoder holds beyond its idle state.
#[derive(Debug)]
pub(super) enum Stalled {
    /// A fragmented message in progress.
    Partial(Partial),
    /// Once a violation is found the stream is unusable (frame boundaries
    /// may be lost); the same error is reported again instead of guessing.
    Failed(ProtocolError),
}

impl FrameDecoder {
    /// Handles a complete data frame (header already validated).
    pub(super) fn data_frame(
        &mut self,
        header: &Header,
        payload: &[u8],
    ) -> Result<Option<Event>, ProtocolError> {
        // A failed decoder never gets here (`decode` returns first): what
        // is stalled is a message in progress, kept in its box.
        let mut stalled = match self.stalled.take() {
            Some(stalled) => stalled,
            None if header.fin => {
                // Unfragmented message: no reassembly state needed.
                let data = unmasked(payload, header.mask);
                let data = self.inflated(header.compressed, data)?;
                return finish(header.opcode, data).map(Some);
            }
            None => Box::new(Stalled::Partial(Partial {
                opcode: header.opcode,
                data: Vec::new(),
                valid_up_to: 0,
                compressed: header.compressed,
            })),
        };
        let Stalled::Partial(part) = &mut *stalled else {
            let e = err(close::PROTOCOL_ERROR, "decoder failed");
            return Err(e);
        };
        let start = part.data.len();
        part.data.extend_from_slice(payload);
        if let (Some(key), Some(fresh)) = (header.mask, part.data.get_mut(start..)) {
            apply_mask(fresh, key);
        }
        if part.opcode == OpCode::Text && !part.compressed {
            match validate_tail(&part.data, part.valid_up_to, header.fin) {
                Utf8Check::ValidUpTo(n) => part.valid_up_to = n,
                Utf8Check::Invalid => return Err(invalid_utf8()),
            }
        }
        if header.fin {
            let (opcode, compressed) = (part.opcode, part.compressed);
            let data = std::mem::take(&mut part.data);
            let data = self.inflated(compressed, data)?;
            finish(opcode, data).map(Some)
        } else {
            self.stalled = Some(stalled);
            Ok(None)
        }
    }

    /// A whole message's payload, inflated if it came compressed, never
    /// past the message limit (a zip bomb costs `max_message` bytes).
    fn inflated(&self, compressed: bool, data: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
        if !compressed {
            return Ok(data);
        }
        let mut out = Vec::new();
        match inflate_message(&data, self.max_message, &mut out) {
            Ok(()) => Ok(out),
            Err(InflateError::TooBig) => {
                Err(err(close::MESSAGE_TOO_BIG, "inflated message too big"))
            }
            Err(InflateError::Invalid) => Err(err(
                close::INVALID_PAYLOAD,
                "compressed data does not inflate",
            )),
        }
    }
}

fn invalid_utf8() -> ProtocolError {
    err(close::INVALID_PAYLOAD, "invalid UTF-8 in text message")
}

/// Copies and unmasks a payload.
pub(super) fn unmasked(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut data = payload.to_vec();
    if let Some(key) = mask {
        apply_mask(&mut data, key);
    }
    data
}

/// Turns a complete data message into its event.
fn finish(opcode: OpCode, data: Vec<u8>) -> Result<Event, ProtocolError> {
    if opcode == OpCode::Text {
        String::from_utf8(data)
            .map(Event::Text)
            .map_err(|_| invalid_utf8())
    } else {
        Ok(Event::Binary(data))
    }
}
