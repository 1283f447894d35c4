//! The value formats ctr's output uses, as the Go libraries it calls write them: label
//! arguments and columns, go-units' `HumanSize` and `HumanDuration`, containerd's
//! `progress.Bytes`, logrus' text lines (ctr logs some failures and goes on).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// ctr's `commands.LabelArgs`: `k=v` pairs, a bare `k` is `k=true`. Later pairs win.
pub fn label_args(args: &[String]) -> HashMap<String, String> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (a.clone(), "true".to_string()),
        })
        .collect()
}

/// The sorted `k=v` pairs of `labels` (ctr sorts them before joining a column).
pub fn label_pairs(labels: &HashMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v
}

/// go-digest's `Parse`: the digest, or its error's words ("invalid checksum digest
/// format", "... length", "unsupported digest algorithm"), as ctr prints them.
pub fn parse_digest(s: &str) -> anyhow::Result<String> {
    crate::content::digest::go_validate(s).map_err(|m| anyhow::anyhow!("{m}"))?;
    Ok(s.to_string())
}

/// A protobuf timestamp as a `SystemTime` (the epoch when absent).
pub fn time_of(ts: &Option<prost_types::Timestamp>) -> SystemTime {
    match ts {
        Some(t) if t.seconds >= 0 => {
            SystemTime::UNIX_EPOCH
                + Duration::new(t.seconds as u64, t.nanos.clamp(0, 999_999_999) as u32)
        }
        _ => SystemTime::UNIX_EPOCH,
    }
}

/// The local time zone's offset from UTC at `secs` (seconds east), from libc's tz rules.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we pass; t is a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// Go's `t.Local().Format(time.RFC3339)`: seconds, the local offset (`Z` for UTC).
pub fn rfc3339_local(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let off = local_offset(secs);
    let shifted = SystemTime::UNIX_EPOCH + Duration::from_secs((secs + off).max(0) as u64);
    let mut s = crate::timefmt::format_seconds(shifted);
    if off != 0 {
        s.pop();
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60));
    }
    s
}

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(t: SystemTime) -> String {
    let s = crate::timefmt::format(t);
    format!(
        "{} +0000 UTC",
        s.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// containerd's `platforms.Format`: `os/arch[/variant]`, `unknown` without an OS.
pub fn platform(os: &str, arch: &str, variant: &str) -> String {
    if os.is_empty() {
        return "unknown".into();
    }
    [os, arch, variant]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// Go's `%.Ng` of `x` (for the magnitudes sizes take: no exponent form below 10^N).
fn go_g(x: f64, precision: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", precision - 1, x);
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let (m, e) = sci.split_once('e').unwrap_or((&sci, "0"));
        let m = trim_zeros(m);
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{x:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units' `HumanSize`: decimal units, 4 significant digits (`2.22MB`, `512B`).
pub fn human_size(size: u64) -> String {
    let (s, unit) = scale(
        size as f64,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
    );
    format!("{}{unit}", go_g(s, 4))
}

/// containerd's `progress.Bytes`: binary units, one decimal (`2.1 MiB`, `512.0 B`).
pub fn progress_bytes(size: i64) -> String {
    let (s, unit) = scale(
        size as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    );
    format!("{s:02.1} {unit}")
}

/// go-units' `HumanDuration` ("Less than a second", "3 minutes", "About an hour").
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// The age of `t` now, as go-units words it.
pub fn age(t: SystemTime) -> String {
    human_duration(SystemTime::now().duration_since(t).unwrap_or_default())
}

/// Go's `%q` of a string, as logrus quotes a field that needs it.
fn logrus_value(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+')
        });
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// A logrus text line at level error with an `error` field, on stderr, as ctr's
/// `log.G(ctx).WithError(err).Errorf(msg)` writes it when stderr is not a terminal.
pub fn log_error(msg: &str, err: &anyhow::Error) {
    let time = crate::timefmt::format_seconds(SystemTime::now());
    eprintln!(
        "time={} level=error msg={} error={}",
        logrus_value(&time),
        logrus_value(msg),
        logrus_value(&format!("{err:#}"))
    );
}

/// A logrus text line at level warning, as ctr's `log.G(ctx).Warnf(msg)` writes it.
pub fn log_warn(msg: &str) {
    let time = crate::timefmt::format_seconds(SystemTime::now());
    eprintln!(
        "time={} level=warning msg={}",
        logrus_value(&time),
        logrus_value(msg)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2_221_000), "2.221MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(1_555), "1.555kB");
        assert_eq!(progress_bytes(512), "512.0 B");
        assert_eq!(progress_bytes(2_202_009), "2.1 MiB");
        assert_eq!(progress_bytes(0), "0.0 B");
    }

    #[test]
    fn durations_as_go_units() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(61)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }

    #[test]
    fn labels_default_to_true() {
        let l = label_args(&["a=1".into(), "b".into(), "c=".into()]);
        assert_eq!(l["a"], "1");
        assert_eq!(l["b"], "true");
        assert_eq!(l["c"], "");
    }
}
