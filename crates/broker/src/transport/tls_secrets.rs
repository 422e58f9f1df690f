//! TLS 1.3 application traffic secrets, for key updates without rustls'
//! `KernelConnection` (~1 KB a connection with its boxed key schedule).
//!
//! rustls hands a connection's *keys* over after the handshake, but the
//! next keys of a key update come from the *secrets* (RFC 8446 §7.2),
//! which only its `KernelConnection` keeps. rustls also tells a
//! [`rustls::KeyLog`] each secret as it derives it — the NSS key log
//! labels `CLIENT_TRAFFIC_SECRET_0` and `SERVER_TRAFFIC_SECRET_0`. The
//! endpoint's key log here writes nothing anywhere: it puts the two into
//! a slot of the thread that is driving the handshake, which takes them
//! right after the rustls call that derived them (so they are this
//! connection's). The record layer keeps them only once the keys it
//! derives from them equal the keys rustls handed over; otherwise it keeps
//! the `KernelConnection`.

use std::cell::RefCell;

use ring::hkdf;

/// A traffic secret: a hash's length (32 or 48 bytes), wiped when
/// dropped.
#[derive(Clone)]
pub struct Secret {
    bytes: [u8; 48],
    len: u8,
}

impl Secret {
    fn new(bytes: &[u8]) -> Option<Secret> {
        let mut secret = Secret {
            bytes: [0; 48],
            len: u8::try_from(bytes.len()).ok()?,
        };
        secret.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(secret)
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

/// Overwrites secret bytes before their memory is given back (a plain
/// store to memory about to be freed may be optimised away).
pub fn wipe(bytes: &mut [u8]) {
    zeroize::Zeroize::zeroize(bytes);
}

/// The two application traffic secrets of one handshake.
#[derive(Default)]
pub struct Captured {
    pub client: Option<Secret>,
    pub server: Option<Secret>,
}

thread_local! {
    static CAPTURED: RefCell<Captured> = RefCell::new(Captured::default());
}

/// Takes what the key log put in this thread's slot since the last take.
/// Copied out, and the slot's own copy dropped in place (wiped): a move
/// would leave the bytes behind in the slot.
pub fn take_captured() -> Option<Captured> {
    CAPTURED.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.client.is_none() && slot.server.is_none() {
            return None;
        }
        let taken = Captured {
            client: slot.client.clone(),
            server: slot.server.clone(),
        };
        *slot = Captured::default();
        Some(taken)
    })
}

/// The endpoint's key log: into the thread's slot, never to a file.
#[derive(Debug)]
pub struct CaptureTrafficSecrets;

const CLIENT_LABEL: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER_LABEL: &str = "SERVER_TRAFFIC_SECRET_0";

impl rustls::KeyLog for CaptureTrafficSecrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        CAPTURED.with(|slot| {
            let mut slot = slot.borrow_mut();
            match label {
                CLIENT_LABEL => slot.client = Secret::new(secret),
                SERVER_LABEL => slot.server = Secret::new(secret),
                _ => {}
            }
        });
    }

    fn will_log(&self, label: &str) -> bool {
        label == CLIENT_LABEL || label == SERVER_LABEL
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context into `out`.
fn expand_label(
    hash: hkdf::Algorithm,
    secret: &Secret,
    label: &[u8],
    out: &mut [u8],
) -> Option<()> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(b"tls13 ".len() + label.len()).ok()?];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    let prk = hkdf::Prk::new_less_safe(hash, secret.as_bytes());
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// The secret after a key update: "traffic upd" (§7.2).
pub fn next_secret(hash: hkdf::Algorithm, secret: &Secret) -> Option<Secret> {
    let mut next = Secret {
        bytes: [0; 48],
        len: secret.len,
    };
    let len = usize::from(secret.len);
    expand_label(hash, secret, b"traffic upd", next.bytes.get_mut(..len)?)?;
    Some(next)
}

/// A secret's record key (`key_len` bytes, at most 32) and IV (§7.3).
pub fn key_and_iv(
    hash: hkdf::Algorithm,
    secret: &Secret,
    key_len: usize,
) -> Option<([u8; 32], [u8; 12])> {
    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    expand_label(hash, secret, b"key", key.get_mut(..key_len)?)?;
    expand_label(hash, secret, b"iv", &mut iv)?;
    Some((key, iv))
}
