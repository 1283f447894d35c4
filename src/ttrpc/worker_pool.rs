//! A bounded pool of threads that run requests. Threads are started as work arrives, up to
//! a maximum; one idle longer than [`IDLE_EXIT`] ends (the last [`KEEP`] stay). When every
//! thread is busy, work waits in the queue. A thread that cannot be started (the system is
//! out of threads or memory) is not an error while another thread exists: the work waits
//! for it; with none at all, the work is handed back so the caller can refuse it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A unit of work.
pub type Job = Box<dyn FnOnce() + Send>;

/// How long a thread waits for work before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// Threads kept even when idle.
const KEEP: usize = 1;

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Inner {
    state: Mutex<State>,
    work: Condvar,
    max: usize,
    name: String,
}

#[derive(Clone)]
pub struct WorkerPool(Arc<Inner>);

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WorkerPool {
    /// A pool of at most `max` threads named `name`.
    pub fn new(name: &str, max: usize) -> WorkerPool {
        WorkerPool(Arc::new(Inner {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
            }),
            work: Condvar::new(),
            max: max.max(1),
            name: name.to_string(),
        }))
    }

    /// Queues `job`; Err(job) when no thread exists to run it and none can be started.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let mut s = lock(&self.0.state);
        s.jobs.push_back(job);
        if s.idle >= s.jobs.len() {
            self.0.work.notify_one();
            return Ok(());
        }
        if s.threads < self.0.max {
            s.threads += 1;
            drop(s);
            let inner = self.0.clone();
            let started = std::thread::Builder::new()
                .name(self.0.name.clone())
                .spawn(move || work(&inner));
            if started.is_ok() {
                return Ok(());
            }
            s = lock(&self.0.state);
            s.threads -= 1;
            if s.threads == 0 {
                // Nobody will ever run it: hand back the newest job (ours, unless another
                // submitter raced in; either way one job goes back per failed start).
                return s.jobs.pop_back().map_or(Ok(()), Err);
            }
        }
        // Every thread is busy: it waits its turn.
        Ok(())
    }

    /// Threads now running (busy or idle).
    pub fn threads(&self) -> usize {
        lock(&self.0.state).threads
    }
}

fn work(inner: &Inner) {
    let mut s = lock(&inner.state);
    loop {
        if let Some(job) = s.jobs.pop_front() {
            drop(s);
            job();
            s = lock(&inner.state);
            continue;
        }
        s.idle += 1;
        let (next, timeout) = inner
            .work
            .wait_timeout(s, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        s = next;
        s.idle -= 1;
        if timeout.timed_out() && s.jobs.is_empty() && s.threads > KEEP {
            s.threads -= 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn runs_everything_with_at_most_max_threads() {
        let pool = WorkerPool::new("test-pool", 3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (r, p, d) = (running.clone(), peak.clone(), done.clone());
            pool.submit(Box::new(move || {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                r.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
            }))
            .map_err(|_| "refused")
            .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 30 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 30);
        assert!(peak.load(Ordering::SeqCst) <= 3, "{peak:?}");
        assert!(pool.threads() <= 3);
    }
}
