//! Several layers unpacking at once, each on its own thread into its own directory, started
//! as their blobs arrive (containerd 1.6/1.7 apply one after the other). Applying them on top
//! of each other is the snapshotter's job (overlay lowerdirs), so order does not matter here.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use super::layer::{unpack_layer, LayerInfo, UnpackOptions};

/// A bound on concurrent unpacks (decompression is CPU-bound: more threads than cores only
/// adds memory).
pub struct ParallelUnpack {
    slots: Arc<(Mutex<usize>, Condvar)>,
}

/// One submitted layer; [`UnpackHandle::wait`] gives its result.
pub struct UnpackHandle {
    thread: JoinHandle<Result<LayerInfo>>,
}

impl ParallelUnpack {
    pub fn new(max_concurrent: usize) -> Self {
        ParallelUnpack {
            slots: Arc::new((Mutex::new(max_concurrent.max(1)), Condvar::new())),
        }
    }

    /// Start unpacking `blob` into `dest` (see [`unpack_layer`]) on a new thread, which
    /// waits for a free slot first.
    pub fn submit<R: Read + Send + 'static>(
        &self,
        blob: R,
        dest: PathBuf,
        opts: UnpackOptions,
    ) -> Result<UnpackHandle> {
        let slots = self.slots.clone();
        let thread = std::thread::Builder::new()
            .name("unpack".into())
            .spawn(move || {
                let (lock, cv) = &*slots;
                {
                    let mut free = lock.lock().map_err(|_| anyhow!("unpack slots poisoned"))?;
                    while *free == 0 {
                        free = cv
                            .wait(free)
                            .map_err(|_| anyhow!("unpack slots poisoned"))?;
                    }
                    *free -= 1;
                }
                let r = unpack_layer(blob, &dest, &opts);
                if let Ok(mut free) = lock.lock() {
                    *free += 1;
                }
                cv.notify_one();
                r
            })
            .map_err(|e| anyhow!("spawn unpack thread: {e}"))?;
        Ok(UnpackHandle { thread })
    }
}

impl UnpackHandle {
    pub fn wait(self) -> Result<LayerInfo> {
        self.thread
            .join()
            .map_err(|_| anyhow!("unpack thread panicked"))?
    }
}
