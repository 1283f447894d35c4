//! Resource usage of a cgroup in the shape of runc's `types.Stats` (the "data" of
//! `runc events --stats`), read from v1 controller files or v2 unified files.

use super::fsutil::{parse_u64, read_file, read_flat_keyed, read_u64, read_u64_or_zero};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "ioQueueRecursive"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU time in nanoseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    /// v1 memory.oom_control (oom_kill_disable, under_oom, oom_kill). Not in runc's
    /// `events --stats` JSON; containerd's Metrics carry it.
    #[serde(skip)]
    pub oom_control: BTreeMap<String, u64>,
    /// v2 memory.events (low, high, max, oom, oom_kill). Not in runc's JSON either.
    #[serde(skip)]
    pub events: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IntelRdt {}

// ---------------------------------------------------------------- v1

/// Clock ticks per second of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

pub fn v1_cpu(cpu: Option<&Path>, cpuacct: Option<&Path>, s: &mut Cpu) -> Result<()> {
    if let Some(dir) = cpuacct {
        s.usage.total = read_u64_or_zero(dir, "cpuacct.usage")?;
        if dir.join("cpuacct.usage_percpu").exists() {
            s.usage.percpu = parse_list(&read_file(dir, "cpuacct.usage_percpu")?)?;
        }
        if dir.join("cpuacct.usage_percpu_sys").exists() {
            s.usage.percpu_kernel = parse_list(&read_file(dir, "cpuacct.usage_percpu_sys")?)?;
            s.usage.percpu_user = parse_list(&read_file(dir, "cpuacct.usage_percpu_user")?)?;
        }
        let st = read_flat_keyed(dir, "cpuacct.stat")?;
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000 / USER_HZ);
        s.usage.user = ns(st.get("user").copied().unwrap_or(0));
        s.usage.kernel = ns(st.get("system").copied().unwrap_or(0));
    }
    if let Some(dir) = cpu {
        let st = read_flat_keyed(dir, "cpu.stat")?;
        s.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(())
}

fn parse_list(s: &str) -> Result<Vec<u64>> {
    s.split_whitespace().map(parse_u64).collect()
}

fn v1_memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |name: &str| {
        if prefix.is_empty() {
            format!("memory.{}", name)
        } else {
            format!("memory.{}.{}", prefix, name)
        }
    };
    if !dir.join(f("usage_in_bytes")).exists() {
        return Ok(MemoryEntry::default());
    }
    Ok(MemoryEntry {
        usage: read_u64(dir, &f("usage_in_bytes"))?,
        max: read_u64_or_zero(dir, &f("max_usage_in_bytes"))?,
        failcnt: read_u64_or_zero(dir, &f("failcnt"))?,
        limit: read_u64_or_zero(dir, &f("limit_in_bytes"))?,
    })
}

pub fn v1_memory(dir: &Path, s: &mut Memory) -> Result<()> {
    s.raw = read_flat_keyed(dir, "memory.stat")?;
    s.cache = s.raw.get("cache").copied().unwrap_or(0);
    s.usage = v1_memory_entry(dir, "")?;
    s.swap = v1_memory_entry(dir, "memsw")?;
    s.kernel = v1_memory_entry(dir, "kmem")?;
    s.kernel_tcp = v1_memory_entry(dir, "kmem.tcp")?;
    s.oom_control = read_flat_keyed(dir, "memory.oom_control")?;
    Ok(())
}

pub fn pids(dir: &Path, s: &mut Pids) -> Result<()> {
    s.current = read_u64_or_zero(dir, "pids.current")?;
    let max = read_u64_or_zero(dir, "pids.max")?;
    // runc reports "max" (no limit) as 0.
    s.limit = if max == u64::MAX { 0 } else { max };
    Ok(())
}

/// Parse a v1 blkio file: "MAJ:MIN Op value" lines (and a "Total N" line, skipped).
pub fn parse_v1_blkio(content: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in content.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, val) = match f.as_slice() {
            [dev, op, val] => (*dev, *op, *val),
            [dev, val] if dev.contains(':') => (*dev, "", *val),
            _ => continue,
        };
        let Some((maj, min)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (maj.parse(), min.parse(), val.parse()) else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    out
}

pub fn v1_blkio(dir: &Path, s: &mut Blkio) -> Result<()> {
    let read = |f: &str| -> Result<Vec<BlkioEntry>> {
        if !dir.join(f).exists() {
            return Ok(Vec::new());
        }
        Ok(parse_v1_blkio(&read_file(dir, f)?))
    };
    // The CFQ/BFQ files are richer; without a proportional scheduler they are absent or empty
    // and runc falls back to the throttle files.
    let serviced = read("blkio.io_serviced_recursive")?;
    if serviced.is_empty() {
        let bfq = read("blkio.bfq.io_serviced_recursive")?;
        if !bfq.is_empty() {
            s.io_serviced_recursive = bfq;
            s.io_service_bytes_recursive = read("blkio.bfq.io_service_bytes_recursive")?;
            return Ok(());
        }
        s.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive")?;
        s.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive")?;
        if s.io_serviced_recursive.is_empty() {
            s.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes")?;
            s.io_serviced_recursive = read("blkio.throttle.io_serviced")?;
        }
        return Ok(());
    }
    s.io_serviced_recursive = serviced;
    s.io_service_bytes_recursive = read("blkio.io_service_bytes_recursive")?;
    s.io_queued_recursive = read("blkio.io_queued_recursive")?;
    s.io_service_time_recursive = read("blkio.io_service_time_recursive")?;
    s.io_wait_time_recursive = read("blkio.io_wait_time_recursive")?;
    s.io_merged_recursive = read("blkio.io_merged_recursive")?;
    s.io_time_recursive = read("blkio.time_recursive")?;
    s.sectors_recursive = read("blkio.sectors_recursive")?;
    Ok(())
}

