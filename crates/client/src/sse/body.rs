//! The HTTP/1.1 response around an event stream: its head (status and the
//! headers that matter here) and its body's framing, which is one of
//! "until the connection closes" (the broker's), `Content-Length`, or
//! `Transfer-Encoding: chunked` (what a proxy in front of the broker may
//! re-frame it as). Pure: bytes in, bytes out.

/// Longest response head read.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4 * 1024;

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub content_type: Option<String>,
    pub body: Body,
    /// Bytes of the head, blank line included: the body starts there.
    pub len: usize,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while it is
/// incomplete (read more, up to [`MAX_HEAD`]).
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(format!("response head over {MAX_HEAD} bytes"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let header = |name: &str| {
        let mut values = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned());
        let first = values.next()?;
        Some(values.fold(first, |all, v| all + "," + &v))
    };
    let body = match (header("transfer-encoding"), header("content-length")) {
        (Some(codings), _) => {
            let last = codings.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                Body::Chunked(Chunked::default())
            } else {
                Body::UntilClose
            }
        }
        (None, Some(length)) => Body::Length(
            length
                .parse()
                .map_err(|_| format!("bad Content-Length {length:?}"))?,
        ),
        (None, None) => Body::UntilClose,
    };
    Ok(Some(Head {
        status: response.code.unwrap_or(0),
        reason: response.reason.unwrap_or("").to_owned(),
        content_type: header("content-type"),
        body,
        len,
    }))
}

/// How the body is framed, and how much of it is left.
#[derive(Debug)]
pub enum Body {
    UntilClose,
    Length(u64),
    Chunked(Chunked),
}

impl Body {
    /// Hands the body's bytes within `input` to `out`, framing removed.
    /// Bytes past the end of the body are ignored.
    pub fn decode(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        match self {
            Body::UntilClose => {
                out(input);
                Ok(())
            }
            Body::Length(left) => {
                let take = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                out(&input[..take]);
                *left -= take as u64;
                Ok(())
            }
            Body::Chunked(chunked) => chunked.decode(input, out),
        }
    }

    /// The whole body has arrived (nothing more will).
    pub fn is_done(&self) -> bool {
        match self {
            Body::UntilClose => false,
            Body::Length(left) => *left == 0,
            Body::Chunked(c) => matches!(c.state, State::Done),
        }
    }
}

/// `Transfer-Encoding: chunked`, decoded as it arrives.
#[derive(Debug, Default)]
pub struct Chunked {
    state: State,
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    /// Reading a chunk-size line (`1a;ext=1`).
    #[default]
    Size,
    /// Bytes of the chunk still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk, until a blank one.
    Trailer,
    Done,
}

impl Chunked {
    fn decode(&mut self, mut input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Data(left) => {
                    let take = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    out(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let end = input.iter().position(|&b| b == b'\n');
                    let (part, rest) = match end {
                        Some(i) => (&input[..i], &input[i + 1..]),
                        None => (input, &[][..]),
                    };
                    if self.line.len() + part.len() > MAX_LINE {
                        return Err("chunked framing: a line over 4 KiB".into());
                    }
                    self.line.extend_from_slice(part);
                    input = rest;
                    if end.is_none() {
                        return Ok(());
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.state = match self.state {
                        State::Size => match chunk_size(&line)? {
                            0 => State::Trailer,
                            n => State::Data(n),
                        },
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => {
                            return Err("chunked framing: chunk data longer than its size".into())
                        }
                        _ if line.is_empty() => State::Done,
                        other => other,
                    };
                }
            }
        }
        Ok(())
    }
}

/// `HEX[;extensions]`, surrounding blanks allowed.
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let bad = || {
        format!(
            "chunked framing: bad chunk size {:?}",
            String::from_utf8_lossy(line)
        )
    };
    let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let size = std::str::from_utf8(size).map_err(|_| bad())?;
    let size = size.trim_matches([' ', '\t']);
    if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(size, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(body: &mut Body, input: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        body.decode(input, &mut |b| out.extend_from_slice(b))?;
        Ok(out)
    }

    #[test]
    fn heads_frame_their_bodies() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\ndata";
        assert!(parse_head(&head[..20]).unwrap().is_none());
        let h = parse_head(head).unwrap().unwrap();
        assert_eq!((h.status, h.reason.as_str()), (200, "OK"));
        assert_eq!(h.content_type.as_deref(), Some("text/event-stream"));
        assert!(matches!(h.body, Body::UntilClose));
        assert_eq!(&head[h.len..], b"data");

        let h = parse_head(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 403);
        assert!(matches!(h.body, Body::Length(12)));
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(matches!(h.body, Body::Chunked(_)));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn a_length_body_ends_at_its_length() {
        let mut body = Body::Length(5);
        assert_eq!(decode_all(&mut body, b"abc").unwrap(), b"abc");
        assert!(!body.is_done());
        assert_eq!(decode_all(&mut body, b"defgh").unwrap(), b"de");
        assert!(body.is_done());
    }

    const CHUNKED: &[u8] = b"7\r\ndata: a\r\n1A;name=value\r\n\n\ndata: bcdefghijklmnopq\n\n\r\n0\r\nTrailer: x\r\n\r\nignored";

    #[test]
    fn chunked_bodies_decode_whatever_the_split() {
        let want = b"data: a\n\ndata: bcdefghijklmnopq\n\n".to_vec();
        for cut in 0..=CHUNKED.len() {
            let mut body = Body::Chunked(Chunked::default());
            let mut got = decode_all(&mut body, &CHUNKED[..cut]).unwrap();
            got.extend(decode_all(&mut body, &CHUNKED[cut..]).unwrap());
            assert_eq!(got, want, "split at {cut}");
            assert!(body.is_done());
        }
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"11111111111111111\r\n",
            b"2\r\nabc\r\n",
        ] {
            let mut body = Body::Chunked(Chunked::default());
            assert!(decode_all(&mut body, bad).is_err(), "{bad:?}");
        }
        let mut body = Body::Chunked(Chunked::default());
        assert!(decode_all(&mut body, &[b'1'; MAX_LINE + 1]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_head(&input);
            let mut body = Body::Chunked(Chunked::default());
            for part in input.chunks(7) {
                if decode_all(&mut body, part).is_err() {
                    break;
                }
            }
        }
    }
}
