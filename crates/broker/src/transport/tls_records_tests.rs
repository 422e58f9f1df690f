//! The record layer against rustls' own client (an independent peer), in
//! memory: both directions for each TLS 1.3 suite, key updates either
//! side starts, the confidentiality limit, hostile records.

use std::io::{Read, Write};

use proptest::prelude::*;
use rustls::crypto::ring::cipher_suite;
use rustls::{ClientConnection, SupportedCipherSuite};

use super::*;
use crate::transport::tls_records_harness::{
    client_records, deliver, handshake, handshake_with, RawClient, Secrets,
};

const SUITES: [SupportedCipherSuite; 3] = [
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// Opens every record in `records`: the application data, and whether a
/// close_notify came.
fn open_all(layer: &mut RecordLayer, mut records: Vec<u8>) -> Result<(Vec<u8>, bool), Fatal> {
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        match layer.open(&mut records[at..])? {
            Opened::Incomplete => return Ok((data, false)),
            Opened::Data { len, plain } => {
                data.extend_from_slice(&records[at..][plain]);
                at += len;
            }
            Opened::Nothing { len } => at += len,
            Opened::Closed { .. } => return Ok((data, true)),
        }
    }
}

/// What the client reads of `sealed`, a record at a time (its plaintext
/// buffer is bounded).
fn client_reads(client: &mut ClientConnection, sealed: &Sealed) -> Vec<u8> {
    let mut data = Vec::new();
    let mut rest = sealed.bytes();
    while !rest.is_empty() {
        let len = 5 + usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        deliver(client, &rest[..len]);
        rest = &rest[len..];
        let _ = client.reader().read_to_end(&mut data);
    }
    data
}

#[test]
fn both_directions_under_every_suite() {
    for suite in SUITES {
        let (mut layer, mut client) = handshake(suite);
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let (data, closed) = open_all(&mut layer, client_records(&mut client)).unwrap();
        assert_eq!(data, b"GET / HTTP/1.1\r\n\r\n", "{suite:?}");
        assert!(!closed);
        // Past one record's size: split into records of 16 KiB at most.
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut sealed = Sealed::default();
        layer.seal(b"hello", &mut sealed).unwrap();
        layer.seal(&big, &mut sealed).unwrap();
        let mut expected = b"hello".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(client_reads(&mut client, &sealed), expected, "{suite:?}");
    }
}

#[test]
fn a_client_key_update_is_followed_and_answered() {
    let (mut layer, mut client) = handshake(SUITES[0]);
    // rustls' client asks for our update too.
    client.refresh_traffic_keys().unwrap();
    client.writer().write_all(b"after").unwrap();
    let (data, _) = open_all(&mut layer, client_records(&mut client)).unwrap();
    assert_eq!(data, b"after");
    assert!(layer.tx_update_owed);
    let mut sealed = Sealed::default();
    layer.seal(b"answer", &mut sealed).unwrap();
    assert!(!layer.tx_update_owed);
    assert_eq!(layer.tx.seq, 1, "the answer went under the new key");
    assert_eq!(client_reads(&mut client, &sealed), b"answer");
}

/// Key updates both ways, the next keys derived from the captured
/// secrets (the broker's way) and from rustls' key schedule (when the
/// secrets are missing or do not make rustls' keys): the client, which
/// derives its own, reads and is read under each.
#[test]
fn key_updates_from_kept_secrets_and_from_rustls_agree_with_the_client() {
    for secrets in [Secrets::Captured, Secrets::Missing, Secrets::Swapped] {
        for suite in SUITES {
            let (mut layer, mut client) = handshake_with(suite, secrets);
            let mut sealed = Sealed::default();
            for round in 0..3u8 {
                client.refresh_traffic_keys().unwrap();
                client.writer().write_all(&[b'a' + round]).unwrap();
                let (data, _) = open_all(&mut layer, client_records(&mut client)).unwrap();
                assert_eq!(data, [b'a' + round]);
                sealed.clear();
                layer.seal(&[b'x' + round], &mut sealed).unwrap();
                assert_eq!(client_reads(&mut client, &sealed), [b'x' + round]);
            }
        }
    }
}

