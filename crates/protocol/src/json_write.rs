//! Minimal hand-written JSON output, shared by the server messages (hot
//! path: no serde_json Value, no temporary Strings) and the client requests.

use std::fmt::{self, Write as _};

/// Something JSON text can be appended to: a `String` or a byte buffer.
pub(crate) trait JsonOut {
    fn push_text(&mut self, s: &str);
}

impl JsonOut for String {
    fn push_text(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl JsonOut for Vec<u8> {
    fn push_text(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// Lets `write!` format numbers straight into the output.
struct Fmt<'a, O: JsonOut + ?Sized>(&'a mut O);

impl<O: JsonOut + ?Sized> fmt::Write for Fmt<'_, O> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_text(s);
        Ok(())
    }
}

/// Writes `s` as a quoted JSON string.
pub(crate) fn string<O: JsonOut + ?Sized>(out: &mut O, s: &str) {
    out.push_text("\"");
    // The common case (topics, epochs): nothing to escape, so one tight
    // scan and one copy rather than a byte-by-byte walk (an ack of ten
    // topics cost ~3,300 instructions that way).
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_text(s);
        out.push_text("\"");
        return;
    }
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        // Only '"', '\\' and control bytes need escaping; multi-byte UTF-8
        // never contains bytes < 0x80, so slicing at these indices is safe.
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_text(s.get(plain_from..i).unwrap_or(""));
        match esc {
            Some(e) => out.push_text(e),
            None => {
                let _ = write!(Fmt(out), "\\u{:04x}", b);
            }
        }
        plain_from = i + 1;
    }
    out.push_text(s.get(plain_from..).unwrap_or(""));
    out.push_text("\"");
}

pub(crate) fn u64_num<O: JsonOut + ?Sized>(out: &mut O, n: u64) {
    out.push_text(itoa::Buffer::new().format(n));
}

/// Writes an f64 so that parsing it gives back the same bits; non-finite
/// values have no JSON form and become `null`.
///
/// ryu writes the shortest round-tripping form, always valid JSON for
/// finite values ("300.0", "-0.0", "1e300", "5e-324"), unlike `Display`
/// which spells 1e300 out in 301 digits — and cheaper than `{:?}` through
/// `fmt`: a JSON quote went from 727 to 448 ns (`benches`, `quote_encoding`).
pub(crate) fn f64_num<O: JsonOut + ?Sized>(out: &mut O, x: f64) {
    if x.is_finite() {
        out.push_text(ryu::Buffer::new().format_finite(x));
    } else {
        out.push_text("null");
    }
}

/// Writes `"key":` (keys are fixed ASCII identifiers, never escaped).
pub(crate) fn key<O: JsonOut + ?Sized>(out: &mut O, k: &str) {
    out.push_text("\"");
    out.push_text(k);
    out.push_text("\":");
}

/// Writes a JSON array of strings.
pub(crate) fn string_array<O: JsonOut + ?Sized, S: AsRef<str>>(out: &mut O, items: &[S]) {
    out.push_text("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_text(",");
        }
        string(out, s.as_ref());
    }
    out.push_text("]");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut o = String::new();
        string(&mut o, s);
        o
    }

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(esc("AAPL"), "\"AAPL\"");
        assert_eq!(esc("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
        for s in ["", "\u{0}\u{1f}\u{7f}", "x\"", "日本\t語"] {
            let back: String = serde_json::from_str(&esc(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    proptest::proptest! {
        /// Both paths (nothing to escape, something to escape) round-trip.
        #[test]
        fn any_string_round_trips(s in "(?s).{0,40}") {
            let back: String = serde_json::from_str(&esc(&s)).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn floats_are_valid_json_and_exact() {
        for x in [
            0.0,
            -0.0,
            300.0,
            189.12,
            1e300,
            -1e-300,
            5e-324,
            f64::MAX,
            1e16,
        ] {
            let mut o = String::new();
            f64_num(&mut o, x);
            let back: f64 = serde_json::from_str(&o).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{o}");
        }
        let mut o = String::new();
        f64_num(&mut o, 300.0);
        assert_eq!(o, "300.0");
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut o = String::new();
            f64_num(&mut o, x);
            assert_eq!(o, "null");
        }
    }
}
