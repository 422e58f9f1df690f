//! Non-blocking TLS over a socket, for event loops (the load generator's
//! receivers): plaintext in and out of a rustls buffered
//! connection, records to and from the socket, `WouldBlock` whenever the
//! socket is the bottleneck. (The broker's server side uses rustls'
//! unbuffered API instead, for memory per idle connection:
//! `tickwire-broker`'s `transport/tls_stream/`, docs/decisions.md; it
//! shares [`gather`] and [`CHUNK`], so both sides seal alike.)

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};

use rustls::ConnectionCommon;

/// Plaintext handed to rustls per write: the coalesced frames of a
/// `writev`, as one 16 KiB TLS record rather than a record per frame.
pub const CHUNK: usize = 16 * 1024;

thread_local! {
    /// Per-thread staging for coalesced plaintext (never per connection).
    static STAGING: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CHUNK));
}

/// Calls `seal` with up to [`CHUNK`] bytes of `bufs` as one contiguous
/// run: the one buffer itself when there is one (a broker lays out a whole
/// transmit so: no copy), else gathered in a per-thread staging buffer.
/// Not re-entrant: `seal` must not call `gather`.
pub fn gather<R>(bufs: &[IoSlice<'_>], seal: impl FnOnce(&[u8]) -> R) -> R {
    if let [one] = bufs {
        return seal(one.get(..CHUNK).unwrap_or(one));
    }
    STAGING.with(|staging| {
        let mut staging = staging.borrow_mut();
        staging.clear();
        for buf in bufs {
            let room = CHUNK - staging.len();
            if room == 0 {
                break;
            }
            staging.extend_from_slice(buf.get(..room.min(buf.len())).unwrap_or_default());
        }
        seal(&staging)
    })
}

/// Writes the TLS records waiting for the socket: `Ok` once none is left,
/// `WouldBlock` while some are.
pub fn flush_records<D>(conn: &mut ConnectionCommon<D>, sock: &mut impl Write) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Like [`flush_records`], treating a full socket as success (what is left
/// goes on the next writable event).
fn flush_some<D>(conn: &mut ConnectionCommon<D>, sock: &mut impl Write) -> io::Result<()> {
    match flush_records(conn, sock) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

/// Reads plaintext: what rustls already decrypted, else records from the
/// socket. `Ok(0)` is the end of the stream (close_notify or TCP EOF);
/// `InvalidData` is a TLS failure (an alert was queued and, room
/// permitting, sent); `WouldBlock` means nothing more for now.
pub fn read_plain<D>(
    conn: &mut ConnectionCommon<D>,
    sock: &mut (impl Read + Write),
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // A TCP EOF without close_notify, read again (an event loop may
            // read a closed socket more than once): still the end of the
            // stream, as the first read said, not an error that would drop
            // a connection still writing its last bytes.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        if conn.read_tls(sock)? == 0 {
            return Ok(0);
        }
        if let Err(e) = conn.process_new_packets() {
            let _ = flush_records(conn, sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // Handshake messages, key updates, tickets: out while there is room.
        flush_some(conn, sock)?;
    }
}

/// Writes plaintext: up to [`CHUNK`] bytes of `bufs`, coalesced into one
/// record. `WouldBlock` when rustls' send buffer (bounded by
/// `set_buffer_limit`) is full because the socket is.
pub fn write_plain<D>(
    conn: &mut ConnectionCommon<D>,
    sock: &mut impl Write,
    bufs: &[IoSlice<'_>],
) -> io::Result<usize> {
    // Records already made go first: they carry earlier bytes.
    flush_some(conn, sock)?;
    let accepted = gather(bufs, |plain| conn.writer().write(plain))?;
    if accepted == 0 && bufs.iter().any(|b| !b.is_empty()) {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    // The bytes are committed: report them; a socket error shows on the
    // next call (or flush).
    let _ = flush_some(conn, sock);
    Ok(accepted)
}
