//! logrus's record shapes, which containerd, runc and their log readers expect: the text
//! form `time="…" level=info msg="…"` and the json form `{"level":…,"msg":…,"time":…}`.
//! One place for the level names and the quoting, shared by the runtime's `--log` and the
//! daemon's stderr.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    /// logrus's name of the level, as printed in `level=`.
    pub fn name(self) -> &'static str {
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

/// The text record, newline-terminated. The message is quoted as a JSON string, which is
/// what Go's `%q` gives for the printable text these messages carry.
pub fn text_record(level: Level, msg: &str, time: &str) -> String {
    let quoted = serde_json::to_string(msg).unwrap_or_default();
    format!("time=\"{time}\" level={} msg={quoted}\n", level.name())
}

/// The json record, newline-terminated, keys in logrus's order.
pub fn json_record(level: Level, msg: &str, time: &str) -> String {
    let v = serde_json::json!({ "level": level.name(), "msg": msg, "time": time });
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_logrus_shape() {
        let j = json_record(Level::Error, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(
            text_record(Level::Warn, "a b", "T"),
            "time=\"T\" level=warning msg=\"a b\"\n"
        );
        assert_eq!(
            text_record(Level::Info, "say \"hi\"\n", "T"),
            "time=\"T\" level=info msg=\"say \\\"hi\\\"\\n\"\n"
        );
    }

    #[test]
    fn containerd_level_names() {
        assert_eq!(Level::parse("trace"), Some(Level::Debug));
        assert_eq!(Level::parse("warn"), Some(Level::Warn));
        assert_eq!(Level::parse("fatal"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
    }
}
