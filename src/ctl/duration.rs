//! Go's `time.ParseDuration` and `Duration.String`, for ctr's duration flags (`--timeout`,
//! `--connect-timeout`, `leases create --expires`) and the defaults their help shows.

use std::time::Duration;

/// Parse `1h2m3.5s`, `500ms`, `0`… as Go does; `None` where Go fails (which ctr reports
/// as `invalid value "x" for flag -name: parse error`). Negative durations are refused:
/// no ctr flag means anything by them.
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * nanos_per;
    }
    if total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

/// `Duration.String()`: `24h0m0s`, `1.5s`, `500ms`, `0s`.
pub fn format(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (div, unit) = if n < 1_000 {
            (1, "ns")
        } else if n < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        return format!("{}{unit}", frac(n, div));
    }
    let secs = n / 1_000_000_000;
    let sub = n % 1_000_000_000;
    let s = frac((secs % 60) * 1_000_000_000 + sub, 1_000_000_000);
    let (h, m) = (secs / 3600, secs / 60 % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `n / div` with the fraction's trailing zeros trimmed, as Go's fmtFrac writes it.
fn frac(n: u128, div: u128) -> String {
    let (whole, rem) = (n / div, n % div);
    if rem == 0 {
        return whole.to_string();
    }
    let digits = div.to_string().len() - 1;
    let f = format!("{rem:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_go() {
        assert_eq!(parse("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("bad"), None);
        assert_eq!(parse("1"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn formats_as_go() {
        assert_eq!(format(Duration::from_secs(86_400)), "24h0m0s");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }
}
