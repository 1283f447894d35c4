//! Runtime logging where runc logs: stderr, or the `--log` file in `text` or `json` format.
//!
//! containerd reads the last error of a runtime from its json log, so the json shape is
//! logrus's: `{"level":"error","msg":"…","time":"2006-01-02T15:04:05Z"}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

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

pub use crate::logrus::Level;

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
    let line = format_record(
        format,
        level,
        msg,
        &crate::timefmt::format_seconds(SystemTime::now()),
    );
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
        Format::Json => crate::logrus::json_record(level, msg, time),
        Format::Text => crate::logrus::text_record(level, msg, time),
    }
}
