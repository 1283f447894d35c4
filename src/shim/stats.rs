//! Stats: the container's cgroup counters as containerd's `io.containerd.cgroups.v1.Metrics`
//! (v1 and hybrid hosts) or `io.containerd.cgroups.v2.Metrics` (unified hosts), in an Any.

use anyhow::Result;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};

use super::cgroup_paths::{read_keyed, read_u64, CgroupPaths};

/// USER_HZ, the unit of cpuacct.stat.
const CLOCK_TICK_NS: u64 = 10_000_000;

/// The metrics of the cgroups `pid` is in.
pub fn metrics(pid: u32) -> Result<Any> {
    let paths = CgroupPaths::of_pid(pid)?;
    let (type_url, value) = match &paths {
        CgroupPaths::V1(_) => (
            "io.containerd.cgroups.v1.Metrics",
            v1_metrics(&paths).write_to_bytes()?,
        ),
        CgroupPaths::V2(dir) => (
            "io.containerd.cgroups.v2.Metrics",
            v2_metrics(dir).write_to_bytes()?,
        ),
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    })
}

fn v1_metrics(paths: &CgroupPaths) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(d) = paths.v1("pids") {
        let mut p = v1::PidsStat::new();
        p.current = read_u64(d, "pids.current");
        let max = read_u64(d, "pids.max");
        p.limit = if max == u64::MAX { 0 } else { max };
        m.pids = MessageField::some(p);
    }
    if let Some(d) = paths.v1("cpuacct") {
        let mut u = v1::CPUUsage::new();
        u.total = read_u64(d, "cpuacct.usage");
        let st = read_keyed(d, "cpuacct.stat");
        u.user = st.get("user").copied().unwrap_or(0) * CLOCK_TICK_NS;
        u.kernel = st.get("system").copied().unwrap_or(0) * CLOCK_TICK_NS;
        u.per_cpu = std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let mut c = v1::CPUStat::new();
        c.usage = MessageField::some(u);
        if let Some(cd) = paths.v1("cpu") {
            let t = read_keyed(cd, "cpu.stat");
            let mut th = v1::Throttle::new();
            th.periods = t.get("nr_periods").copied().unwrap_or(0);
            th.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
            th.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
            c.throttling = MessageField::some(th);
        }
        m.cpu = MessageField::some(c);
    }
    if let Some(d) = paths.v1("memory") {
        let s = read_keyed(d, "memory.stat");
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
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
        let entry = |prefix: &str| {
            let mut e = v1::MemoryEntry::new();
            e.usage = read_u64(d, &format!("{prefix}usage_in_bytes"));
            e.limit = read_u64(d, &format!("{prefix}limit_in_bytes"));
            e.max = read_u64(d, &format!("{prefix}max_usage_in_bytes"));
            e.failcnt = read_u64(d, &format!("{prefix}failcnt"));
            MessageField::some(e)
        };
        ms.usage = entry("memory.");
        ms.swap = entry("memory.memsw.");
        ms.kernel = entry("memory.kmem.");
        ms.kernel_tcp = entry("memory.kmem.tcp.");
        m.memory = MessageField::some(ms);
        let oc = read_keyed(d, "memory.oom_control");
        let mut o = v1::MemoryOomControl::new();
        o.oom_kill_disable = oc.get("oom_kill_disable").copied().unwrap_or(0);
        o.under_oom = oc.get("under_oom").copied().unwrap_or(0);
        o.oom_kill = oc.get("oom_kill").copied().unwrap_or(0);
        m.memory_oom_control = MessageField::some(o);
    }
    m
}

fn v2_metrics(dir: &std::path::Path) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    let mut p = v2::PidsStat::new();
    p.current = read_u64(dir, "pids.current");
    let max = read_u64(dir, "pids.max");
    p.limit = if max == u64::MAX { 0 } else { max };
    m.pids = MessageField::some(p);
    let c = read_keyed(dir, "cpu.stat");
    let g = |k: &str| c.get(k).copied().unwrap_or(0);
    let mut cpu = v2::CPUStat::new();
    cpu.usage_usec = g("usage_usec");
    cpu.user_usec = g("user_usec");
    cpu.system_usec = g("system_usec");
    cpu.nr_periods = g("nr_periods");
    cpu.nr_throttled = g("nr_throttled");
    cpu.throttled_usec = g("throttled_usec");
    m.cpu = MessageField::some(cpu);
    let s = read_keyed(dir, "memory.stat");
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut mem = v2::MemoryStat::new();
    mem.anon = g("anon");
    mem.file = g("file");
    mem.kernel_stack = g("kernel_stack");
    mem.slab = g("slab");
    mem.sock = g("sock");
    mem.shmem = g("shmem");
    mem.file_mapped = g("file_mapped");
    mem.usage = read_u64(dir, "memory.current");
    let lim = read_u64(dir, "memory.max");
    mem.usage_limit = lim;
    mem.swap_usage = read_u64(dir, "memory.swap.current");
    m.memory = MessageField::some(mem);
    let e = read_keyed(dir, "memory.events");
    let mut ev = v2::MemoryEvents::new();
    ev.low = e.get("low").copied().unwrap_or(0);
    ev.high = e.get("high").copied().unwrap_or(0);
    ev.max = e.get("max").copied().unwrap_or(0);
    ev.oom = e.get("oom").copied().unwrap_or(0);
    ev.oom_kill = e.get("oom_kill").copied().unwrap_or(0);
    m.memory_events = MessageField::some(ev);
    m
}
