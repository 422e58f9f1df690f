//! The `epoch` sent in every `subscribed` ack. A single broker makes one up
//! at start; in a cluster the link replaces it with the cluster's, kept in
//! JetStream, so every broker acks with the same value. Read once per
//! subscribe and written once per link set-up: rare shared state, hence a
//! lock rather than a channel.

use std::sync::Arc;

use parking_lot::RwLock;

#[derive(Debug)]
pub struct Epoch(RwLock<Arc<str>>);

impl Epoch {
    /// A fresh epoch for this process (different on every start).
    pub fn new_local() -> Epoch {
        Epoch::fixed(&new_epoch())
    }

    pub fn fixed(value: &str) -> Epoch {
        Epoch(RwLock::new(value.into()))
    }

    pub fn current(&self) -> Arc<str> {
        self.0.read().clone()
    }

    /// Returns true when the value changed.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub fn set(&self, value: &str) -> bool {
        let mut current = self.0.write();
        if &**current == value {
            return false;
        }
        *current = value.into();
        true
    }
}

/// 64 random-enough bits as 16 hex digits: different on every start, so
/// clients can tell that `seq` numbering restarted.
pub fn new_epoch() -> String {
    format!("{:016x}", random_u64())
}

/// Random enough for identifiers (epochs, a broker's cluster origin id):
/// the process's hash seed mixed with the clock and the pid.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}
