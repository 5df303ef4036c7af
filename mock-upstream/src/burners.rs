//! Threads for unbounded work: one thread per job in flight, kept for the next job once idle.
//!
//! Takes a job (a closure that burns a request's CPU and reports back on its own channel) and
//! runs it at once on an idle thread, or on a new one when none is idle. It does not queue, bound
//! or account anything: `server` does. A thread idle for [`KEEP_ALIVE`] exits.
//!
//! Why not tokio's `spawn_blocking`: its pool hands a job over under one mutex shared by the
//! I/O thread and every worker, and signals its condvar while holding it. On the one core the
//! mock is usually pinned to, the woken worker preempts the I/O thread and blocks on that
//! mutex, so each request paid some four futex calls and two extra context switches. Here a
//! hand-over puts the job in the idle thread's own slot and then unparks it: one wake, with no
//! lock held. (std's channel would not do: its sender wakes the receiver under the channel's
//! mutex, and the woken receiver preempts the sender and blocks on it, as above.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle thread waits for its next job before it exits (tokio's blocking pool
/// keeps its threads as long).
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// One job: it reports its own result (the caller keeps the receiving end).
pub type Job = Box<dyn FnOnce() + Send>;

/// Where an idle thread takes its next job from.
struct Slot {
    job: Mutex<Option<Job>>,
    thread: Thread,
}

/// The threads that run jobs: the idle ones wait on their slots.
#[derive(Default)]
pub struct Burners {
    idle: Arc<Mutex<Vec<Arc<Slot>>>>,
    /// Threads alive, to stay under the caller's limit.
    alive: Arc<AtomicUsize>,
}

impl Burners {
    /// Runs `job` now on an idle thread, or on a new one. Hands the job back when no thread is
    /// idle and `max_threads` are alive, or a new one cannot be started.
    pub fn run(&self, job: Job, max_threads: usize) -> Result<(), Job> {
        let idle = lock(&self.idle).pop();
        if let Some(slot) = idle {
            // The job goes in, the lock is let go, and only then is the thread woken: a woken
            // thread that preempts this one finds nothing held.
            *lock(&slot.job) = Some(job);
            slot.thread.unpark();
            return Ok(());
        }
        if self.alive.fetch_add(1, Ordering::Relaxed) >= max_threads {
            self.alive.fetch_sub(1, Ordering::Relaxed);
            return Err(job);
        }
        let idle = self.idle.clone();
        let alive = self.alive.clone();
        // The job goes in through a slot of its own so that a failed spawn can hand it back.
        let first = Arc::new(Mutex::new(Some(job)));
        let taken = first.clone();
        let spawned = std::thread::Builder::new()
            .name("mock-burn".into())
            .spawn(move || {
                let job = lock(&taken).take();
                if let Some(job) = job {
                    serve_jobs(job, &idle);
                }
                alive.fetch_sub(1, Ordering::Relaxed);
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(_) => {
                self.alive.fetch_sub(1, Ordering::Relaxed);
                let back = lock(&first).take();
                back.map_or(Ok(()), Err)
            }
        }
    }
}

/// A thread's life: run the job, offer itself as idle, wait for the next, until
/// [`KEEP_ALIVE`] passes with none.
fn serve_jobs(first: Job, idle: &Mutex<Vec<Arc<Slot>>>) {
    let slot = Arc::new(Slot {
        job: Mutex::new(None),
        thread: std::thread::current(),
    });
    let mut job = first;
    loop {
        job();
        lock(idle).push(slot.clone());
        let deadline = Instant::now() + KEEP_ALIVE;
        let mut leaving = false;
        job = loop {
            let next = lock(&slot.job).take();
            if let Some(next) = next {
                break next;
            }
            if leaving {
                // Taken off the idle list just before it could leave: its job is on the way.
                std::thread::park();
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut list = lock(idle);
                if let Some(at) = list.iter().position(|s| Arc::ptr_eq(s, &slot)) {
                    list.swap_remove(at);
                    return;
                }
                leaving = true;
                continue;
            }
            std::thread::park_timeout(left);
        };
    }
}

/// A lock whose poisoning (a panic in a job cannot happen under it) is harmless.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Barrier, mpsc};

    #[test]
    fn jobs_in_flight_run_at_once_and_idle_threads_are_reused() {
        let burners = Burners::default();
        // Three jobs that can only finish together: each needs its own thread.
        let barrier = Arc::new(Barrier::new(3));
        let (done, finished) = mpsc::channel();
        for _ in 0..3 {
            let barrier = barrier.clone();
            let done = done.clone();
            let job: Job = Box::new(move || {
                barrier.wait();
                let _ = done.send(std::thread::current().id());
            });
            assert!(burners.run(job, 100).is_ok());
        }
        let first: Vec<_> = (0..3).map(|_| finished.recv().unwrap()).collect();
        // Wait until all three offered themselves as idle again.
        while lock(&burners.idle).len() < 3 {
            std::thread::yield_now();
        }
        let done2 = done.clone();
        let job: Job = Box::new(move || {
            let _ = done2.send(std::thread::current().id());
        });
        assert!(burners.run(job, 100).is_ok());
        let again = finished.recv().unwrap();
        assert!(first.contains(&again), "a new thread ran the job");
        assert_eq!(burners.alive.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_job_over_the_thread_limit_comes_back() {
        let burners = Burners::default();
        let (release, wait) = mpsc::channel::<()>();
        let job: Job = Box::new(move || {
            let _ = wait.recv();
        });
        assert!(burners.run(job, 1).is_ok());
        let back = burners.run(Box::new(|| {}), 1);
        assert!(back.is_err());
        drop(release);
    }
}
