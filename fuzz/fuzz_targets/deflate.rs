//! permessage-deflate on arbitrary bytes (`tickwire_ws::deflate`). The
//! first byte picks the path:
//! - 0: the `Sec-WebSocket-Extensions` parser and negotiation, on header
//!   values split at `\n`: never a panic, and an answer is always one of
//!   the two tickwire may give;
//! - 1: bounded inflate of arbitrary bytes under a limit taken from the
//!   next two bytes: never a panic, never more than the limit (+1 when
//!   refused), and the inflater still works afterwards;
//! - 2: compression of arbitrary bytes inflates back to them, and not
//!   under a limit one byte short.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use tickwire_ws::deflate::{deflate_message, negotiate, InflateError, Inflater, RESPONSE};

thread_local! {
    // Kept across inputs, as a worker keeps one for all its connections.
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    INFLATER.with(|inf| {
        let mut inf = inf.borrow_mut();
        match mode % 3 {
            0 => {
                let values: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
                if let Some(answer) = negotiate(&values) {
                    assert!(
                        answer == RESPONSE
                            || answer == format!("{RESPONSE}; server_max_window_bits=15"),
                        "{answer}"
                    );
                }
            }
            1 => {
                let (max, bytes) = match rest {
                    [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
                    _ => return,
                };
                let mut out = Vec::new();
                match inf.inflate(bytes, max, &mut out) {
                    Ok(()) => assert!(out.len() <= max),
                    Err(_) => assert!(out.len() <= max + 1),
                }
                let mut c = Vec::new();
                deflate_message(b"{\"op\":\"ping\"}", &mut c);
                out.clear();
                inf.inflate(&c, 64, &mut out)
                    .expect("reusable after any input");
                assert_eq!(out, b"{\"op\":\"ping\"}");
            }
            _ => {
                let mut c = Vec::new();
                deflate_message(rest, &mut c);
                let mut out = Vec::new();
                inf.inflate(&c, rest.len(), &mut out).expect("round trip");
                assert_eq!(out, rest);
                if !rest.is_empty() {
                    assert_eq!(
                        inf.inflate(&c, rest.len() - 1, &mut Vec::new()),
                        Err(InflateError::TooBig)
                    );
                }
            }
        }
    });
});
