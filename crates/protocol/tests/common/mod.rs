//! Strategies shared by the property tests: numbers as a feed may send
//! them (every bit pattern: NaN payloads, signed zeros, infinities) and
//! whole quotes.

#![allow(dead_code)] // each test binary uses a different subset

use proptest::prelude::*;
use tickwire_protocol::Quote;

/// Any f64, weighted towards the values codecs get wrong.
pub fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
        Just(f64::MAX),
        Just(5e-324),
        // any NaN payload, including signalling ones
        any::<u64>().prop_map(|b| f64::from_bits(b | 0x7ff0_0000_0000_0001)),
    ]
}

/// Six of them, in wire order.
pub fn six_f64() -> impl Strategy<Value = [f64; 6]> {
    [
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
    ]
}

/// A quote with a valid topic and any numbers.
pub fn quote() -> impl Strategy<Value = Quote> {
    ("[A-Za-z0-9._:/-]{1,64}", six_f64(), any::<u64>()).prop_map(|(topic, n, ts)| Quote {
        topic,
        bid: n[0],
        ask: n[1],
        bid_size: n[2],
        ask_size: n[3],
        last: n[4],
        volume: n[5],
        ts,
    })
}
