//! The broker's TLS 1.3 record layer on arbitrary input: bytes straight
//! from the socket, and any inner plaintext (content type and padding
//! included) sealed with the client's real keys, so that what follows a
//! successful decryption is reached too. Never a panic; a record sealed
//! with the right keys always opens, and its application data is what was
//! sealed.
#![no_main]

// The broker's `transport` module is private: the record layer, its
// buffers and its test handshake are compiled in here from their files.
// What the broker uses of them and this target does not is dead here.
#[allow(dead_code, unused_imports)]
#[path = "../../crates/broker/src/transport/tls_buffers.rs"]
mod tls_buffers;
#[allow(dead_code)]
#[path = "../../crates/broker/src/transport/tls_key_updates.rs"]
mod tls_key_updates;
#[allow(dead_code)]
#[path = "../../crates/broker/src/transport/tls_records.rs"]
mod tls_records;
#[allow(dead_code)]
#[path = "../../crates/broker/src/transport/tls_records_harness.rs"]
mod tls_records_harness;
#[allow(dead_code)]
#[path = "../../crates/broker/src/transport/tls_secrets.rs"]
mod tls_secrets;

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use tls_records::{Opened, RecordLayer};
use tls_records_harness::{handshake, RawClient};

/// One handshake serves many inputs (a handshake per input would be most
/// of the time); a pair whose record numbers may have parted is replaced.
static PAIR: Mutex<Option<(RecordLayer, RawClient)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut pair = PAIR.lock().unwrap_or_else(|e| e.into_inner());
    let (layer, raw) = pair.get_or_insert_with(|| {
        let (layer, client) =
            handshake(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        (layer, RawClient::new(client))
    });
    let keep = if mode % 2 == 0 {
        // Raw bytes: only a record that reached decryption (and failed
        // it) consumed a record number; header errors leave the pair as
        // it was.
        let mut bytes = rest.to_vec();
        match layer.open(&mut bytes) {
            Ok(Opened::Incomplete) => true,
            Err(fatal) => fatal.alert != Some(tls_records::alert::BAD_RECORD_MAC),
            Ok(_) => false,
        }
    } else {
        let inner = rest.get(..rest.len().min(20_000)).unwrap_or(rest);
        let mut record = raw.seal(inner);
        match layer.open(&mut record) {
            Ok(Opened::Data { len, plain }) => {
                assert_eq!(len, record.len());
                let end = inner.iter().rposition(|&b| b != 0).expect("a content type");
                assert_eq!(&record[plain], &inner[..end]);
                true
            }
            Ok(Opened::Incomplete) => panic!("a whole record reads as incomplete"),
            // A key update moved the layer's keys and not the raw client's;
            // after a close nothing more is read.
            Ok(Opened::Nothing { .. } | Opened::Closed { .. }) => false,
            Err(fatal) => {
                assert_ne!(
                    fatal.alert,
                    Some(tls_records::alert::BAD_RECORD_MAC),
                    "sealed with the right keys"
                );
                false
            }
        }
    };
    if !keep {
        *pair = None;
    }
});
