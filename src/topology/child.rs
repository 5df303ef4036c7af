//! A child process (one that prints `listening on ADDR` first, or one
//! polled until it answers, like nginx and HAProxy, whose stdout may go to
//! a file: HAProxy's access log), started in a process group of its own
//! and stopped, with everything in that group, when its guard drops.
//! A child that ends on its own is described by a [`ChildExit`] (what,
//! when, exit code or signal, last stderr lines, and the processes of its
//! group it left running, which are stopped then) for the report.
//!
//! Why a group of its own: a terminal's Ctrl-C goes to its foreground
//! process group. Children in `contend`'s group would die with it, before
//! `contend` has drained the requests in flight; in their own group they
//! hear only `contend`, which stops them after the drain. And a component
//! is more than one process (nginx's master and its workers): stopping the
//! group stops all of them, also when the master is gone.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// How long a child may take to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long the exit-at-once path waits for children to go after SIGTERM
/// before it sends SIGKILL: short, since the user asked to exit now.
const EXIT_NOW_GRACE: Duration = Duration::from_millis(500);
/// Lines of a dead child's stderr kept in its [`ChildExit`].
const EXIT_STDERR_LINES: usize = 5;

/// Process groups of the children alive now (each child leads its own),
/// for the exit-at-once path.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Stops every child's process group still alive (the second Ctrl-C's
/// path, which exits without running destructors): SIGTERM, so nginx's
/// master takes its workers down, then SIGKILL for any process still there
/// after a short grace.
pub fn stop_all_children() {
    let groups = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for &pgid in &groups {
        let _ = sys::signal_group(pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + EXIT_NOW_GRACE;
    while groups.iter().any(|&g| !group_members(g).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for &pgid in &groups {
        if !group_members(pgid).is_empty() {
            let _ = sys::signal_group(pgid, libc::SIGKILL);
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name: the state, the
/// parent, the process group... The name before them is in parentheses and
/// may hold spaces, so they are read after the last `)`.
pub(super) fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The live processes of process group `pgid` (zombies, which only wait to
/// be reaped, are not counted).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| {
                f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z" && f[0] != "X"
            })
        })
        .collect()
}

/// A component that ended on its own during a run: which, when, and how.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChildExit {
    /// What it was (`mock upstream`, `reference gateway`, `nginx`).
    pub component: String,
    /// Its process ID.
    pub pid: u32,
    /// When it was seen gone, s from the run's start.
    pub at_s: f64,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The status in words (`exit code 1`, `killed by signal 9 (SIGKILL)`).
    pub status: String,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
    /// Processes of its group still running when it died (nginx's workers
    /// after their master): contend stopped them then.
    #[serde(default)]
    pub left_running: Vec<u32>,
}

impl ChildExit {
    /// One sentence for the console and the warnings.
    pub fn describe(&self) -> String {
        let left = match self.left_running.as_slice() {
            [] => String::new(),
            pids => format!(
                "; {} other process{} of it (pid {}) went on serving until contend stopped {}",
                pids.len(),
                if pids.len() == 1 { "" } else { "es" },
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if pids.len() == 1 { "it" } else { "them" }
            ),
        };
        let mut text = format!(
            "the {} (pid {}) died {:.1} s into the run: {}{left}; requests after that are errors",
            self.component, self.pid, self.at_s, self.status
        );
        if let Some(last) = self.stderr_tail.last() {
            text.push_str(&format!("; its last stderr line: {last}"));
        }
        text
    }
}

/// A span of a run in which a component made no progress: its processes
/// were stopped (SIGSTOP, a debugger), so it used no CPU and answered
/// nothing while requests waited on it. Latency then measures the stall,
/// not the generator.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentStall {
    /// What it was (`mock upstream`, `reference gateway`, `nginx`).
    pub component: String,
    /// Its process ID.
    pub pid: u32,
    /// When the stall began and ended, s from the run's start.
    pub from_s: f64,
    /// End of the stall.
    pub to_s: f64,
    /// `stopped`: its processes were stopped.
    pub reason: String,
}

impl ComponentStall {
    /// One sentence for the console and the warnings.
    pub fn describe(&self) -> String {
        format!(
            "the {} (pid {}) stalled from {:.1} s to {:.1} s into the run (its processes were \
             {}: no CPU, no progress): latency in that time measures the stall, not contend",
            self.component, self.pid, self.from_s, self.to_s, self.reason
        )
    }
}

/// What a component's processes were doing at one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// CPU time its processes have used, in clock ticks (user + system).
    pub cpu_ticks: u64,
    /// True when one of them is stopped (state `T` or `t`).
    pub stopped: bool,
}

