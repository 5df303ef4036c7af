//! The arrivals a shard holds for a connection (or an HTTP/2 stream) to
//! come free, oldest first, and the connections it may open for them.
//!
//! Takes the jobs that found no idle connection, each marked on time or
//! late (see `ShardPlan::late_ns`); hands them to connections as they come
//! free, and tells the shard how many new connections they ask for: one
//! for each on-time job, and one for each late job only once the queue
//! [stands still](Waiting::stands_still).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use super::worker::Job;
use crate::sys;

/// How long a queue waits with no job taken by a connection before late
/// jobs may open connections too: a connection whose answer has arrived
/// takes the next job as soon as the shard reads it (microseconds; a
/// hiccup of the machine, a few milliseconds), so a queue that stands still
/// this long waits for a slow target, not for a driver behind on reading,
/// and late jobs waiting for its connections would turn the open loop
/// closed (the offered rate falling to what the busy connections finish).
const QUEUE_STILL_NS: u64 = 5_000_000;

/// The jobs waiting, and the connections they ask for.
#[derive(Default)]
pub(super) struct Waiting {
    jobs: RefCell<VecDeque<Job>>,
    /// When the queue last moved: a job queued while it was empty, or one
    /// taken from it.
    moved_ns: Cell<u64>,
    /// On-time jobs that asked since the last [`Waiting::wanted`].
    on_time: Cell<usize>,
    /// Late jobs that asked since the last [`Waiting::wanted`].
    late: Cell<usize>,
}

impl Waiting {
    /// Queues `job`, which found no free connection at `now_ns`.
    pub(super) fn push(&self, job: Job, now_ns: u64) {
        let mut jobs = self.jobs.borrow_mut();
        if jobs.is_empty() {
            self.moved_ns.set(now_ns);
        }
        jobs.push_back(job);
    }

    /// Notes that a job just queued asks for a connection: at once, or
    /// (`late`: it was dispatched late) only if the queue stands still.
    pub(super) fn ask(&self, late: bool) {
        let asking = if late { &self.late } else { &self.on_time };
        asking.set(asking.get() + 1);
    }

    /// Puts back a job whose connection went away before it left.
    pub(super) fn push_front(&self, job: Job) {
        let mut jobs = self.jobs.borrow_mut();
        if jobs.is_empty() {
            self.moved_ns.set(sys::monotonic_ns());
        }
        jobs.push_front(job);
    }

    /// The oldest job, for a connection (or stream) that is free.
    pub(super) fn take(&self) -> Option<Job> {
        let job = self.jobs.borrow_mut().pop_front()?;
        self.moved_ns.set(sys::monotonic_ns());
        Some(job)
    }

    /// True when no job waits.
    pub(super) fn is_empty(&self) -> bool {
        self.jobs.borrow().is_empty()
    }

    /// The newest job waiting.
    pub(super) fn newest(&self) -> Option<Job> {
        self.jobs.borrow().back().copied()
    }

    /// True when jobs wait and none was taken for [`QUEUE_STILL_NS`].
    pub(super) fn stands_still(&self, now_ns: u64) -> bool {
        !self.is_empty() && now_ns.saturating_sub(self.moved_ns.get()) > QUEUE_STILL_NS
    }

    /// The connections the jobs that asked since the last call want (at
    /// most one per job still waiting): each on-time job's, and each late
    /// one's if the queue stands still.
    pub(super) fn wanted(&self, now_ns: u64) -> usize {
        let mut wanted = self.on_time.take();
        let late = self.late.take();
        if self.stands_still(now_ns) {
            wanted += late;
        }
        wanted.min(self.jobs.borrow().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KeyPick;

    fn job(due_ns: u64) -> Job {
        Job::new(
            KeyPick {
                key: 0,
                slot: KeyPick::NO_SLOT,
            },
            due_ns,
        )
    }

    #[test]
    fn late_jobs_ask_for_connections_only_once_the_queue_stands_still() {
        let q = Waiting::default();
        let push = |at_ns, late| {
            q.push(job(0), at_ns);
            q.ask(late);
        };
        push(1_000, false);
        push(1_000, true);
        push(1_000, true);
        // Just queued: the queue moved now, only the on-time job asks.
        assert_eq!(q.wanted(2_000), 1);
        assert_eq!(q.wanted(2_000), 0, "asked once");
        push(3_000, true);
        push(3_000, true);
        // Nothing taken since 1,000 ns: past QUEUE_STILL_NS it stands still.
        assert!(!q.stands_still(1_000 + QUEUE_STILL_NS));
        assert!(q.stands_still(1_001 + QUEUE_STILL_NS));
        assert_eq!(q.wanted(1_001 + QUEUE_STILL_NS), 2);
        // A job taken moves it again; an empty queue never stands still.
        assert!(q.take().is_some());
        assert!(!q.stands_still(sys::monotonic_ns() + 1_000));
        while q.take().is_some() {}
        assert!(!q.stands_still(u64::MAX));
        push(5, false);
        push(5, false);
        q.take();
        assert_eq!(q.wanted(10), 1, "no more than the jobs still waiting");
        // A job put back on an empty queue starts it moving again.
        while q.take().is_some() {}
        let put_back_ns = sys::monotonic_ns();
        q.push_front(job(0));
        assert!(!q.stands_still(put_back_ns + QUEUE_STILL_NS));
    }
}
