//! Writing `linux.resources` into cgroup v2 files, converting v1-style values as runc does.
//! `linux.resources.network` has no v2 controller and is ignored (as in runc); memory
//! swappiness, disableOOMKiller, kernel and kernelTCP have no v2 files and are ignored too.

use super::bpf;
use super::convert::{
    blkio_weight_to_io_weight, cpu_shares_to_weight, limit_to_v2, memory_swap_to_v2,
};
use super::device_rules::{device_program, parse_rules};
use super::fsutil::{read_file, read_u64, write_file, write_file_raw};
use super::v1_resources::rdma_line;
use super::v2::V2;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

pub fn set(cg: &V2, r: &LinuxResources, rootless: bool, update: bool) -> Result<()> {
    let dir = cg.path.as_path();
    if let Some(m) = r.memory() {
        set_memory(dir, m, update).context("set memory limits")?;
    }
    if let Some(c) = r.cpu() {
        set_cpu(dir, c).context("set cpu limits")?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        write_file(dir, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        set_io(dir, b).context("set io limits")?;
    }
    for l in r.hugepage_limits().iter().flatten() {
        write_file(
            dir,
            &format!("hugetlb.{}.max", l.page_size()),
            &l.limit().to_string(),
        )?;
    }
    for (dev, l) in r.rdma().iter().flatten() {
        write_file(dir, "rdma.max", &rdma_line(dev, l))?;
    }
    if let Some(u) = r.unified() {
        set_unified(dir, u)?;
    }
    if let Some(devs) = r.devices() {
        if !rootless {
            set_devices(dir, devs)?;
        }
    }
    Ok(())
}

/// Compile the rules and attach them to the cgroup as an eBPF device program.
pub fn set_devices(dir: &Path, devs: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    let prog = device_program(&parse_rules(devs)?);
    let fd = bpf::load_device_program(&prog)?;
    bpf::attach_device_program(dir, &fd)
}

fn set_memory(dir: &Path, m: &LinuxMemory, update: bool) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let swap_in = m.swap().unwrap_or(0);
    let swap = memory_swap_to_v2(swap_in, limit)?;
    if update && m.check_before_update() == Some(true) && limit > 0 {
        let usage = read_u64(dir, "memory.current")?;
        if (limit as u64) < usage {
            bail!(
                "rejecting memory limit {} below current usage {}",
                limit,
                usage
            );
        }
    }
    let swap_str = match limit_to_v2(swap) {
        // memory == memory+swap: no swap at all.
        None if swap_in > 0 => Some("0".to_string()),
        s => s,
    };
    if let Some(s) = swap_str {
        write_file(dir, "memory.swap.max", &s)?;
    }
    if let Some(v) = limit_to_v2(limit) {
        write_file(dir, "memory.max", &v)?;
    }
    if let Some(v) = limit_to_v2(m.reservation().unwrap_or(0)) {
        write_file(dir, "memory.low", &v)?;
    }
    Ok(())
}

fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_period().is_some_and(|v| v != 0) || c.realtime_runtime().is_some_and(|v| v != 0) {
        bail!("realtime cpu limits (cpu.realtimePeriod, cpu.realtimeRuntime) are not supported on cgroup v2");
    }
    if let Some(idle) = c.idle() {
        write_file(dir, "cpu.idle", &idle.to_string())?;
    }
    // An idle cgroup has no weight; the kernel refuses cpu.weight while cpu.idle is 1.
    if c.idle() != Some(1) {
        let w = cpu_shares_to_weight(c.shares().unwrap_or(0));
        if w != 0 {
            write_file(dir, "cpu.weight", &w.to_string())?;
        }
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if let Some(b) = c.burst() {
        // Burst must not exceed the quota; write it before and after cpu.max so both an
        // increase and a decrease of the quota succeed.
        if write_file_raw(dir, "cpu.max.burst", &b.to_string()).is_err()
            && quota == 0
            && period == 0
        {
            write_file(dir, "cpu.max.burst", &b.to_string())?;
        }
    }
    if quota != 0 || period != 0 {
        let mut s = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            s.push_str(&format!(" {}", period));
        }
        write_file(dir, "cpu.max", &s)?;
        if let Some(b) = c.burst() {
            write_file(dir, "cpu.max.burst", &b.to_string())?;
        }
    }
    if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.mems", v)?;
    }
    Ok(())
}

fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        if bfq {
            // BFQ takes the blkio range (1..1000) as is.
            write_file(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = blkio_weight_to_io_weight(u64::from(w));
            write_file(dir, "io.weight", &v.to_string())?;
        }
    }
    // blockIO.leafWeight has no v2 equivalent and is ignored.
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            if bfq {
                write_file(
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {}", wd.major(), wd.minor(), w),
                )?;
            } else {
                let v = blkio_weight_to_io_weight(u64::from(w));
                write_file(
                    dir,
                    "io.weight",
                    &format!("{}:{} {}", wd.major(), wd.minor(), v),
                )?;
            }
        }
    }
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {}={}", t.major(), t.minor(), key, rate),
            )?;
        }
    }
    Ok(())
}

/// `linux.resources.unified`: file name to value, written as is (after every other resource,
/// so they override the converted values).
fn set_unified(dir: &Path, u: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        if k.contains('/') || k.starts_with('.') || !k.contains('.') {
            bail!("unified resource {:?}: not a controller file name", k);
        }
        if let Err(e) = write_file_raw(dir, k, &u[k]) {
            if e.kind() == std::io::ErrorKind::NotFound {
                let ctrl = k.split('.').next().unwrap_or(k);
                let avail = read_file(dir, "cgroup.controllers").unwrap_or_default();
                if !avail.split_whitespace().any(|c| c == ctrl) {
                    bail!(
                        "unified resource {:?}: controller {:?} not available",
                        k,
                        ctrl
                    );
                }
            }
            return Err(e).with_context(|| {
                format!(
                    "unified resource: write {:?} to {}/{}",
                    u[k],
                    dir.display(),
                    k
                )
            });
        }
    }
    Ok(())
}
