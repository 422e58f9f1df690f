//! The query string of `GET /sse?…` (protocol v1.2, "Server-Sent Events
//! fallback"): the stream's subscribe, validated by the very parser that
//! `/ws` uses ([`parse_request`]), and the token. Pure: text in, a request
//! or an error out.
//!
//! # The query
//! `name=value` pairs separated by `&`; a bare `name` has the value `""`,
//! empty pairs (`a=1&&b=2`, a leading or trailing `&`) are skipped. Names
//! are matched exactly as written, not percent-decoded (as `/ws` matches
//! `format`). Parameters:
//!
//! | name | value |
//! |---|---|
//! | `topics` | required, non-empty: entries separated by `,` (the subscribe syntax) |
//! | `snapshot` | `true` or `false` (default `true`) |
//! | `max_hz` | a decimal number: digits, optionally `.` and more digits (`4`, `0.5`, `0010` = `10`); no sign, no exponent |
//! | `rewind` | digits (`64`) |
//! | `since` | the subscribe's `since` object as JSON (`{"epoch":"…","seqs":{"AAPL":1041}}`) |
//! | `token` | a JWT (the `auth` request's token) |
//!
//! Every value is percent-decoded (`%XX`, hex digits of either case) and
//! must then be UTF-8. `+` stays a literal `+`, not a space: this is an
//! RFC 3986 query, not an HTML form, and no value needs a space (topics and
//! JWTs cannot hold one; JSON needs none between its tokens). Browsers'
//! `encodeURIComponent` produces exactly this; `URLSearchParams` does too
//! as long as no value holds a space. `topics` is split on its raw `,`
//! *before* decoding, so `%2C` is a comma inside an entry (where it is a
//! bad topic), and `FX.%2A` is the pattern `FX.*`.
//!
//! Any other parameter is ignored, whatever it holds (cache busters like
//! `_=123`, `delta=1` which the transport reads itself).
//!
//! # The rules
//! The subscribe is built as the JSON text the WebSocket client would send
//! (`{"op":"subscribe","topics":[…],…,"since":…}`, without `id`) and given
//! to [`parse_request`], so every rule and error code is `/ws`'s: a bad
//! topic (an empty entry, as in `A,,B`, included) → `bad_topic`; `max_hz`
//! outside (0, 1000], `rewind` outside 1..=1024, `rewind` with
//! `snapshot=false`, a malformed `since` (more than 1,024 keys, a key no
//! entry matches, …) → `bad_request`. Before that, this module refuses
//! with `bad_request`: `topics` missing or empty, a parameter of the table
//! given twice, bad percent-encoding (`%` not followed by two hex digits)
//! or a value that is not UTF-8 once decoded (in any parameter of the
//! table), `snapshot` other than `true`/`false`, a `max_hz`/`rewind` that
//! is not in the number syntax above (so `1e3` is refused where `/ws`
//! takes it), `since` that is not one JSON value, a `token` over
//! [`MAX_TOKEN_LEN`] bytes. No error message ever holds the token.
//!
//! # Cost
//! Linear in the query's length (which the request-head limit bounds, 8 KiB
//! by default): one split, each value decoded once, the JSON parsed twice
//! (`since` on its own, then the whole request), and `since` keys matched
//! against the entries in O(keys × 64) (see [`parse_request`]).

use serde_json::{Map, Value};
use tickwire_protocol::control::{parse_request, ErrorCode, Request, MAX_TOKEN_LEN};

/// What `/sse?…` asks for: the stream's subscribe, as the WebSocket JSON
/// protocol would carry it (`Request::Subscribe`, `id: None`), and the
/// token if the query has one (`token=` gives `Some("")`, a token that does
/// not verify, as an empty `auth` token).
#[derive(Clone, Debug, PartialEq)]
pub struct SseQuery {
    pub request: Request<'static>,
    pub token: Option<String>,
}

/// Why a query is refused: answered with `400` and [`SseQueryError::body`].
/// `code` is `BadRequest` or `BadTopic`; `message` never holds the token.
#[derive(Clone, Debug, PartialEq)]
pub struct SseQueryError {
    pub code: ErrorCode,
    pub message: String,
}

fn bad(message: impl Into<String>) -> SseQueryError {
    SseQueryError {
        code: ErrorCode::BadRequest,
        message: message.into(),
    }
}

/// The raw (still encoded) values of the parameters this module reads.
#[derive(Default)]
struct Raw<'q> {
    topics: Option<&'q str>,
    snapshot: Option<&'q str>,
    max_hz: Option<&'q str>,
    rewind: Option<&'q str>,
    since: Option<&'q str>,
    token: Option<&'q str>,
}

