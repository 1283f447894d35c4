//! The daemon at rest: once no request has come for [`IDLE_AFTER`], it hands free heap back
//! to the kernel and stops mapping the code it ran while busy ([`crate::shim::trim`], the
//! shim's own idle trim), so an idle ociboxd's RSS is what idling needs.
//!
//! Most of a freshly busy daemon's RSS is its own binary: the kernel maps 64 KiB of page
//! cache around every page fault of the text, and a pull, an import or a task's Create run
//! code all over it. Those pages stay in the page cache (shared with every shim of the same
//! binary) and come back on the next request's first touch, a minor fault each.
//!
//! [`Activity`] is told of every request (the router's hook) and every event a shim
//! forwards; [`run`] waits for it to go quiet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Quiet time before the trim: longer than the blocking pool keeps an idle thread
/// ([`BLOCKING_KEEP_ALIVE`]), so the threads a burst started have exited by then.
pub const IDLE_AFTER: Duration = Duration::from_secs(2);

/// How often the quiet spell is looked at before a trim.
const IDLE_STEP: Duration = Duration::from_millis(250);

/// How long an idle thread of the blocking pool waits for more work before it exits
/// (tokio's default is 10 s: an exited thread gives its stack back).
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// What has happened lately; cheap to mark from any thread.
#[derive(Default)]
pub struct Activity {
    seen: AtomicU64,
    wake: tokio::sync::Notify,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity::default())
    }

    /// Something happened: the daemon is busy again.
    pub fn mark(&self) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn count(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

/// Trims after each busy spell once it has been quiet for [`IDLE_AFTER`] (and once after
/// start-up, which touched the most). Runs on the daemon's runtime until it stops.
pub async fn run(activity: Arc<Activity>) {
    loop {
        // Quiet: nothing marked during a whole IDLE_AFTER, looked at every IDLE_STEP, so
        // the trim comes at most IDLE_STEP after the quiet spell is long enough (a sleep
        // of IDLE_AFTER per look would make that up to twice IDLE_AFTER).
        let (mut seen, mut quiet_since) = (activity.count(), tokio::time::Instant::now());
        loop {
            tokio::time::sleep(IDLE_STEP).await;
            let now = activity.count();
            if now != seen {
                (seen, quiet_since) = (now, tokio::time::Instant::now());
            } else if quiet_since.elapsed() >= IDLE_AFTER {
                break;
            }
        }
        crate::shim::trim::trim_idle();
        // Asleep until the next request.
        activity.wake.notified().await;
    }
}

/// One malloc arena for every thread but one more for the blocking pool's work (a pull
/// unpacks layers on several threads at once). glibc's default is 8 per core, and each
/// arena a thread once used keeps its free memory resident.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt takes two integers and changes only the allocator's settings.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
}
