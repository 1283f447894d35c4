//! Validation shared by the resources (identifiers, labels, field paths) and the byte
//! encodings records use (base64 for protobuf `Any` values, unix-nanosecond times).

use crate::errdefs::{err, ErrorKind};
use std::collections::BTreeMap;

/// containerd's `identifiers.Validate` limit.
pub const MAX_IDENTIFIER_LEN: usize = 76;
/// containerd's `labels.Validate` limit on key + value.
pub const MAX_LABEL_SIZE: usize = 4096;

/// Labels, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// containerd's `identifiers.Validate`: `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, at most
/// 76 characters. Namespaces, container IDs, lease IDs.
pub fn validate_identifier(what: &str, s: &str) -> anyhow::Result<()> {
    if s.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("{what}: identifier must not be empty"),
        ));
    }
    if s.len() > MAX_IDENTIFIER_LEN {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("{what}: identifier {s:?} greater than maximum length ({MAX_IDENTIFIER_LEN} characters)"),
        ));
    }
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'-');
    let ok = alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| alnum(c) || sep(c))
        && !b.windows(2).any(|w| sep(w[0]) && sep(w[1]));
    if !ok {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!("{what}: identifier {s:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"),
        ));
    }
    Ok(())
}

/// containerd's `labels.Validate` for every label.
pub fn validate_labels(labels: &Labels) -> anyhow::Result<()> {
    for (k, v) in labels {
        if k.len() + v.len() > MAX_LABEL_SIZE {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("label key and value greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {}", k.chars().take(10).collect::<String>()),
            ));
        }
    }
    Ok(())
}

/// Apply `labels` / `labels.<key>` field paths from `src` onto `dst`; other paths are
/// returned for the caller. An empty value under `labels.<key>` removes the label.
pub fn apply_label_paths<'p>(
    dst: &mut Labels,
    src: &Labels,
    paths: &'p [&'p str],
    prefix: &str,
) -> Vec<&'p str> {
    let mut rest = Vec::new();
    for p in paths {
        if *p == prefix {
            *dst = src.clone();
        } else if let Some(key) = p.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) {
            match src.get(key).filter(|v| !v.is_empty()) {
                Some(v) => {
                    dst.insert(key.to_owned(), v.clone());
                }
                None => {
                    dst.remove(key);
                }
            }
        } else {
            rest.push(*p);
        }
    }
    rest
}

/// The current time in unix nanoseconds (UTC), the form records keep times in.
pub fn now_nanos() -> i64 {
    crate::timefmt::to_unix_nanos(std::time::SystemTime::now())
}

/// Standard base64 with padding (canonical), for bytes inside JSON records.
pub mod base64 {
    /// serde helper: `#[serde(with = "base64::serde_bytes")]` on a `Vec<u8>`.
    pub mod serde_bytes {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serialize as base64.
        pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&STANDARD.encode(v))
        }

        /// Deserialize from base64.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            let s = String::deserialize(d)?;
            STANDARD
                .decode(s)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::kind_of;

    #[test]
    fn identifiers_as_containerd() {
        for ok in ["default", "k8s.io", "a", "foo-bar_baz.1", &"a".repeat(76)] {
            validate_identifier("x", ok).unwrap();
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a.-b",
            "a/b",
            "a b",
            "ä",
            &"a".repeat(77),
        ] {
            let e = validate_identifier("x", bad).unwrap_err();
            assert_eq!(kind_of(&e), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn labels_limit_and_paths() {
        let mut big = Labels::new();
        big.insert("k".into(), "v".repeat(4096));
        assert!(validate_labels(&big).is_err());
        big.insert("k".into(), "v".repeat(4095));
        validate_labels(&big).unwrap();
        // the message quotes a prefix of the key, cut on a character boundary
        let mut multi = Labels::new();
        multi.insert("ééééééééééé".into(), "v".repeat(4096));
        assert!(validate_labels(&multi)
            .unwrap_err()
            .to_string()
            .contains("key: éééééééééé"));

        let mut dst: Labels = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let src: Labels = [("a", "9"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let rest = apply_label_paths(
            &mut dst,
            &src,
            &["labels.a", "labels.b", "target"],
            "labels",
        );
        assert_eq!(rest, ["target"]);
        assert_eq!(dst.get("a").map(String::as_str), Some("9"));
        assert!(!dst.contains_key("b"), "absent in src: removed");
        apply_label_paths(&mut dst, &src, &["labels"], "labels");
        assert_eq!(dst, src);
    }

    #[test]
    fn base64_round_trips() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct B(#[serde(with = "base64::serde_bytes")] Vec<u8>);
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let json = format!("\"{enc}\"");
            assert_eq!(serde_json::to_string(&B(raw.into())).unwrap(), json);
            assert_eq!(serde_json::from_str::<B>(&json).unwrap().0, raw.as_bytes());
        }
        let all = B((0..=255).collect());
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<B>(&json).unwrap(), all);
        for bad in ["Z", "Zg=", "Z===", "Zg==Zg==", "Zm9!"] {
            assert!(
                serde_json::from_str::<B>(&format!("\"{bad}\"")).is_err(),
                "{bad}"
            );
        }
    }
}
