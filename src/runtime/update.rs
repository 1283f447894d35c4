//! `update`: change a running container's cgroup resources (runc's flags or a
//! `--resources` JSON file), and remember them in the state.

use super::id::ContainerId;
use super::state::State;
use super::status::Status;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// runc update's flags; None leaves a value as it is.
#[derive(Default, Debug)]
pub struct UpdateFlags {
    pub resources: Option<PathBuf>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
}

pub fn update(root: &Path, id: &ContainerId, f: &UpdateFlags) -> Result<()> {
    let mut st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        bail!("container not running");
    }
    let current = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let devices = current.devices().clone();
    let mut new = match &f.resources {
        Some(p) => read_resources(p)?,
        None => merge_flags(current, f)?,
    };
    // As runc: update never changes the device rules (it has no flag for them and ignores
    // those of --resources); the container keeps the ones it was created with, and the
    // cgroup's device list is not touched (the saved spec rules lack runc's defaults).
    new.set_devices(devices);
    let mut apply = new.clone();
    apply.set_devices(None);
    let cg = st.cgroup.as_ref().context("container has no cgroup")?;
    cg.update(&apply)?;
    let mut linux = st.config.linux().clone().unwrap_or_default();
    linux.set_resources(Some(new));
    st.config.set_linux(Some(linux));
    st.save(root)
}

fn read_resources(p: &Path) -> Result<LinuxResources> {
    let mut text = Vec::new();
    if p == Path::new("-") {
        std::io::stdin()
            .take(crate::oci::spec::MAX_CONFIG_BYTES)
            .read_to_end(&mut text)
            .context("read resources from stdin")?;
    } else {
        std::fs::File::open(p)
            .with_context(|| format!("open {}", p.display()))?
            .take(crate::oci::spec::MAX_CONFIG_BYTES)
            .read_to_end(&mut text)
            .with_context(|| format!("read {}", p.display()))?;
    }
    serde_json::from_slice(&text).context("decode resources JSON")
}

/// Apply the flags to the current resources (at the JSON level: oci-spec's memory type
/// has no setters).
fn merge_flags(r: LinuxResources, f: &UpdateFlags) -> Result<LinuxResources> {
    let mut v = serde_json::to_value(&r).context("encode resources")?;
    let obj = v.as_object_mut().context("resources are not an object")?;
    let mut set = |section: &str, key: &str, val: Value| {
        let s = obj
            .entry(section)
            .or_insert_with(|| Value::Object(Default::default()));
        if !s.is_object() {
            *s = Value::Object(Default::default());
        }
        if let Some(m) = s.as_object_mut() {
            m.insert(key.to_string(), val);
        }
    };
    if let Some(x) = &f.memory {
        let limit = parse_bytes(x)?;
        set("memory", "limit", json!(limit));
        // As runc: unlimited memory without a --memory-swap means unlimited swap too (an old
        // memsw limit below an unlimited memory limit is EINVAL).
        if limit == -1 && f.memory_swap.is_none() {
            set("memory", "swap", json!(-1));
        }
    }
    if let Some(x) = &f.memory_reservation {
        set("memory", "reservation", json!(parse_bytes(x)?));
    }
    if let Some(x) = &f.memory_swap {
        set("memory", "swap", json!(parse_bytes(x)?));
    }
    if let Some(x) = f.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = f.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = f.cpu_share {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = f.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = f.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = &f.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &f.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    if let Some(x) = f.pids_limit {
        set("pids", "limit", json!(x));
    }
    if let Some(x) = f.blkio_weight {
        set("blockIO", "weight", json!(x));
    }
    serde_json::from_value(v).context("decode updated resources")
}

/// Sizes as runc's `units.RAMInBytes`: "1024", "64k", "100M", "1.5g", "-1" (unlimited).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        Some('p') => (&trimmed[..trimmed.len() - 1], 1 << 50),
        _ => (trimmed, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size: {s:?}"))?;
    if v < 0.0 {
        bail!("invalid size: {s:?}");
    }
    Ok((v * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64k").unwrap(), 65536);
        assert_eq!(parse_bytes("100M").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