/// `exit code N` or `killed by signal N (NAME)`.
fn status_words(status: std::process::ExitStatus) -> (Option<i32>, Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (Some(code), None, format!("exit code {code}")),
        (None, Some(signal)) => {
            let name = match signal {
                libc::SIGHUP => "SIGHUP",
                libc::SIGINT => "SIGINT",
                libc::SIGQUIT => "SIGQUIT",
                libc::SIGILL => "SIGILL",
                libc::SIGABRT => "SIGABRT",
                libc::SIGBUS => "SIGBUS",
                libc::SIGFPE => "SIGFPE",
                libc::SIGKILL => "SIGKILL",
                libc::SIGSEGV => "SIGSEGV",
                libc::SIGPIPE => "SIGPIPE",
                libc::SIGTERM => "SIGTERM",
                _ => "",
            };
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            let words = if name.is_empty() {
                format!("killed by signal {signal}{core}")
            } else {
                format!("killed by signal {signal} ({name}){core}")
            };
            (None, Some(signal), words)
        }
        (None, None) => (None, None, status.to_string()),
    }
}

/// A running child component, stopped when dropped.
pub struct ChildGuard {
    /// What it is, for messages ("mock upstream").
    pub name: String,
    /// The address it printed.
    pub addr: SocketAddr,
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Activity {
    /// Its CPU time in seconds.
    pub fn cpu_s(&self) -> f64 {
        self.cpu_ticks as f64 / sys::clock_ticks_per_s() as f64
    }
}

impl ChildGuard {
    /// Starts `exe args...`, waits at most `ready_timeout` for its first
    /// stdout line `listening on ADDR`.
    pub fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        ready_timeout: Duration,
    ) -> Result<ChildGuard> {
        let (mut guard, first_line_rx) = Self::start(name, exe, args, Stdio::piped())?;
        let line = match first_line_rx.recv_timeout(ready_timeout) {
            Ok(Some(line)) => line,
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(guard.failure("exited before it was ready"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(guard.failure(&format!(
                    "did not print its address within {}s",
                    ready_timeout.as_secs_f64()
                )));
            }
        };
        guard.addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| guard.failure(&format!("unexpected first line {line:?}")))?;
        Ok(guard)
    }

