//! The `id:` of the quote events on `GET /sse` (protocol v1.2): an opaque
//! resume token, which a browser's `EventSource` sends back in
//! `Last-Event-ID` when it reconnects. Pure: bytes in, bytes out.
//!
//! # Format
//! `EPOCH.INSTANCE.ACCEPTED`, all three in lowercase hexadecimal:
//! - `EPOCH`: exactly 16 digits, the broker's epoch (the 16-hex-digit
//!   string of `crate::epoch`, see [`epoch_bits`] and [`epoch_string`]);
//! - `INSTANCE`: exactly 16 digits, a random id of the broker process that
//!   issued the id;
//! - `ACCEPTED`: 1 to 16 digits with no leading zero (`0` is `0`), the
//!   router's accept counter of the quote.
//!
//! e.g. `9f3b2c71a0d4e815.00000000deadbeef.2a`; at most 16 + 1 + 16 + 1 +
//! 16 = 50 bytes, within the protocol's 64. Each `EventId` has exactly one
//! text and [`EventId::parse`] accepts exactly the texts
//! [`EventId::write`] produces, with surrounding ASCII whitespace (space,
//! tab, CR, LF, form feed) trimmed: no uppercase, no sign, no missing or
//! extra leading zero, no other separator, nothing more than 64 bytes.

/// The protocol's bound on an event id; [`EventId::write`] stays within
/// [`EventId::MAX_WRITTEN`].
pub const MAX_EVENT_ID_LEN: usize = 64;
const _: () = assert!(EventId::MAX_WRITTEN <= MAX_EVENT_ID_LEN);

/// A quote event's position: which epoch, which broker process, which
/// quote of the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub epoch: u64,
    pub instance: u64,
    pub accepted: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl EventId {
    /// The longest text [`EventId::write`] produces.
    pub const MAX_WRITTEN: usize = 16 + 1 + 16 + 1 + 16;

    /// Appends the id's text (see the module's documentation) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(Self::MAX_WRITTEN);
        hex_digits(out, self.epoch, 16);
        out.push(b'.');
        hex_digits(out, self.instance, 16);
        out.push(b'.');
        let significant = (64 - self.accepted.leading_zeros()).div_ceil(4).max(1);
        hex_digits(out, self.accepted, significant);
    }

    /// The id whose [`EventId::write`] text `text` is, surrounding ASCII
    /// whitespace aside; `None` for anything else.
    pub fn parse(text: &[u8]) -> Option<EventId> {
        let text = text.trim_ascii();
        if text.len() > Self::MAX_WRITTEN {
            return None;
        }
        let mut fields = text.split(|&b| b == b'.');
        let (epoch, instance, accepted) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some()
            || epoch.len() != 16
            || instance.len() != 16
            || (accepted.len() > 1 && accepted.first() == Some(&b'0'))
        {
            return None;
        }
        Some(EventId {
            epoch: parse_hex(epoch)?,
            instance: parse_hex(instance)?,
            accepted: parse_hex(accepted)?,
        })
    }
}

/// The broker's epoch (`crate::epoch::new_epoch`: exactly 16 lowercase hex
/// digits) as a number; `None` for any other string (e.g. an epoch some
/// other tool stored for a cluster), which then has no event ids.
pub fn epoch_bits(epoch: &str) -> Option<u64> {
    if epoch.len() != 16 {
        return None;
    }
    parse_hex(epoch.as_bytes())
}

/// The inverse of [`epoch_bits`]: the 16-digit epoch string of `bits`.
#[cfg(test)]
pub fn epoch_string(bits: u64) -> String {
    format!("{bits:016x}")
}

/// The low `digits` hex digits of `value`, most significant first.
fn hex_digits(out: &mut Vec<u8>, value: u64, digits: u32) {
    for i in (0..digits).rev() {
        let nibble = value.checked_shr(4 * i).unwrap_or(0) & 0xf;
        out.push(HEX[nibble as usize]);
    }
}

