//! The order of `since.seqs`'s keys as written. serde_json's `Map` (without
//! its `preserve_order` feature, which would change `Map` for the whole
//! workspace) sorts keys, so a second, allocation-light pass over the text
//! reads their order; it only runs for a request with two or more keys.

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
    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Vec<String>>, A::Error> {
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
