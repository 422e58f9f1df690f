//! Client → server control requests (one JSON object per WebSocket text
//! frame): parsing and validation for the broker, encoding for clients.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::topic::Selector;
use crate::MAX_SEQ;

/// Largest request id: ids must survive a trip through a JavaScript number.
pub const MAX_ID: u64 = (1 << 53) - 1;
/// Upper bound for a subscription's `max_hz`.
pub const MAX_HZ: f64 = 1000.0;

/// A validated request. Topics are kept exactly as sent (duplicates too) so
/// acks can echo them; borrowed from the request's text where the common
/// request's fast path read them (no allocation per topic), owned where
/// the general path did.
#[derive(Clone, Debug, PartialEq)]
pub enum Request<'a> {
    Subscribe {
        id: Option<u64>,
        topics: Vec<Cow<'a, str>>,
        snapshot: bool,
        max_hz: Option<f64>,
        /// The client's position (v1.2 resume): every key is an exact topic
        /// matched by an entry of `topics`.
        since: Option<Since>,
        /// v1.2: send up to this many recent quotes (1..=[`MAX_REWIND`]) of
        /// each topic not in `since` in place of its snapshot. Never set
        /// together with `snapshot: false`.
        rewind: Option<u16>,
    },
    Unsubscribe {
        id: Option<u64>,
        topics: Vec<Cow<'a, str>>,
    },
    /// `{"op":"auth","token":"<JWT>","id":7}` (v1.1 entitlements).
    Auth { id: Option<u64>, token: String },
}

impl Request<'_> {
    /// The request with its topics owned: to keep it past its text.
    pub fn into_owned(self) -> Request<'static> {
        let own = |topics: Vec<Cow<'_, str>>| -> Vec<Cow<'static, str>> {
            topics
                .into_iter()
                .map(|t| Cow::Owned(t.into_owned()))
                .collect()
        };
        match self {
            Request::Subscribe {
                id,
                topics,
                snapshot,
                max_hz,
                since,
                rewind,
            } => Request::Subscribe {
                id,
                topics: own(topics),
                snapshot,
                max_hz,
                since,
                rewind,
            },
            Request::Unsubscribe { id, topics } => Request::Unsubscribe {
                id,
                topics: own(topics),
            },
            Request::Auth { id, token } => Request::Auth { id, token },
        }
    }
}

/// A client's position (v1.2 resume): `"since":{"epoch":..,"seqs":{..}}`.
///
/// `seqs` holds each topic once, in the order of the keys' first appearance
/// in the JSON text. A key written twice counts once, with its last value
/// (serde_json's object rule: last wins), so `{"A":1,"B":2,"A":3}` is
/// `[("A",3),("B",2)]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Since {
    pub epoch: String,
    pub seqs: Vec<(String, u64)>,
}

impl Since {
    /// The position given for `topic`, if any (a linear scan).
    pub fn seq(&self, topic: &str) -> Option<u64> {
        self.seqs
            .iter()
            .find_map(|(t, s)| (t.as_str() == topic).then_some(*s))
    }
}

/// Most keys in `since.seqs`.
pub const MAX_SINCE_KEYS: usize = 1024;
/// Largest `rewind`.
pub const MAX_REWIND: u16 = 1024;

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
pub fn parse_request(text: &str) -> Result<Request<'_>, RequestError> {
    match fast::parse(text) {
        Some(request) => Ok(request),
        None => parse_any_request(text),
    }
}

