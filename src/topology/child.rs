//! A child process (one that prints `listening on ADDR` first, or one
//! polled until it answers, like nginx) stopped by PID when its guard drops.
//! A child that ends on its own is described by a [`ChildExit`] (what,
//! when, exit code or signal, last stderr lines) for the report.

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

/// PIDs of the children alive now, for the exit-at-once path.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Stops every child still alive (the second Ctrl-C's path, which exits
/// without running destructors): SIGTERM, so nginx's master takes its
/// workers down, then SIGKILL for any still there after a short grace.
pub fn stop_all_children() {
    let pids = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for &pid in &pids {
        let _ = sys::signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + EXIT_NOW_GRACE;
    while pids.iter().any(|&pid| !has_ended(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for &pid in &pids {
        if !has_ended(pid) {
            let _ = sys::signal(pid, libc::SIGKILL);
        }
    }
}

/// True when our child `pid` has exited: it is a zombie (nobody reaps it
/// on this path) or already gone. Reads `/proc/PID/stat`, whose third
/// field is the state; the command name before it is in parentheses and
/// may hold spaces, so the state is read after the last `)`.
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
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
}

impl ChildExit {
    /// One sentence for the console and the warnings.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "the {} (pid {}) died {:.1} s into the run: {}; requests after that are errors",
            self.component, self.pid, self.at_s, self.status
        );
        if let Some(last) = self.stderr_tail.last() {
            text.push_str(&format!("; its last stderr line: {last}"));
        }
        text
    }
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

impl ChildGuard {
    /// Starts `exe args...`, waits at most `ready_timeout` for its first
    /// stdout line `listening on ADDR`.
    pub fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        ready_timeout: Duration,
    ) -> Result<ChildGuard> {
        let (mut guard, first_line_rx) = Self::start(name, exe, args)?;
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
        let (mut guard, _stdout) = Self::start(name, exe, args)?;
        guard.addr = addr;
        let deadline = Instant::now() + ready_timeout;
        loop {
            if guard.exited().is_some() {
                return Err(guard.failure("exited before it was ready"));
            }
            if ready() {
                return Ok(guard);
            }
            if Instant::now() > deadline {
                return Err(guard.failure(&format!(
                    "did not answer within {}s",
                    ready_timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` and waits at most `grace` for the child to exit (nginx
    /// drains its requests and writes their lines on SIGQUIT). True when it
    /// exited; the guard's drop still stops it otherwise.
    pub fn stop_with(&mut self, signal: libc::c_int, grace: Duration) -> bool {
        if self.exited().is_some() {
            return true;
        }
        let _ = sys::signal(self.child.id(), signal);
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.exited().is_some()
    }

    /// The last lines the child wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Spawns the process, registers it, starts its stderr reader; hands
    /// back the guard and a channel with its first stdout line.
    fn start(
        name: &str,
        exe: &Path,
        args: &[String],
    ) -> Result<(ChildGuard, mpsc::Receiver<Option<String>>)> {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
    /// start) and how, for the report.
    pub fn exit_report(&mut self, at_s: f64) -> Option<ChildExit> {
        let status = self.exited()?;
        let (exit_code, signal, status) = status_words(status);
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
        })
    }

    /// Stops the child and returns an error naming this component, with
    /// the tail of its stderr.
    fn failure(&mut self, what: &str) -> Error {
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
        if self.exited().is_none() {
            let _ = sys::signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if self.exited().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
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
