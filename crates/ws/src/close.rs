//! Close status codes (RFC 6455 section 7.4).

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// Endpoint is going away (server shutdown, client navigating away).
pub const GOING_AWAY: u16 = 1001;
/// The peer violated the framing protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The peer sent a data type we do not accept (binary frames).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// Payload inconsistent with the message type (text that is not UTF-8).
pub const INVALID_PAYLOAD: u16 = 1007;
/// Generic policy violation.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message exceeded the configured size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Unexpected server-side condition.
pub const INTERNAL_ERROR: u16 = 1011;

/// Whether `code` may legitimately appear in a received close frame.
///
/// 1004 is reserved, 1005/1006/1015 are "pseudo codes" that must never be
/// sent on the wire, 1016-2999 are reserved for future RFCs, and 0-999 /
/// 5000+ are not assigned at all. 3000-3999 (IANA registered) and 4000-4999
/// (private use) are accepted because applications may use them.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4000, 4999,
        ] {
            assert!(is_valid_close_code(code), "{code} should be valid");
        }
    }

    #[test]
    fn invalid_ranges() {
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(code), "{code} should be invalid");
        }
    }
}
