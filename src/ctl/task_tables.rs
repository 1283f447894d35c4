//! The tables `ctr task ls`, `ctr task ps` and `ctr task metrics` print, byte for byte as
//! ctr 1.6 (`cmd/ctr/commands/tasks/{list,ps,metrics}.go`): Go's tabwriter with each
//! command's settings, the metrics rows for cgroup v1 (`io.containerd.cgroups.v1.Metrics`)
//! and v2 (`io.containerd.cgroups.v2.Metrics`), and `--format json` as Go marshals the
//! metrics struct ([`super::go_json`]).

use anyhow::{bail, Context, Result};
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use protobuf::Message;

use crate::api::v1_types;

/// One tabwriter line: its tab-terminated cells and the text after the last tab.
pub struct Line {
    pub cells: Vec<String>,
    pub trailing: String,
}

impl Line {
    /// A line written as Go's format string would: split at tabs.
    pub fn from_text(s: &str) -> Line {
        let mut parts: Vec<String> = s.split('\t').map(str::to_string).collect();
        let trailing = parts.pop().unwrap_or_default();
        Line {
            cells: parts,
            trailing,
        }
    }
}

/// Go's `text/tabwriter` (padchar ' ', no flags): a column's width is, over each run of
/// consecutive lines that have that cell, the widest cell plus `padding`, at least
/// `minwidth`.
pub fn tabwrite(lines: &[Line], minwidth: usize, padding: usize) -> String {
    let ncols = lines.iter().map(|l| l.cells.len()).max().unwrap_or(0);
    let mut widths = vec![vec![0usize; ncols]; lines.len()];
    for col in 0..ncols {
        let mut start = 0;
        while start < lines.len() {
            if lines[start].cells.len() <= col {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < lines.len() && lines[end].cells.len() > col {
                end += 1;
            }
            let w = lines[start..end]
                .iter()
                .map(|l| l.cells[col].chars().count() + padding)
                .max()
                .unwrap_or(0)
                .max(minwidth);
            for row in widths.iter_mut().take(end).skip(start) {
                row[col] = w;
            }
            start = end;
        }
    }
    let mut out = String::new();
    for (r, l) in lines.iter().enumerate() {
        for (c, cell) in l.cells.iter().enumerate() {
            out.push_str(cell);
            let pad = widths[r][c].saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&l.trailing);
        out.push('\n');
    }
    out
}

/// Lines from Go-style text (each `\n`-ended line split at tabs).
pub fn lines(text: &str) -> Vec<Line> {
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(Line::from_text)
        .collect()
}

/// The task status as ctr prints it (the proto enum name).
pub fn status_name(status: i32) -> &'static str {
    match v1_types::Status::try_from(status) {
        Ok(v1_types::Status::Created) => "CREATED",
        Ok(v1_types::Status::Running) => "RUNNING",
        Ok(v1_types::Status::Stopped) => "STOPPED",
        Ok(v1_types::Status::Paused) => "PAUSED",
        Ok(v1_types::Status::Pausing) => "PAUSING",
        _ => "UNKNOWN",
    }
}

/// `ctr task ls` (tabwriter 4, 8, 4).
pub fn task_list(tasks: &[v1_types::Process]) -> String {
    let mut text = String::from("TASK\tPID\tSTATUS\t\n");
    for t in tasks {
        text += &format!("{}\t{}\t{}\n", t.id, t.pid, status_name(t.status));
    }
    tabwrite(&lines(&text), 4, 4)
}

/// `ctr task ps` (tabwriter 1, 8, 4): INFO is `-` (ctr prints the process's Info Any only
/// for runtimes that set one; runc's shims do not).
pub fn task_ps(procs: &[v1_types::ProcessInfo]) -> String {
    let mut text = String::from("PID\tINFO\n");
    for p in procs {
        text += &format!("{}\t-\n", p.pid);
    }
    tabwrite(&lines(&text), 1, 4)
}

