//! Task metrics: the container's cgroup counters (read by [`crate::linux::cgroups`]) as
//! containerd's `io.containerd.cgroups.v1.Metrics` (v1 and hybrid hosts) or
//! `io.containerd.cgroups.v2.Metrics` (unified hosts), in an Any.
//!
//! Only a conversion lives here: which files hold which counter is the cgroups module's
//! business. Units follow containerd: v1 in nanoseconds and bytes, v2 cpu in microseconds.

use std::collections::BTreeMap;

use anyhow::Result;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};

use crate::linux::cgroups::stats::{BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::linux::cgroups::{Backend, Manager};

pub const V1_METRICS_TYPE: &str = "io.containerd.cgroups.v1.Metrics";
pub const V2_METRICS_TYPE: &str = "io.containerd.cgroups.v2.Metrics";

/// The metrics of the cgroups `pid` is in.
pub fn metrics(pid: u32) -> Result<Any> {
    let m = Manager::for_pid(pid)?;
    let stats = m.stats()?;
    let (type_url, value) = match m.backend {
        Backend::V1(_) => (V1_METRICS_TYPE, v1_metrics(&stats).write_to_bytes()?),
        Backend::V2(_) => (V2_METRICS_TYPE, v2_metrics(&stats).write_to_bytes()?),
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

fn get(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

fn v1_entry(e: &MemoryEntry) -> MessageField<v1::MemoryEntry> {
    MessageField::some(v1::MemoryEntry {
        usage: e.usage,
        limit: e.limit,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    })
}

fn v1_blkio(entries: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    entries
        .iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

/// Stats → `io.containerd.cgroups.v1.Metrics`.
pub fn v1_metrics(s: &Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    m.pids = MessageField::some(v1::PidsStat {
        current: s.pids.current,
        limit: s.pids.limit,
        ..Default::default()
    });
    m.cpu = MessageField::some(v1::CPUStat {
        usage: MessageField::some(v1::CPUUsage {
            total: s.cpu.usage.total,
            kernel: s.cpu.usage.kernel,
            user: s.cpu.usage.user,
            per_cpu: s.cpu.usage.percpu.clone(),
            ..Default::default()
        }),
        throttling: MessageField::some(v1::Throttle {
            periods: s.cpu.throttling.periods,
            throttled_periods: s.cpu.throttling.throttled_periods,
            throttled_time: s.cpu.throttling.throttled_time,
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = &s.memory.raw;
    let g = |k: &str| get(r, k);
    let mut ms = v1::MemoryStat::new();
    ms.cache = g("cache");
    ms.rss = g("rss");
    ms.rss_huge = g("rss_huge");
    ms.mapped_file = g("mapped_file");
    ms.dirty = g("dirty");
    ms.writeback = g("writeback");
    ms.pg_pg_in = g("pgpgin");
    ms.pg_pg_out = g("pgpgout");
    ms.pg_fault = g("pgfault");
    ms.pg_maj_fault = g("pgmajfault");
    ms.inactive_anon = g("inactive_anon");
    ms.active_anon = g("active_anon");
    ms.inactive_file = g("inactive_file");
    ms.active_file = g("active_file");
    ms.unevictable = g("unevictable");
    ms.hierarchical_memory_limit = g("hierarchical_memory_limit");
    ms.hierarchical_swap_limit = g("hierarchical_memsw_limit");
    ms.total_cache = g("total_cache");
    ms.total_rss = g("total_rss");
    ms.total_rss_huge = g("total_rss_huge");
    ms.total_mapped_file = g("total_mapped_file");
    ms.total_dirty = g("total_dirty");
    ms.total_writeback = g("total_writeback");
    ms.total_pg_pg_in = g("total_pgpgin");
    ms.total_pg_pg_out = g("total_pgpgout");
    ms.total_pg_fault = g("total_pgfault");
    ms.total_pg_maj_fault = g("total_pgmajfault");
    ms.total_inactive_anon = g("total_inactive_anon");
    ms.total_active_anon = g("total_active_anon");
    ms.total_inactive_file = g("total_inactive_file");
    ms.total_active_file = g("total_active_file");
    ms.total_unevictable = g("total_unevictable");
    ms.usage = v1_entry(&s.memory.usage);
    ms.swap = v1_entry(&s.memory.swap);
    ms.kernel = v1_entry(&s.memory.kernel);
    ms.kernel_tcp = v1_entry(&s.memory.kernel_tcp);
    m.memory = MessageField::some(ms);
    let oc = &s.memory.oom_control;
    m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
        oom_kill_disable: get(oc, "oom_kill_disable"),
        under_oom: get(oc, "under_oom"),
        oom_kill: get(oc, "oom_kill"),
        ..Default::default()
    });
    let b = &s.blkio;
    m.blkio = MessageField::some(v1::BlkIOStat {
        io_service_bytes_recursive: v1_blkio(&b.io_service_bytes_recursive),
        io_serviced_recursive: v1_blkio(&b.io_serviced_recursive),
        io_queued_recursive: v1_blkio(&b.io_queued_recursive),
        io_service_time_recursive: v1_blkio(&b.io_service_time_recursive),
        io_wait_time_recursive: v1_blkio(&b.io_wait_time_recursive),
        io_merged_recursive: v1_blkio(&b.io_merged_recursive),
        io_time_recursive: v1_blkio(&b.io_time_recursive),
        sectors_recursive: v1_blkio(&b.sectors_recursive),
        ..Default::default()
    });
    m.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h): (&String, &Hugetlb)| v1::HugetlbStat {
            usage: h.usage,
            max: h.max,
            failcnt: h.failcnt,
            pagesize: size.clone(),
            ..Default::default()
        })
        .collect();
    m
}

/// Stats → `io.containerd.cgroups.v2.Metrics`.
pub fn v2_metrics(s: &Stats) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    m.pids = MessageField::some(v2::PidsStat {
        current: s.pids.current,
        limit: s.pids.limit,
        ..Default::default()
    });
    let us = |ns: u64| ns / 1000;
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: us(s.cpu.usage.total),
        user_usec: us(s.cpu.usage.user),
        system_usec: us(s.cpu.usage.kernel),
        nr_periods: s.cpu.throttling.periods,
        nr_throttled: s.cpu.throttling.throttled_periods,
        throttled_usec: us(s.cpu.throttling.throttled_time),
        ..Default::default()
    });
    let r = &s.memory.raw;
    let g = |k: &str| get(r, k);
    let mut mem = v2::MemoryStat::new();
    mem.anon = g("anon");
    mem.file = g("file");
    mem.kernel_stack = g("kernel_stack");
    mem.slab = g("slab");
    mem.sock = g("sock");
    mem.shmem = g("shmem");
    mem.file_mapped = g("file_mapped");
    mem.file_dirty = g("file_dirty");
    mem.file_writeback = g("file_writeback");
    mem.anon_thp = g("anon_thp");
    mem.inactive_anon = g("inactive_anon");
    mem.active_anon = g("active_anon");
    mem.inactive_file = g("inactive_file");
    mem.active_file = g("active_file");
    mem.unevictable = g("unevictable");
    mem.slab_reclaimable = g("slab_reclaimable");
    mem.slab_unreclaimable = g("slab_unreclaimable");
    mem.pgfault = g("pgfault");
    mem.pgmajfault = g("pgmajfault");
    mem.usage = s.memory.usage.usage;
    mem.usage_limit = s.memory.usage.limit;
    mem.max_usage = s.memory.usage.max;
    // The cgroups module reports swap as memory+swap (runc's v1-compatible shape);
    // containerd's v2 metrics want swap alone.
    mem.swap_usage = s.memory.swap.usage.saturating_sub(s.memory.usage.usage);
    mem.swap_limit = if s.memory.swap.limit == u64::MAX {
        u64::MAX
    } else {
        s.memory.swap.limit.saturating_sub(s.memory.usage.limit)
    };
    m.memory = MessageField::some(mem);
    let e = &s.memory.events;
    m.memory_events = MessageField::some(v2::MemoryEvents {
        low: get(e, "low"),
        high: get(e, "high"),
        max: get(e, "max"),
        oom: get(e, "oom"),
        oom_kill: get(e, "oom_kill"),
        oom_group_kill: get(e, "oom_group_kill"),
        ..Default::default()
    });
    m.io = MessageField::some(v2::IOStat {
        usage: v2_io(s),
        ..Default::default()
    });
    m.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h)| v2::HugeTlbStat {
            current: h.usage,
            max: h.max,
            failcnt: h.failcnt,
            pagesize: size.clone(),
            ..Default::default()
        })
        .collect();
    m
}

