//! Placeholder until the procattrs branch lands.
use anyhow::{bail, Result};
use std::path::Path;
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub sgids: Vec<u32>,
    pub home: String,
}
pub fn lookup_user(_root: &Path, _user: &str) -> Result<ExecUser> {
    bail!("not built")
}
pub fn apply_user(_uid: u32, _gid: u32, _gids: &[u32], _setgroups: bool) -> Result<()> {
    bail!("not built")
}
