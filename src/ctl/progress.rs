//! ctr 1.6's pull and fetch progress display (`cmd/ctr/commands/content/fetch.go`
//! `Display`, `pkg/progress`), byte for byte: one line per ref
//! (`ref:\tstatus\t|bar|\toffset/total\t`), then `elapsed: …\ttotal: …\t(rate)\t`, aligned
//! by a tab writer with ctr's settings (minwidth 1, padding 1, spaces), the bar 40 wide with
//! its `+` run in green.
//!
//! On a terminal each frame replaces the last (`ESC[1A ESC[2K CR` per line drawn before, as
//! ctr's progress writer does); on a pipe the frames follow each other without cursor codes,
//! as ctr writes them there (its writer counts no lines on a non-terminal).

use std::io::Write;
use std::time::Duration;

const GREEN: &str = "\x1b[32m";
const RESET: &str = "\x1b[0m";

/// One line of the display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// The reference while resolving, else the blob's ref key (`layer-sha256:…`).
    pub ref_: String,
    /// `resolving`, `resolved`, `waiting`, `downloading`, `done`, `exists`, …
    pub status: String,
    pub offset: u64,
    pub total: u64,
}

/// `progress.Bar` formatted with `%40r`.
pub fn bar(fraction: f64) -> String {
    let h = fraction.clamp(0.0, 1.0);
    let width = 40usize;
    let positive = ((width - 2) as f64 * h) as usize;
    let negative = width - 2 - positive;
    format!(
        "|{GREEN}{}{RESET}{}|",
        "+".repeat(positive),
        "-".repeat(negative)
    )
}

/// `progress.Bytes`: binary units, one decimal (`0.0 B`, `1011.4 KiB`).
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = n;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{size:.1} {}", UNITS[i])
}

/// Go's `%W.Ps` on a string: truncate to P characters, right-align in W.
fn go_width_prec(s: &str, width: usize, prec: usize) -> String {
    let t: String = s.chars().take(prec).collect();
    format!("{t:>width$}")
}

/// The cells of one frame, before alignment (each cell is tab-terminated in ctr's format).
pub fn frame_cells(lines: &[StatusLine], elapsed: Duration) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut total: u64 = 0;
    for s in lines {
        total += s.offset;
        let name = format!("{}:", s.ref_);
        match s.status.as_str() {
            "downloading" | "uploading" => {
                let f = if s.total > 0 {
                    s.offset as f64 / s.total as f64
                } else {
                    0.0
                };
                rows.push(vec![
                    name,
                    s.status.clone(),
                    bar(f),
                    format!(
                        "{}/{}",
                        go_width_prec(&bytes(s.offset as f64), 8, 8),
                        bytes(s.total as f64)
                    ),
                ]);
            }
            "resolving" | "waiting" => rows.push(vec![name, s.status.clone(), bar(0.0)]),
            _ => rows.push(vec![name, s.status.clone(), bar(1.0)]),
        }
    }
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
    rows.push(vec![
        format!("elapsed: {:<4}s", format!("{secs:.1}")),
        format!("total: {}", go_width_prec(&bytes(total as f64), 7, 6)),
        // BytesPerSecond is an integer in ctr.
        format!("({}/s)", bytes(rate.trunc())),
    ]);
    rows
}

/// Go's `text/tabwriter` with ctr's settings over rows of tab-terminated cells: a column's
/// width is its widest cell (in characters, escape codes included, as Go counts runes)
/// plus one, over each run of consecutive rows that have that column.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    // widths[row][col]: the width of the block that row's cell belongs to.
    let mut widths = vec![vec![0usize; ncols]; rows.len()];
    for col in 0..ncols {
        let mut start = 0;
        while start < rows.len() {
            if rows[start].len() <= col {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < rows.len() && rows[end].len() > col {
                end += 1;
            }
            let w = rows[start..end]
                .iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
                + 1;
            for row in widths.iter_mut().take(end).skip(start) {
                row[col] = w;
            }
            start = end;
        }
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            let pad = widths[r][c].saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push('\n');
    }
    out
}

/// One frame of ctr's display as text.
pub fn render(lines: &[StatusLine], elapsed: Duration) -> String {
    tabwrite(&frame_cells(lines, elapsed))
}

/// Where frames go: redrawn in place on a terminal, the last one only otherwise.
pub struct ProgressWriter<W: Write> {
    out: W,
    tty: bool,
    drawn_lines: usize,
}

