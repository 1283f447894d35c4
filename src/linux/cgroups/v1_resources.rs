//! Writing `linux.resources` into cgroup v1 controller files, with runc's file names, order
//! of writes and error messages.

use super::device_rules::parse_rules;
use super::fsutil::{read_u64, read_u64_or_zero, write_file, write_file_raw};
use super::v1::V1;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::Path;

/// Apply every resource of `r` (`update`: the container is running, `runc update`).
pub fn set(cg: &V1, r: &LinuxResources, rootless: bool, update: bool) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        bail!("invalid configuration: cannot use unified on cgroup v1");
    }
    if let Some(m) = r.memory() {
        if memory_requested(m) {
            set_memory(need(cg, "memory")?, m, update).context("set memory limits")?;
        }
    }
    if let Some(c) = r.cpu() {
        set_cpu(cg, c).context("set cpu limits")?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_string()
        };
        write_file(need(cg, "pids")?, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io() {
        set_blkio(cg, b).context("set blkio limits")?;
    }
    if let Some(h) = r.hugepage_limits() {
        for l in h {
            write_file(
                need(cg, "hugetlb")?,
                &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
                &l.limit().to_string(),
            )?;
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            write_file(need(cg, "net_cls")?, "net_cls.classid", &id.to_string())?;
        }
        for p in n.priorities().iter().flatten() {
            write_file(
                need(cg, "net_prio")?,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    if let Some(rdma) = r.rdma() {
        for (dev, l) in rdma {
            write_file(need(cg, "rdma")?, "rdma.max", &rdma_line(dev, l))?;
        }
    }
    if let Some(devs) = r.devices() {
        // Rootless containers cannot change the devices cgroup; runc ignores it there.
        if !rootless {
            set_devices(need(cg, "devices")?, devs)?;
        }
    }
    Ok(())
}

/// "mlx4_0 hca_handle=2 hca_object=2000" (rdma.max, same in v1 and v2).
pub fn rdma_line(dev: &str, l: &oci_spec::runtime::LinuxRdma) -> String {
    let mut s = dev.to_string();
    if let Some(h) = l.hca_handles() {
        s.push_str(&format!(" hca_handle={}", h));
    }
    if let Some(o) = l.hca_objects() {
        s.push_str(&format!(" hca_object={}", o));
    }
    s
}

fn need<'a>(cg: &'a V1, c: &str) -> Result<&'a Path> {
    cg.path(c).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot set {} limit: container could not join or create cgroup",
            c
        )
    })
}

fn memory_requested(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some()
}

fn write_memory_limit(dir: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    match write_file_raw(dir, "memory.limit_in_bytes", &limit.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let usage = read_u64_or_zero(dir, "memory.usage_in_bytes").unwrap_or(0);
            let peak = read_u64_or_zero(dir, "memory.max_usage_in_bytes").unwrap_or(0);
            bail!(
                "unable to set memory limit to {} (current usage: {}, peak usage: {})",
                limit,
                usage,
                peak
            )
        }
        Err(e) => Err(e)
            .with_context(|| format!("write {} to {}/memory.limit_in_bytes", limit, dir.display())),
    }
}

fn write_swap_limit(dir: &Path, swap: i64) -> Result<()> {
    if swap == 0 {
        return Ok(());
    }
    write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
}

