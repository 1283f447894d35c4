//! Placeholder until the rootfs branch lands.
use anyhow::{bail, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

pub struct RootfsOptions<'a> {
    pub rootfs: &'a Path,
    pub no_pivot: bool,
    pub new_cgroup_ns: bool,
    pub in_user_ns: bool,
}
pub fn prepare_rootfs(
    _spec: &Spec,
    _opts: &RootfsOptions,
    _before_pivot: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    bail!("not built")
}
pub fn finalize_rootfs(_spec: &Spec) -> Result<()> {
    bail!("not built")
}
pub fn mount_console(_slave: &Path) -> Result<()> {
    bail!("not built")
}
pub fn resolve_in_root(_root: &Path, _p: &Path) -> Result<PathBuf> {
    bail!("not built")
}
