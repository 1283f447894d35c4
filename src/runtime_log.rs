//! Runtime logging where runc logs: stderr, or the `--log` file in `text` or `json` format.
//!
//! containerd reads the last error of a runtime from its json log, so the json shape is
//! logrus's: `{"level":"error","msg":"…","time":"2006-01-02T15:04:05Z"}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown log-format {other:?}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
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
}

struct Logger {
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Set where and how records go. Without a file, records go to stderr. The file is
/// created now, as runc opens it at startup (callers watch for it to appear), with
/// runc's words when it cannot be: `open PATH: no such file or directory`.
pub fn init(file: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    if let Some(path) = file {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("open {}: {}", path.display(), errno_text(&e)),
                )
            })?;
    }
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    *l = Some(Logger {
        file: file.map(Path::to_path_buf),
        format,
        debug,
    });
    Ok(())
}

pub use crate::linux::go_errno::{errno_name_text, errno_text};

/// True when records go to a file (so a fatal error must also be printed on stderr).
pub fn logs_to_file() -> bool {
    let l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    l.as_ref().is_some_and(|l| l.file.is_some())
}

pub fn log(level: Level, msg: &str) {
    let l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let (file, format, debug) = match l.as_ref() {
        Some(l) => (l.file.as_deref(), l.format, l.debug),
        None => (None, Format::Text, false),
    };
    if level == Level::Debug && !debug {
        return;
    }
    let line = format_record(format, level, msg, &rfc3339(SystemTime::now()));
    match file {
        Some(path) => {
            // The log may be a fifo or a file shared with other runs: append one write per record.
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// One record, newline-terminated, in logrus's text or json shape.
pub fn format_record(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level.name(), "msg": msg, "time": time });
            format!("{v}\n")
        }
        Format::Text => {
            let quoted = serde_json::to_string(msg).unwrap_or_default();
            format!("time=\"{time}\" level={} msg={quoted}\n", level.name())
        }
    }
}

/// RFC 3339 UTC timestamp with seconds precision, as logrus prints.
pub fn rfc3339(t: SystemTime) -> String {
    rfc3339_with_nanos(t, false)
}

/// RFC 3339 UTC timestamp; with nanoseconds as Go's `time.RFC3339Nano` (state.json's `created`).
pub fn rfc3339_with_nanos(t: SystemTime, nanos: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if nanos && d.subsec_nanos() != 0 {
        let frac = format!("{:09}", d.subsec_nanos());
        let frac = frac.trim_end_matches('0');
        format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{frac}Z")
    } else {
        format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 120_000_000);
        assert_eq!(rfc3339_with_nanos(t, true), "2000-02-29T00:00:00.12Z");
    }

    #[test]
    fn records_have_logrus_shape() {
        let j = format_record(Format::Json, Level::Error, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        let t = format_record(Format::Text, Level::Warn, "a b", "T");
        assert_eq!(t, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