    /// Starts `exe args...` that listens on the known `addr` (nginx prints
    /// nothing), and waits at most `ready_timeout` until `ready()` is true.
    /// `ready` is polled every 10 ms: such a child gives no other signal.
    pub fn spawn_polled(
        name: &str,
        exe: &Path,
        args: &[String],
        addr: SocketAddr,
        ready_timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> Result<ChildGuard> {
        let (guard, _stdout) = Self::start(name, exe, args, Stdio::piped())?;
        guard.wait_ready(addr, ready_timeout, ready)
    }

    /// As [`ChildGuard::spawn_polled`], with the child's stdout written to
    /// `stdout` (HAProxy writes its access log there).
    pub fn spawn_polled_to(
        name: &str,
        exe: &Path,
        args: &[String],
        stdout: std::fs::File,
        addr: SocketAddr,
        ready_timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> Result<ChildGuard> {
        let (guard, _stdout) = Self::start(name, exe, args, Stdio::from(stdout))?;
        guard.wait_ready(addr, ready_timeout, ready)
    }

    /// Polls `ready` every 10 ms until it is true, the child exits, or
    /// `ready_timeout` passes.
    fn wait_ready(
        mut self,
        addr: SocketAddr,
        ready_timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> Result<ChildGuard> {
        self.addr = addr;
        let deadline = Instant::now() + ready_timeout;
        loop {
            if self.exited().is_some() {
                return Err(self.failure("exited before it was ready"));
            }
            if ready() {
                return Ok(self);
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!(
                    "did not answer within {}s",
                    ready_timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the child and waits at most `grace` for it to exit
    /// (nginx drains its requests and writes their lines on SIGQUIT), then
    /// stops whatever of its process group is left. True when it exited in
    /// time and left nothing running; the guard's drop stops it otherwise.
    pub fn stop_with(&mut self, signal: libc::c_int, grace: Duration) -> bool {
        if self.exited().is_none() {
            let _ = sys::signal(self.child.id(), signal);
            let deadline = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let exited = self.exited().is_some();
        let left = self.stop_group(STOP_GRACE);
        exited && left.is_empty()
    }

    /// Stops the child's whole process group: SIGTERM, then SIGKILL for
    /// what is still there after `grace`. Returns the processes that were
    /// still running besides the child when it began (its leftovers).
    fn stop_group(&mut self, grace: Duration) -> Vec<u32> {
        let pgid = self.child.id();
        let others = |guard: &mut ChildGuard| {
            let mut members = group_members(pgid);
            members.retain(|&p| p != pgid || guard.exited().is_none());
            members
        };
        let before: Vec<u32> = others(self).into_iter().filter(|&p| p != pgid).collect();
        if others(self).is_empty() {
            return before;
        }
        let _ = sys::signal_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while !others(self).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !others(self).is_empty() {
            let _ = sys::signal_group(pgid, libc::SIGKILL);
            let _ = self.child.wait();
            let deadline = Instant::now() + EXIT_NOW_GRACE;
            while !others(self).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        before
    }

    /// What the child's processes are doing now; `None` once none runs.
    pub fn activity(&self) -> Option<Activity> {
        let members = group_members(self.child.id());
        let mut activity = Activity {
            cpu_ticks: 0,
            stopped: false,
        };
        let mut any = false;
        for pid in members {
            let Some(f) = stat_fields(pid) else { continue };
            // After the name: state, ppid, pgrp, session, tty, tpgid, flags,
            // minflt, cminflt, majflt, cmajflt, utime, stime.
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            activity.cpu_ticks += tick(11) + tick(12);
            activity.stopped |= f[0] == "T" || f[0] == "t";
            any = true;
        }
        any.then_some(activity)
    }

    /// Processes of the child's group still running, for the check after
    /// a run that nothing of it is left (empty once it has stopped).
    pub fn leftovers(&self) -> Vec<u32> {
        group_members(self.child.id())
    }

    /// The last lines the child wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Spawns the process with its stdout to `stdout`, registers it,
    /// starts its stderr reader; hands back the guard and a channel with its
    /// first stdout line (when `stdout` is a pipe; the channel is closed
    /// otherwise).
    fn start(
        name: &str,
        exe: &Path,
        args: &[String],
        stdout: Stdio,
    ) -> Result<(ChildGuard, mpsc::Receiver<Option<String>>)> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            // A group of its own, led by the child (see the module's doc).
            .process_group(0);
        sys::kill_child_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| Error::Component {
            component: name.into(),
            message: format!("cannot start {}: {e}", exe.display()),
        })?;
        if let Ok(mut live) = LIVE.lock() {
            live.push(child.id());
        }

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_reader = child.stderr.take().map(|stderr| {
            let tail = stderr_tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == STDERR_TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
            })
        });
        let (first_line_tx, first_line_rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = first_line_tx.send(lines.next().and_then(|l| l.ok()));
                // Keep draining so the child never blocks on a full pipe.
                for _ in lines {}
            });
        }

        let guard = ChildGuard {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stderr_tail,
            stderr_reader,
        };
        Ok((guard, first_line_rx))
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while running; the exit status once it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `Some` once the child has ended: what, when (`at_s` from the run's
    /// start) and how, for the report. What it left running in its group
    /// (nginx's workers after their master) is stopped now: a component
    /// whose leader is gone is gone.
    pub fn exit_report(&mut self, at_s: f64) -> Option<ChildExit> {
        let status = self.exited()?;
        let (exit_code, signal, status) = status_words(status);
        let left_running = self.stop_group(STOP_GRACE);
        let tail = self.stderr_tail();
        let keep = tail.len().saturating_sub(EXIT_STDERR_LINES);
        Some(ChildExit {
            component: self.name.clone(),
            pid: self.pid(),
            at_s: (at_s * 1000.0).round() / 1000.0,
            exit_code,
            signal,
            status,
            stderr_tail: tail[keep..].to_vec(),
            left_running,
        })
    }

    /// Stops the child and returns an error naming this component, with
    /// the tail of its stderr.
    fn failure(&mut self, what: &str) -> Error {
        self.stop_group(EXIT_NOW_GRACE);
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // The child is gone, so its stderr is at EOF: the reader ends with
        // every line the child wrote.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let tail: Vec<String> = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let mut message = what.to_string();
        if !tail.is_empty() {
            message.push_str("; its last stderr lines:\n  ");
            message.push_str(&tail.join("\n  "));
        }
        Error::Component {
            component: self.name.clone(),
            message,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = self.child.id();
        self.stop_group(STOP_GRACE);
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| *p != pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::status_words;

    #[test]
    fn exit_statuses_are_told_in_words() {
        // Raw wait statuses: the exit code in bits 8-15, the signal in the
        // low 7 bits, 0x80 for a core dump.
        let cases: &[(i32, Option<i32>, Option<i32>, &str)] = &[
            (3 << 8, Some(3), None, "exit code 3"),
            (0, Some(0), None, "exit code 0"),
            (9, None, Some(9), "killed by signal 9 (SIGKILL)"),
            (
                11 | 0x80,
                None,
                Some(11),
                "killed by signal 11 (SIGSEGV), core dumped",
            ),
            (40, None, Some(40), "killed by signal 40"),
        ];
        for &(raw, code, signal, words) in cases {
            let (c, s, w) = status_words(ExitStatus::from_raw(raw));
            assert_eq!((c, s, w.as_str()), (code, signal, words), "raw {raw:#x}");
        }
    }
}