/// io.stat per device: the Read/Write entries of bytes and ios folded back into one row.
fn v2_io(s: &Stats) -> Vec<v2::IOEntry> {
    let mut rows: BTreeMap<(u64, u64), v2::IOEntry> = BTreeMap::new();
    let mut add = |list: &[BlkioEntry], bytes: bool| {
        for e in list {
            let row = rows
                .entry((e.major, e.minor))
                .or_insert_with(|| v2::IOEntry {
                    major: e.major,
                    minor: e.minor,
                    ..Default::default()
                });
            match (e.op.as_str(), bytes) {
                ("Read", true) => row.rbytes = e.value,
                ("Write", true) => row.wbytes = e.value,
                ("Read", false) => row.rios = e.value,
                ("Write", false) => row.wios = e.value,
                _ => {}
            }
        }
    };
    add(&s.blkio.io_service_bytes_recursive, true);
    add(&s.blkio.io_serviced_recursive, false);
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::cgroups::stats::parse_io_stat;

    #[test]
    fn v1_carries_memory_blkio_hugetlb_and_oom_control() {
        let mut s = Stats::default();
        s.memory.usage.usage = 4096;
        s.memory.raw.insert("total_rss".into(), 7);
        s.memory.oom_control.insert("oom_kill".into(), 2);
        s.pids.current = 3;
        s.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 512,
        });
        s.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 1,
                max: 2,
                failcnt: 0,
            },
        );
        let m = v1_metrics(&s);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.total_rss, 7);
        assert_eq!(m.memory_oom_control.oom_kill, 2);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        assert_eq!(m.hugetlb[0].max, 2);
    }

    #[test]
    fn v2_folds_io_rows_and_reports_oom_events_and_usec() {
        let mut s = Stats::default();
        parse_io_stat(
            "8:16 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n",
            &mut s.blkio,
        );
        s.cpu.usage.total = 5_000;
        s.memory.events.insert("oom_kill".into(), 1);
        s.memory.usage.usage = 10;
        s.memory.swap.usage = 15;
        let m = v2_metrics(&s);
        assert_eq!(m.io.usage.len(), 1);
        let io = &m.io.usage[0];
        assert_eq!(
            (io.major, io.minor, io.rbytes, io.wbytes, io.rios, io.wios),
            (8, 16, 100, 200, 3, 4)
        );
        assert_eq!(m.cpu.usage_usec, 5);
        assert_eq!(m.memory_events.oom_kill, 1);
        assert_eq!(m.memory.swap_usage, 5);
    }

    #[test]
    fn metrics_of_this_process() {
        let any = metrics(std::process::id()).unwrap();
        assert!(any.type_url == V1_METRICS_TYPE || any.type_url == V2_METRICS_TYPE);
    }
}
