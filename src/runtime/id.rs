//! A container id, checked once where it enters (the command line, a state directory
//! name, state.json) and passed typed from there: a `ContainerId` is always safe to use as
//! a directory name under the runtime's root.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// runc's rule: letters, digits, `_ + - .`; not `.` or `..`; at most 1024 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(id: &str) -> Result<ContainerId> {
        let ok_chars = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
        if id.is_empty() || id == "." || id == ".." || !ok_chars || id.len() > 1024 {
            bail!("invalid container id format: {id:?}");
        }
        Ok(ContainerId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ContainerId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<ContainerId> {
        ContainerId::parse(s)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<ContainerId> {
        ContainerId::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for ContainerId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerId;

    #[test]
    fn runc_rule() {
        for ok in ["a", "abc-1.2_3+x", "0", "..a", &"x".repeat(1024)] {
            assert_eq!(ContainerId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "../x",
            "x\n",
            &"x".repeat(1025),
        ] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_text_is_runcs() {
        let e = ContainerId::parse("bad/id").unwrap_err();
        assert_eq!(e.to_string(), "invalid container id format: \"bad/id\"");
    }

    #[test]
    fn json_is_a_plain_string_and_is_checked() {
        let id = ContainerId::parse("c1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"c1\"");
        let back: ContainerId = serde_json::from_str("\"c1\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ContainerId>("\"../etc\"").is_err());
    }
}
