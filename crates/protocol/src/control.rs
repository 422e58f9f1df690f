//! Client → server control requests (one JSON object per WebSocket text
//! frame): parsing and validation for the broker, encoding for clients.

use serde_json::{Map, Value};

use crate::json_write::{self, JsonOut};
use crate::topic::Selector;

/// Largest request id: ids must survive a trip through a JavaScript number.
pub const MAX_ID: u64 = (1 << 53) - 1;
/// Upper bound for a subscription's `max_hz`.
pub const MAX_HZ: f64 = 1000.0;

/// A validated request. Topics are kept exactly as sent (duplicates too) so
/// acks can echo them.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Subscribe {
        id: Option<u64>,
        topics: Vec<String>,
        snapshot: bool,
        max_hz: Option<f64>,
    },
    Unsubscribe {
        id: Option<u64>,
        topics: Vec<String>,
    },
    /// `{"op":"auth","token":"<JWT>","id":7}` (v1.1 entitlements).
    Auth { id: Option<u64>, token: String },
}

/// Longest token accepted in an `auth` request (a JWT with a long topic
/// list stays far below; the message limit bounds it anyway).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    BadTopic,
    TooManySubscriptions,
    NotAuthorized,
    /// Over the connection's request rate (v1.1).
    RateLimited,
}

impl ErrorCode {
    /// The `code` string on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadTopic => "bad_topic",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::NotAuthorized => "not_authorized",
            ErrorCode::RateLimited => "rate_limited",
        }
    }
}

/// A refused request; `id` is set whenever the request's id parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    pub id: Option<u64>,
    pub code: ErrorCode,
    pub message: String,
}

/// Bad topics can be up to a frame long; keep error messages short.
const MAX_QUOTED_TOPIC: usize = 80;

/// Parses and validates one request. Atomic: either the whole request is
/// good or one error describes a problem with it.
pub fn parse_request(text: &str) -> Result<Request, RequestError> {
    let bad = |id, message: String| RequestError {
        id,
        code: ErrorCode::BadRequest,
        message,
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(None, format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad(None, "request must be a JSON object".into()));
    };
    // The id is parsed first so every later error can echo it.
    let id = parse_id(&obj).map_err(|m| bad(None, m))?;
    let err = |m: String| bad(id, m);
    let op = match obj.get("op") {
        None => return Err(err("missing \"op\"".into())),
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err(err("\"op\" must be a string".into())),
    };
    let subscribe = match op {
        "subscribe" => true,
        "unsubscribe" => false,
        "auth" => {
            return match obj.get("token") {
                // An empty string is a token too, one that does not
                // verify (`not_authorized`, from the broker): only a missing
                // or non-string token is malformed.
                Some(Value::String(t)) if t.len() <= MAX_TOKEN_LEN => Ok(Request::Auth {
                    id,
                    token: t.clone(),
                }),
                _ => Err(err(format!(
                    "\"token\" must be a string of at most {MAX_TOKEN_LEN} bytes"
                ))),
            };
        }
        other => return Err(err(format!("unknown op {:?}", clip(other)))),
    };
    let topics = parse_topics(&obj).map_err(err)?;
    // snapshot/max_hz only mean something on subscribe; unsubscribe ignores them.
    let (snapshot, max_hz) = if subscribe {
        (
            parse_snapshot(&obj).map_err(err)?,
            parse_max_hz(&obj).map_err(err)?,
        )
    } else {
        (true, None)
    };
    // Syntax last, so a type error is reported as bad_request first.
    if let Some(t) = topics.iter().find(|t| Selector::parse(t).is_none()) {
        return Err(RequestError {
            id,
            code: ErrorCode::BadTopic,
            message: format!("invalid topic {:?}", clip(t)),
        });
    }
    Ok(if subscribe {
        Request::Subscribe {
            id,
            topics,
            snapshot,
            max_hz,
        }
    } else {
        Request::Unsubscribe { id, topics }
    })
}

fn parse_id(obj: &Map<String, Value>) -> Result<Option<u64>, String> {
    match obj.get("id") {
        None => Ok(None),
        // as_u64 is None for negatives and for anything written with a
        // fraction or exponent, which are not integer ids.
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id) if id <= MAX_ID => Ok(Some(id)),
            _ => Err(format!("\"id\" must be an integer in 0..={MAX_ID}")),
        },
        Some(_) => Err(format!("\"id\" must be an integer in 0..={MAX_ID}")),
    }
}

fn parse_topics(obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    const MSG: &str = "\"topics\" must be a non-empty array of strings";
    let Some(Value::Array(items)) = obj.get("topics") else {
        return Err(MSG.into());
    };
    if items.is_empty() {
        return Err(MSG.into());
    }
    items
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| MSG.to_owned()))
        .collect()
}

fn parse_snapshot(obj: &Map<String, Value>) -> Result<bool, String> {
    match obj.get("snapshot") {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("\"snapshot\" must be true or false".into()),
    }
}

fn parse_max_hz(obj: &Map<String, Value>) -> Result<Option<f64>, String> {
    let hz = match obj.get("max_hz") {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err("max_hz must be a number".into()),
    };
    if hz.is_nan() || hz <= 0.0 {
        Err("max_hz must be > 0".into())
    } else if hz > MAX_HZ {
        Err(format!("max_hz must be at most {MAX_HZ}"))
    } else {
        Ok(Some(hz))
    }
}

/// Shortens a client-supplied string for an error message.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_QUOTED_TOPIC {
        return s;
    }
    let mut end = MAX_QUOTED_TOPIC;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Encodes a subscribe request (client side). `None` fields are omitted so
/// the server applies its defaults.
pub fn encode_subscribe(
    topics: &[&str],
    id: Option<u64>,
    snapshot: Option<bool>,
    max_hz: Option<f64>,
) -> String {
    let mut out = String::from("{\"op\":\"subscribe\"");
    write_topics_and_id(&mut out, topics, id);
    if let Some(s) = snapshot {
        out.push_text(if s {
            ",\"snapshot\":true"
        } else {
            ",\"snapshot\":false"
        });
    }
    if let Some(hz) = max_hz {
        out.push(',');
        json_write::key(&mut out, "max_hz");
        json_write::f64_num(&mut out, hz);
    }
    out.push('}');
    out
}

/// Encodes an auth request (client side).
pub fn encode_auth(token: &str, id: Option<u64>) -> String {
    let mut out = String::from("{\"op\":\"auth\",");
    json_write::key(&mut out, "token");
    json_write::string(&mut out, token);
    if let Some(id) = id {
        out.push(',');
        json_write::key(&mut out, "id");
        json_write::u64_num(&mut out, id);
    }
    out.push('}');
    out
}

/// Encodes an unsubscribe request (client side).
pub fn encode_unsubscribe(topics: &[&str], id: Option<u64>) -> String {
    let mut out = String::from("{\"op\":\"unsubscribe\"");
    write_topics_and_id(&mut out, topics, id);
    out.push('}');
    out
}

fn write_topics_and_id(out: &mut String, topics: &[&str], id: Option<u64>) {
    out.push(',');
    json_write::key(out, "topics");
    json_write::string_array(out, topics);
    if let Some(id) = id {
        out.push(',');
        json_write::key(out, "id");
        json_write::u64_num(out, id);
    }
}
