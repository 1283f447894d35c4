//! The messages ctr prints as JSON, each with its fields in proto order (the order Go's
//! struct has them): cgroup v1 and v2 metrics (`task metrics --format json`) and the shim's
//! StateResponse (`shim state`). A field missing here would be missing in the output: the
//! tests compare every message, with every field set, against a reflection walk.

use containerd_shim_protos::api::StateResponse;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use serde_json::{Map, Value};

use super::GoJson;

/// `GoJson` for a message: an object of its fields, `omitempty` each; keys are the proto
/// field names, which are the generated Rust fields' names.
macro_rules! go_struct {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {$(
        impl GoJson for $ty {
            fn json(&self) -> Value {
                let mut o = Map::new();
                $(
                    if !self.$field.omit() {
                        o.insert(stringify!($field).to_owned(), self.$field.json());
                    }
                )*
                Value::Object(o)
            }
            fn omit(&self) -> bool {
                false
            }
        }
    )*};
}

go_struct! {
    v1::Metrics { hugetlb, pids, cpu, memory, blkio, rdma, network, cgroup_stats, memory_oom_control }
    v1::HugetlbStat { usage, max, failcnt, pagesize }
    v1::PidsStat { current, limit }
    v1::CPUStat { usage, throttling }
    v1::CPUUsage { total, kernel, user, per_cpu }
    v1::Throttle { periods, throttled_periods, throttled_time }
    v1::MemoryStat {
        cache, rss, rss_huge, mapped_file, dirty, writeback, pg_pg_in, pg_pg_out, pg_fault,
        pg_maj_fault, inactive_anon, active_anon, inactive_file, active_file, unevictable,
        hierarchical_memory_limit, hierarchical_swap_limit, total_cache, total_rss,
        total_rss_huge, total_mapped_file, total_dirty, total_writeback, total_pg_pg_in,
        total_pg_pg_out, total_pg_fault, total_pg_maj_fault, total_inactive_anon,
        total_active_anon, total_inactive_file, total_active_file, total_unevictable, usage,
        swap, kernel, kernel_tcp,
    }
    v1::MemoryEntry { limit, usage, max, failcnt }
    v1::MemoryOomControl { oom_kill_disable, under_oom, oom_kill }
    v1::BlkIOStat {
        io_service_bytes_recursive, io_serviced_recursive, io_queued_recursive,
        io_service_time_recursive, io_wait_time_recursive, io_merged_recursive,
        io_time_recursive, sectors_recursive,
    }
    v1::BlkIOEntry { op, device, major, minor, value }
    v1::RdmaStat { current, limit }
    v1::RdmaEntry { device, hca_handles, hca_objects }
    v1::NetworkStat {
        name, rx_bytes, rx_packets, rx_errors, rx_dropped, tx_bytes, tx_packets, tx_errors,
        tx_dropped,
    }
    v1::CgroupStats { nr_sleeping, nr_running, nr_stopped, nr_uninterruptible, nr_io_wait }

    v2::Metrics { pids, cpu, memory, rdma, io, hugetlb, memory_events, network }
    v2::PSIData { avg10, avg60, avg300, total }
    v2::PSIStats { some, full }
    v2::PidsStat { current, limit }
    v2::CPUStat {
        usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec, psi,
        nr_bursts, burst_usec,
    }
    v2::MemoryStat {
        anon, file, kernel_stack, slab, sock, shmem, file_mapped, file_dirty, file_writeback,
        anon_thp, inactive_anon, active_anon, inactive_file, active_file, unevictable,
        slab_reclaimable, slab_unreclaimable, pgfault, pgmajfault, workingset_refault,
        workingset_activate, workingset_nodereclaim, pgrefill, pgscan, pgsteal, pgactivate,
        pgdeactivate, pglazyfree, pglazyfreed, thp_fault_alloc, thp_collapse_alloc, usage,
        usage_limit, swap_usage, swap_limit, max_usage, swap_max_usage, psi,
    }
    v2::MemoryEvents { low, high, max, oom, oom_kill, oom_group_kill }
    v2::RdmaStat { current, limit }
    v2::RdmaEntry { device, hca_handles, hca_objects }
    v2::IOStat { usage, psi }
    v2::IOEntry { major, minor, rbytes, wbytes, rios, wios }
    v2::HugeTlbStat { current, max, pagesize, failcnt }
    v2::NetworkStat {
        name, rx_bytes, rx_packets, rx_errors, rx_dropped, tx_bytes, tx_packets, tx_errors,
        tx_dropped,
    }

    StateResponse {
        id, bundle, pid, status, stdin, stdout, stderr, terminal, exit_status, exited_at,
        exec_id,
    }
}
