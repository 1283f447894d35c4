//! The value conversions runc makes between cgroup v1 style resources (what the OCI spec
//! speaks) and cgroup v2 files.

use anyhow::{bail, Result};

/// cpu.shares (2..262144) to cpu.weight (1..10000), runc 1.1's linear mapping; 0 means unset.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000); 0 means unset.
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(10, 1000);
    1 + (weight - 10) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap (v1 memsw); v2's memory.swap.max is swap alone.
/// Returns the v2 value: -1 is "max", 0 is "leave unset".
pub fn memory_swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    // As on v1: unlimited memory and no swap given means both unlimited.
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        bail!("unable to set swap limit without memory limit");
    }
    if memory < 0 {
        bail!("invalid memory value: {}", memory);
    }
    if swap < memory {
        bail!("memory+swap limit should be >= memory limit");
    }
    Ok(swap - memory)
}

/// A limit as a cgroup v2 file wants it: 0 is unset (None), -1 (or any negative) is "max".
pub fn limit_to_v2(v: i64) -> Option<String> {
    match v {
        0 => None,
        v if v < 0 => Some("max".to_string()),
        v => Some(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn blkio() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap() {
        assert_eq!(memory_swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(memory_swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(memory_swap_to_v2(100, 100).unwrap(), 0);
        assert!(memory_swap_to_v2(50, 100).is_err());
        assert!(memory_swap_to_v2(50, 0).is_err());
        assert_eq!(limit_to_v2(-1).as_deref(), Some("max"));
        assert_eq!(limit_to_v2(0), None);
        assert_eq!(limit_to_v2(7).as_deref(), Some("7"));
    }
}
