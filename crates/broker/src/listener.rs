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
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let addr = if addr.port() == 0 {
        addr
    } else {
        let probe = bind(addr, false)?;
        drop(probe);
        addr
    };
    let first = bind(addr, true)?;
    let bound = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..count {
        group.push(bind(bound, true)?);
    }
    Ok(group)
}

/// A single listener (ingest).
pub fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    bind(addr, false)
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
