//! What a component's processes use, read from `/proc`: CPU seconds (user
//! and system), resident memory, open file descriptors and threads, summed
//! over every process of a group (nginx's master and its workers) or of one
//! process the user started (`[[scrape]] pid = N`).
//!
//! Takes a process group or a PID; hands on a [`ProcessReading`], the
//! cumulative counters at one instant. Turning two readings into an
//! interval's use is `telemetry`'s. Nothing here writes or signals.

use super::child::{group_members, stat_fields};
use crate::sys;

/// What a set of processes used up to one instant (CPU) and held at it
/// (memory, descriptors, threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessReading {
    /// CPU time in user mode, in clock ticks (`CLK_TCK`), summed.
    pub user_ticks: u64,
    /// CPU time in the kernel on their behalf, in clock ticks, summed.
    pub system_ticks: u64,
    /// Resident memory, bytes, summed.
    pub rss_bytes: u64,
    /// Open file descriptors (sockets included), summed.
    pub fds: u64,
    /// Threads, summed.
    pub threads: u64,
    /// Processes read.
    pub processes: u64,
    /// True when one of them is stopped (SIGSTOP, a debugger).
    pub stopped: bool,
}

impl ProcessReading {
    /// User CPU time in seconds.
    pub fn user_s(&self) -> f64 {
        self.user_ticks as f64 / sys::clock_ticks_per_s() as f64
    }

    /// System CPU time in seconds.
    pub fn system_s(&self) -> f64 {
        self.system_ticks as f64 / sys::clock_ticks_per_s() as f64
    }

    /// Adds one process's reading.
    fn add(&mut self, other: ProcessReading) {
        self.user_ticks += other.user_ticks;
        self.system_ticks += other.system_ticks;
        self.rss_bytes += other.rss_bytes;
        self.fds += other.fds;
        self.threads += other.threads;
        self.processes += other.processes;
        self.stopped |= other.stopped;
    }
}

/// One live process now; `None` once it is gone (or a zombie, which holds
/// nothing but its exit status).
pub fn process(pid: u32) -> Option<ProcessReading> {
    let f = stat_fields(pid)?;
    if f.first().is_some_and(|s| s == "Z" || s == "X") {
        return None;
    }
    // After the name: state 0, ppid 1, pgrp 2, session 3, tty 4, tpgid 5,
    // flags 6, minflt 7, cminflt 8, majflt 9, cmajflt 10, utime 11,
    // stime 12, cutime 13, cstime 14, priority 15, nice 16, num_threads 17,
    // itrealvalue 18, starttime 19, vsize 20, rss 21 (pages).
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(ProcessReading {
        user_ticks: field(11),
        system_ticks: field(12),
        rss_bytes: field(21) * sys::page_size(),
        fds,
        threads: field(17),
        processes: 1,
        stopped: f[0] == "T" || f[0] == "t",
    })
}

/// Every live process of group `pgid` now, summed; `None` when none is left.
pub fn group(pgid: u32) -> Option<ProcessReading> {
    let mut sum = ProcessReading::default();
    for pid in group_members(pgid) {
        if let Some(one) = process(pid) {
            sum.add(one);
        }
    }
    (sum.processes > 0).then_some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_its_own_threads_memory_and_descriptors() {
        let me = std::process::id();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let reading = process(me).expect("this process is alive");
        assert_eq!(reading.processes, 1);
        assert!(reading.threads >= 1, "{reading:?}");
        assert!(reading.rss_bytes > 1 << 20, "{reading:?}");
        // stdin, stdout, stderr and the file just opened, at least.
        assert!(reading.fds >= 4, "{reading:?}");
        assert!(!reading.stopped);
        drop(file);
        assert_eq!(process(u32::MAX), None);
    }
}
