//! Client → server control requests (one JSON object per WebSocket text
//! frame): parsing and validation for the broker, encoding for clients.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::json_write::{self, JsonOut};
use crate::topic::Selector;
use crate::MAX_SEQ;

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
        topics: Vec<String>,
    },
    /// `{"op":"auth","token":"<JWT>","id":7}` (v1.1 entitlements).
    Auth { id: Option<u64>, token: String },
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
            Selector::Exact(t) => exact.insert(t.as_str()),
            Selector::Prefix(p) => prefixes.insert(p.as_str()),
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

/// The order of `since.seqs`'s keys as written. serde_json's `Map` (without
/// its `preserve_order` feature, which would change `Map` for the whole
/// workspace) sorts keys, so a second, allocation-light pass over the text
/// reads their order; it only runs for a request with two or more keys.
mod key_order {
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// The keys of `seqs` (the parsed `since.seqs` of `text`) in the order
    /// of their first appearance in `text`. Falls back to `seqs`' own order
    /// should the second pass ever disagree with the first.
    pub(super) fn seqs_keys<'m>(text: &str, seqs: &'m Map<String, Value>) -> Vec<&'m str> {
        if seqs.len() > 1 {
            if let Some(order) = written_order(text) {
                let keys: Option<Vec<&str>> = order
                    .iter()
                    .map(|k| seqs.get_key_value(k.as_str()).map(|(k, _)| k.as_str()))
                    .collect();
                if let Some(keys) = keys.filter(|k| k.len() == seqs.len()) {
                    return keys;
                }
            }
        }
        seqs.keys().map(String::as_str).collect()
    }

    /// `since.seqs`'s distinct keys in written order; the last `since` and
    /// the last `seqs` count, as in serde_json's `Map`.
    fn written_order(text: &str) -> Option<Vec<String>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let keys = Probe(Top).deserialize(&mut de).ok()??;
        let mut seen = HashSet::new();
        Some(
            keys.into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect(),
        )
    }

    /// What to do with a JSON object; anything else gives `None`.
    trait OnObject {
        fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<Vec<String>>, A::Error>;
    }

    /// The request: looks into `since`.
    #[derive(Clone, Copy)]
    struct Top;
    /// `since`: looks into `seqs`.
    #[derive(Clone, Copy)]
    struct SinceObj;
    /// `seqs`: its keys as written (duplicates too).
    #[derive(Clone, Copy)]
    struct SeqsObj;

    /// `Some` from the last occurrence of `field` whose value gave `Some`.
    fn look_into<'de, A: MapAccess<'de>, O: OnObject + Copy>(
        mut map: A,
        field: &str,
        inner: O,
    ) -> Result<Option<Vec<String>>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == field {
                // A later duplicate replaces an earlier one (last wins).
                found = map.next_value_seed(Probe(inner))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    impl OnObject for Top {
        fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<Vec<String>>, A::Error> {
            look_into(map, "since", SinceObj)
        }
    }

    impl OnObject for SinceObj {
        fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<Vec<String>>, A::Error> {
            look_into(map, "seqs", SeqsObj)
        }
    }

    impl OnObject for SeqsObj {
        fn object<'de, A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Option<Vec<String>>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(Some(keys))
        }
    }

    /// Accepts any JSON value; an object goes to `O`.
    struct Probe<O>(O);

    impl<'de, O: OnObject> DeserializeSeed<'de> for Probe<O> {
        type Value = Option<Vec<String>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, O: OnObject> Visitor<'de> for Probe<O> {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.object(map)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
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
    encode_subscribe_resume(topics, id, snapshot, max_hz, None, None)
}

/// Encodes a subscribe request with the v1.2 fields (client side):
/// `"rewind":N` and `"since":{"epoch":..,"seqs":{..}}` (keys in
/// `since.seqs` order). `None` fields are omitted. Nothing is validated
/// here: the server refuses what breaks the rules (a `since` key no entry
/// matches, `rewind` with `snapshot: Some(false)`, …).
pub fn encode_subscribe_resume(
    topics: &[&str],
    id: Option<u64>,
    snapshot: Option<bool>,
    max_hz: Option<f64>,
    since: Option<&Since>,
    rewind: Option<u16>,
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
    if let Some(n) = rewind {
        out.push(',');
        json_write::key(&mut out, "rewind");
        json_write::u64_num(&mut out, u64::from(n));
    }
    if let Some(since) = since {
        out.push(',');
        json_write::key(&mut out, "since");
        out.push('{');
        json_write::key(&mut out, "epoch");
        json_write::string(&mut out, &since.epoch);
        out.push(',');
        json_write::key(&mut out, "seqs");
        out.push('{');
        for (i, (topic, seq)) in since.seqs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_write::string(&mut out, topic);
            out.push(':');
            json_write::u64_num(&mut out, *seq);
        }
        out.push_text("}}");
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
