//! A container: its state directory, its lifecycle operations (one file each), its status.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod run;
pub mod seccomp_agent;
pub mod start;
pub mod state;
pub mod status;
pub mod tty_relay;
pub mod update;

pub use state::State;
pub use status::Status;

use anyhow::{bail, Result};

/// runc's rule: letters, digits, `_ + - .`; not `.` or `..`; at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || id == "." || id == ".." || !ok_chars || id.len() > 1024 {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "0"] {
            assert!(super::validate_id(ok).is_ok());
        }
        for bad in ["", ".", "..", "a/b", "a b", "../x", "x\n"] {
            assert!(super::validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
