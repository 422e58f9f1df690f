//! Where a TLS 1.3 connection's next keys come from after its hand-over
//! (RFC 8446 §7.2): its traffic secrets, kept here once checked, or
//! rustls' `KernelConnection` when no checked secrets came.

use ring::{aead, hkdf};
use rustls::crypto::hash::HashAlgorithm;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::ConnectionTrafficSecrets;

use super::tls_secrets::{key_and_iv, next_secret, wipe, Captured, Secret};

/// Raw record keys: the algorithm, the key (its length's first bytes), the
/// IV.
pub struct RawKeys {
    pub algorithm: &'static aead::Algorithm,
    pub key: [u8; 32],
    pub iv: [u8; 12],
}

impl RawKeys {
    /// What rustls handed over, as raw keys.
    pub fn from_rustls(secrets: &ConnectionTrafficSecrets) -> Option<RawKeys> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return None,
        };
        let (key, iv) = (key.as_ref(), iv.as_ref());
        if key.len() != algorithm.key_len() {
            return None;
        }
        let mut raw = RawKeys {
            algorithm,
            key: [0; 32],
            iv: iv.try_into().ok()?,
        };
        raw.key.get_mut(..key.len())?.copy_from_slice(key);
        Some(raw)
    }
}

impl Drop for RawKeys {
    fn drop(&mut self) {
        wipe(&mut self.key);
        wipe(&mut self.iv);
    }
}

/// What a connection derives its next keys from on a key update.
pub enum NextKeys {
    /// The two traffic secrets (~100 bytes): derived further here.
    Own {
        hash: hkdf::Algorithm,
        algorithm: &'static aead::Algorithm,
        client: Secret,
        server: Secret,
    },
    /// rustls' key schedule (~1 KB with its boxes).
    Kernel(Box<KernelConnection<ServerConnectionData>>),
}

/// Which side's keys.
#[derive(Clone, Copy)]
pub enum Side {
    /// Ours: what we seal with.
    Server,
    /// The peer's: what we open with.
    Client,
}

impl NextKeys {
    /// The secrets when the keys they make are the keys rustls handed over
    /// (`tx` ours, `rx` the peer's); rustls' connection otherwise.
    pub fn new(
        kernel: KernelConnection<ServerConnectionData>,
        captured: Option<&Captured>,
        algorithm: &'static aead::Algorithm,
        tx: &RawKeys,
        rx: &RawKeys,
    ) -> NextKeys {
        let hash = kernel
            .negotiated_cipher_suite()
            .tls13()
            .map(|suite| suite.common.hash_provider.algorithm());
        let hash = match hash {
            Some(HashAlgorithm::SHA256) => hkdf::HKDF_SHA256,
            Some(HashAlgorithm::SHA384) => hkdf::HKDF_SHA384,
            _ => return NextKeys::Kernel(Box::new(kernel)),
        };
        // Copied: the caller's copy is dropped where it lies (wiped).
        let (Some(client), Some(server)) = (
            captured.and_then(|c| c.client.clone()),
            captured.and_then(|c| c.server.clone()),
        ) else {
            return NextKeys::Kernel(Box::new(kernel));
        };
        let makes = |secret: &Secret, keys: &RawKeys| {
            key_and_iv(hash, secret, algorithm.key_len())
                .is_some_and(|(key, iv)| key == keys.key && iv == keys.iv)
        };
        if makes(&server, tx) && makes(&client, rx) {
            NextKeys::Own {
                hash,
                algorithm,
                client,
                server,
            }
        } else {
            NextKeys::Kernel(Box::new(kernel))
        }
    }

    /// Steps `side`'s secret on and returns the keys it makes and the
    /// first record number under them.
    pub fn next(&mut self, side: Side) -> Option<(u64, RawKeys)> {
        match self {
            NextKeys::Own {
                hash,
                algorithm,
                client,
                server,
            } => {
                let secret = match side {
                    Side::Server => server,
                    Side::Client => client,
                };
                *secret = next_secret(*hash, secret)?;
                let (key, iv) = key_and_iv(*hash, secret, algorithm.key_len())?;
                Some((0, RawKeys { algorithm, key, iv }))
            }
            NextKeys::Kernel(kernel) => {
                let (seq, secrets) = match side {
                    Side::Server => kernel.update_tx_secret(),
                    Side::Client => kernel.update_rx_secret(),
                }
                .ok()?;
                Some((seq, RawKeys::from_rustls(&secrets)?))
            }
        }
    }

    /// Whether the secrets are kept here (rustls' connection dropped).
    pub fn own(&self) -> bool {
        matches!(self, NextKeys::Own { .. })
    }
}
