//! The per-thread buffers TLS connections are read into and sealed in
//! ([`super::tls_stream`]): one set per worker, not one per connection.

use std::cell::RefCell;

/// Plaintext sealed per write: one 16 KiB record, the coalesced frames of
/// a connection's turn rather than a record per frame.
pub const CHUNK: usize = 16 * 1024;

thread_local! {
    static RECEIVED: RefCell<Received> = RefCell::new(Received::default());
    static SEALED: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CHUNK + 1024));
    static STAGING: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CHUNK));
}

/// Runs `f` with this thread's receive buffer and an empty sealing buffer.
/// Not re-entrant: `f` must not call `with` again.
pub fn with<R>(f: impl FnOnce(&mut Received, &mut Vec<u8>) -> R) -> R {
    RECEIVED.with(|received| {
        SEALED.with(|sealed| {
            let mut received = received.borrow_mut();
            let mut sealed = sealed.borrow_mut();
            sealed.clear();
            f(&mut received, &mut sealed)
        })
    })
}

/// Runs `f` with this thread's (cleared) plaintext staging buffer, for
/// gathering a vectored write into one record.
pub fn with_staging<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    STAGING.with(|staging| {
        let mut staging = staging.borrow_mut();
        staging.clear();
        f(&mut staging)
    })
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

    /// Starts over with a connection's leftover.
    pub fn load(&mut self, leftover: Vec<u8>) {
        self.start = 0;
        self.end = 0;
        self.spare(leftover.len()).copy_from_slice(&leftover);
        self.end = leftover.len();
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
        r.load(b"abc".to_vec());
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
    }
}
