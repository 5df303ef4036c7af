//! The process's resource limits while it runs: RLIMIT_NOFILE raised to its
//! hard limit at start, and the count of connects the kernel refused for
//! lack of file descriptors (EMFILE, ENFILE) or of ephemeral ports
//! (EADDRNOTAVAIL).
//!
//! Such a connect is still one `connect_error` outcome (the driver counts
//! it); this module only counts how many of them a limit caused, so the
//! summary can say which limit and its fix. The checks before a run are
//! [`crate::preflight`]'s.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connects refused for lack of file descriptors, since the process started.
static NO_FDS: AtomicU64 = AtomicU64::new(0);
/// Connects refused for lack of ephemeral ports, since the process started.
static NO_PORTS: AtomicU64 = AtomicU64::new(0);

/// Raises RLIMIT_NOFILE's soft limit to the hard limit (children inherit
/// it). Returns the limit now in force, or the error that prevented it.
pub fn raise_nofile() -> io::Result<u64> {
    let (soft, hard) = crate::sys::nofile_limit()?;
    if soft >= hard {
        return Ok(soft);
    }
    // An unlimited hard limit cannot be the soft one: fs.nr_open caps it.
    let target = if hard == u64::MAX {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(soft)
            .max(soft)
    } else {
        hard
    };
    crate::sys::set_nofile_soft_limit(target)?;
    Ok(crate::sys::nofile_limit()?.0)
}

/// Which limit a failed connect ran into, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The process (EMFILE) or system (ENFILE) file-descriptor table is full.
    FileDescriptors,
    /// No ephemeral port is free for the destination (EADDRNOTAVAIL).
    Ports,
}

/// Classifies a connect error by the limit behind it.
pub fn exhausted(error: &io::Error) -> Option<Exhausted> {
    match error.raw_os_error()? {
        libc::EMFILE | libc::ENFILE => Some(Exhausted::FileDescriptors),
        libc::EADDRNOTAVAIL => Some(Exhausted::Ports),
        _ => None,
    }
}

/// Counts `error` when a limit caused it. Called on the connect error path
/// only (never per request), so a relaxed shared counter costs nothing that
/// is measured.
pub fn note_connect_error(error: &io::Error) {
    match exhausted(error) {
        Some(Exhausted::FileDescriptors) => NO_FDS.fetch_add(1, Ordering::Relaxed),
        Some(Exhausted::Ports) => NO_PORTS.fetch_add(1, Ordering::Relaxed),
        None => 0,
    };
}

/// Connects refused by a limit: a reading of the counters, or the
/// difference of two readings (what one run met).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitErrors {
    /// Refused for lack of file descriptors.
    pub no_fds: u64,
    /// Refused for lack of ephemeral ports.
    pub no_ports: u64,
}

impl LimitErrors {
    /// The counters now; take one before a run and [`LimitErrors::since`] after it.
    pub fn now() -> LimitErrors {
        LimitErrors {
            no_fds: NO_FDS.load(Ordering::Relaxed),
            no_ports: NO_PORTS.load(Ordering::Relaxed),
        }
    }

    /// What was counted after `before` was read.
    pub fn since(before: LimitErrors) -> LimitErrors {
        let now = LimitErrors::now();
        LimitErrors {
            no_fds: now.no_fds.saturating_sub(before.no_fds),
            no_ports: now.no_ports.saturating_sub(before.no_ports),
        }
    }

    /// One warning per limit met, each naming the fix; none when no
    /// connect ran into a limit.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.no_fds > 0 {
            let limit = crate::sys::nofile_limit()
                .map(|(soft, _)| format!(" (the limit is {soft})"))
                .unwrap_or_default();
            out.push(format!(
                "{} connects failed for lack of file descriptors (EMFILE){limit}, counted as connect_error: \
                 raise the limit with `ulimit -n` (see `contend doctor`) or lower max_connections",
                self.no_fds
            ));
        }
        if self.no_ports > 0 {
            out.push(format!(
                "{} connects failed for lack of ephemeral ports (EADDRNOTAVAIL), counted as connect_error: \
                 widen the range (`sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`), let new \
                 connections reuse TIME_WAIT ports (`sysctl -w net.ipv4.tcp_tw_reuse=1`), or keep \
                 connections alive (see `contend doctor`)",
                self.no_ports
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_classified_by_limit() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(
            exhausted(&os(libc::EMFILE)),
            Some(Exhausted::FileDescriptors)
        );
        assert_eq!(
            exhausted(&os(libc::ENFILE)),
            Some(Exhausted::FileDescriptors)
        );
        assert_eq!(exhausted(&os(libc::EADDRNOTAVAIL)), Some(Exhausted::Ports));
        assert_eq!(exhausted(&os(libc::ECONNREFUSED)), None);
        assert_eq!(exhausted(&io::Error::other("not an OS error")), None);
    }

    #[test]
    fn counted_errors_become_warnings_with_the_fix() {
        let before = LimitErrors::now();
        note_connect_error(&io::Error::from_raw_os_error(libc::EMFILE));
        note_connect_error(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        note_connect_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        // Other tests in this process may count too: at least ours are there.
        let met = LimitErrors::since(before);
        assert!(met.no_fds >= 1 && met.no_ports >= 1, "{met:?}");
        let warnings = met.warnings();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("ulimit -n"), "{}", warnings[0]);
        assert!(
            warnings[1].contains("ip_local_port_range"),
            "{}",
            warnings[1]
        );
        assert!(LimitErrors::default().warnings().is_empty());
    }

    #[test]
    fn raising_keeps_the_limit_at_most_the_hard_one() {
        let (_, hard) = crate::sys::nofile_limit().unwrap();
        let now = raise_nofile().unwrap();
        assert!(now <= hard);
        assert_eq!(crate::sys::nofile_limit().unwrap().0, now);
    }
}
