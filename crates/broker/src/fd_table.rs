//! Sizes the process's file-descriptor table once, at start.
//!
//! Linux grows a process's fd table by doubling when a new fd falls past
//! its end (`accept4` → `alloc_fd` → `expand_files`), and in a process
//! with more than one thread each growth waits for an RCU grace period
//! (`synchronize_rcu`) with the caller asleep: 20–30 ms on the VMs measured.
//! A reconnect storm of 10,000 clients on a fresh broker crossed six such
//! growths (from 256 to 16,384 fds), a worker asleep in `accept4` for about
//! 150 ms of a 0.45 s storm while its core sat idle (docs/performance.md).
//! uWebSockets, one thread, never waits there. Growing the table at start,
//! once, to the fds the broker may hold lets every later accept find room.
//!
//! The table costs the kernel about 8 bytes per fd reserved (not counted in
//! the process's RSS): ~0.8 MB for the default 100,000 connections, less
//! where `RLIMIT_NOFILE` is lower (it caps the reservation).

use std::io;
use std::os::fd::AsRawFd;

/// Makes room in the fd table for fds numbered below `wanted` (capped by
/// the soft `RLIMIT_NOFILE`), using `any` (an open fd, e.g. a listener) to
/// take one slot past that point and give it back. Returns how many fds
/// the table now holds at least. Best effort: a failure only costs the
/// waits described above.
#[cfg(target_os = "linux")]
pub fn reserve(wanted: usize, any: &impl AsRawFd) -> io::Result<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `limit`, a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The highest fd number to take: below the soft limit, within c_int.
    let top = (wanted as u64)
        .min(limit.rlim_cur)
        .min(libc::c_int::MAX as u64)
        .saturating_sub(1);
    if top == 0 {
        return Ok(0);
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads `any`'s fd, which the caller keeps
    // open, and returns a new fd (the lowest free one ≥ top) that we own.
    let dup = unsafe { libc::fcntl(any.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top as libc::c_int) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` was just made here and is closed once; the table keeps
    // its size (Linux never shrinks it).
    unsafe { libc::close(dup) };
    Ok(dup as usize + 1)
}

/// Elsewhere the table is left to grow as the system grows it.
#[cfg(not(target_os = "linux"))]
pub fn reserve(_wanted: usize, _any: &impl AsRawFd) -> io::Result<usize> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The table's size, `FDSize` in `/proc/self/status`.
    fn fd_table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("FDSize")
    }

    #[test]
    fn the_table_is_grown_once_to_what_is_wanted_within_the_limit() {
        // The soft limit up to the hard one (allowed unprivileged), so the
        // growth can be seen where a shell's default is 1,024.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid local; setrlimit raises only the soft limit, to the
        // hard one, at most 1 << 16.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            limit.rlim_cur = limit.rlim_cur.max(limit.rlim_max.min(1 << 16));
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
        let before = fd_table_size();
        let wanted = (before * 4).min(limit.rlim_cur as usize);
        let any = std::fs::File::open("/proc/self/status").expect("an fd");
        let held = reserve(wanted, &any).expect("reserved");
        assert!(held >= wanted - 1, "{held} < {wanted}");
        let after = fd_table_size();
        assert!(after >= wanted, "FDSize {after} < {wanted} (was {before})");
        // The slot taken to grow it is given back.
        // SAFETY: F_GETFD only asks about an fd number.
        let open = unsafe { libc::fcntl(held as libc::c_int - 1, libc::F_GETFD) };
        assert_eq!(open, -1, "fd {} left open", held - 1);
        // Past the soft limit it is capped, not refused.
        assert!(reserve(usize::MAX, &any).expect("capped") <= limit.rlim_cur as usize);
    }
}
