//! Client-side decoding of server JSON messages.

use serde_json::{Map, Value};

use super::delta::{FieldChanges, FIELD_NAMES};
use crate::quote::Quote;

/// Any message the server sends.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    Subscribed {
        id: Option<u64>,
        topics: Vec<String>,
        epoch: String,
        /// v1.2, only on the ack of a subscribe with `since`: whether every
        /// topic in `since.seqs` was recovered. `None` on other acks.
        recovered: Option<bool>,
        /// v1.2: the topics of `since.seqs` not recovered (they got the v1
        /// snapshot instead); empty when absent.
        unrecovered: Vec<String>,
    },
    Unsubscribed {
        id: Option<u64>,
        topics: Vec<String>,
        /// Set when the broker removed the entries itself
        /// (`"not_authorized"`: a refreshed token no longer covers them).
        reason: Option<String>,
    },
    /// The `auth` request was accepted.
    Authed {
        id: Option<u64>,
        sub: Option<String>,
        exp: u64,
    },
    Error {
        id: Option<u64>,
        /// Kept as text so codes added later still decode.
        code: String,
        message: String,
    },
    Quote {
        quote: Quote,
        seq: u64,
    },
    /// v1.2 field delta: the quote of `seq` is the connection's previous
    /// quote of `topic` (seq − 1) with `changes` applied and `ts`.
    Delta {
        topic: String,
        seq: u64,
        ts: u64,
        changes: FieldChanges,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

type Obj = Map<String, Value>;

fn missing(field: &str) -> DecodeError {
    DecodeError(format!("missing or mistyped field {field:?}"))
}

fn string(obj: &Obj, field: &str) -> Result<String, DecodeError> {
    obj.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| missing(field))
}

/// Integers are read exactly (serde_json keeps u64 without going via f64).
fn u64_field(obj: &Obj, field: &str) -> Result<u64, DecodeError> {
    obj.get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| missing(field))
}

fn opt_id(obj: &Obj) -> Result<Option<u64>, DecodeError> {
    match obj.get("id") {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| missing("id")),
    }
}

/// `null` stands for a non-finite number; it decodes as NaN.
fn f64_field(obj: &Obj, field: &str) -> Result<f64, DecodeError> {
    match obj.get(field) {
        Some(Value::Null) => Ok(f64::NAN),
        Some(v) => v.as_f64().ok_or_else(|| missing(field)),
        None => Err(missing(field)),
    }
}

fn topics(obj: &Obj) -> Result<Vec<String>, DecodeError> {
    string_list(obj, "topics")
}

/// An array of strings.
fn string_list(obj: &Obj, field: &str) -> Result<Vec<String>, DecodeError> {
    obj.get(field)
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| missing(field))
}

/// Decodes one JSON text frame from the server.
pub fn decode_json(text: &str) -> Result<ServerMessage, DecodeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| DecodeError(format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(DecodeError("message is not a JSON object".into()));
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("subscribed") => Ok(ServerMessage::Subscribed {
            id: opt_id(&obj)?,
            topics: topics(&obj)?,
            epoch: string(&obj, "epoch")?,
            recovered: match obj.get("recovered") {
                None => None,
                Some(v) => Some(v.as_bool().ok_or_else(|| missing("recovered"))?),
            },
            unrecovered: match obj.get("unrecovered") {
                None => Vec::new(),
                Some(_) => string_list(&obj, "unrecovered")?,
            },
        }),
        Some("unsubscribed") => Ok(ServerMessage::Unsubscribed {
            id: opt_id(&obj)?,
            topics: topics(&obj)?,
            reason: match obj.get("reason") {
                None => None,
                Some(_) => Some(string(&obj, "reason")?),
            },
        }),
        Some("authed") => Ok(ServerMessage::Authed {
            id: opt_id(&obj)?,
            sub: match obj.get("sub") {
                None => None,
                Some(_) => Some(string(&obj, "sub")?),
            },
            exp: u64_field(&obj, "exp")?,
        }),
        Some("error") => Ok(ServerMessage::Error {
            id: opt_id(&obj)?,
            code: string(&obj, "code")?,
            message: string(&obj, "message")?,
        }),
        Some("quote") => Ok(ServerMessage::Quote {
            seq: u64_field(&obj, "seq")?,
            quote: Quote {
                topic: string(&obj, "topic")?,
                bid: f64_field(&obj, "bid")?,
                ask: f64_field(&obj, "ask")?,
                bid_size: f64_field(&obj, "bid_size")?,
                ask_size: f64_field(&obj, "ask_size")?,
                last: f64_field(&obj, "last")?,
                volume: f64_field(&obj, "volume")?,
                ts: u64_field(&obj, "ts")?,
            },
        }),
        Some("delta") => {
            let mut changes = FieldChanges {
                mask: 0,
                values: [0.0; 6],
            };
            for (i, (name, value)) in FIELD_NAMES.iter().zip(&mut changes.values).enumerate() {
                if obj.contains_key(*name) {
                    changes.mask |= 1 << i;
                    *value = f64_field(&obj, name)?;
                }
            }
            Ok(ServerMessage::Delta {
                topic: string(&obj, "topic")?,
                seq: u64_field(&obj, "seq")?,
                ts: u64_field(&obj, "ts")?,
                changes,
            })
        }
        Some(other) => Err(DecodeError(format!("unknown message type {other:?}"))),
        None => Err(missing("type")),
    }
}
