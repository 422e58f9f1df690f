//! Listening sockets. Each worker accepts on its own SO_REUSEPORT socket, so
//! the kernel spreads connections across workers with no acceptor thread
//! and no hand-off.
//!
//! Subscriber sockets want `TCP_NODELAY` and the configured `SO_SNDBUF`. On
//! Linux an accepted socket inherits both from its listener, so they are set
//! once here rather than with two `setsockopt` calls per connection (a
//! reconnect storm is syscall-bound: see docs/performance.md);
//! [`ACCEPTED_INHERIT`] tells the worker whether it must set them itself.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 1024;

/// Binds `count` SO_REUSEPORT listeners on one address (port 0 resolves to
/// one ephemeral port shared by all).
///
/// SO_REUSEPORT would also let a second broker silently share the port and
/// steal half the connections, so a plain bind probes that the port is free
/// first.
///
/// `name` is the listener's name for errors (`websocket`, `wss`): a failure
/// reads `cannot listen on ADDR (NAME): CAUSE`, with the cause's kind kept.
pub fn bind_group(
    name: &str,
    addr: SocketAddr,
    count: usize,
    accepted: Accepted,
) -> io::Result<Vec<TcpListener>> {
    let addr = if addr.port() == 0 {
        addr
    } else {
        let probe = bind(addr, false).map_err(|e| named(e, name, addr))?;
        drop(probe);
        addr
    };
    let first = bind(addr, true).map_err(|e| named(e, name, addr))?;
    let bound = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..count {
        group.push(bind(bound, true).map_err(|e| named(e, name, bound))?);
    }
    if ACCEPTED_INHERIT {
        for listener in &group {
            accepted.apply(&socket2::SockRef::from(listener))?;
        }
    }
    Ok(group)
}

/// Whether accepted sockets inherit [`Accepted`]'s options from their
/// listener (Linux does: `TCP_NODELAY` and `SO_SNDBUF` are copied at
/// accept); elsewhere the worker sets them on each accepted socket.
pub const ACCEPTED_INHERIT: bool = cfg!(target_os = "linux");

/// The socket options of an accepted subscriber socket.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// `SO_SNDBUF`; 0 leaves the kernel's autotuning.
    pub send_buffer: usize,
}

impl Accepted {
    /// Sets them on `socket` (a listener, or an accepted socket where they
    /// are not inherited).
    pub fn apply(&self, socket: &socket2::SockRef<'_>) -> io::Result<()> {
        socket.set_tcp_nodelay(true)?;
        if self.send_buffer > 0 {
            socket.set_send_buffer_size(self.send_buffer)?;
        }
        Ok(())
    }
}

/// A single listener (ingest); errors name it as [`bind_group`]'s do.
pub fn bind_one(name: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    bind(addr, false).map_err(|e| named(e, name, addr))
}

/// `cannot listen on 127.0.0.1:8080 (websocket): Address already in use
/// (os error 98)`, of the same kind as `e`.
fn named(e: io::Error, name: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {addr} ({name}): {e}"))
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: Accepted = Accepted {
        send_buffer: 65_536,
    };

    #[test]
    fn accepted_sockets_get_nodelay_and_the_send_buffer() {
        let group = bind_group("websocket", "127.0.0.1:0".parse().unwrap(), 1, ACCEPTED).unwrap();
        let listener = &group[0];
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        if !ACCEPTED_INHERIT {
            ACCEPTED.apply(&socket2::SockRef::from(&accepted)).unwrap();
        }
        let s = socket2::SockRef::from(&accepted);
        assert!(s.tcp_nodelay().unwrap());
        // Linux doubles what it is given (for bookkeeping).
        let size = s.send_buffer_size().unwrap();
        assert!((65_536..=131_072).contains(&size), "{size}");
    }

    #[test]
    fn a_busy_port_names_the_listener_and_address() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap();
        for e in [
            bind_group("websocket", addr, 2, ACCEPTED).unwrap_err(),
            bind_one("ingest", addr).unwrap_err(),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
            assert!(
                e.to_string()
                    .starts_with(&format!("cannot listen on {addr} (")),
                "{e}"
            );
        }
        let e = bind_one("ingest", addr).unwrap_err().to_string();
        assert!(e.contains("(ingest): "), "{e}");
    }
}
