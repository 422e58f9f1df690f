//! Admission of new connections against the broker-wide limits: the
//! connection cap (one atomic shared by every worker, touched at accept and
//! close) and the per-client-IP cap (a map behind a lock, touched at accept
//! and close only, never per quote).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Connections per client IP across all workers (only with
/// `max_connections_per_ip`).
pub type IpCounts = Arc<parking_lot::Mutex<HashMap<IpAddr, u32>>>;

pub(super) struct Admission {
    open_connections: Arc<AtomicUsize>,
    max_connections: usize,
    ip_counts: IpCounts,
    /// `[server] max_connections_per_ip`; 0 = no limit.
    max_per_ip: usize,
    /// The client address each connection is counted under, by slot (only
    /// with the per-IP limit: most brokers pay nothing for it).
    counted_ips: HashMap<usize, IpAddr>,
}

/// What [`Admission::admit`] decided for a connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// Within every limit: counted until [`Admission::release`].
    Accept,
    /// Over the per-IP cap: answer 503 and close (its slot and the
    /// connection count are held only that long).
    OverIpCap,
}

impl Admission {
    pub fn new(
        open_connections: Arc<AtomicUsize>,
        max_connections: usize,
        ip_counts: IpCounts,
        max_per_ip: usize,
    ) -> Admission {
        Admission {
            open_connections,
            max_connections,
            ip_counts,
            max_per_ip,
            counted_ips: HashMap::new(),
        }
    }

    /// Takes one of the broker's connections; false at the cap (the
    /// connection is closed at once, unanswered).
    pub fn take_connection(&self) -> bool {
        let open = self.open_connections.fetch_add(1, Ordering::Relaxed);
        if open >= self.max_connections {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Gives back a connection taken but never admitted (its setup failed).
    pub fn give_back_connection(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts connection `slot` from `ip` against the per-IP cap.
    pub fn admit(&mut self, slot: usize, ip: IpAddr) -> Admit {
        if self.max_per_ip == 0 {
            return Admit::Accept;
        }
        let mut counts = self.ip_counts.lock();
        let n = counts.entry(ip).or_insert(0);
        if (*n as usize) < self.max_per_ip {
            *n += 1;
            self.counted_ips.insert(slot, ip);
            Admit::Accept
        } else {
            Admit::OverIpCap
        }
    }

    /// Connection `slot` closed: give back its connection and IP count.
    pub fn release(&mut self, slot: usize) {
        if let Some(ip) = self.counted_ips.remove(&slot) {
            let mut counts = self.ip_counts.lock();
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_at_and_past_the_limit() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Admission::new(open.clone(), 2, Default::default(), 0);
        assert!(a.take_connection() && a.take_connection());
        assert!(!a.take_connection(), "past the cap");
        assert_eq!(open.load(Ordering::Relaxed), 2);
        a.give_back_connection();
        assert!(a.take_connection(), "room again");
    }

    #[test]
    fn the_per_ip_cap_is_shared_and_given_back_on_release() {
        let (open, ips) = (Arc::new(AtomicUsize::new(0)), IpCounts::default());
        let mut w0 = Admission::new(open.clone(), 100, ips.clone(), 2);
        let mut w1 = Admission::new(open.clone(), 100, ips.clone(), 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for slot in 0..3 {
            assert!(w0.take_connection());
            let expected = if slot < 2 {
                Admit::Accept
            } else {
                Admit::OverIpCap
            };
            assert_eq!(w0.admit(slot, a), expected, "slot {slot}");
        }
        assert!(w1.take_connection());
        assert_eq!(w1.admit(0, a), Admit::OverIpCap, "the cap is per broker");
        assert!(w1.take_connection());
        assert_eq!(w1.admit(1, b), Admit::Accept, "another address");
        w0.release(0);
        assert!(w1.take_connection());
        assert_eq!(w1.admit(2, a), Admit::Accept, "one given back");
        // A refused connection was never counted under its IP.
        w0.release(2);
        assert_eq!(ips.lock().get(&a), Some(&2));
        w0.release(1);
        for slot in [1, 2, 0] {
            w1.release(slot);
        }
        assert!(ips.lock().is_empty());
        assert_eq!(open.load(Ordering::Relaxed), 0);
    }
}