#[test]
fn the_confidentiality_limit_brings_a_key_update() {
    let (mut layer, mut client) = handshake(SUITES[1]);
    layer.tx_limit = layer.tx.seq + 3;
    let mut sealed = Sealed::default();
    for i in 0..10u8 {
        layer.seal(&[b'a' + i], &mut sealed).unwrap();
    }
    assert!(layer.tx.seq < 4, "{}", layer.tx.seq);
    assert_eq!(client_reads(&mut client, &sealed), b"abcdefghij");
}

#[test]
fn idle_keys_are_given_back_and_made_again() {
    let (mut layer, mut client) = handshake(SUITES[0]);
    let mut sealed = Sealed::default();
    layer.seal(b"one", &mut sealed).unwrap();
    layer.rest();
    assert!(
        layer.tx.expanded.is_some(),
        "used since the last rest: kept"
    );
    layer.rest();
    assert!(layer.tx.expanded.is_none() && layer.rx.expanded.is_none());
    layer.seal(b"two", &mut sealed).unwrap();
    assert_eq!(client_reads(&mut client, &sealed), b"onetwo");
}

#[test]
fn close_notify_and_alerts_from_the_client() {
    let (mut layer, mut client) = handshake(SUITES[0]);
    client.send_close_notify();
    let (_, closed) = open_all(&mut layer, client_records(&mut client)).unwrap();
    assert!(closed);
    let (mut layer, client) = handshake(SUITES[2]);
    let mut raw = RawClient::new(client);
    let mut canceled = raw.seal(&[1, alert::USER_CANCELED, ALERT]);
    assert!(matches!(
        layer.open(&mut canceled),
        Ok(Opened::Nothing { .. })
    ));
    let mut fatal_alert = raw.seal(&[2, 40, ALERT]);
    assert_eq!(layer.open(&mut fatal_alert).unwrap_err().alert, None);
}

#[test]
fn hostile_records_end_with_their_alert() {
    let (mut layer, client) = handshake(SUITES[0]);
    let mut raw = RawClient::new(client);
    let cases: Vec<(Vec<u8>, u8)> = vec![
        (vec![22, 3, 3, 0, 20], alert::UNEXPECTED_MESSAGE),
        (vec![23, 3, 3, 0x41, 0x01], alert::RECORD_OVERFLOW),
        (vec![23, 3, 3, 0, 16], alert::DECODE_ERROR),
    ];
    for (mut header, expected) in cases {
        header.resize(header.len() + 64, 0);
        assert_eq!(layer.open(&mut header).unwrap_err().alert, Some(expected));
    }
    let mut tampered = raw.seal(b"data\x17");
    tampered[7] ^= 1;
    let e = layer.open(&mut tampered).unwrap_err();
    assert_eq!(e.alert, Some(alert::BAD_RECORD_MAC));
    // The record numbers move on as the client's do: a fresh pair each.
    let (mut layer, client) = handshake(SUITES[0]);
    let mut raw = RawClient::new(client);
    let mut padding_only = raw.seal(&[0, 0, 0]);
    let e = layer.open(&mut padding_only).unwrap_err();
    assert_eq!(e.alert, Some(alert::UNEXPECTED_MESSAGE));
    let (mut layer, client) = handshake(SUITES[0]);
    let mut raw = RawClient::new(client);
    let mut ticket = raw.seal(&[4, 0, 0, 1, 0, HANDSHAKE]);
    let e = layer.open(&mut ticket).unwrap_err();
    assert_eq!(e.alert, Some(alert::UNEXPECTED_MESSAGE));
    let (mut layer, client) = handshake(SUITES[0]);
    let mut raw = RawClient::new(client);
    let mut too_long = vec![b'x'; MAX_PLAIN + 1];
    too_long.push(APPLICATION_DATA);
    let e = layer.open(&mut raw.seal(&too_long)).unwrap_err();
    assert_eq!(e.alert, Some(alert::RECORD_OVERFLOW));
    // Padding counts (§5.4): a whole record's plaintext padded is too long.
    let mut padded = vec![b'y'; MAX_PLAIN];
    padded.push(APPLICATION_DATA);
    padded.push(0);
    let e = layer.open(&mut raw.seal(&padded)).unwrap_err();
    assert_eq!(e.alert, Some(alert::RECORD_OVERFLOW));
    // At the limit: a whole record's plaintext and its type open.
    let mut full = vec![b'y'; MAX_PLAIN];
    full.push(APPLICATION_DATA);
    let opened = layer.open(&mut raw.seal(&full)).unwrap();
    assert!(matches!(opened, Opened::Data { ref plain, .. } if plain.len() == MAX_PLAIN));
    // A key update request of neither kind.
    let mut odd = raw.seal(&[KEY_UPDATE, 0, 0, 1, 7, HANDSHAKE]);
    let e = layer.open(&mut odd).unwrap_err();
    assert_eq!(e.alert, Some(alert::ILLEGAL_PARAMETER));
}

