//! `checkpoint` and `restore`: runc's command line for CRIU, without CRIU support yet.
//!
//! Both commands check what runc checks before it runs criu (the container's state, the
//! bundle's config, the flags) with runc's words, then look for the criu binary as runc
//! does and fail as runc fails when it is missing:
//! `CRIU version check failed: exec: "criu": executable file not found in $PATH`.
//! With a criu present they still fail, clearly: ocibox does not drive CRIU yet.
//!
//! Decision: runc also creates the image directory (`./checkpoint` by default) before it
//! finds criu missing; ocibox leaves the file system alone when it cannot checkpoint.

use super::id::ContainerId;
use super::state::{container_dir, State};
use super::status::Status;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The flags that change what is checked before criu would run.
pub struct CriuFlags<'a> {
    /// `--criu` (global): a name looked up in PATH, or a path.
    pub criu: &'a str,
    /// `--manage-cgroups-mode`.
    pub manage_cgroups_mode: Option<&'a str>,
}

pub fn checkpoint(root: &Path, id: &ContainerId, flags: &CriuFlags) -> Result<()> {
    let st = State::load(root, id)?;
    let status = st.status(root);
    if matches!(status, Status::Created | Status::Stopped) {
        bail!("Container cannot be checkpointed in {status} state");
    }
    check_manage_cgroups_mode(flags.manage_cgroups_mode)?;
    criu_unsupported(flags.criu)
}

pub fn restore(root: &Path, id: &ContainerId, bundle: &Path, flags: &CriuFlags) -> Result<()> {
    crate::oci::spec::load(bundle)?;
    check_manage_cgroups_mode(flags.manage_cgroups_mode)?;
    if container_dir(root, id).exists() {
        bail!("container with given ID already exists");
    }
    criu_unsupported(flags.criu)
}

fn check_manage_cgroups_mode(mode: Option<&str>) -> Result<()> {
    match mode {
        None | Some("soft" | "full" | "strict") => Ok(()),
        Some(_) => bail!("Invalid manage cgroups mode"),
    }
}

/// runc's first step in libcontainer is `criu --version`; its failure is what a host
/// without criu sees. With criu there, ocibox says it cannot use it.
fn criu_unsupported(criu: &str) -> Result<()> {
    match find_criu(criu) {
        Err(e) => bail!("CRIU version check failed: {e}"),
        Ok(path) => bail!(
            "checkpoint/restore is not supported by ocibox yet (found criu at {}, but \
             ocibox does not drive CRIU)",
            path.display()
        ),
    }
}

/// Go's exec.Command semantics: a name without `/` is looked up in PATH; a path is used
/// as it is and fails at fork/exec.
fn find_criu(criu: &str) -> std::result::Result<PathBuf, String> {
    if criu.contains('/') {
        let p = PathBuf::from(criu);
        return match std::fs::metadata(&p) {
            Ok(_) => Ok(p),
            Err(e) => Err(format!(
                "fork/exec {criu}: {}",
                crate::runtime_log::errno_text(&e)
            )),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(criu);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {criu:?}: executable file not found in $PATH"
    ))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_criu_reads_as_runcs_error() {
        assert_eq!(
            find_criu("ocibox-no-such-criu").unwrap_err(),
            "exec: \"ocibox-no-such-criu\": executable file not found in $PATH"
        );
        assert_eq!(
            find_criu("/nonexistent/criu").unwrap_err(),
            "fork/exec /nonexistent/criu: no such file or directory"
        );
        assert!(check_manage_cgroups_mode(Some("bogus")).is_err());
        assert!(check_manage_cgroups_mode(Some("full")).is_ok());
    }
}
