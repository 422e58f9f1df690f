//! The byte stream under a connection: plain TCP, or TLS (a rustls
//! connection over the same non-blocking socket, driven by the thread's
//! readiness events). The layers above read and write plaintext and never
//! see the difference; the one addition is [`Transport::flush_tls`] for
//! TLS records the socket had no room for.

mod tls_buffers;
mod tls_key_updates;
mod tls_records;
#[cfg(test)]
mod tls_records_harness;
mod tls_secrets;
mod tls_stream;

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ServerConfig;

use tickwire_client::tls_io;
use tls_stream::TlsStream;

/// The key log a TLS endpoint's config carries: it hands TLS 1.3 traffic
/// secrets to the connection being driven, and writes nothing anywhere.
pub fn traffic_secret_log() -> Arc<dyn rustls::KeyLog> {
    Arc::new(tls_secrets::CaptureTrafficSecrets)
}

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Transport {
    pub fn tls(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<Transport> {
        Ok(Transport::Tls(Box::new(TlsStream::new(sock, config)?)))
    }

    /// The TCP socket (for socket options and the peer address).
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.socket(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// True while the TLS handshake is not complete (never for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.is_handshaking(),
        }
    }

    /// After a TLS handshake: whether it resumed a session.
    pub fn resumed(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.resumed(),
        }
    }

    /// True when TLS records wait for room in the socket.
    pub fn wants_flush(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.wants_flush(),
        }
    }

    /// Gives back TLS keys expanded for use and not used since the last
    /// call (the worker's sweep calls it; nothing for plain TCP).
    pub fn rest(&mut self) {
        if let Transport::Tls(t) = self {
            t.rest();
        }
    }

    /// Writes the TLS records waiting for the socket: `Ok` once none is
    /// left, `WouldBlock` while some are.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.flush(),
        }
    }

    /// Half-closes the write side once everything queued is written, so the
    /// peer reads our last frame and then EOF. Over TLS a close_notify goes
    /// first; if the socket is full, the half-close waits for it
    /// ([`Transport::flush_tls`] finishes it).
    pub fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Transport::Tls(t) => t.shutdown_write(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    /// Plain TCP: `send(2)`, not `write(2)`: it skips the generic VFS write
    /// path (`vfs_writev`, `fdget_pos`, `sock_write_iter`: ~7% of the
    /// broker's CPU at 50k deliveries/s in a profile, one frame per call).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => {
                socket2::SockRef::from(&*s).send_with_flags(buf, libc::MSG_NOSIGNAL)
            }
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write_vectored(bufs),
            // Sealed as one record.
            Transport::Tls(t) => tls_io::gather(bufs, |plain| t.write(plain)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.register(registry, token, interests),
            Transport::Tls(t) => t.socket_mut().register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.reregister(registry, token, interests),
            Transport::Tls(t) => t.socket_mut().reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.deregister(registry),
            Transport::Tls(t) => t.socket_mut().deregister(registry),
        }
    }
}
