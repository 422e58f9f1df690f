//! Client → server requests, encoded (the Rust client's side).

use super::Since;
use crate::json_write::{self, JsonOut};

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
