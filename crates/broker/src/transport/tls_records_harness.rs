//! An in-memory TLS 1.3 handshake for the record layer's tests and its
//! fuzz target (`fuzz/fuzz_targets/tls_records.rs`): a rustls client, and
//! a rustls server whose keys go to a [`RecordLayer`] as the broker's do.
//! Test code: it panics on anything unexpected.

use std::sync::Arc;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::ConnectionState;
use rustls::{
    ClientConfig, ClientConnection, ConnectionTrafficSecrets, RootCertStore, ServerConfig,
    SupportedCipherSuite,
};

use super::tls_records::RecordLayer;
use super::tls_secrets::{take_captured, CaptureTrafficSecrets, Captured};

/// How the record layer gets the traffic secrets the key log took.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// As the broker does: it keeps them (rustls' connection dropped).
    Captured,
    /// None came: key updates go through rustls' `KernelConnection`.
    Missing,
    /// Client's and server's swapped: they do not make the keys, so the
    /// layer keeps rustls' `KernelConnection`.
    Swapped,
}

/// A finished handshake: the server's record layer and the client.
pub fn handshake(suite: SupportedCipherSuite) -> (RecordLayer, ClientConnection) {
    handshake_with(suite, Secrets::Captured)
}

/// TLS 1.3 only, a certificate made now for `localhost`: the server's
/// config as the broker's (keys handed over, secrets to the key log) and
/// a client's that trusts it and offers `suite` alone.
pub fn configs(suite: SupportedCipherSuite) -> (ServerConfig, ClientConfig) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    server_config.enable_secret_extraction = true;
    server_config.key_log = Arc::new(CaptureTrafficSecrets);
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client_provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![suite],
        ..rustls::crypto::ring::default_provider()
    };
    let mut client_config = ClientConfig::builder_with_provider(Arc::new(client_provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.enable_secret_extraction = true;
    (server_config, client_config)
}

/// [`handshake`], the secrets given to the record layer as `secrets` says.
pub fn handshake_with(
    suite: SupportedCipherSuite,
    secrets: Secrets,
) -> (RecordLayer, ClientConnection) {
    let (server_config, client_config) = configs(suite);
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
    let mut server = UnbufferedServerConnection::new(Arc::new(server_config)).unwrap();
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    let mut captured = None;
    for _ in 0..16 {
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        loop {
            let status = server.process_tls_records(&mut to_server);
            if let Some(taken) = take_captured() {
                captured = Some(taken);
            }
            let discard = status.discard;
            let more = match status.state.unwrap() {
                ConnectionState::EncodeTlsData(mut encode) => {
                    let mut buf = vec![0u8; 1 << 16];
                    let n = encode.encode(&mut buf).unwrap();
                    to_client.extend_from_slice(&buf[..n]);
                    true
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    true
                }
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => false,
                _ => panic!("unexpected server state"),
            };
            to_server.drain(..discard);
            if !more {
                break;
            }
        }
        deliver(&mut client, &to_client);
        to_client.clear();
        if !server.is_handshaking() && to_server.is_empty() && !client.wants_write() {
            let (extracted, kernel) = server.dangerous_into_kernel_connection().unwrap();
            let given = match secrets {
                Secrets::Captured => captured,
                Secrets::Missing => None,
                Secrets::Swapped => captured.map(|c| Captured {
                    client: c.server.clone(),
                    server: c.client.clone(),
                }),
            };
            let layer = RecordLayer::new(extracted, kernel, given.as_ref()).unwrap();
            assert_eq!(layer.owns_secrets(), secrets == Secrets::Captured);
            return (layer, client);
        }
    }
    panic!("the handshake did not finish");
}

/// Gives `records` to the client and processes them.
pub fn deliver(client: &mut ClientConnection, records: &[u8]) {
    let mut rest = records;
    while !rest.is_empty() {
        client.read_tls(&mut rest).unwrap();
        client.process_new_packets().unwrap();
    }
}

/// The client's records so far.
pub fn client_records(client: &mut ClientConnection) -> Vec<u8> {
    let mut records = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut records).unwrap();
    }
    records
}

/// The client's sending keys taken out of rustls: seals any inner
/// plaintext (content type and padding included), as no well-behaved
/// client would.
pub struct RawClient {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl RawClient {
    pub fn new(client: ClientConnection) -> RawClient {
        let (seq, secrets) = client.dangerous_extract_secrets().unwrap().tx;
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => panic!("unknown suite"),
        };
        RawClient {
            key: LessSafeKey::new(UnboundKey::new(algorithm, key.as_ref()).unwrap()),
            iv: iv.as_ref().try_into().unwrap(),
            seq,
        }
    }

    /// One record of `inner` (at most 65,535 - 16 bytes).
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let length = u16::try_from(inner.len() + 16).unwrap();
        let [hi, lo] = length.to_be_bytes();
        let header = [23, 3, 3, hi, lo];
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        let mut body = inner.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut body,
            )
            .unwrap();
        let mut record = header.to_vec();
        record.extend_from_slice(&body);
        record
    }
}
