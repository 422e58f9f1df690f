//! The byte stream under a connection: plain TCP, or TLS (a rustls
//! `ServerConnection` over the same non-blocking socket, driven by the
//! thread's readiness events). The layers above read and write plaintext
//! and never see the difference; the one addition is [`Transport::flush`]
//! for TLS records rustls holds while the socket is full.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};
use tickwire_client::tls_io;

/// Encrypted bytes rustls may hold for one connection while the socket is
/// full; past it, writes report `WouldBlock` like a full socket, so the
/// outbound queue's budget and conflation still decide what waits.
const TLS_SEND_BUFFER: usize = 64 * 1024;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    sock: TcpStream,
    tls: ServerConnection,
    /// A close_notify is queued: half-close TCP once it is written (not
    /// before, or the alert is lost).
    shut_pending: bool,
}

impl Transport {
    pub fn tls(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<Transport> {
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Ok(Transport::Tls(Box::new(TlsStream {
            sock,
            tls,
            shut_pending: false,
        })))
    }

    /// The TCP socket (for socket options and the peer address).
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// True while the TLS handshake is not complete (never for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.tls.is_handshaking(),
        }
    }

    /// After a TLS handshake: whether it resumed a session.
    pub fn resumed(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }

    /// True when TLS records wait for room in the socket.
    pub fn wants_flush(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.tls.wants_write(),
        }
    }

    /// Writes the TLS records waiting for the socket: `Ok` once none is
    /// left, `WouldBlock` while some are.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => {
                tls_io::flush_records(&mut t.tls, &mut t.sock)?;
                if std::mem::take(&mut t.shut_pending) {
                    let _ = t.sock.shutdown(Shutdown::Write);
                }
                Ok(())
            }
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
            Transport::Tls(t) => {
                t.tls.send_close_notify();
                t.shut_pending = true;
            }
        }
        let _ = self.flush_tls();
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => tls_io::read_plain(&mut t.tls, &mut t.sock, buf),
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
            Transport::Tls(t) => tls_io::write_plain(&mut t.tls, &mut t.sock, &[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write_vectored(bufs),
            Transport::Tls(t) => tls_io::write_plain(&mut t.tls, &mut t.sock, bufs),
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
            Transport::Tls(t) => t.sock.register(registry, token, interests),
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
            Transport::Tls(t) => t.sock.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.deregister(registry),
            Transport::Tls(t) => t.sock.deregister(registry),
        }
    }
}
