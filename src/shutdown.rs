//! Ctrl-C and SIGTERM: the first stops sending, the second exits at once.
//!
//! [`install`] starts a small signal thread and hands back a [`Stop`]
//! handle the run watches. On the first SIGINT or SIGTERM the handle turns
//! true: the driver stops dispatching, drains what is in flight, and the
//! report of what ran is written. On a second signal (at least
//! [`REPEAT_WINDOW`] after the first: a repeat sooner is the same stop)
//! every child process still registered with [`crate::topology`] is
//! stopped, the cgroups made for hardware classes are removed, and the
//! process exits with 128 + the signal number. It does not know about
//! reports.

use std::sync::OnceLock;

use tokio::sync::watch;

/// The signal that stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit code 130.
    Interrupt,
    /// SIGTERM: exit code 143.
    Terminate,
}

impl Signal {
    /// The conventional exit code, 128 + signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// How long after the first signal a repeat of it is still the same stop.
///
/// `timeout -s INT 60 contend run ...` signals contend, then its whole
/// process group, microseconds apart; a script's `kill` of a process group
/// that holds contend does the same. Read as a second Ctrl-C, that pair
/// would throw away the report of what ran: a second signal counts only
/// once this much has passed since the first.
pub const REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

/// A handle that turns true when the run should stop.
#[derive(Clone)]
pub struct Stop {
    rx: watch::Receiver<bool>,
    /// Keeps the channel open for handles nothing else fires.
    _tx: Option<std::sync::Arc<watch::Sender<bool>>>,
}

static FIRST: OnceLock<Signal> = OnceLock::new();

impl Stop {
    /// A handle that never fires (for tests and library use).
    pub fn never() -> Stop {
        let (tx, rx) = watch::channel(false);
        Stop {
            rx,
            _tx: Some(std::sync::Arc::new(tx)),
        }
    }

    /// The watch receiver the driver's shards select on.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// True once a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow()
    }

    /// The signal that stopped the run, if one did.
    pub fn signal() -> Option<Signal> {
        FIRST.get().copied()
    }
}

/// Installs the SIGINT/SIGTERM handlers and returns the stop handle.
pub fn install() -> std::io::Result<Stop> {
    let (tx, rx) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Register the handlers now, so a signal that comes before the thread
    // first runs is not lost.
    let (mut sigint, mut sigterm) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("contend-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
            let mut first_at: Option<std::time::Instant> = None;
            loop {
                let signal = tokio::select! {
                    _ = sigint.recv() => Signal::Interrupt,
                    _ = sigterm.recv() => Signal::Terminate,
                };
                let Some(first) = first_at else {
                    first_at = Some(std::time::Instant::now());
                    let _ = FIRST.set(signal);
                    eprintln!(
                        "\ncontend: stopping: draining requests in flight and writing the report \
                         (signal again to exit at once)"
                    );
                    let _ = tx.send(true);
                    continue;
                };
                if first.elapsed() >= REPEAT_WINDOW {
                    crate::topology::stop_all_children();
                    // No destructor runs past exit: the cgroups go now,
                    // once the children in them are stopped.
                    crate::topology::cgroup::remove_all();
                    std::process::exit(signal.exit_code());
                }
            }
        });
        })?;
    Ok(Stop { rx, _tx: None })
}