fn set_memory(dir: &Path, m: &LinuxMemory, update: bool) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    let has_swap = dir.join("memory.memsw.limit_in_bytes").exists();
    if update && m.check_before_update() == Some(true) && limit > 0 {
        let usage = read_u64(dir, "memory.usage_in_bytes")?;
        if (limit as u64) < usage {
            bail!(
                "rejecting memory limit {} below current usage {}",
                limit,
                usage
            );
        }
    }
    // Unlimited memory with swap not given means unlimited swap too.
    if limit == -1 && swap == 0 && has_swap {
        swap = -1;
    }
    if swap != 0 && !has_swap {
        bail!("memory swap limit requested but the kernel has no swap accounting (memory.memsw.limit_in_bytes is missing)");
    }
    // memsw must stay >= memory at every step: raise memsw first when growing.
    let mut done = false;
    if limit != 0 && swap != 0 {
        let cur = read_u64(dir, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            write_swap_limit(dir, swap)?;
            write_memory_limit(dir, limit)?;
            done = true;
        }
    }
    if !done {
        write_memory_limit(dir, limit)?;
        write_swap_limit(dir, swap)?;
    }
    // linux.resources.memory.kernel is deprecated and ignored, as in runc 1.1+.
    if let Some(tcp) = m.kernel_tcp().filter(|v| *v != 0) {
        write_file(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    if let Some(res) = m.reservation().filter(|v| *v != 0) {
        write_file(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write_file(dir, "memory.oom_control", "1")?;
    }
    if let Some(sw) = m.swappiness() {
        if sw > 100 {
            bail!(
                "invalid value:{}. valid memory swappiness range is 0-100",
                sw
            );
        }
        write_file(dir, "memory.swappiness", &sw.to_string())?;
    }
    if let Some(h) = m.use_hierarchy() {
        match write_file_raw(dir, "memory.use_hierarchy", if h { "1" } else { "0" }) {
            Ok(()) => {}
            Err(e) if !h && e.raw_os_error() == Some(libc::EINVAL) => {
                bail!("memory.use_hierarchy: this kernel always accounts hierarchically; useHierarchy=false is not supported")
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("write {}/memory.use_hierarchy", dir.display()))
            }
        }
    }
    Ok(())
}

fn set_cpu(cg: &V1, c: &LinuxCpu) -> Result<()> {
    let cpu_wanted = c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.idle().is_some();
    if cpu_wanted {
        let dir = need(cg, "cpu")?;
        // Realtime first: the rt period bounds the runtime.
        if let Some(p) = c.realtime_period().filter(|v| *v != 0) {
            write_file(dir, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(rt) = c.realtime_runtime().filter(|v| *v != 0) {
            write_file(dir, "cpu.rt_runtime_us", &rt.to_string())?;
        }
        if let Some(shares) = c.shares().filter(|v| *v != 0) {
            write_file(dir, "cpu.shares", &shares.to_string())?;
            // The kernel clamps silently; tell the user what it did.
            let got = read_u64(dir, "cpu.shares")?;
            if shares > got {
                bail!("the maximum allowed cpu-shares is {}", got);
            } else if shares < got {
                bail!("the minimum allowed cpu-shares is {}", got);
            }
        }
        let quota = c.quota().unwrap_or(0);
        let mut period_pending = None;
        if let Some(p) = c.period().filter(|v| *v != 0) {
            if let Err(e) = write_file_raw(dir, "cpu.cfs_period_us", &p.to_string()) {
                // A smaller period can be refused until the quota is lowered; retry after.
                if e.raw_os_error() != Some(libc::EINVAL) || quota == 0 {
                    return Err(e).with_context(|| {
                        format!("write {} to {}/cpu.cfs_period_us", p, dir.display())
                    });
                }
                period_pending = Some(p);
            }
        }
        if quota != 0 {
            write_file(dir, "cpu.cfs_quota_us", &quota.to_string())?;
            if let Some(p) = period_pending {
                write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
            }
        }
        if let Some(b) = c.burst() {
            write_file(dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(idle) = c.idle() {
            write_file(dir, "cpu.idle", &idle.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = need(cg, "cpuset")?;
        if let Some(v) = cpus {
            write_file(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = mems {
            write_file(dir, "cpuset.mems", v)?;
        }
    }
    Ok(())
}

fn set_blkio(cg: &V1, b: &LinuxBlockIo) -> Result<()> {
    let wanted = b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|t| t.as_ref().is_some_and(|v| !v.is_empty()));
    if !wanted {
        return Ok(());
    }
    let dir = need(cg, "blkio")?;
    // CFQ's blkio.weight is gone from modern kernels; BFQ offers blkio.bfq.weight.
    let bfq = !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists();
    let (weight_file, weight_dev_file) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        write_file(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|v| *v != 0) {
        write_file(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            write_file(
                dir,
                weight_dev_file,
                &format!("{}:{} {}", wd.major(), wd.minor(), w),
            )?;
        }
        if let Some(w) = wd.leaf_weight() {
            write_file(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {}", wd.major(), wd.minor(), w),
            )?;
        }
    }
    for (file, list) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ] {
        for t in list.iter().flatten() {
            write_file(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Deny everything, then replay the rules in order (v1 semantics: later rules win).
fn set_devices(dir: &Path, devs: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    let rules = parse_rules(devs)?;
    write_file(dir, "devices.deny", "a")?;
    for rule in &rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(dir, file, &rule.v1_line())?;
    }
    Ok(())
}
