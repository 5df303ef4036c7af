//! `[[faults]]` applied on schedule while a step's load runs: the watcher
//! thread of [`super::step`] asks a [`Schedule`] what is due and applies it
//! to the components (SIGSTOP and SIGCONT of a component's process group
//! for a pause, SIGKILL for a kill, a new process on the same port for a
//! restart).
//!
//! Takes the scenario's [`FaultSpec`]s and the components with their
//! roles; hands on the [`AppliedFault`]s, with the times they actually
//! took effect, for the summary and the plots. A fault that fails when
//! applied (a restart whose port was taken) is recorded with its error;
//! the step goes on.

use std::time::{Duration, Instant};

use crate::scenario::{FaultAction, FaultSpec, FaultTarget};
use crate::topology::Component;

/// A fault as it happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AppliedFault {
    /// The component's role (`store`, `gateway:2`).
    pub component: String,
    /// `pause`, `kill`, `restart` or `slow`.
    pub action: String,
    /// When it was scheduled, s from the load's start.
    pub planned_s: f64,
    /// When it took effect, s from the load's start.
    pub at_s: f64,
    /// When it ended (resumed, restarted), s from the load's start; `None`
    /// for a kill that lasts.
    pub until_s: Option<f64>,
    /// Why it could not be applied (wholly or its end), when it could not.
    pub error: Option<String>,
}

/// One thing to do at a time: a fault's start or its end.
#[derive(Debug, Clone, Copy)]
struct Due {
    at: Duration,
    fault: usize,
    end: bool,
}

/// The faults of one step, in time order, and what became of them.
pub struct Schedule {
    specs: Vec<FaultSpec>,
    due: Vec<Due>,
    next: usize,
    applied: Vec<Option<AppliedFault>>,
}

impl Schedule {
    /// The schedule of `faults`.
    pub fn new(faults: &[FaultSpec]) -> Schedule {
        let mut due: Vec<Due> = Vec::new();
        for (i, f) in faults.iter().enumerate() {
            due.push(Due {
                at: f.at,
                fault: i,
                end: false,
            });
            if f.duration.is_some() {
                due.push(Due {
                    at: f.until(),
                    fault: i,
                    end: true,
                });
            }
        }
        due.sort_by_key(|d| (d.at, d.end));
        Schedule {
            specs: faults.to_vec(),
            due,
            next: 0,
            applied: vec![None; faults.len()],
        }
    }

    /// How long from `now` until the next thing is due, when the load
    /// began at `start`.
    pub fn until_next(&self, start: Option<Instant>, now: Instant) -> Option<Duration> {
        let start = start?;
        let due = self.due.get(self.next)?;
        Some((start + due.at).saturating_duration_since(now))
    }

    /// True when the next thing due by `now` is a fault's end (a resume, a
    /// restart): the watcher applies it before the interval's reading, so
    /// that reading does not wait on a component still stopped.
    pub fn end_due(&self, start: Option<Instant>, now: Instant) -> bool {
        let (Some(start), Some(due)) = (start, self.due.get(self.next)) else {
            return false;
        };
        due.end && start + due.at <= now
    }

    /// Applies what is due at `now` (everything still pending when `end`:
    /// a paused component is never left stopped). `revived` is told the
    /// index of a component started again.
    pub fn apply<'c>(
        &mut self,
        start: Option<Instant>,
        now: Instant,
        end: bool,
        components: &mut [(&str, &mut (dyn Component + 'c))],
        revived: &mut dyn FnMut(usize),
    ) {
        let Some(start) = start else { return };
        while let Some(due) = self.due.get(self.next).copied() {
            if !end && start + due.at > now {
                break;
            }
            self.next += 1;
            let spec = &self.specs[due.fault];
            // A fault whose start never came is not ended.
            if end && !due.end && start + due.at > now {
                continue;
            }
            let role = spec.target.role();
            let Some(index) = components.iter().position(|(r, _)| *r == role) else {
                continue;
            };
            let component = &mut *components[index].1;
            let at_s = start.elapsed().as_secs_f64();
            let result = act(component, spec, due.end);
            if result.as_ref().is_ok_and(|revived| *revived) {
                revived(index);
            }
            let error = result.err();
            let slot = &mut self.applied[due.fault];
            match (due.end, slot.as_mut()) {
                (true, Some(applied)) => {
                    applied.until_s = Some(round3(at_s));
                    applied.error = applied.error.take().or(error);
                }
                _ => {
                    *slot = Some(AppliedFault {
                        component: role,
                        action: spec.action.as_str().to_string(),
                        planned_s: spec.at.as_secs_f64(),
                        at_s: round3(at_s),
                        until_s: (spec.action == FaultAction::Restart).then(|| round3(at_s)),
                        error,
                    })
                }
            }
        }
    }

    /// What happened, in the scenario's order (faults never reached are left out).
    pub fn finish(self) -> Vec<AppliedFault> {
        self.applied.into_iter().flatten().collect()
    }
}

/// Does one fault's start or end to `component`; `Ok(true)` when it was
/// started again.
fn act(component: &mut (dyn Component + '_), spec: &FaultSpec, end: bool) -> Result<bool, String> {
    let action = spec.action;
    let pgid = component.child().pid();
    let signal = |sig| {
        crate::sys::signal_group(pgid, sig)
            .map_err(|e| format!("signalling the {}: {e}", component.name()))
    };
    match (action, end) {
        (FaultAction::Pause, false) => signal(libc::SIGSTOP).map(|()| false),
        (FaultAction::Pause, true) => signal(libc::SIGCONT).map(|()| false),
        (FaultAction::Kill, false) => signal(libc::SIGKILL).map(|()| false),
        (FaultAction::Kill, true) | (FaultAction::Restart, _) => component.restart().map(|()| true),
        (FaultAction::Slow, _) => slow(component, spec, end).map(|()| false),
    }
}

/// Sets a slowdown (or, at its `end`, clears it) through the component's
/// endpoint: the mock's `POST /slow?cpu_factor=F&sleep_ms=D`, the
/// reference gateway's `POST /_contend/slow?delay_ms=D`; an empty query
/// ends it.
fn slow(component: &(dyn Component + '_), spec: &FaultSpec, end: bool) -> Result<(), String> {
    let slow = spec.slow.unwrap_or(crate::scenario::Slowdown {
        cpu_factor: 1.0,
        delay: Duration::ZERO,
    });
    let delay_ms = slow.delay.as_secs_f64() * 1000.0;
    let (path, query) = match spec.target {
        FaultTarget::Upstream => ("/slow", slow.query()),
        _ => ("/_contend/slow", format!("delay_ms={delay_ms}")),
    };
    let uri = if end {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    match crate::topology::http::request(component.addr(), "POST", &uri) {
        Ok((200, _)) => Ok(()),
        Ok((status, body)) => Err(format!(
            "slowing the {}: POST {uri} answered {status}: {}",
            component.name(),
            String::from_utf8_lossy(&body).trim()
        )),
        Err(e) => Err(format!("slowing the {}: POST {uri}: {e}", component.name())),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
