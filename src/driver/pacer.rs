//! A shard's pacer: sends each arrival at its intended time (to within the
//! pacing window) and closes the reporting intervals on time; or, in closed
//! loop, starts the clients and closes the intervals while they run.
//!
//! Takes the shard's [`Shared`] state once its connections are warm; hands
//! due arrivals to [`Shared::dispatch`] through `dispatch_due` and each
//! closed interval to the coordinator.

use std::rc::Rc;
use std::sync::mpsc;

use tokio::sync::watch;

use super::pacing::Window;
use super::shard::{MAX_BATCH, ShardPlan, Shared, dispatch_due};
use super::worker::{self, Job};
use super::{Protocol, ShardMsg};
use crate::scenario::Rate;
use crate::sys;

/// The pacer: sends what is due, closes intervals, then sleeps on the
/// timerfd until the next arrival (or, when that is sooner than the
/// `window` after this wake, until the window ends), until the schedule
/// ends or a stop is asked for.
pub(super) async fn pace(
    shared: &Rc<Shared>,
    interval_ns: u64,
    window: &mut Window,
    to_coordinator: &mpsc::Sender<ShardMsg>,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    let timer = sys::register_timer(sys::TimerFd::new()?)?;
    let start_ns = shared.arrivals.borrow().start_ns;
    let mut next_tick_ns = start_ns;
    // Each interval keeps the widest window it used: the recorder hears of
    // the first and of each change, never of every wake.
    shared.pacing_window_ns.set(window.ns());
    shared
        .recorder
        .borrow_mut()
        .pacing_window(start_ns, window.ns());
    loop {
        let now_ns = sys::monotonic_ns();
        // Close intervals before dispatching, so `in_flight` is what the
        // interval ended with, not what this wake is about to send.
        if now_ns >= next_tick_ns {
            next_tick_ns = close_intervals(shared, now_ns, start_ns, interval_ns, to_coordinator);
        }
        let sent = dispatch_due(shared, now_ns, now_ns);
        let next_arrival_ns = shared.arrivals.borrow().next_due_ns;
        let due_ns = match (next_arrival_ns, &shared.retries) {
            (Some(due_ns), _) => due_ns,
            // With retries, the pacer keeps the schedule until the run's
            // end: a retry may come due after the last arrival.
            (None, Some(retries)) if now_ns < retries.borrow().end_ns => retries.borrow().end_ns,
            (None, _) => break,
        };
        let due_ns = shared.next_retry_ns().map_or(due_ns, |r| r.min(due_ns));
        if *stop.borrow() {
            break;
        }
        if sent == MAX_BATCH {
            // A backlog (after a stall): let the connections' I/O run first.
            tokio::task::yield_now().await;
            continue;
        }
        window.look(now_ns);
        if window.ns() != shared.pacing_window_ns.get() {
            shared.pacing_window_ns.set(window.ns());
            shared
                .recorder
                .borrow_mut()
                .pacing_window(now_ns, window.ns());
        }
        let wake_ns = due_ns.max(now_ns + window.ns()).min(next_tick_ns);
        timer.get_ref().arm_at(wake_ns)?;
        tokio::select! {
            guard = timer.readable() => guard?.clear_ready(),
            // A closed channel (no one can stop us) disables this branch.
            Ok(()) = stop.changed() => break,
            // A retry was scheduled, maybe before this wake: look again.
            () = shared.retry_scheduled.notified(), if shared.retries.is_some() => {}
        }
    }
    Ok(())
}

/// Closed loop: `clients` workers each send the next request as soon as
/// the last one ended, until `end_ns` or a stop; meanwhile this closes the
/// intervals on time. Each request's intended time is its send time.
pub(super) async fn closed_loop(
    shared: &Rc<Shared>,
    clients: usize,
    end_ns: u64,
    interval_ns: u64,
    to_coordinator: &mpsc::Sender<ShardMsg>,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    shared.arrivals.borrow_mut().next_due_ns = None;
    match shared.protocol {
        Protocol::Http1 => {
            for _ in 0..clients {
                worker::spawn_closed(shared.clone(), end_ns);
            }
        }
        Protocol::Http2 => {
            // Each client is a stream: its next goes out as it ends (see
            // `Shared::ended`), packed onto connections like any stream.
            shared.closed_loop_end_ns.set(end_ns);
            let now_ns = sys::monotonic_ns();
            for _ in 0..clients {
                let job = Job::new(shared.next_key(), now_ns);
                shared.dispatch(job, now_ns);
            }
        }
    }
    let timer = sys::register_timer(sys::TimerFd::new()?)?;
    let start_ns = shared.arrivals.borrow().start_ns;
    let mut next_tick_ns = start_ns + interval_ns;
    loop {
        let now_ns = sys::monotonic_ns();
        if now_ns >= next_tick_ns {
            next_tick_ns = close_intervals(shared, now_ns, start_ns, interval_ns, to_coordinator);
        }
        if now_ns >= end_ns || *stop.borrow() {
            break;
        }
        timer.get_ref().arm_at(next_tick_ns.min(end_ns))?;
        tokio::select! {
            guard = timer.readable() => guard?.clear_ready(),
            Ok(()) = stop.changed() => break,
        }
    }
    // Each client ends after the request it has in flight.
    shared.closing.set(true);
    Ok(())
}

/// Closes the intervals that ended by `now_ns` and hands them to the
/// coordinator; returns when the next one ends.
fn close_intervals(
    shared: &Shared,
    now_ns: u64,
    start_ns: u64,
    interval_ns: u64,
    to_coordinator: &mpsc::Sender<ShardMsg>,
) -> u64 {
    let mut recorder = shared.recorder.borrow_mut();
    recorder.tick(now_ns, shared.in_flight.get());
    for snapshot in recorder.take_finished() {
        let _ = to_coordinator.send(ShardMsg::Interval(Box::new(snapshot)));
    }
    start_ns + ((now_ns - start_ns) / interval_ns + 1) * interval_ns
}

/// The shard's pacing window, started for its arrivals per second as its
/// first phase begins (see [`Window::start_for`]).
pub(super) fn window_of(plan: &ShardPlan) -> Window {
    let rate = plan.phases.first().map_or(0.0, |p| match p.rate {
        Rate::Constant(r) => r,
        Rate::Ramp { from, .. } => from,
    });
    let mut window = Window::new(plan.pacing_window_ns, plan.pacing_window_max_ns);
    window.start_for(rate / plan.shards.max(1) as f64);
    window
}
