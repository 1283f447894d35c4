//! The daemon's log: containerd's logrus text lines on stderr
//! (`time="2026-12-02T03:04:05.678901234Z" level=info msg="…"`), filtered by level.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }

    /// containerd's `--log-level` names; None for one it does not know.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "trace" | "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "fatal" | "panic" => Level::Error,
            _ => return None,
        })
    }
}

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
    let _ = writeln!(
        std::io::stderr().lock(),
        "time=\"{now}\" level={} msg={:?}",
        l.name(),
        msg
    );
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
