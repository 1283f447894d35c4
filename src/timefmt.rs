//! RFC 3339 timestamps as Go writes them, shared by every applet: [`format`] is
//! `time.RFC3339Nano` / `MarshalText` (nanoseconds, trailing zeros trimmed: an ingest's
//! `startedat` and `updatedat` files, runc's state.json `created`), [`format_seconds`] is
//! logrus's seconds-only form (runc's log records). [`parse`] reads either with any UTC
//! offset (containerd writes its ingest times in local time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Format `t` in UTC as `2006-01-02T15:04:05.999999999Z`.
pub fn format(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let s = -(d.as_secs() as i64);
            if d.subsec_nanos() == 0 {
                (s, 0)
            } else {
                (s - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    };
    format_unix(secs, nanos)
}

/// [`format`] of the time `secs` seconds (negative before the epoch) and `nanos` after it,
/// as a protobuf Timestamp carries it.
pub fn format_unix(secs: i64, nanos: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// The UTC date of `t` as `2006-01-02`.
pub fn format_date(t: SystemTime) -> String {
    let mut s = format(t);
    s.truncate(10);
    s
}

/// Format `t` in UTC as `2006-01-02T15:04:05Z` (seconds, as logrus prints).
pub fn format_seconds(t: SystemTime) -> String {
    let mut s = format(t);
    if let Some(dot) = s.find('.') {
        s.truncate(dot);
        s.push('Z');
    }
    s
}

/// Parse an RFC 3339 timestamp (`Z` or `±hh:mm`, optional fraction up to nanoseconds).
pub fn parse(s: &str) -> Option<SystemTime> {
    let s = s.trim_end_matches('\n');
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mi, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        o if o.len() == 6
            && (o.starts_with('+') || o.starts_with('-'))
            && o.as_bytes()[3] == b':' =>
        {
            let v = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + hh * 3600 + mi * 60 + ss - offset;
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .map(|t| t + Duration::from_nanos(u64::from(nanos)))
    }
}

/// Nanoseconds since the epoch (negative before it), the form the metadata DB stores.
pub fn to_unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The inverse of [`to_unix_nanos`].
pub fn from_unix_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_marshal_text_and_parses_back() {
        let t = UNIX_EPOCH + Duration::new(951_782_400, 120_000_000);
        assert_eq!(format(t), "2000-02-29T00:00:00.12Z");
        assert_eq!(format_seconds(t), "2000-02-29T00:00:00Z");
        assert_eq!(parse("2000-02-29T00:00:00.12Z"), Some(t));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format(t), "2023-11-14T22:13:20Z");
        assert_eq!(format_seconds(t), "2023-11-14T22:13:20Z");
        assert_eq!(parse(&format(t)), Some(t));
        // containerd writes local time with an offset.
        assert_eq!(parse("2023-11-14T23:13:20+01:00"), Some(t));
        assert_eq!(parse("2023-11-14T21:13:20.000000000-01:00"), Some(t));
        let now = SystemTime::now();
        assert_eq!(parse(&format(now)), Some(now));
        assert_eq!(from_unix_nanos(to_unix_nanos(now)), now);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "x023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+0é:0",
            "2023-11-14T22:13:20é",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
