//! A child process (one that prints `listening on ADDR` first, or one
//! polled until it answers, like nginx) stopped by PID when its guard drops.

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

/// PIDs of the children alive now, for the exit-at-once path.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends SIGTERM to every child still alive (the second Ctrl-C's path,
/// which exits without running destructors).
pub fn stop_all_children() {
    let pids = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for pid in pids {
        let _ = sys::signal(pid, libc::SIGTERM);
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
                    ready_timeout.as_secs()
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
                    ready_timeout.as_secs()
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
