//! Server → client messages: JSON text frames, the compact binary quote
//! frame, and client-side decoders for both (used by the Rust client and
//! tests).

mod binary;
mod decode;
mod delta;
mod json;

pub use binary::{binary_quote, decode_binary, BINARY_QUOTE, BINARY_QUOTE_HEADER_LEN};
pub use decode::{decode_json, DecodeError, ServerMessage};
pub use delta::{
    binary_delta, changed_mask, fields, json_delta, FieldChanges, ALL_FIELDS, BINARY_DELTA,
    BINARY_DELTA_HEADER_LEN, FIELD_NAMES,
};
pub use json::{
    json_authed, json_error, json_error_code, json_quote, json_revoked, json_subscribed,
    json_subscribed_resumed, json_unsubscribed,
};
