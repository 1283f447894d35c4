//! A content digest (`sha256:<64 hex>`), minimal: the registry client checks what it is
//! given and what it computes. The content store owns the full type; unify with it.

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate `algorithm:hex` (sha256 or sha512, lowercase hex of the right
    /// length), as the OCI image spec defines the registered algorithms.
    pub fn parse(s: &str) -> Result<Digest> {
        let Some((alg, hex)) = s.split_once(':') else {
            bail!("invalid digest {s:?}: no algorithm prefix");
        };
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => bail!("invalid digest {s:?}: unsupported digest algorithm"),
        };
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            bail!("invalid digest {s:?}: invalid checksum digest format");
        }
        Ok(Digest(s.to_string()))
    }

    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest(format!("sha256:{:x}", Sha256::digest(data)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or("")
    }

    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or("")
    }

    /// The digest of `data` with this digest's algorithm.
    pub fn matches(&self, data: &[u8]) -> bool {
        match self.algorithm() {
            "sha256" => *self == Digest::sha256_of(data),
            "sha512" => format!("sha512:{:x}", sha2::Sha512::digest(data)) == self.0,
            _ => false,
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_computes() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase().replace("SHA", "sha")).is_err());
        assert!(Digest::parse("e3b0c442").is_err());
    }
}
