//! The broker's TLS record handling (rustls' unbuffered API under the
//! worker, `transport/tls_stream/`): records in pieces, key updates,
//! forged records and their alert, output queued during a handshake, and
//! the peer's bytes after our close_notify.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::tls::{https, tls_connect};
use common::*;
use tickwire_broker::metrics::TlsHandshake;

/// Writes `conn`'s records to `sock` a byte per write (TCP_NODELAY): the
/// broker reads records, handshake messages and requests in pieces.
fn dribble(conn: &mut rustls::ClientConnection, sock: &mut TcpStream) {
    while conn.wants_write() {
        let mut records = Vec::new();
        conn.write_tls(&mut records).unwrap();
        for byte in records {
            sock.write_all(&[byte]).unwrap();
        }
    }
}

/// An application-data record header and 32 bytes no key sealed.
fn forged_record() -> Vec<u8> {
    let mut forged = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    forged.extend_from_slice(&[0x5a; 32]);
    forged
}

/// TLS records that arrive a byte at a time, and a key update the client
/// asks for mid-stream (the broker answers with its own, then seals with
/// new keys): the request is understood and the answer reads.
#[test]
fn records_in_pieces_and_a_key_update_are_understood() {
    let target = Target::start(Over::Tls);
    let config = target.pki.as_ref().unwrap().client_config();
    let mut sock = TcpStream::connect(target.addr()).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    while conn.is_handshaking() {
        dribble(&mut conn, &mut sock);
        if conn.is_handshaking() {
            assert!(
                conn.read_tls(&mut sock).unwrap() > 0,
                "closed mid-handshake"
            );
            conn.process_new_packets().unwrap();
        }
    }
    conn.refresh_traffic_keys().unwrap();
    conn.writer()
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    dribble(&mut conn, &mut sock);
    let mut reply = Vec::new();
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(
        target.broker.metrics().tls_handshakes(TlsHandshake::Failed),
        0
    );
}

/// A record that fails to decrypt after the handshake: the broker sends a
/// `bad_record_mac` alert (sealed, TLS 1.3) and closes; others are served.
#[test]
fn a_forged_record_after_the_handshake_gets_an_alert_and_a_close() {
    let target = Target::start(Over::Tls);
    let config = target.pki.as_ref().unwrap().client_config();
    let mut tls = tls_connect(target.addr(), &config);
    tls.sock.write_all(&forged_record()).unwrap();
    let failure = loop {
        match tls.conn.read_tls(&mut tls.sock) {
            Ok(0) => break None,
            Ok(_) => {
                if let Err(e) = tls.conn.process_new_packets() {
                    break Some(e);
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    };
    assert_eq!(
        failure,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac
        ))
    );
    let ok = https(
        target.addr(),
        &config,
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// A refusal made at accept (the per-IP cap), before the TLS handshake:
/// it is sealed and sent once the handshake completes.
#[test]
fn a_refusal_made_before_the_handshake_is_sent_after_it() {
    let mut config = test_config();
    config.server.max_connections_per_ip = 2;
    let target = Target::start_with(Over::Tls, config);
    let client = target.pki.as_ref().unwrap().client_config();
    let _a = tls_connect(target.addr(), &client);
    let _b = tls_connect(target.addr(), &client);
    let refused = https(
        target.addr(),
        &client,
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
}

/// After the broker's close_notify, whatever the peer sends is dropped
/// unread: a forged record then is no second alert (which rustls refuses
/// with a panic in debug builds) and the broker serves on.
#[test]
fn bytes_after_the_brokers_close_notify_are_dropped() {
    let target = Target::start(Over::Tls);
    let config = target.pki.as_ref().unwrap().client_config();
    let mut tls = tls_connect(target.addr(), &config);
    tls.write_all(
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    // A masked close frame (1000) right behind the upgrade.
    let mask = [1u8, 2, 3, 4];
    let code = 1000u16.to_be_bytes();
    tls.write_all(&[0x88, 0x82, 1, 2, 3, 4, code[0] ^ mask[0], code[1] ^ mask[1]])
        .unwrap();
    tls.flush().unwrap();
    // The 101, the broker's close frame, then its close_notify: EOF.
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 101"));
    // The broker may have closed already: a refused write is fine too.
    let _ = tls.sock.write_all(&forged_record());
    let ok = https(
        target.addr(),
        &config,
        "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