impl<'q> Raw<'q> {
    fn slot(&mut self, name: &str) -> Option<&mut Option<&'q str>> {
        Some(match name {
            "topics" => &mut self.topics,
            "snapshot" => &mut self.snapshot,
            "max_hz" => &mut self.max_hz,
            "rewind" => &mut self.rewind,
            "since" => &mut self.since,
            "token" => &mut self.token,
            _ => return None,
        })
    }

    fn split(query: &'q str) -> Result<Raw<'q>, SseQueryError> {
        let mut raw = Raw::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Unknown parameters are ignored (their names may be anything;
            // only ours are ever quoted in a message).
            let Some(slot) = raw.slot(name) else {
                continue;
            };
            if slot.is_some() {
                return Err(bad(format!("query parameter {name:?} given twice")));
            }
            *slot = Some(value);
        }
        Ok(raw)
    }
}

/// Parses the query of `GET /sse` (the raw part after `?`, `""` when there
/// is none): see the module's documentation for the rules.
pub fn parse_sse_query(query: &str) -> Result<SseQuery, SseQueryError> {
    let raw = Raw::split(query)?;
    let topics = match raw.topics {
        None | Some("") => return Err(bad("missing \"topics\" query parameter")),
        Some(t) => t
            .split(',')
            .map(|entry| decode(entry).map(Value::String))
            .collect::<Option<Vec<Value>>>()
            .ok_or_else(|| not_utf8("topics"))?,
    };
    let mut obj = Map::new();
    obj.insert("op".into(), Value::String("subscribe".into()));
    obj.insert("topics".into(), Value::Array(topics));
    if let Some(v) = raw.snapshot {
        let snapshot = match decode(v).ok_or_else(|| not_utf8("snapshot"))?.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(bad("\"snapshot\" must be true or false")),
        };
        obj.insert("snapshot".into(), Value::Bool(snapshot));
    }
    if let Some(v) = raw.max_hz {
        let text = decode(v).ok_or_else(|| not_utf8("max_hz"))?;
        let n = number(&text, true).ok_or_else(|| {
            bad("\"max_hz\" must be a decimal number in (0, 1000], e.g. 4 or 0.5")
        })?;
        obj.insert("max_hz".into(), Value::Number(n));
    }
    if let Some(v) = raw.rewind {
        let text = decode(v).ok_or_else(|| not_utf8("rewind"))?;
        let n =
            number(&text, false).ok_or_else(|| bad("\"rewind\" must be an integer in 1..=1024"))?;
        obj.insert("rewind".into(), Value::Number(n));
    }
    let token = match raw.token {
        None => None,
        Some(v) => {
            let token = decode(v).ok_or_else(|| not_utf8("token"))?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(bad(format!(
                    "\"token\" must be at most {MAX_TOKEN_LEN} bytes"
                )));
            }
            Some(token)
        }
    };
    let mut text = serde_json::to_string(&obj).map_err(|e| bad(e.to_string()))?;
    if let Some(v) = raw.since {
        let since = decode(v).ok_or_else(|| not_utf8("since"))?;
        // One complete JSON value (surrounding whitespace allowed), so
        // splicing it in as a member cannot change the request's shape.
        // Spliced as text, not re-serialized: `parse_request` reads the
        // order of `since.seqs`' keys from the text.
        serde_json::from_str::<Value>(&since)
            .map_err(|e| bad(format!("\"since\" is not valid JSON: {e}")))?;
        if text.pop() != Some('}') {
            return Err(bad("internal: request is not a JSON object"));
        }
        text.push_str(",\"since\":");
        text.push_str(&since);
        text.push('}');
    }
    match parse_request(&text) {
        Ok(request @ Request::Subscribe { .. }) => Ok(SseQuery {
            request: request.into_owned(),
            token,
        }),
        Ok(_) => Err(bad("internal: not a subscribe")),
        Err(e) => Err(SseQueryError {
            code: e.code,
            message: e.message,
        }),
    }
}

fn not_utf8(name: &str) -> SseQueryError {
    bad(format!(
        "{name:?} is not valid percent-encoded UTF-8 (\"%\" must start \"%XX\")"
    ))
}

/// Percent-decodes `raw` (`%XX`, either case; `+` stays `+`). `None` for a
/// `%` not followed by two hex digits, or bytes that are not UTF-8.
fn decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| hex_value(h))?;
            let lo = bytes.get(i + 2).and_then(|&l| hex_value(l))?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `DIGITS` (or `DIGITS.DIGITS` when `fraction`) as the JSON number
/// serde_json reads from the same digits, leading zeros dropped (JSON has
/// none), so the range check in [`parse_request`] sees exactly what `/ws`
/// would. `None` for anything else, and for a number beyond f64.
fn number(text: &str, fraction: bool) -> Option<serde_json::Number> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) if fraction => (int, Some(frac)),
        Some(_) => return None,
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return None;
    }
    let int = match int.trim_start_matches('0') {
        "" => "0",
        int => int,
    };
    let json = match frac {
        Some(frac) => format!("{int}.{frac}"),
        None => int.to_owned(),
    };
    serde_json::from_str(&json).ok()
}

#[cfg(test)]
mod tests;
