//! Mount options of a spec mount, turned into what the syscalls take: flags to set, flags
//! to clear, propagation changes, recursive attributes (mount_setattr) and filesystem data.

use anyhow::{bail, Result};
use libc::c_ulong;

/// A spec mount's `options`, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for mount(2).
    pub flags: c_ulong,
    /// Propagation changes (MS_SHARED, MS_SLAVE|MS_REC, …), applied in order after the mount.
    pub propagation: Vec<c_ulong>,
    /// Filesystem-specific options, passed as mount data ("mode=755", "newinstance", …).
    pub data: Vec<String>,
    /// MOUNT_ATTR_* bits to set recursively (rro, rnosuid, …).
    pub rec_set: u64,
    /// MOUNT_ATTR_* bits to clear recursively (rrw, rsuid, …).
    pub rec_clear: u64,
    /// runc's `tmpcopyup` extension: copy what the tmpfs covers into it.
    pub tmpcopyup: bool,
}

impl MountOptions {
    /// The data string for mount(2), None when there is none.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// True for a bind or rbind mount.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

/// (name, clears the flag, MS_* flag): runc's table.
const FLAGS: &[(&str, bool, c_ulong)] = &[
    ("async", true, libc::MS_SYNCHRONOUS),
    ("atime", true, libc::MS_NOATIME),
    ("bind", false, libc::MS_BIND),
    ("defaults", false, 0),
    ("dev", true, libc::MS_NODEV),
    ("diratime", true, libc::MS_NODIRATIME),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("exec", true, libc::MS_NOEXEC),
    ("iversion", false, libc::MS_I_VERSION),
    ("lazytime", false, libc::MS_LAZYTIME),
    ("loud", true, libc::MS_SILENT),
    ("mand", false, libc::MS_MANDLOCK),
    ("noatime", false, libc::MS_NOATIME),
    ("nodev", false, libc::MS_NODEV),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("noexec", false, libc::MS_NOEXEC),
    ("noiversion", true, libc::MS_I_VERSION),
    ("nolazytime", true, libc::MS_LAZYTIME),
    ("nomand", true, libc::MS_MANDLOCK),
    ("norelatime", true, libc::MS_RELATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("nosuid", false, libc::MS_NOSUID),
    ("nosymfollow", false, libc::MS_NOSYMFOLLOW),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("remount", false, libc::MS_REMOUNT),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("silent", false, libc::MS_SILENT),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("suid", true, libc::MS_NOSUID),
    ("symfollow", true, libc::MS_NOSYMFOLLOW),
    ("sync", false, libc::MS_SYNCHRONOUS),
];

const PROPAGATION: &[(&str, c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_ATIME_MASK: u64 = 0x70;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// (name, clears, MOUNT_ATTR_* bit): the recursive options of runc 1.1.
const RECURSIVE: &[(&str, bool, u64)] = &[
    ("rro", false, ATTR_RDONLY),
    ("rrw", true, ATTR_RDONLY),
    ("rnosuid", false, ATTR_NOSUID),
    ("rsuid", true, ATTR_NOSUID),
    ("rnodev", false, ATTR_NODEV),
    ("rdev", true, ATTR_NODEV),
    ("rnoexec", false, ATTR_NOEXEC),
    ("rexec", true, ATTR_NOEXEC),
    ("rnodiratime", false, ATTR_NODIRATIME),
    ("rdiratime", true, ATTR_NODIRATIME),
    ("rnosymfollow", false, ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, ATTR_NOSYMFOLLOW),
];

/// Recursive atime options: the whole atime field is replaced by the value.
const RECURSIVE_ATIME: &[(&str, u64)] = &[
    ("rrelatime", 0),
    ("rnorelatime", 0),
    ("ratime", 0),
    ("rnoatime", ATTR_NOATIME),
    ("rstrictatime", ATTR_STRICTATIME),
    ("rnostrictatime", 0),
];

/// Filesystem options that carry no '=' but are data, not flags.
const DATA_WORDS: &[&str] = &[
    "newinstance",
    "noswap",
    "user_xattr",
    "nouser_xattr",
    "acl",
    "noacl",
    "inode32",
    "inode64",
    "nsdelegate",
    "memory_recursiveprot",
    "favordynmods",
    "memory_localevents",
    "xattr",
    "noprefix",
    "clone_children",
];

/// Parse a spec mount's options. Options with '=' and other words are data, as runc
/// passes them: the filesystem judges them. On a bind mount the kernel ignores data, so
/// there an unknown word is an error (a typo such as "nosiud" must not pass silently).
pub fn parse(options: &[String]) -> Result<MountOptions> {
    let mut out = MountOptions::default();
    let mut unknown = Vec::new();
    for opt in options {
        let o = opt.as_str();
        if let Some(&(_, clear, flag)) = FLAGS.iter().find(|(n, _, _)| *n == o) {
            if clear {
                out.flags &= !flag;
            } else {
                out.flags |= flag;
            }
        } else if let Some(&(_, flag)) = PROPAGATION.iter().find(|(n, _)| *n == o) {
            out.propagation.push(flag);
        } else if let Some(&(_, clear, attr)) = RECURSIVE.iter().find(|(n, _, _)| *n == o) {
            if clear {
                out.rec_clear |= attr;
                out.rec_set &= !attr;
            } else {
                out.rec_set |= attr;
                out.rec_clear &= !attr;
            }
        } else if let Some(&(_, value)) = RECURSIVE_ATIME.iter().find(|(n, _)| *n == o) {
            out.rec_clear |= ATTR_ATIME_MASK;
            out.rec_set = (out.rec_set & !ATTR_ATIME_MASK) | value;
        } else if o == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if o == "idmap" || o == "ridmap" {
            bail!("mount option {o:?}: idmapped mounts are not supported");
        } else if o.contains('=') || DATA_WORDS.contains(&o) {
            out.data.push(opt.clone());
        } else {
            unknown.push(o);
            out.data.push(opt.clone());
        }
    }
    if out.is_bind() && !unknown.is_empty() {
        bail!(
            "unknown mount option {:?} on a bind mount",
            unknown.join(",")
        );
    }
    Ok(out)
}

/// The flags for `linux.rootfsPropagation`.
pub fn root_propagation(name: &str) -> Result<c_ulong> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, f)| f)
        .ok_or_else(|| anyhow::anyhow!("unknown rootfsPropagation {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<MountOptions> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["rbind", "ro", "nosuid", "mode=755", "rslave", "newinstance"]).unwrap();
        assert_eq!(
            o.flags,
            libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID
        );
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,newinstance"));
        assert!(o.is_bind());
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw", "noexec", "exec"]).unwrap();
        assert_eq!(o.flags, 0);
    }

    #[test]
    fn recursive_attributes() {
        let o = p(&["rro", "rnosuid", "rnoatime"]).unwrap();
        assert_eq!(o.rec_set, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOATIME);
        assert_eq!(o.rec_clear, ATTR_ATIME_MASK);
    }

    #[test]
    fn unknown_and_idmap_are_errors() {
        assert!(format!("{:#}", p(&["bind", "nosiud"]).unwrap_err()).contains("nosiud"));
        assert_eq!(p(&["huge=always2"]).unwrap().data, ["huge=always2"]);
        assert_eq!(p(&["someflag"]).unwrap().data, ["someflag"]);
        assert!(format!("{:#}", p(&["idmap"]).unwrap_err()).contains("idmapped"));
    }

    #[test]
    fn overlay_options_become_data() {
        // containerd's overlay rootfs (was the shim's own table's test).
        let o = p(&["index=off", "lowerdir=/a:/b", "ro"]).unwrap();
        assert!(o.flags & libc::MS_RDONLY != 0);
        assert_eq!(o.data_string().as_deref(), Some("index=off,lowerdir=/a:/b"));
        let o = p(&["rbind"]).unwrap();
        assert_eq!(
            o.flags & (libc::MS_BIND | libc::MS_REC),
            libc::MS_BIND | libc::MS_REC
        );
    }

    #[test]
    fn root_propagation_names() {
        assert_eq!(
            root_propagation("rshared").unwrap(),
            libc::MS_SHARED | libc::MS_REC
        );
        assert!(root_propagation("sideways").is_err());
    }
}
