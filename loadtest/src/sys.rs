//! Operating-system helpers: clocks, CPU accounting, file-descriptor limit,
//! address policy, broker RSS and open file descriptors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// Nanoseconds since the Unix epoch (the clock producers stamp `ts` with).
#[inline]
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn timespec(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time (user + system) consumed by the calling thread.
pub fn thread_cpu() -> Duration {
    timespec(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// User and system CPU time of the whole process (getrusage RUSAGE_SELF).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rusage {
    pub user: Duration,
    pub sys: Duration,
}

pub fn rusage_self() -> Rusage {
    // SAFETY: zeroed rusage is a valid value; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rusage struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Rusage::default();
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Rusage {
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
    }
}

/// Makes sure the process may open `needed` file descriptors: raises the
/// soft RLIMIT_NOFILE (up to the hard limit) if necessary, else refuses with
/// the exact command to run.
pub fn ensure_fd_limit(needed: u64) -> Result<(), Error> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(Error::msg("getrlimit(RLIMIT_NOFILE) failed"));
    }
    if lim.rlim_cur >= needed {
        return Ok(());
    }
    if lim.rlim_max > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: valid pointer; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 && lim.rlim_max >= needed {
            return Ok(());
        }
    }
    // Round up to a friendly number.
    let suggest = needed.div_ceil(10_000) * 10_000;
    Err(Error::msg(format!(
        "this run needs {needed} file descriptors but the limit is {} (hard limit {}); run `ulimit -n {suggest}` in this shell first (as root, or raise the hard limit in /etc/security/limits.conf)",
        lim.rlim_cur, lim.rlim_max
    )))
}

/// Resolves `addr`, refusing non-loopback targets unless `allow_remote`.
pub fn resolve(flag: &str, addr: &str, allow_remote: bool) -> Result<SocketAddr, Error> {
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| Error::msg(format!("{flag} {addr}: {e}")))?
        .next()
        .ok_or_else(|| Error::msg(format!("{flag} {addr}: no address")))?;
    if !resolved.ip().is_loopback() && !allow_remote {
        return Err(Error::msg(format!(
            "{flag} {addr} is not a loopback address; pass --allow-remote to load a remote broker"
        )));
    }
    Ok(resolved)
}

/// Resolves a comma-separated list of addresses (`--ws a,b,c`), each entry
/// like [`resolve`]; one address without a comma is exactly `resolve`.
/// Entries may be padded with spaces; an empty entry is an error.
pub fn resolve_list(flag: &str, list: &str, allow_remote: bool) -> Result<Vec<SocketAddr>, Error> {
    if !list.contains(',') {
        return Ok(vec![resolve(flag, list, allow_remote)?]);
    }
    list.split(',')
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(Error::msg(format!(
                    "{flag} {list}: entry {} is empty (expected host:port,host:port,...)",
                    i + 1
                )));
            }
            resolve(flag, entry, allow_remote)
        })
        .collect()
}

/// Source address for client connection number `n` when connections are
/// spread over 127.0.0.0/8 (more than one source IP's worth of ports).
pub fn spread_source(n: usize) -> SocketAddr {
    let x = 1 + (n % 250) as u8;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, x)), 0)
}

/// Above this many connections, client sockets are bound to 127.0.0.x.
pub const SPREAD_ABOVE: usize = 50_000;

/// VmRSS of a process in bytes, from /proc/PID/status.
pub fn rss_bytes(pid: u32) -> Result<u64, Error> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::msg(format!("{path}: {e}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| Error::msg(format!("{path}: no VmRSS line")))
}

/// Open file descriptors of a process: the entries of /proc/PID/fd (the
/// process must be ours, or we root).
pub fn open_fds(pid: u32) -> Result<u64, Error> {
    let path = format!("/proc/{pid}/fd");
    let dir = std::fs::read_dir(&path).map_err(|e| Error::msg(format!("{path}: {e}")))?;
    Ok(dir.filter(|e| e.is_ok()).count() as u64)
}

/// `Sec-WebSocket-Key` for connection `n`: 16 pseudo-random bytes, base64.
pub fn ws_key(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    tickwire_ws::handshake::client_key(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_key_is_a_base64_nonce() {
        assert_eq!(ws_key(7).len(), 24);
        assert_ne!(ws_key(7), ws_key(8));
    }

    #[test]
    fn loopback_policy() {
        assert!(resolve("--ws", "127.0.0.1:8080", false).is_ok());
        assert!(resolve("--ws", "10.1.2.3:8080", false).is_err());
        assert!(resolve("--ws", "10.1.2.3:8080", true).is_ok());
    }

    #[test]
    fn ws_list_is_split_on_commas() {
        let one = resolve_list("--ws", "127.0.0.1:8080", false).unwrap();
        assert_eq!(one, vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        let two = resolve_list("--ws", "127.0.0.1:8080, 127.0.0.1:8081", false).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].port(), 8081);
        // The same address twice is allowed (two groups of subscribers).
        assert_eq!(
            resolve_list("--ws", "127.0.0.1:1,127.0.0.1:1", false)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn bad_ws_list_entries_name_the_flag() {
        for bad in [
            "127.0.0.1:8080,not-an-address",
            "127.0.0.1:8080,,127.0.0.1:8081",
            "127.0.0.1:8080,",
            "127.0.0.1:8080,127.0.0.1:99999",
        ] {
            let err = resolve_list("--ws", bad, false).unwrap_err().to_string();
            assert!(err.starts_with("--ws "), "{bad}: {err}");
        }
        let err = resolve_list("--ws", "127.0.0.1:8080,,x", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 2 is empty"), "{err}");
        // Every entry obeys the loopback policy.
        let err = resolve_list("--ws", "127.0.0.1:8080,10.1.2.3:8080", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--allow-remote"), "{err}");
        assert_eq!(
            resolve_list("--ws", "127.0.0.1:8080,10.1.2.3:8080", true)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn spread_cycles_over_loopback() {
        assert_eq!(
            spread_source(0).ip(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            spread_source(249).ip(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250))
        );
        assert_eq!(
            spread_source(250).ip(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))
        );
    }

    #[test]
    fn our_own_rss_and_fds_are_readable() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(open_fds(me).unwrap() >= 3);
        assert!(open_fds(u32::MAX).is_err());
    }

    #[test]
    fn fd_limit_already_enough() {
        assert!(ensure_fd_limit(16).is_ok());
        let err = ensure_fd_limit(u64::MAX / 2).unwrap_err().to_string();
        assert!(err.contains("ulimit -n"), "{err}");
    }
}
