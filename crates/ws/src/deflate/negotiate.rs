//! `Sec-WebSocket-Extensions` parsing and the permessage-deflate answer
//! (RFC 6455 section 9.1 grammar, RFC 7692 section 7.1 rules).
//!
//! What tickwire agrees to, and why (the RFC 7692 sections in brackets):
//! - `server_no_context_takeover` is always in the answer, asked for or not
//!   (7.1.1.1: "A server MAY include [it] ... even if the extension
//!   negotiation offer being accepted ... didn't include [it]"). Every
//!   compressed message inflates on its own, so one compressed encoding of a
//!   quote serves every subscriber.
//! - `client_no_context_takeover` is always in the answer too (7.1.1.2: "A
//!   server MAY include the "client_no_context_takeover" extension parameter
//!   in an extension negotiation response"): client messages then inflate
//!   with a fresh context, so no connection keeps a 32 KiB inflate window.
//! - `server_max_window_bits=N`: the broker compresses with a 32 KiB window
//!   (15 bits) and one shared encoding, so only `N = 15` is honoured (and
//!   echoed, as 7.1.2.1 requires of an accepted offer with it). `8..=14`
//!   declines that offer: honouring it would need another encoding per
//!   window size (and raw deflate cannot do 8 at all: zlib turns it into 9
//!   or refuses it). No browser sends it. Without a value, or outside
//!   `8..=15`, or with a leading zero, it is invalid (7.1.2.1): decline.
//! - `client_max_window_bits` (with no value, or `8..=15`): accepted and left
//!   out of the answer, which lets the client use any window up to 32 KiB
//!   (7.1.2.2: the server "may either ignore this value"); the inflater
//!   always has a 15-bit window. It is never in the answer unless offered
//!   (7.1.2.2: "MUST NOT include").
//! - A parameter not defined for an offer, a parameter twice, an invalid
//!   value: that offer is declined and the next one tried (section 7.1). The
//!   first acceptable offer wins (section 5: offers are in preference
//!   order).
//! - A header that does not parse (a bad token, an open quote, a stray
//!   `;`): no extension at all. A client never gets an answer built on a
//!   guess.

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The answer to an offer without `server_max_window_bits`.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The only server window the broker compresses with (32 KiB).
pub const SERVER_WINDOW_BITS: u8 = 15;

/// The `Sec-WebSocket-Extensions` value to answer `offers` (the request's
/// `Sec-WebSocket-Extensions` header values, in order) with, or `None` to
/// decline compression (send no such header). Never panics, whatever the
/// bytes.
pub fn negotiate(offers: &[&[u8]]) -> Option<String> {
    let extensions = parse_extension_list(offers)?;
    extensions
        .iter()
        .filter(|ext| ext.name == PERMESSAGE_DEFLATE.as_bytes())
        .find_map(|ext| accept(&ext.params))
}

/// One parameter of an offer: name and, if given, the value (quoted-string
/// values unescaped).
type Param<'a> = (&'a [u8], Option<Vec<u8>>);

/// One element of the extension list.
#[derive(Debug)]
struct Extension<'a> {
    name: &'a [u8],
    params: Vec<Param<'a>>,
}

/// What one permessage-deflate offer asks for.
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// The answer to one permessage-deflate offer, `None` to decline it.
fn accept(params: &[Param<'_>]) -> Option<String> {
    // The client's own hints change nothing in the answer: both
    // no_context_takeover parameters are answered in any case, and
    // `client_max_window_bits` is ignored (see the module comment).
    let offer = parse_offer(params)?;
    match offer.server_max_window_bits {
        None => Some(RESPONSE.to_owned()),
        Some(SERVER_WINDOW_BITS) => Some(format!(
            "{RESPONSE}; server_max_window_bits={SERVER_WINDOW_BITS}"
        )),
        Some(_) => None,
    }
}

/// Validates one offer's parameters (RFC 7692 section 7.1): `None` when
/// any is unknown, repeated or has an invalid value.
fn parse_offer(params: &[Param<'_>]) -> Option<Offer> {
    let mut offer = Offer::default();
    for (name, value) in params {
        match *name {
            b"server_no_context_takeover" => {
                if offer.server_no_context_takeover || value.is_some() {
                    return None;
                }
                offer.server_no_context_takeover = true;
            }
            b"client_no_context_takeover" => {
                if offer.client_no_context_takeover || value.is_some() {
                    return None;
                }
                offer.client_no_context_takeover = true;
            }
            b"server_max_window_bits" => {
                if offer.server_max_window_bits.is_some() {
                    return None;
                }
                offer.server_max_window_bits = Some(window_bits(value.as_deref()?)?);
            }
            b"client_max_window_bits" => {
                if offer.client_max_window_bits.is_some() {
                    return None;
                }
                offer.client_max_window_bits = Some(match value {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                });
            }
            _ => return None,
        }
    }
    Some(offer)
}

/// A window-bits value: a decimal 8..=15 without leading zeros.
pub(super) fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

/// Parses every header value as one `1#extension` list (RFC 6455 section
/// 9.1, with the implied whitespace and the empty list elements of the
/// `#rule`). `None` if any part does not parse.
fn parse_extension_list<'a>(values: &[&'a [u8]]) -> Option<Vec<Extension<'a>>> {
    let mut out = Vec::new();
    for value in values {
        let mut cur = Cursor { s: value, i: 0 };
        loop {
            cur.skip_ows();
            match cur.peek() {
                None => break,
                Some(b',') => {
                    cur.i += 1;
                    continue;
                }
                Some(_) => {}
            }
            out.push(cur.extension()?);
            cur.skip_ows();
            match cur.peek() {
                None => break,
                Some(b',') => cur.i += 1,
                Some(_) => return None,
            }
        }
    }
    Some(out)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `extension-token *( ";" extension-param )`, stopping before a `,` or
    /// the end.
    fn extension(&mut self) -> Option<Extension<'a>> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_ows();
            if self.peek() != Some(b';') {
                return Some(Extension { name, params });
            }
            self.i += 1;
            self.skip_ows();
            let pname = self.token()?;
            self.skip_ows();
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.skip_ows();
                Some(if self.peek() == Some(b'"') {
                    self.quoted_string()?
                } else {
                    self.token()?.to_vec()
                })
            } else {
                None
            };
            params.push((pname, value));
        }
    }

    /// `1*tchar`.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let token = self.s.get(start..self.i)?;
        (!token.is_empty()).then_some(token)
    }

    /// A quoted-string, unescaped. RFC 6455 section 9.1: the unescaped value
    /// must itself be a token.
    fn quoted_string(&mut self) -> Option<Vec<u8>> {
        self.i += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    value.push(self.peek()?);
                    self.i += 1;
                }
                _ => value.push(c),
            }
        }
        (!value.is_empty() && value.iter().copied().all(is_tchar)).then_some(value)
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}
