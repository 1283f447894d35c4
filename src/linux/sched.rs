//! Placeholder until the procattrs branch lands.
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxIOPriority, LinuxPersonality, Scheduler};
pub fn set_oom_score_adj(_v: i32) -> Result<()> {
    bail!("not built")
}
pub fn set_io_priority(_p: &LinuxIOPriority) -> Result<()> {
    bail!("not built")
}
pub fn set_scheduler(_s: &Scheduler) -> Result<()> {
    bail!("not built")
}
pub fn set_personality(_p: &LinuxPersonality) -> Result<()> {
    bail!("not built")
}
pub fn set_no_new_privileges() -> Result<()> {
    bail!("not built")
}
