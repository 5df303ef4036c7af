//! The one module that calls libc: clocks, the timerfd the driver paces
//! with, the process settings children are started with, and the
//! open-file limit (RLIMIT_NOFILE).
//!
//! Everything `unsafe` in `contend` lives here, each call wrapped in a small
//! safe function. Nothing here knows about requests or reports.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clocks used here exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in nanoseconds: the driver's one time base (vDSO, ~20 ns).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The [`Instant`] at `ns` on [`monotonic_ns`]'s clock (both are
/// CLOCK_MONOTONIC), found without reading the clock again: a timer set
/// from a time already read costs no second read per request.
pub fn instant_at(ns: u64) -> Instant {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let &(at, at_ns) = ANCHOR.get_or_init(|| (Instant::now(), monotonic_ns()));
    if ns >= at_ns {
        at + Duration::from_nanos(ns - at_ns)
    } else {
        at.checked_sub(Duration::from_nanos(at_ns - ns))
            .unwrap_or(at)
    }
}

/// CPU time the calling thread has used, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time (user + system) the whole process has used, in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (`CLK_TCK`).
pub fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has answered 100 for decades; a failed call falls back to it.
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Bytes in a memory page, the unit of the RSS in `/proc/PID/stat`.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// A non-blocking CLOCK_MONOTONIC timerfd, armed at absolute times.
///
/// tokio's timers have a 1 ms grain; registered with the runtime's epoll,
/// a timerfd wakes the driver with microsecond precision.
pub struct TimerFd(OwnedFd);

impl TimerFd {
    /// Creates a disarmed timer.
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall; the returned fd is checked and then owned.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Arms the timer to fire once at `deadline_ns` on CLOCK_MONOTONIC
    /// (a time already past fires at once). Arming resets the expiry count,
    /// so a timer that fired need not be read before it is armed again: the
    /// next expiry wakes epoll anew.
    pub fn arm_at(&self, deadline_ns: u64) -> io::Result<()> {
        // A zero it_value would disarm the timer: never ask for time 0.
        let deadline_ns = deadline_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid fd and itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.0.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Reads the expiry count, clearing readiness. `WouldBlock` when it has
    /// not fired yet.
    pub fn clear(&self) -> io::Result<u64> {
        let mut expirations = 0u64;
        // SAFETY: reads 8 bytes into a u64 owned by this frame.
        let n = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                (&mut expirations as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(expirations)
        }
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Registers a timerfd with the current tokio runtime.
pub fn register_timer(timer: TimerFd) -> io::Result<tokio::io::unix::AsyncFd<TimerFd>> {
    // SAFETY: `TimerFd` owns its descriptor, which stays open and the same
    // for as long as the AsyncFd owns the TimerFd.
    unsafe { tokio::io::unix::AsyncFd::register(timer) }.map_err(io::Error::from)
}

/// Makes a child started with this `Command` receive SIGTERM when the
/// thread that started it ends, so no child outlives `contend`, even when
/// `contend` itself is killed.
pub fn kill_child_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Reaps every child of this process that has exited, without waiting
/// for the others: a killed child stays a zombie until reaped, and a
/// zombie still counts in its cgroup, which cannot be removed until then.
pub fn reap_exited_children() {
    loop {
        let mut status = 0;
        // SAFETY: plain syscall; WNOHANG never blocks, and the status is a
        // valid writable int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// Sends `signal` to the process `pid` (one this process started).
pub fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a PID this process owns as its child.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `signal` to every process in the process group `pgid` (a group
/// this process created for a child).
pub fn signal_group(pgid: u32, signal: libc::c_int) -> io::Result<()> {
    if pgid == 0 {
        // kill(0, ...) would signal our own group.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "process group 0",
        ));
    }
    // SAFETY: plain syscall; a negative pid names the process group.
    if unsafe { libc::kill(-(pgid as libc::pid_t), signal) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// RLIMIT_NOFILE as (soft, hard); no limit reads as `u64::MAX`.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets RLIMIT_NOFILE's soft limit to `soft` (at most the hard limit; an
/// unprivileged process cannot go past it).
pub fn set_nofile_soft_limit(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let limit = libc::rlimit {
        rlim_cur: soft.min(hard) as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: plain syscall with a valid rlimit that keeps the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_limit_reads_soft_under_hard() {
        let (soft, hard) = nofile_limit().unwrap();
        assert!(soft <= hard, "{soft} > {hard}");
        // Setting the soft limit to what it is changes nothing.
        set_nofile_soft_limit(soft).unwrap();
        assert_eq!(nofile_limit().unwrap(), (soft, hard));
    }

    #[test]
    fn clocks_advance() {
        let a = monotonic_ns();
        let c = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(monotonic_ns() > a);
        assert!(thread_cpu_ns() > c);
    }

    #[test]
    fn instant_at_reads_monotonic_ns_on_the_instant_clock() {
        let ns = monotonic_ns();
        let now = Instant::now();
        let at = instant_at(ns);
        // `ns` was read before `now`: not later than it (but for the few
        // ns between the anchor's own two reads), and not long before.
        assert!(
            at <= now + Duration::from_micros(100),
            "{at:?} after {now:?}"
        );
        assert!(now.duration_since(at) < Duration::from_millis(50));
        assert_eq!(instant_at(ns + 5_000_000) - at, Duration::from_millis(5));
        assert_eq!(at - instant_at(ns - 5_000_000), Duration::from_millis(5));
    }

    #[test]
    fn timer_fires_at_absolute_time() {
        let t = TimerFd::new().unwrap();
        assert_eq!(t.clear().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        t.arm_at(monotonic_ns()).unwrap();
        // A deadline in the past expires at once.
        let mut fired = false;
        for _ in 0..1000 {
            if t.clear().is_ok() {
                fired = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(fired);
    }
}