#[test]
fn a_flood_of_key_updates_is_stopped() {
    let (mut layer, client) = handshake(SUITES[2]);
    let mut raw = RawClient::new(client);
    // Sealed under the first key each time: the layer's key moves on, so
    // only the first opens; then application data resets the count.
    let mut first = raw.seal(&[KEY_UPDATE, 0, 0, 1, 0, HANDSHAKE]);
    assert!(matches!(layer.open(&mut first), Ok(Opened::Nothing { .. })));
    assert_eq!(layer.key_updates_in_a_row, 1);
    let (mut layer2, client2) = handshake(SUITES[2]);
    let mut raw2 = RawClient::new(client2);
    layer2.key_updates_in_a_row = MAX_KEY_UPDATES_IN_A_ROW;
    let mut one_more = raw2.seal(&[KEY_UPDATE, 0, 0, 1, 0, HANDSHAKE]);
    let e = layer2.open(&mut one_more).unwrap_err();
    assert_eq!(e.alert, Some(alert::UNEXPECTED_MESSAGE));
    let (mut layer3, client3) = handshake(SUITES[2]);
    let mut raw3 = RawClient::new(client3);
    layer3.key_updates_in_a_row = MAX_KEY_UPDATES_IN_A_ROW;
    let mut data = raw3.seal(b"x\x17");
    assert!(matches!(layer3.open(&mut data), Ok(Opened::Data { .. })));
    assert_eq!(layer3.key_updates_in_a_row, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any inner plaintext the client's keys seal, and any bytes at all:
    /// a result, never a panic; application data comes back as sealed.
    #[test]
    fn any_record_opens_or_fails_cleanly(
        content in proptest::collection::vec(any::<u8>(), 0..300),
        kind in prop_oneof![
            Just(0u8), Just(ALERT), Just(HANDSHAKE), Just(APPLICATION_DATA), any::<u8>()
        ],
        padding in 0usize..40,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (mut layer, client) = handshake(SUITES[2]);
        let mut raw = RawClient::new(client);
        let mut inner = content;
        inner.push(kind);
        inner.resize(inner.len() + padding, 0);
        let mut record = raw.seal(&inner);
        let len = record.len();
        match layer.open(&mut record) {
            Ok(Opened::Data { len: used, plain }) => {
                prop_assert_eq!(used, len);
                let end = inner.iter().rposition(|&b| b != 0).unwrap();
                prop_assert_eq!(inner[end], APPLICATION_DATA);
                prop_assert_eq!(&record[plain], &inner[..end]);
            }
            Ok(Opened::Incomplete) => prop_assert!(false, "a whole record"),
            Ok(_) => {}
            // Sealed with the right keys: whatever else, it decrypts.
            Err(e) => prop_assert_ne!(e.alert, Some(alert::BAD_RECORD_MAC)),
        }
        let mut noise = noise;
        let _ = layer.open(&mut noise);
    }
}
