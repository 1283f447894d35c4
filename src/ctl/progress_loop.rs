//! ctr's progress loop (`fetch.go` `ShowProgress`, `push.go`'s display goroutine): while a
//! job runs, every 100 ms the status lines are drawn as one frame ([`super::progress`]);
//! when it ends, one last frame. With `--debug` ctr draws nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::progress::{self, ProgressWriter, StatusLine};
use super::pull_client::Statuses;

/// How the frames are drawn.
#[derive(Clone, Copy, Debug)]
pub struct Display {
    /// Whether anything is drawn (ctr draws nothing with `--debug`).
    pub enabled: bool,
    /// Redraw in place (stdout is a terminal).
    pub tty: bool,
}

impl Display {
    /// On stdout, in place when it is a terminal.
    pub fn stdout(enabled: bool) -> Display {
        Display {
            enabled,
            tty: nix::unistd::isatty(libc::STDOUT_FILENO).unwrap_or(false),
        }
    }
}

/// Run `job`, drawing `statuses` while it runs; `last` turns the final statuses into the
/// last frame's (given whether the job succeeded) and says whether it is drawn at all.
pub async fn run_with_progress<T>(
    display: Display,
    statuses: &Statuses,
    job: impl std::future::Future<Output = anyhow::Result<T>>,
    last: impl FnOnce(&mut Vec<StatusLine>, bool) -> bool,
) -> anyhow::Result<T> {
    if !display.enabled {
        return job.await;
    }
    let start = Instant::now();
    let writer = Arc::new(Mutex::new(ProgressWriter::new(
        std::io::stdout(),
        display.tty,
    )));
    let ticker = {
        let (st, w) = (statuses.clone(), writer.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let frame = progress::render(
                    &st.lock().map(|v| v.clone()).unwrap_or_default(),
                    start.elapsed(),
                );
                if let Ok(mut w) = w.lock() {
                    let _ = w.frame(frame);
                }
            }
        })
    };
    let result = job.await;
    ticker.abort();
    let mut lines = statuses.lock().map(|v| v.clone()).unwrap_or_default();
    if !last(&mut lines, result.is_ok()) {
        return result;
    }
    if let Ok(mut w) = writer.lock() {
        let _ = w.finish(progress::render(&lines, start.elapsed()));
    }
    result
}
