//! Incremental UTF-8 validation for fragmented text messages.
//!
//! RFC 6455 (8.1) asks endpoints to fail a connection as soon as text is
//! known to be invalid, not only once the message is complete; a char may
//! legitimately be split across fragments, so a truncated sequence at the
//! end of a non-final fragment is not an error yet.

/// Outcome of validating newly appended bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Utf8Check {
    /// Everything is valid up to this index; bytes after it (at most 3)
    /// are the start of a char that continues in a later fragment.
    ValidUpTo(usize),
    /// The bytes can never become valid UTF-8.
    Invalid,
}

/// Validates `buf[valid_up_to..]`, given that `buf[..valid_up_to]` is
/// already known to be valid and ends on a char boundary. `fin` says no
/// more bytes will follow, so a truncated trailing char is an error.
pub(crate) fn validate_tail(buf: &[u8], valid_up_to: usize, fin: bool) -> Utf8Check {
    let Some(tail) = buf.get(valid_up_to..) else {
        return Utf8Check::Invalid;
    };
    match std::str::from_utf8(tail) {
        Ok(_) => Utf8Check::ValidUpTo(buf.len()),
        // error_len() == None: the input ended inside a char whose bytes so
        // far are a valid prefix; only acceptable if more bytes may follow.
        Err(e) if e.error_len().is_none() && !fin => {
            Utf8Check::ValidUpTo(valid_up_to + e.valid_up_to())
        }
        Err(_) => Utf8Check::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_char_waits_unless_final() {
        let euro = "€".as_bytes(); // 3 bytes
        let buf = [b'a', euro[0], euro[1]];
        assert_eq!(validate_tail(&buf, 0, false), Utf8Check::ValidUpTo(1));
        assert_eq!(validate_tail(&buf, 0, true), Utf8Check::Invalid);
    }

    #[test]
    fn invalid_byte_fails_even_when_not_final() {
        assert_eq!(validate_tail(&[b'a', 0xFF], 0, false), Utf8Check::Invalid);
        // 0xF4 0x90 would encode above U+10FFFF: provably invalid already.
        assert_eq!(validate_tail(&[0xF4, 0x90], 0, false), Utf8Check::Invalid);
    }

    #[test]
    fn resumes_from_previous_index() {
        let s = "héllo".as_bytes();
        assert_eq!(validate_tail(s, 1, true), Utf8Check::ValidUpTo(s.len()));
        assert_eq!(validate_tail(s, 99, true), Utf8Check::Invalid);
    }
}