/// The general path alone: every request, every error (see
/// `control/fast.rs`). Public for the fuzz target that holds the fast path
/// to it; the broker calls [`parse_request`].
#[doc(hidden)]
pub fn parse_any_request(text: &str) -> Result<Request<'_>, RequestError> {
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
    // snapshot/max_hz/rewind/since only mean something on subscribe;
    // unsubscribe ignores them, whatever their value.
    let (snapshot, max_hz, rewind, since) = if subscribe {
        let snapshot = parse_snapshot(&obj).map_err(err)?;
        let max_hz = parse_max_hz(&obj).map_err(err)?;
        let rewind = parse_rewind(&obj).map_err(err)?;
        if rewind.is_some() && !snapshot {
            return Err(err(
                "\"rewind\" replaces the snapshot: not with \"snapshot\":false".into(),
            ));
        }
        let since = parse_since(&obj, text).map_err(err)?;
        (snapshot, max_hz, rewind, since)
    } else {
        (true, None, None, None)
    };
    // Topic syntax after the type errors, so those are reported as
    // bad_request first.
    let mut selectors = Vec::with_capacity(topics.len());
    for t in &topics {
        match Selector::parse(t) {
            Some(s) => selectors.push(s),
            None => {
                return Err(RequestError {
                    id,
                    code: ErrorCode::BadTopic,
                    message: format!("invalid topic {:?}", clip(t)),
                })
            }
        }
    }
    // Last: every since key must be matched by an entry (needs the
    // entries' syntax checked).
    if let Some(since) = &since {
        if let Some(key) = first_unmatched(since, &selectors) {
            return Err(err(format!(
                "\"since\" topic {:?} is not matched by any entry of \"topics\"",
                clip(key)
            )));
        }
    }
    Ok(if subscribe {
        Request::Subscribe {
            id,
            topics,
            snapshot,
            max_hz,
            since,
            rewind,
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

fn parse_topics(obj: &Map<String, Value>) -> Result<Vec<Cow<'static, str>>, String> {
    const MSG: &str = "\"topics\" must be a non-empty array of strings";
    let Some(Value::Array(items)) = obj.get("topics") else {
        return Err(MSG.into());
    };
    if items.is_empty() {
        return Err(MSG.into());
    }
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(|t| Cow::Owned(t.to_owned()))
                .ok_or_else(|| MSG.to_owned())
        })
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

fn parse_rewind(obj: &Map<String, Value>) -> Result<Option<u16>, String> {
    let Some(v) = obj.get("rewind") else {
        return Ok(None);
    };
    // as_u64 is None for negatives and for anything written with a
    // fraction or exponent ("1.0", "1e1").
    match v.as_u64() {
        Some(n) if (1..=u64::from(MAX_REWIND)).contains(&n) => Ok(u16::try_from(n).ok()),
        _ => Err(format!("\"rewind\" must be an integer in 1..={MAX_REWIND}")),
    }
}

/// `since` (v1.2): shape, epoch, key count, key syntax and values. Whether
/// each key is matched by an entry is checked later (`first_unmatched`),
/// once the entries' syntax is known to be good.
fn parse_since(obj: &Map<String, Value>, text: &str) -> Result<Option<Since>, String> {
    let Some(v) = obj.get("since") else {
        return Ok(None);
    };
    let Value::Object(since) = v else {
        return Err("\"since\" must be an object with \"epoch\" and \"seqs\"".into());
    };
    let epoch = match since.get("epoch") {
        Some(Value::String(e)) => e.clone(),
        _ => return Err("\"since.epoch\" must be a string".into()),
    };
    let Some(Value::Object(seqs)) = since.get("seqs") else {
        return Err("\"since.seqs\" must be an object".into());
    };
    if seqs.len() > MAX_SINCE_KEYS {
        return Err(format!(
            "\"since.seqs\" has more than {MAX_SINCE_KEYS} topics"
        ));
    }
    let keys = key_order::seqs_keys(text, seqs);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if !crate::topic::is_valid_topic(key) {
            return Err(format!(
                "\"since.seqs\" key {:?} is not a topic (no patterns)",
                clip(key)
            ));
        }
        match seqs.get(key).and_then(Value::as_u64) {
            Some(seq) if seq <= MAX_SEQ => out.push((key.to_owned(), seq)),
            _ => {
                return Err(format!(
                    "\"since.seqs\" value of {:?} must be an integer in 0..={MAX_SEQ}",
                    clip(key)
                ))
            }
        }
    }
    Ok(Some(Since { epoch, seqs: out }))
}

/// The first key of `since` that no selector matches (equal to an exact
/// entry, or starting with a pattern's prefix). Costs O(keys × 64 +
/// entries), however many entries the request has.
fn first_unmatched<'a>(since: &'a Since, selectors: &[Selector]) -> Option<&'a str> {
    let mut exact = HashSet::new();
    let mut prefixes = HashSet::new();
    for s in selectors {
        match s {
            Selector::Exact(t) => exact.insert(&**t),
            Selector::Prefix(p) => prefixes.insert(&**p),
        };
    }
    since.seqs.iter().map(|(k, _)| k.as_str()).find(|key| {
        let by_prefix = || {
            // Keys are ASCII (checked), so every byte index is a boundary;
            // `get` keeps this panic-free regardless.
            (0..=key.len()).any(|n| key.get(..n).is_some_and(|p| prefixes.contains(p)))
        };
        !(exact.contains(key) || by_prefix())
    })
}

mod encode;
mod fast;
mod key_order;

pub use encode::{encode_auth, encode_subscribe, encode_subscribe_resume, encode_unsubscribe};

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
