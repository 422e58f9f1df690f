//! The per-thread buffers TLS connections are read into and sealed in
//! ([`super::tls_stream`]): one set per worker, not one per connection.

use std::cell::RefCell;

/// Plaintext sealed per write: one 16 KiB record, the coalesced frames of
/// a connection's turn rather than a record per frame (the clients' too).
pub use tickwire_client::tls_io::CHUNK;

thread_local! {
    static RECEIVED: RefCell<Received> = RefCell::new(Received::default());
    static SEALED: RefCell<Sealed> = RefCell::new(Sealed::default());
}

/// Runs `f` with this thread's receive buffer and an empty sealing buffer.
/// Not re-entrant: `f` must not call `with` again.
pub fn with<R>(f: impl FnOnce(&mut Received, &mut Sealed) -> R) -> R {
    RECEIVED.with(|received| {
        SEALED.with(|sealed| {
            let mut received = received.borrow_mut();
            let mut sealed = sealed.borrow_mut();
            sealed.clear();
            f(&mut received, &mut sealed)
        })
    })
}

/// Records made for the socket: `buf[..len]`. The buffer keeps its
/// initialised length across uses, so making room for a record zeroes
/// nothing (rustls seals into initialised bytes).
#[derive(Default)]
pub struct Sealed {
    buf: Vec<u8>,
    len: usize,
}

impl Sealed {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// `n` bytes of room after the records made so far.
    pub fn room(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() < self.len + n {
            self.buf.resize(self.len + n, 0);
        }
        self.buf.get_mut(self.len..self.len + n).unwrap_or_default()
    }

    /// `n` bytes were written into [`Self::room`].
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }
}

/// Ciphertext received and not yet processed: `buf[start..end]`. What is
/// processed leaves the front by moving `start` (no copy per record);
/// the rest moves to the front only when more must be read.
#[derive(Default)]
pub struct Received {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Received {
    /// A connection's leftover, to process in place.
    pub fn from_leftover(bytes: Vec<u8>) -> Received {
        let end = bytes.len();
        Received {
            buf: bytes,
            start: 0,
            end,
        }
    }

    pub fn unprocessed(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..self.end).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn discard(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Room for `n` more bytes after the unprocessed ones.
    pub fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + n {
            self.buf.resize(self.end + n, 0);
        }
        self.buf.get_mut(self.end..self.end + n).unwrap_or_default()
    }

    /// `n` bytes were written into [`Self::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// A connection's own buffer given back: what is unprocessed, moved to
    /// the front, with no more room than a record's worth to spare (a peer
    /// leaving one byte of a record must not keep a whole read's buffer).
    pub fn into_kept(self) -> Vec<u8> {
        let mut kept = self.buf;
        kept.truncate(self.end);
        kept.drain(..self.start);
        if kept.is_empty() {
            return Vec::new();
        }
        if kept.capacity() > 2 * kept.len() + 1024 {
            kept.shrink_to_fit();
        }
        kept
    }

    /// What is unprocessed, for the connection to keep (unallocated when
    /// nothing is); the buffer is then empty.
    pub fn leftover(&mut self) -> Vec<u8> {
        let rest = self
            .buf
            .get(self.start..self.end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.start = 0;
        self.end = 0;
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_bytes_leave_the_front_and_the_rest_survives_a_read() {
        let mut r = Received::default();
        r.spare(3).copy_from_slice(b"abc");
        r.filled(3);
        r.discard(1);
        assert_eq!(r.unprocessed(), b"bc");
        r.spare(2).copy_from_slice(b"de");
        r.filled(2);
        assert_eq!(r.unprocessed(), b"bcde");
        r.discard(10);
        assert_eq!(r.len(), 0);
        assert!(r.leftover().is_empty());
        let mut kept = Received::from_leftover(b"xy".to_vec());
        kept.discard(1);
        assert_eq!(kept.leftover(), b"y");
        let mut own = Received::from_leftover(b"abc".to_vec());
        own.discard(1);
        own.spare(40_000)
            .get_mut(..1)
            .unwrap()
            .copy_from_slice(b"d");
        own.filled(1);
        own.discard(1);
        let kept = own.into_kept();
        assert_eq!(kept, b"cd");
        assert!(kept.capacity() < 2_000, "{}", kept.capacity());
        assert!(Received::from_leftover(b"a".to_vec()).into_kept().len() == 1);
    }
}