impl<W: Write> ProgressWriter<W> {
    pub fn new(out: W, tty: bool) -> ProgressWriter<W> {
        ProgressWriter {
            out,
            tty,
            drawn_lines: 0,
        }
    }

    /// Show `frame`: on a terminal it replaces the last one; on a pipe it follows it, as
    /// ctr's writer appends its frames there (it counts no lines on a non-terminal).
    pub fn frame(&mut self, frame: String) -> std::io::Result<()> {
        if !self.tty {
            self.out.write_all(frame.as_bytes())?;
            return self.out.flush();
        }
        for _ in 0..self.drawn_lines {
            self.out.write_all(b"\x1b[1A\x1b[2K\r")?;
        }
        self.drawn_lines = frame.matches('\n').count();
        self.out.write_all(frame.as_bytes())?;
        self.out.flush()
    }

    /// The last frame.
    pub fn finish(&mut self, frame: String) -> std::io::Result<()> {
        self.frame(frame)
    }
}

/// Go's `time.Duration` String (`5.93435ms`, `1.5s`, `2m3.4s`), as ctr prints `done: …`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let trim = |v: f64, prec: usize| -> String {
        let s = format!("{v:.prec$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    };
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}µs", trim(ns as f64 / 1e3, 3))
    } else if ns < 1_000_000_000 {
        format!("{}ms", trim(ns as f64 / 1e6, 6))
    } else {
        let total_s = ns as f64 / 1e9;
        let h = (total_s / 3600.0).floor() as u64;
        let m = ((total_s - h as f64 * 3600.0) / 60.0).floor() as u64;
        let s = total_s - h as f64 * 3600.0 - m as f64 * 60.0;
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if h > 0 || m > 0 {
            out += &format!("{m}m");
        }
        out += &format!("{}s", trim(s, 9));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: &str, st: &str) -> StatusLine {
        StatusLine {
            ref_: r.into(),
            status: st.into(),
            offset: 0,
            total: 0,
        }
    }

    #[test]
    fn frame_matches_ctr_on_a_pipe() {
        // Real ctr 1.6.20's final frame of a pull of content it already had.
        let m = "manifest-sha256:f0b705224b1fece7ea9e976bc1a8513472fb17da1ce63f1087d7eeda9b38847f";
        let lines = vec![
            line("127.0.0.1:5577/busybox:latest", "resolved"),
            line(m, "done"),
            line(
                "config-sha256:ed0d6a390b9bb49c5f647f0645a7675c1738161634fa06be03d77bd8fec4f9c4",
                "done",
            ),
            line(
                "layer-sha256:e7d250ab1427a2247383800ebc9398882266749a9dafe7c6e1ecf72e54b313b7",
                "done",
            ),
        ];
        let text = render(&lines, Duration::from_millis(100));
        let full = format!("|{GREEN}{}{RESET}|", "+".repeat(38));
        let want_first = format!(
            "127.0.0.1:5577/busybox:latest:{}resolved{}{full} ",
            " ".repeat(52),
            " ".repeat(7)
        );
        assert_eq!(text.lines().next().unwrap(), want_first);
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            format!(
                "elapsed: 0.1 s{}total:   0.0 B (0.0 B/s){}",
                " ".repeat(68),
                " ".repeat(41)
            )
        );
    }

    #[test]
    fn units_and_truncation_as_go_prints_them() {
        assert_eq!(bytes(1035673.0), "1011.4 KiB");
        assert_eq!(go_width_prec(&bytes(1035673.0), 7, 6), " 1011.4");
        assert_eq!(
            bar(0.5),
            format!("|{GREEN}{}{RESET}{}|", "+".repeat(19), "-".repeat(19))
        );
        assert_eq!(go_duration(Duration::from_nanos(5_934_350)), "5.93435ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn pipe_appends_frames() {
        let mut buf = Vec::new();
        {
            let mut w = ProgressWriter::new(&mut buf, false);
            w.frame("a\n".into()).unwrap();
            w.finish("b\n".into()).unwrap();
        }
        assert_eq!(buf, b"a\nb\n");
    }

    #[test]
    fn terminal_redraws_in_place() {
        let mut buf = Vec::new();
        {
            let mut w = ProgressWriter::new(&mut buf, true);
            w.frame("a\nb\n".into()).unwrap();
            w.finish("c\n".into()).unwrap();
        }
        assert_eq!(buf, b"a\nb\n\x1b[1A\x1b[2K\r\x1b[1A\x1b[2K\rc\n");
    }
}
