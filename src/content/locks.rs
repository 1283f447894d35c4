//! One writer per ingest ref, as containerd's `content/local/locks.go`: a second writer on
//! the same ref gets `ref <ref> locked for <d> (since <t>): unavailable`.
//!
//! The in-process table keys by ingest directory, so two stores under different roots (tests)
//! do not collide. Across processes the writer also holds an exclusive `flock` on the ingest's
//! `data` file (see `writer.rs`); the kernel drops it when a killed writer's fds close.

use crate::errdefs::{err, ErrorKind};
use crate::timefmt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

fn table() -> &'static Mutex<HashMap<PathBuf, SystemTime>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, SystemTime>>> = OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

/// Held while a writer is open; dropping it frees the ref.
#[derive(Debug)]
pub struct RefLock {
    key: PathBuf,
}

impl Drop for RefLock {
    fn drop(&mut self) {
        if let Ok(mut t) = table().lock() {
            t.remove(&self.key);
        }
    }
}

/// The error a second writer on `ref_` gets.
pub fn locked_error(ref_: &str, since: SystemTime) -> anyhow::Error {
    let held = SystemTime::now().duration_since(since).unwrap_or_default();
    err(
        ErrorKind::Unavailable,
        format!(
            "ref {ref_} locked for {:?} (since {})",
            Duration::from_millis(held.as_millis() as u64),
            timefmt::format(since)
        ),
    )
}

/// Take the lock on `ingest_dir` for `ref_` once.
pub fn try_lock(ingest_dir: &Path, ref_: &str) -> anyhow::Result<RefLock> {
    let mut t = table()
        .lock()
        .map_err(|_| err(ErrorKind::Unknown, "content lock table poisoned"))?;
    if let Some(since) = t.get(ingest_dir) {
        return Err(locked_error(ref_, *since));
    }
    t.insert(ingest_dir.to_path_buf(), SystemTime::now());
    Ok(RefLock {
        key: ingest_dir.to_path_buf(),
    })
}

/// Take the lock, retrying a few times with a growing random pause as containerd does
/// (about a second in all) before answering Unavailable.
pub fn lock_with_retry(ingest_dir: &Path, ref_: &str) -> anyhow::Result<RefLock> {
    let mut last = None;
    for attempt in 0..10u32 {
        match try_lock(ingest_dir, ref_) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(jitter(1u64 << attempt)));
    }
    Err(last.unwrap_or_else(|| err(ErrorKind::Unavailable, format!("ref {ref_} locked"))))
}

/// A cheap pseudo-random number below `max` (no rand crate): the clock's nanoseconds.
fn jitter(max: u64) -> u64 {
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    u64::from(n) % max.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::kind_of;

    #[test]
    fn second_lock_is_unavailable_until_the_first_drops() {
        let p = PathBuf::from("/nonexistent/locks-test");
        let a = try_lock(&p, "r1").unwrap();
        let e = try_lock(&p, "r1").unwrap_err();
        assert_eq!(kind_of(&e), ErrorKind::Unavailable);
        assert!(e.to_string().starts_with("ref r1 locked for "), "{e}");
        drop(a);
        try_lock(&p, "r1").unwrap();
    }
}