/// Go's `%v` of a `[]uint64`.
fn go_list(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// The metric's decoded data, by its type URL.
pub enum MetricsData {
    V1(v1::Metrics),
    V2(v2::Metrics),
}

/// Decode a metric's Any (`io.containerd.cgroups.v1.Metrics` or `.v2.Metrics`).
pub fn decode(type_url: &str, value: &[u8]) -> Result<MetricsData> {
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    match name {
        "io.containerd.cgroups.v1.Metrics" => Ok(MetricsData::V1(
            v1::Metrics::parse_from_bytes(value).context("decode cgroup v1 metrics")?,
        )),
        "io.containerd.cgroups.v2.Metrics" => Ok(MetricsData::V2(
            v2::Metrics::parse_from_bytes(value).context("decode cgroup v2 metrics")?,
        )),
        other => {
            bail!("cannot convert metric data to cgroups.Metrics or windows.Statistics ({other})")
        }
    }
}

/// `ctr task metrics` table (tabwriter 1, 8, 4): the ID/TIMESTAMP block, a blank line,
/// then METRIC/VALUE. `timestamp` is already in Go's `time.Time` String form.
pub fn metrics_table(id: &str, timestamp: &str, data: &MetricsData) -> String {
    let mut t = format!("ID\tTIMESTAMP\t\n{id}\t{timestamp}\t\n\n");
    t += "METRIC\tVALUE\t\n";
    match data {
        MetricsData::V1(m) => {
            if let Some(mem) = m.memory.as_ref() {
                let u = mem.usage.as_ref();
                t += &format!("memory.usage_in_bytes\t{}\t\n", u.map_or(0, |u| u.usage));
                t += &format!("memory.limit_in_bytes\t{}\t\n", u.map_or(0, |u| u.limit));
                t += &format!("memory.stat.cache\t{}\t\n", mem.total_cache);
            }
            if let Some(cpu) = m.cpu.as_ref() {
                let u = cpu.usage.as_ref();
                t += &format!("cpuacct.usage\t{}\t\n", u.map_or(0, |u| u.total));
                t += &format!(
                    "cpuacct.usage_percpu\t{}\t\n",
                    go_list(u.map_or(&[][..], |u| &u.per_cpu[..]))
                );
            }
            if let Some(p) = m.pids.as_ref() {
                t += &format!("pids.current\t{}\t\n", p.current);
                t += &format!("pids.limit\t{}\t\n", p.limit);
            }
        }
        MetricsData::V2(m) => {
            if let Some(p) = m.pids.as_ref() {
                t += &format!("pids.current\t{}\t\n", p.current);
                t += &format!("pids.limit\t{}\t\n", p.limit);
            }
            if let Some(c) = m.cpu.as_ref() {
                t += &format!("cpu.usage_usec\t{}\t\n", c.usage_usec);
                t += &format!("cpu.user_usec\t{}\t\n", c.user_usec);
                t += &format!("cpu.system_usec\t{}\t\n", c.system_usec);
                t += &format!("cpu.nr_periods\t{}\t\n", c.nr_periods);
                t += &format!("cpu.nr_throttled\t{}\t\n", c.nr_throttled);
                t += &format!("cpu.throttled_usec\t{}\t\n", c.throttled_usec);
            }
            if let Some(mm) = m.memory.as_ref() {
                t += &format!("memory.usage\t{}\t\n", mm.usage);
                t += &format!("memory.usage_limit\t{}\t\n", mm.usage_limit);
                t += &format!("memory.swap_usage\t{}\t\n", mm.swap_usage);
                t += &format!("memory.swap_limit\t{}\t\n", mm.swap_limit);
            }
        }
    }
    tabwrite(&lines(&t), 1, 4)
}

/// `ctr task metrics --format json`: `json.MarshalIndent(data, "", "  ")` and a newline.
pub fn metrics_json(data: &MetricsData) -> String {
    let s = match data {
        MetricsData::V1(m) => super::go_json::to_string_indent(m, "  "),
        MetricsData::V2(m) => super::go_json::to_string_indent(m, "  "),
    };
    s + "\n"
}

/// Go's `time.Time.String()` of a UTC time: `2026-12-02 02:54:12.911204853 +0000 UTC`.
pub fn go_time_string(secs: i64, nanos: u32) -> String {
    let iso = crate::timefmt::format_unix(secs, 0);
    let (date, time) = iso
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((&iso, ""));
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{date} {time}{frac} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ls_as_ctr_prints_it() {
        let t = v1_types::Process {
            id: "ref5".into(),
            pid: 29505,
            status: v1_types::Status::Running as i32,
            ..Default::default()
        };
        assert_eq!(
            task_list(&[t]),
            "TASK    PID      STATUS    \nref5    29505    RUNNING\n"
        );
    }

    #[test]
    fn metrics_v1_table_as_ctr_prints_it() {
        let mut m = v1::Metrics::new();
        let mut mem = v1::MemoryStat::new();
        let mut usage = v1::MemoryEntry::new();
        usage.usage = 778240;
        usage.limit = 9223372036854771712;
        mem.usage = protobuf::MessageField::some(usage);
        mem.total_cache = 450560;
        m.memory = protobuf::MessageField::some(mem);
        let mut cpu = v1::CPUStat::new();
        let mut cu = v1::CPUUsage::new();
        cu.total = 13153470;
        cu.per_cpu = vec![13153470, 0];
        cpu.usage = protobuf::MessageField::some(cu);
        m.cpu = protobuf::MessageField::some(cpu);
        let mut p = v1::PidsStat::new();
        p.current = 1;
        m.pids = protobuf::MessageField::some(p);
        let ts = go_time_string(1796180052, 911204853);
        assert_eq!(ts, "2026-12-02 02:54:12.911204853 +0000 UTC");
        let want = "ID      TIMESTAMP                                  \n\
                    ref5    2026-12-02 02:54:12.911204853 +0000 UTC    \n\
                    \n\
                    METRIC                   VALUE                  \n\
                    memory.usage_in_bytes    778240                 \n\
                    memory.limit_in_bytes    9223372036854771712    \n\
                    memory.stat.cache        450560                 \n\
                    cpuacct.usage            13153470               \n\
                    cpuacct.usage_percpu     [13153470 0]           \n\
                    pids.current             1                      \n\
                    pids.limit               0                      \n";
        assert_eq!(metrics_table("ref5", &ts, &MetricsData::V1(m)), want);
    }

    #[test]
    fn ps_as_ctr_prints_it() {
        let p = v1_types::ProcessInfo {
            pid: 29505,
            info: None,
        };
        assert_eq!(task_ps(&[p]), "PID      INFO\n29505    -\n");
    }
}
