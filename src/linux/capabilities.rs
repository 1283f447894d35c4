//! Placeholder until the procattrs branch lands.
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxCapabilities;
pub fn drop_bounding(_c: &LinuxCapabilities) -> Result<()> {
    bail!("not built")
}
pub fn set_after_setuid(_c: &LinuxCapabilities) -> Result<()> {
    bail!("not built")
}