/// 1 to 16 lowercase hex digits.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(id: EventId) -> String {
        let mut out = Vec::new();
        id.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    const ID: EventId = EventId {
        epoch: 0x9f3b_2c71_a0d4_e815,
        instance: 0xdead_beef,
        accepted: 42,
    };

    #[test]
    fn the_format() {
        assert_eq!(text(ID), "9f3b2c71a0d4e815.00000000deadbeef.2a");
        let zero = EventId {
            epoch: 0,
            instance: 0,
            accepted: 0,
        };
        assert_eq!(text(zero), "0000000000000000.0000000000000000.0");
        let max = EventId {
            epoch: u64::MAX,
            instance: u64::MAX,
            accepted: u64::MAX,
        };
        assert_eq!(
            text(max),
            "ffffffffffffffff.ffffffffffffffff.ffffffffffffffff"
        );
        assert_eq!(text(max).len(), EventId::MAX_WRITTEN);
        const { assert!(EventId::MAX_WRITTEN <= MAX_EVENT_ID_LEN) };
        for (accepted, s) in [(1, "1"), (15, "f"), (16, "10"), (255, "ff"), (256, "100")] {
            let id = EventId { accepted, ..zero };
            assert!(text(id).ends_with(&format!(".{s}")), "{accepted}");
        }
        // Appends.
        let mut out = b"id: ".to_vec();
        ID.write(&mut out);
        assert_eq!(out, b"id: 9f3b2c71a0d4e815.00000000deadbeef.2a");
    }

    #[test]
    fn parse_reads_what_write_wrote() {
        assert_eq!(
            EventId::parse(b"9f3b2c71a0d4e815.00000000deadbeef.2a"),
            Some(ID)
        );
        assert_eq!(
            EventId::parse(b" \t9f3b2c71a0d4e815.00000000deadbeef.2a\r\n"),
            Some(ID)
        );
        assert_eq!(
            EventId::parse(b"0000000000000000.0000000000000000.0"),
            Some(EventId {
                epoch: 0,
                instance: 0,
                accepted: 0
            })
        );
    }

    #[test]
    fn parse_refuses_everything_else() {
        for bad in [
            "",
            " ",
            ".",
            "..",
            "9f3b2c71a0d4e815.00000000deadbeef",
            "9f3b2c71a0d4e815.00000000deadbeef.",
            "9f3b2c71a0d4e815.00000000deadbeef.2a.",
            "9f3b2c71a0d4e815.00000000deadbeef.2a.1",
            ".9f3b2c71a0d4e815.00000000deadbeef.2a",
            // Uppercase.
            "9F3B2C71A0D4E815.00000000deadbeef.2a",
            "9f3b2c71a0d4e815.00000000DEADBEEF.2a",
            "9f3b2c71a0d4e815.00000000deadbeef.2A",
            // Leading zeros: fixed width, minimal counter.
            "9f3b2c71a0d4e815.00000000deadbeef.02a",
            "9f3b2c71a0d4e815.00000000deadbeef.00",
            "9f3b2c71a0d4e815.0000000deadbeef.2a",
            "09f3b2c71a0d4e815.00000000deadbeef.2a",
            "f3b2c71a0d4e815.00000000deadbeef.2a",
            "9f3b2c71a0d4e815.000000000deadbeef.2a",
            // Over 16 digits.
            "9f3b2c71a0d4e815.00000000deadbeef.10000000000000000",
            // Signs, prefixes, other digits, separators, inner space.
            "9f3b2c71a0d4e815.00000000deadbeef.+2a",
            "9f3b2c71a0d4e815.00000000deadbeef.-1",
            "9f3b2c71a0d4e815.00000000deadbeef.0x2a",
            "9f3b2c71a0d4e815.00000000deadbeeg.2a",
            "9f3b2c71a0d4e815:00000000deadbeef:2a",
            "9f3b2c71a0d4e815.00000000deadbeef.2 a",
            "9f3b2c71a0d4e815 .00000000deadbeef.2a",
            "9f3b2c71a0d4e815.00000000deadbeef.2a\0",
            "9f3b2c71a0d4e815.00000000deadbeef.٢",
            // Other whitespace is not trimmed (vertical tab, NBSP).
            "\x0b9f3b2c71a0d4e815.00000000deadbeef.2a",
            "9f3b2c71a0d4e815.00000000deadbeef.2a\u{a0}",
        ] {
            assert_eq!(EventId::parse(bad.as_bytes()), None, "{bad:?}");
        }
        let long = format!("9f3b2c71a0d4e815.00000000deadbeef.{}", "f".repeat(40));
        assert!(long.len() > MAX_EVENT_ID_LEN);
        assert_eq!(EventId::parse(long.as_bytes()), None);
        assert_eq!(EventId::parse(&[0xff; 50]), None);
    }

    #[test]
    fn epochs() {
        assert_eq!(epoch_bits("9f3b2c71a0d4e815"), Some(0x9f3b_2c71_a0d4_e815));
        assert_eq!(epoch_bits("0000000000000000"), Some(0));
        assert_eq!(epoch_bits("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(epoch_string(0x9f3b_2c71_a0d4_e815), "9f3b2c71a0d4e815");
        assert_eq!(epoch_string(1), "0000000000000001");
        for _ in 0..32 {
            let epoch = crate::epoch::new_epoch();
            let bits = epoch_bits(&epoch).unwrap();
            assert_eq!(epoch_string(bits), epoch);
        }
        for bad in [
            "",
            "9f3b2c71a0d4e81",
            "9f3b2c71a0d4e8150",
            "9F3B2C71A0D4E815",
            "9f3b2c71a0d4e81g",
            " 9f3b2c71a0d4e81",
            "+f3b2c71a0d4e815",
            "9f3b2c71a0d4e8é",
            "cluster-epoch-01",
        ] {
            assert_eq!(epoch_bits(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn round_trips(epoch in any::<u64>(), instance in any::<u64>(), accepted in prop_oneof![any::<u64>(), 0u64..300]) {
            let id = EventId { epoch, instance, accepted };
            let mut out = Vec::new();
            id.write(&mut out);
            prop_assert!(out.len() <= MAX_EVENT_ID_LEN);
            prop_assert_eq!(EventId::parse(&out), Some(id));
            let padded = [b" \t".as_slice(), &out, b"\r\n "].concat();
            prop_assert_eq!(EventId::parse(&padded), Some(id));
            prop_assert_eq!(epoch_bits(&epoch_string(epoch)), Some(epoch));
        }

        /// Whatever parses is, once trimmed, exactly what `write` makes of
        /// the result: `parse` accepts nothing `write` cannot produce.
        #[test]
        fn parse_accepts_only_what_write_produces(bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            "[0-9a-fA-F. \t]{0,60}".prop_map(String::into_bytes),
            "[0-9a-f]{14,17}\\.[0-9a-f]{14,17}\\.[0-9a-f]{0,17}".prop_map(String::into_bytes),
        ]) {
            if let Some(id) = EventId::parse(&bytes) {
                let mut out = Vec::new();
                id.write(&mut out);
                prop_assert_eq!(out.as_slice(), bytes.trim_ascii());
            }
        }

        /// One byte changed, inserted or removed in a written id: either
        /// refused or another id's exact text.
        #[test]
        fn mutations_of_a_written_id(epoch in any::<u64>(), instance in any::<u64>(), accepted in any::<u64>(), at in any::<prop::sample::Index>(), byte in any::<u8>(), how in 0..3u8) {
            let mut bytes = Vec::new();
            EventId { epoch, instance, accepted }.write(&mut bytes);
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
            if let Some(id) = EventId::parse(&bytes) {
                let mut out = Vec::new();
                id.write(&mut out);
                prop_assert_eq!(out.as_slice(), bytes.trim_ascii());
            }
        }

        #[test]
        fn epoch_bits_accepts_only_epoch_strings(s in prop_oneof![".{0,20}", "[0-9a-fA-F]{15,17}"]) {
            if let Some(bits) = epoch_bits(&s) {
                prop_assert_eq!(epoch_string(bits), s);
            }
        }
    }
}
