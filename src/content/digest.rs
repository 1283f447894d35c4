//! Content digests: `sha256:<64 lowercase hex>`, the only algorithm containerd's store
//! writes (`digest.Canonical`), and a streaming digester.

use crate::errdefs::{err, ErrorKind};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// go-digest's `Digest.Validate` of any algorithm it knows (sha256, sha384, sha512): the
/// words of its error ("invalid checksum digest format", "invalid checksum digest length",
/// "unsupported digest algorithm"), which containerd and ctr print.
pub fn go_validate(s: &str) -> Result<(), &'static str> {
    const FORMAT: &str = "invalid checksum digest format";
    let Some(i) = s.find(':').filter(|&i| i > 0 && i + 1 < s.len()) else {
        return Err(FORMAT);
    };
    let (alg, enc) = (&s[..i], &s[i + 1..]);
    let size = match alg {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => {
            let alg_ok = alg.split(['+', '.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
            let enc_ok = enc
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | '_' | '-'));
            return Err(if alg_ok && enc_ok {
                "unsupported digest algorithm"
            } else {
                FORMAT
            });
        }
    };
    if enc.len() != size * 2 {
        return Err("invalid checksum digest length");
    }
    if !enc.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(FORMAT);
    }
    Ok(())
}

/// A validated sha256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The algorithm prefix.
    pub const ALGORITHM: &'static str = "sha256";

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// From the raw 32 bytes.
    pub fn from_bytes(b: [u8; 32]) -> Digest {
        Digest(b)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 hex characters without the algorithm (`Digest.Encoded()` in Go).
    pub fn encoded(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// Parse just the 64 hex characters (a blob file name).
    pub fn from_encoded(hex: &str) -> anyhow::Result<Digest> {
        let b = hex.as_bytes();
        if b.len() != 64 {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("invalid digest {hex:?}: sha256 digest must be 64 hex characters"),
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let (Some(h), Some(l)) = (hexval(pair[0]), hexval(pair[1])) else {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    format!("invalid digest {hex:?}: only lowercase hex characters are allowed"),
                ));
            };
            out[i] = h << 4 | l;
        }
        Ok(Digest(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl FromStr for Digest {
    type Err = anyhow::Error;

    /// `sha256:<64 hex>`; other algorithms are refused with containerd's wording.
    fn from_str(s: &str) -> anyhow::Result<Digest> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("invalid digest {s:?}: invalid checksum digest format"),
            ));
        };
        if alg != Self::ALGORITHM {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("invalid digest {s:?}: unsupported digest algorithm"),
            ));
        }
        Digest::from_encoded(hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", Self::ALGORITHM, self.encoded())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: anyhow::Error| serde::de::Error::custom(e))
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = anyhow::Error;
    fn try_from(d: &oci_spec::image::Digest) -> anyhow::Result<Digest> {
        d.as_ref().parse()
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> oci_spec::image::Digest {
        // A sha256 digest we print is always valid for oci-spec's parser.
        oci_spec::image::Digest::from_str(&d.to_string())
            .unwrap_or_else(|_| unreachable!("sha256 digests are valid OCI digests"))
    }
}

/// A running sha256 over a stream.
#[derive(Clone, Default)]
pub struct Digester(Sha256);

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digester({})", self.digest())
    }
}

impl Digester {
    /// An empty digester.
    pub fn new() -> Digester {
        Digester(Sha256::new())
    }
    /// Add bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest of everything added so far (the digester keeps going).
    pub fn digest(&self) -> Digest {
        Digest(self.0.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::kind_of;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn round_trips_and_matches_known_values() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digester::new().digest(), d);
        let mut g = Digester::new();
        g.update(b"ab");
        g.update(b"c");
        assert_eq!(g.digest(), Digest::of(b"abc"));
        let o: oci_spec::image::Digest = d.into();
        assert_eq!(Digest::try_from(&o).unwrap(), d);
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
    }

    #[test]
    fn refuses_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            &EMPTY.to_uppercase(),
            &EMPTY.replace("sha256", "sha512"),
            &format!("{EMPTY}0"),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        ] {
            let e = bad.parse::<Digest>().unwrap_err();
            assert_eq!(kind_of(&e), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("invalid digest"), "{e}");
        }
    }
}
