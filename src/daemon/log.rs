//! The daemon's log: containerd's logrus text lines on stderr
//! (`time="2026-12-02T03:04:05.678901234Z" level=info msg="…"`, see [`crate::logrus`]),
//! filtered by level.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

pub use crate::logrus::Level;

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(l: Level) {
    THRESHOLD.store(l as u8, Ordering::Relaxed);
}

pub fn enabled(l: Level) -> bool {
    l as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

/// Write one line at `l` (nothing when filtered out). `msg` is quoted as logrus quotes it.
pub fn line(l: Level, msg: &str) {
    if !enabled(l) {
        return;
    }
    let now = crate::timefmt::format(std::time::SystemTime::now());
    let _ = std::io::stderr()
        .lock()
        .write_all(crate::logrus::text_record(l, msg, &now).as_bytes());
}

pub fn debug(msg: &str) {
    line(Level::Debug, msg)
}
pub fn info(msg: &str) {
    line(Level::Info, msg)
}
pub fn warn(msg: &str) {
    line(Level::Warn, msg)
}
pub fn error(msg: &str) {
    line(Level::Error, msg)
}
