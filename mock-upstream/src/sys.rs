//! The only module that calls libc, and so the only one with `unsafe`.
//!
//! Takes plain values (a CPU list, a socket's raw fd) and hands back safe results: the calling
//! thread's CPU clock, a thread pinned to CPUs, a duplicated socket fd, and whether the peer of a
//! socket has gone. It does not decide when any of these are used; `burn` and `server` do.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// CPU time consumed so far by the calling thread (user + system), from
/// `CLOCK_THREAD_CPUTIME_ID`. It advances only while this thread runs, which is what makes a
/// burn's CPU cost exact however many threads share the cores.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        // Cannot fail on Linux for this clock; zero keeps callers total rather than panicking.
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock the `contend` driver stamps its requests with,
/// system-wide on Linux, so the per-request log's times compare with the driver's directly.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Largest CPU index `sched_setaffinity` accepts in a fixed `cpu_set_t`.
pub const MAX_CPU_INDEX: usize = libc::CPU_SETSIZE as usize - 1;

/// Pins the calling thread to `cpus`. Threads it creates afterwards inherit the mask, which is
/// how `run` pins a whole runtime by pinning the main thread before building it.
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is its valid empty state.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu > MAX_CPU_INDEX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpu {cpu} is above {MAX_CPU_INDEX}"),
            ));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: pid 0 means the calling thread; `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Duplicates a socket fd (close-on-exec) so a worker can watch the connection without
/// borrowing the stream hyper owns; the duplicate stays valid even after hyper closes its copy,
/// so the fd number can never be reused under the worker's feet.
pub fn dup_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on any fd is memory-safe; a bad fd is reported as an error.
    let new_fd = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new_fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new_fd` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new_fd) })
}

/// True when the peer of a connected TCP socket has closed or reset it. Peeks one byte without
/// blocking: 0 bytes means EOF; bytes waiting (a pipelined request) or `EAGAIN` mean it is alive.
pub fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    let mut byte = 0u8;
    // SAFETY: the buffer is one valid writable byte; MSG_DONTWAIT makes this never block.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    if n > 0 {
        return false;
    }
    !matches!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::EINTR)
    )
}

/// Sets `SO_LINGER` to zero so that closing the socket sends a reset, as a kernel with a full
/// accept queue would, instead of an orderly FIN the client might take for a finished reply.
pub fn set_zero_linger(fd: RawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct of the size passed; a bad fd is reported as an error.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work_not_with_sleep() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(20));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(5), "sleeping used {slept:?}");
        let mut x = 1u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(10) {
            x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
        }
        assert!(thread_cpu_time() - before > Duration::ZERO);
    }

    #[test]
    fn pinning_rejects_out_of_range_cpu() {
        // Rejected before the syscall, so the test thread's own mask is never touched.
        assert!(pin_current_thread(&[MAX_CPU_INDEX + 1]).is_err());
    }
}
