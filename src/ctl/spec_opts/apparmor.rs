//! `--apparmor-profile NAME` (`apparmor.WithProfile`: the process runs under an existing
//! profile) and `--apparmor-default-profile NAME` (`apparmor.WithDefaultProfile`: the
//! profile must be loaded in the kernel; ctr generates and loads containerd's default
//! profile under that name when it is not).
//!
//! Loading a generated profile is not carried: on a host with AppArmor where the named
//! profile is not loaded yet, ocibox's ctr says so instead of loading it. On a host without
//! AppArmor the error is ctr's (its check reads the kernel's profile list first).

use anyhow::{anyhow, bail, Result};

use crate::linux::go_errno::errno_text;

/// Where the kernel lists the loaded profiles ("name (mode)" per line).
const PROFILES: &str = "/sys/kernel/security/apparmor/profiles";

/// `isLoaded(name)`: whether the kernel has a profile called `name`.
fn is_loaded(name: &str) -> Result<bool> {
    let text = std::fs::read_to_string(PROFILES)
        .map_err(|e| anyhow!("open {PROFILES}: {}", errno_text(&e)))?;
    Ok(text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(' '))
    }))
}

/// `WithDefaultProfile(name)`'s check: the profile the process will run under.
pub fn default_profile(name: &str) -> Result<String> {
    if !is_loaded(name)? {
        bail!(
            "apparmor profile {name:?} is not loaded: ocibox's ctr does not generate containerd's default profile; load one under that name with apparmor_parser first"
        );
    }
    Ok(name.to_string())
}
