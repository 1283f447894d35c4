//! A bound on parallel downloads (ctr's `--max-concurrent-downloads`): a counting semaphore
//! shared by the threads of a pull. A permit is held while a blob downloads and given back
//! when dropped, also on error or panic. A limit of 0 means no limit, as in ctr.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Clone)]
pub struct DownloadLimit {
    inner: Arc<(Mutex<usize>, Condvar)>,
    limit: usize,
}

pub struct DownloadPermit {
    inner: Option<Arc<(Mutex<usize>, Condvar)>>,
}

impl DownloadLimit {
    pub fn new(limit: usize) -> DownloadLimit {
        DownloadLimit {
            inner: Arc::new((Mutex::new(0), Condvar::new())),
            limit,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Downloads holding a permit now.
    pub fn active(&self) -> usize {
        *self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a free slot.
    pub fn acquire(&self) -> DownloadPermit {
        let (lock, cond) = &*self.inner;
        let mut n = lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.limit != 0 && *n >= self.limit {
            n = cond.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        DownloadPermit {
            inner: Some(self.inner.clone()),
        }
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<DownloadPermit> {
        let mut n = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        if self.limit != 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(DownloadPermit {
            inner: Some(self.inner.clone()),
        })
    }
}

impl Drop for DownloadPermit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let (lock, cond) = &*inner;
            let mut n = lock.lock().unwrap_or_else(|e| e.into_inner());
            *n = n.saturating_sub(1);
            cond.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn never_more_than_the_limit_at_once() {
        let limit = DownloadLimit::new(3);
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let limit = limit.clone();
                let peak = peak.clone();
                std::thread::spawn(move || {
                    let _p = limit.acquire();
                    peak.fetch_max(limit.active(), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(limit.active(), 0);

        let one = DownloadLimit::new(1);
        let held = one.try_acquire().unwrap();
        assert!(one.try_acquire().is_none());
        drop(held);
        assert!(one.try_acquire().is_some());

        let unlimited = DownloadLimit::new(0);
        let _all: Vec<_> = (0..100).map(|_| unlimited.acquire()).collect();
        assert_eq!(unlimited.active(), 100);
    }
}