/// Page sizes ("2MB", "1GB") for which `dir` has hugetlb files ending in `suffix`.
pub fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|r| r.strip_suffix(suffix))
            {
                if !size.contains('.') && !size.is_empty() {
                    out.push(size.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

pub fn v1_hugetlb(dir: &Path, s: &mut BTreeMap<String, Hugetlb>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".usage_in_bytes") {
        let p = |f: &str| format!("hugetlb.{}.{}", size, f);
        s.insert(
            size.clone(),
            Hugetlb {
                usage: read_u64(dir, &p("usage_in_bytes"))?,
                max: read_u64_or_zero(dir, &p("max_usage_in_bytes"))?,
                failcnt: read_u64_or_zero(dir, &p("failcnt"))?,
            },
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- v2

pub fn v2_cpu(dir: &Path, s: &mut Cpu) -> Result<()> {
    let st = read_flat_keyed(dir, "cpu.stat")?;
    let us = |k: &str| st.get(k).copied().unwrap_or(0).saturating_mul(1000);
    s.usage.total = us("usage_usec");
    s.usage.user = us("user_usec");
    s.usage.kernel = us("system_usec");
    s.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
    s.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    s.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

fn v2_memory_entry(dir: &Path, name: &str) -> Result<MemoryEntry> {
    let cur = format!("memory.{}current", name);
    if !dir.join(&cur).exists() {
        return Ok(MemoryEntry::default());
    }
    Ok(MemoryEntry {
        usage: read_u64(dir, &cur)?,
        limit: read_u64_or_zero(dir, &format!("memory.{}max", name))?,
        max: read_u64_or_zero(dir, &format!("memory.{}peak", name))?,
        failcnt: 0,
    })
}

pub fn v2_memory(dir: &Path, s: &mut Memory) -> Result<()> {
    s.raw = read_flat_keyed(dir, "memory.stat")?;
    s.cache = s.raw.get("file").copied().unwrap_or(0);
    s.usage = v2_memory_entry(dir, "")?;
    s.events = read_flat_keyed(dir, "memory.events")?;
    s.usage.failcnt = s.events.get("max").copied().unwrap_or(0);
    // v1 reports swap as memory+swap; runc reports v2 the same way for compatibility.
    let mut swap = v2_memory_entry(dir, "swap.")?;
    if dir.join("memory.swap.current").exists() {
        swap.usage = swap.usage.saturating_add(s.usage.usage);
        if swap.limit != u64::MAX {
            swap.limit = swap.limit.saturating_add(s.usage.limit);
        }
    }
    s.swap = swap;
    Ok(())
}

/// Parse io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
pub fn parse_io_stat(content: &str, s: &mut Blkio) {
    for line in content.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut s.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut s.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut s.io_serviced_recursive, "Read"),
                "wios" => (&mut s.io_serviced_recursive, "Write"),
                "dios" => (&mut s.io_serviced_recursive, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
}

pub fn v2_io(dir: &Path, s: &mut Blkio) -> Result<()> {
    if dir.join("io.stat").exists() {
        parse_io_stat(&read_file(dir, "io.stat")?, s);
    }
    Ok(())
}

pub fn v2_hugetlb(dir: &Path, s: &mut BTreeMap<String, Hugetlb>) -> Result<()> {
    for size in hugetlb_sizes(dir, ".current") {
        let p = |f: &str| format!("hugetlb.{}.{}", size, f);
        let events = read_flat_keyed(dir, &p("events"))?;
        s.insert(
            size.clone(),
            Hugetlb {
                usage: read_u64(dir, &p("current"))?,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.raw.insert("cache".into(), 1);
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        for k in [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ] {
            assert!(v.get(k).is_some(), "missing {}", k);
        }
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 0);
        assert_eq!(v["memory"]["raw"]["cache"], 1);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("total").is_none());
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert_eq!(v["pids"], serde_json::json!({}));
    }

    #[test]
    fn blkio_v1_lines() {
        let e = parse_v1_blkio("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].op, "Read");
        assert_eq!(e[0].value, 4096);
        assert_eq!((e[0].major, e[0].minor), (8, 0));
    }

    #[test]
    fn io_stat_v2() {
        let mut b = Blkio::default();
        parse_io_stat(
            "8:16 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n",
            &mut b,
        );
        assert_eq!(b.io_service_bytes_recursive.len(), 3);
        assert_eq!(b.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(b.io_service_bytes_recursive[1].value, 200);
        assert_eq!(b.io_serviced_recursive[0].value, 3);
        assert_eq!(b.io_serviced_recursive[0].minor, 16);
    }
}
