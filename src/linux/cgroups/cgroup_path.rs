//! How `linux.cgroupsPath` is read, as runc reads it: a cleaned absolute path is taken under
//! each controller's root; a relative one under the caller's own cgroup; an empty one means the
//! container id (relative). With the systemd driver the syntax is "slice:prefix:name".

use anyhow::{bail, Result};
use std::path::Path;

/// Lexically clean a cgroup path the way runc's `utils.CleanPath` does: "." and ".." are
/// resolved as if the path were rooted, so a relative path can never climb above its base.
/// An absolute input stays absolute ("/a/b"); a relative one stays relative ("a/b", or "" for
/// nothing).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{}", joined)
    } else {
        joined
    }
}

/// The cleaned inner path for the cgroupfs driver: `cgroups_path`, or the id when it is empty.
pub fn inner_path(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    let raw = match cgroups_path {
        Some(p) if !p.is_empty() => p,
        _ => id,
    };
    let cleaned = clean_path(raw);
    if cleaned.is_empty() {
        bail!("invalid cgroup path {:?}: it names no cgroup", raw);
    }
    Ok(cleaned)
}

/// Check a `slice:prefix:name` cgroupsPath and whether the systemd driver can be used.
/// ocibox has no D-Bus client; where systemd is not running this is runc's situation too
/// and the error says so.
pub fn systemd_driver(cgroups_path: Option<&str>, id: &str) -> Result<()> {
    let default = format!("system.slice:runc:{}", id);
    let p = match cgroups_path {
        Some(p) if !p.is_empty() => p,
        _ => default.as_str(),
    };
    if p.split(':').count() != 3 {
        bail!(
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {:?} instead",
            p
        );
    }
    if !Path::new("/run/systemd/system").is_dir() {
        bail!("systemd cgroup driver: systemd is not running");
    }
    bail!("systemd cgroup driver: not supported by this build of ocibox (use the cgroupfs driver)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean() {
        assert_eq!(clean_path("/a/../b/./c/"), "/b/c");
        assert_eq!(clean_path("/../../x"), "/x");
        assert_eq!(clean_path("a/../../b"), "b");
        assert_eq!(clean_path("../.."), "");
        assert_eq!(clean_path("."), "");
        assert_eq!(clean_path("/"), "/");
    }

    #[test]
    fn inner() {
        assert_eq!(inner_path(None, "ctr").unwrap(), "ctr");
        assert_eq!(inner_path(Some(""), "ctr").unwrap(), "ctr");
        assert_eq!(inner_path(Some("/x/y"), "ctr").unwrap(), "/x/y");
        assert_eq!(inner_path(Some("x/../../y"), "ctr").unwrap(), "y");
        assert!(inner_path(Some(".."), "ctr").is_err());
    }

    #[test]
    fn systemd_errors_are_clear() {
        let e = systemd_driver(Some("/bad"), "c").unwrap_err();
        assert!(format!("{:#}", e).contains("slice:prefix:name"));
        if !Path::new("/run/systemd/system").is_dir() {
            let e = systemd_driver(Some("system.slice:ocibox:c"), "c").unwrap_err();
            assert_eq!(
                format!("{:#}", e),
                "systemd cgroup driver: systemd is not running"
            );
        }
    }
}
