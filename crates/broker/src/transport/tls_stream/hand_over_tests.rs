//! The hand-over from rustls to the record layer over a real loopback
//! socket, when the client's Finished, a KeyUpdate asking for ours and
//! data arrive in one write and rustls sends no session tickets (nothing
//! stops its processing after the Finished): the KeyUpdate must reach the
//! record layer, not rustls, or our answer is lost and the client cannot
//! read what follows.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::ring::cipher_suite;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig};

use super::{Session, TlsStream};
use crate::transport::tls_records_harness as harness;
use crate::transport::traffic_secret_log;

const PATIENCE: Duration = Duration::from_secs(30);

fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let (mut server, client) = harness::configs(cipher_suite::TLS13_AES_128_GCM_SHA256);
    // As the broker's, but no tickets: nothing makes rustls stop after the
    // client's Finished.
    server.key_log = traffic_secret_log();
    server.send_tls13_tickets = 0;
    (Arc::new(server), Arc::new(client))
}

/// Reads from the non-blocking stream until `want` bytes came (or the
/// stream fails), polling with a deadline.
fn read_exactly(stream: &mut TlsStream, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < want {
        assert!(Instant::now() < deadline, "no data from the client");
        match stream.read(&mut buf) {
            Ok(0) => panic!("the client closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    got
}

#[test]
fn a_key_update_right_after_the_finished_reaches_the_record_layer() {
    let (server_config, client_config) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut sock = StdTcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(PATIENCE)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(client_config, name).unwrap();
        while conn.is_handshaking() {
            while conn.wants_write() {
                conn.write_tls(&mut sock).unwrap();
            }
            if conn.is_handshaking() {
                assert!(
                    conn.read_tls(&mut sock).unwrap() > 0,
                    "closed mid-handshake"
                );
                conn.process_new_packets().unwrap();
            }
        }
        // The Finished, the KeyUpdate and the data: one write.
        conn.refresh_traffic_keys().unwrap();
        conn.writer().write_all(b"ping").unwrap();
        let mut flight = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut flight).unwrap();
        }
        sock.write_all(&flight).unwrap();
        let mut stream = rustls::Stream::new(&mut conn, &mut sock);
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).map(|_| reply)
    });
    let (sock, _) = listener.accept().unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut stream = TlsStream::new(mio::net::TcpStream::from_std(sock), server_config).unwrap();
    assert_eq!(read_exactly(&mut stream, 4), b"ping");
    // The broker's own capture: the secrets came and made rustls' keys.
    assert!(matches!(&stream.session, Session::Records(r) if r.owns_secrets()));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match stream.write(b"pong") {
            Ok(4) => break,
            Ok(n) => panic!("sealed {n} of 4"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the socket stayed full");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    let reply = client.join().unwrap();
    assert_eq!(reply.expect("the client reads our answer"), *b"pong");
}
