//! Small helpers for reading and writing cgroupfs control files with errors that name the file.

use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Write `value` to `dir/file` in one write(2), as cgroupfs expects (no truncate, no append).
pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {} for writing", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("write {:?} to {}", value, path.display()))
}

/// Like [`write_file`] but returns the raw io error so callers can inspect errno.
pub fn write_file_raw(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(false)
        .open(dir.join(file))?;
    f.write_all(value.as_bytes())
}

/// Read `dir/file` as a string.
pub fn read_file(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

/// Read `dir/file` holding one unsigned number; "max" reads as `u64::MAX`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read_file(dir, file)?;
    parse_u64(s.trim()).with_context(|| format!("parse {}", dir.join(file).display()))
}

/// Like [`read_u64`] but a missing file reads as 0 (controllers differ between kernels).
pub fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64> {
    if !dir.join(file).exists() {
        return Ok(0);
    }
    read_u64(dir, file)
}

/// Parse a cgroup number: "max" is unlimited; a negative value (e.g. "-1") is clamped to 0.
pub fn parse_u64(s: &str) -> Result<u64> {
    if s == "max" {
        return Ok(u64::MAX);
    }
    match s.parse::<u64>() {
        Ok(v) => Ok(v),
        Err(_) if s.parse::<i64>().is_ok() => Ok(0),
        Err(e) => Err(anyhow!("{:?} is not a number: {}", s, e)),
    }
}

/// Parse a flat-keyed file ("key value" per line, e.g. memory.stat, cpu.stat).
pub fn parse_flat_keyed(content: &str) -> BTreeMap<String, u64> {
    content
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?).ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Read a flat-keyed file; a missing file is an empty map.
pub fn read_flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    if !dir.join(file).exists() {
        return Ok(BTreeMap::new());
    }
    Ok(parse_flat_keyed(&read_file(dir, file)?))
}

/// Read the pids listed in `dir/cgroup.procs`.
pub fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let s = read_file(dir, "cgroup.procs")?;
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<i32>()
                .with_context(|| format!("parse pid {:?} in {}/cgroup.procs", l, dir.display()))
        })
        .collect()
}

/// Pids of `dir` and every cgroup below it (as runc's GetAllPids for `ps` and `kill --all`).
pub fn read_procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    out.extend(read_procs(dir)?);
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("read directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("read directory {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            read_procs_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Remove a cgroup directory and every cgroup below it, deepest first. rmdir on a cgroup can
/// fail with EBUSY for a short while after its last task exited; retry briefly as runc does.
/// A directory that is already gone is not an error.
pub fn remove_cgroup_dir(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read directory {}", dir.display())),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_dir(&entry.path())?;
        }
    }
    let mut delay = std::time::Duration::from_millis(10);
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 5 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", dir.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_flat_keyed() {
        assert_eq!(parse_u64("max").unwrap(), u64::MAX);
        assert_eq!(parse_u64("-1").unwrap(), 0);
        assert_eq!(parse_u64("42").unwrap(), 42);
        assert!(parse_u64("x").is_err());
        let m = parse_flat_keyed("cache 10\nrss 20\nbad\n");
        assert_eq!(m.get("cache"), Some(&10));
        assert_eq!(m.get("rss"), Some(&20));
        assert_eq!(m.len(), 2);
    }
}
