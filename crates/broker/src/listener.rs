//! Listening sockets. Each worker accepts on its own SO_REUSEPORT socket, so
//! the kernel spreads connections across workers with no acceptor thread
//! and no hand-off.

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
pub fn bind_group(name: &str, addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
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
    Ok(group)
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

    #[test]
    fn a_busy_port_names_the_listener_and_address() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap();
        for e in [
            bind_group("websocket", addr, 2).unwrap_err(),
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
