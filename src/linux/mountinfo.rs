//! /proc/self/mountinfo, parsed: what is mounted where, with which propagation.

use anyhow::{Context, Result};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Path of the mount's root inside its filesystem (field 4).
    pub root: String,
    /// Where it is mounted (field 5), unescaped.
    pub mount_point: String,
    /// Optional fields ("shared:1 master:2").
    pub optional: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// Read and parse this process's mountinfo.
pub fn read() -> Result<Vec<MountInfo>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(parse(&text))
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    if pre.len() < 6 {
        return None;
    }
    let mut post = post.split(' ');
    Some(MountInfo {
        root: unescape(pre[3]),
        mount_point: unescape(pre[4]),
        optional: pre[6..].join(" "),
        fs_type: post.next()?.to_string(),
        source: unescape(post.next()?),
        super_options: post.next().unwrap_or("").to_string(),
    })
}

/// Undo the kernel's octal escapes (\040 for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_escapes() {
        let t = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                 40 1 0:33 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu\n";
        let m = parse(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/mnt/a b");
        assert_eq!(m[0].root, "/mnt1");
        assert_eq!(m[0].optional, "master:1 shared:2");
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!(m[1].super_options, "rw,cpu");
        assert_eq!(m[1].optional, "");
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain\\"), "/plain\\");
    }
}
