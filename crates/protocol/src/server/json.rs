//! JSON encodings of server messages. Field order is part of the contract.

use crate::control::ErrorCode;
use crate::json_write::{self as w, JsonOut};
use crate::quote::Quote;

/// Writes `,"id":N` when the request carried an id.
fn id_field(out: &mut String, id: Option<u64>) {
    if let Some(id) = id {
        out.push(',');
        w::key(out, "id");
        w::u64_num(out, id);
    }
}

/// `{"type":"subscribed","id":1,"topics":[...],"epoch":"..."}`
pub fn json_subscribed<T: AsRef<str>>(id: Option<u64>, topics: &[T], epoch: &str) -> String {
    let mut out = subscribed_head(id, topics, epoch);
    out.push('}');
    out
}

/// The ack of a subscribe with `since` (v1.2):
/// `{"type":"subscribed","id":5,"topics":[...],"epoch":"...","recovered":true}`
/// when `unrecovered` is empty, else
/// `...,"recovered":false,"unrecovered":["FX.EURUSD"]}` (in the order given).
pub fn json_subscribed_resumed<T: AsRef<str>>(
    id: Option<u64>,
    topics: &[T],
    epoch: &str,
    unrecovered: &[&str],
) -> String {
    let mut out = subscribed_head(id, topics, epoch);
    if unrecovered.is_empty() {
        out.push_str(",\"recovered\":true}");
    } else {
        out.push_str(",\"recovered\":false,");
        w::key(&mut out, "unrecovered");
        w::string_array(&mut out, unrecovered);
        out.push('}');
    }
    out
}

/// `{"type":"subscribed","id":1,"topics":[...],"epoch":"..."` (open).
fn subscribed_head<T: AsRef<str>>(id: Option<u64>, topics: &[T], epoch: &str) -> String {
    // Sized once (the text plus the usual tail), not grown a topic at a
    // time: one ack per subscriber in a reconnect storm.
    let text: usize = topics.iter().map(|t| t.as_ref().len() + 3).sum();
    let mut out = String::with_capacity(96 + text + epoch.len());
    out.push_str("{\"type\":\"subscribed\"");
    id_field(&mut out, id);
    out.push(',');
    w::key(&mut out, "topics");
    w::string_array(&mut out, topics);
    out.push(',');
    w::key(&mut out, "epoch");
    w::string(&mut out, epoch);
    out
}

/// `{"type":"unsubscribed","id":3,"topics":[...]}`
pub fn json_unsubscribed<T: AsRef<str>>(id: Option<u64>, topics: &[T]) -> String {
    let mut out = String::from("{\"type\":\"unsubscribed\"");
    id_field(&mut out, id);
    out.push(',');
    w::key(&mut out, "topics");
    w::string_array(&mut out, topics);
    out.push('}');
    out
}

/// `{"type":"unsubscribed","topics":[...],"reason":"not_authorized"}`: entries
/// removed by the broker (a refreshed token no longer covers them).
pub fn json_revoked<T: AsRef<str>>(topics: &[T], reason: &str) -> String {
    let mut out = String::from("{\"type\":\"unsubscribed\",");
    w::key(&mut out, "topics");
    w::string_array(&mut out, topics);
    out.push(',');
    w::key(&mut out, "reason");
    w::string(&mut out, reason);
    out.push('}');
    out
}

/// `{"type":"authed","id":7,"sub":"alice","exp":1732345678}` (`sub` only
/// when the token has one).
pub fn json_authed(id: Option<u64>, sub: Option<&str>, exp: u64) -> String {
    let mut out = String::from("{\"type\":\"authed\"");
    id_field(&mut out, id);
    if let Some(sub) = sub {
        out.push(',');
        w::key(&mut out, "sub");
        w::string(&mut out, sub);
    }
    out.push(',');
    w::key(&mut out, "exp");
    w::u64_num(&mut out, exp);
    out.push('}');
    out
}

/// `{"type":"error","id":2,"code":"bad_request","message":"..."}`
pub fn json_error(id: Option<u64>, code: ErrorCode, message: &str) -> String {
    error_object(id, code.as_str(), message)
}

/// `{"type":"error","code":..,"message":..}` with a code outside the
/// request errors (an HTTP error body of `/sse`: `too_many_connections`).
pub fn json_error_code(code: &str, message: &str) -> String {
    error_object(None, code, message)
}

fn error_object(id: Option<u64>, code: &str, message: &str) -> String {
    let mut out = String::from("{\"type\":\"error\"");
    id_field(&mut out, id);
    out.push(',');
    w::key(&mut out, "code");
    w::string(&mut out, code);
    out.push(',');
    w::key(&mut out, "message");
    w::string(&mut out, message);
    out.push('}');
    out
}

/// Appends `{"type":"quote","topic":..,"seq":..,"bid":..,...,"ts":..}` to
/// `out`. Hot path: written straight into the caller's buffer. Non-finite
/// numbers become `null`.
pub fn json_quote(q: &Quote, seq: u64, out: &mut Vec<u8>) {
    out.push_text("{\"type\":\"quote\",\"topic\":");
    w::string(out, &q.topic);
    out.push_text(",\"seq\":");
    w::u64_num(out, seq);
    let nums = [
        (",\"bid\":", q.bid),
        (",\"ask\":", q.ask),
        (",\"bid_size\":", q.bid_size),
        (",\"ask_size\":", q.ask_size),
        (",\"last\":", q.last),
        (",\"volume\":", q.volume),
    ];
    for (k, x) in nums {
        out.push_text(k);
        w::f64_num(out, x);
    }
    out.push_text(",\"ts\":");
    w::u64_num(out, q.ts);
    out.push_text("}");
}
