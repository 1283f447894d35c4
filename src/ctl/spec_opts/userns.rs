//! `--uidmap` / `--gidmap` (`container-id:host-id:size`): ctr's `parseIDMapping` and
//! `WithUserNamespace` (a user namespace, appended unless the spec has one, and the two
//! mappings). ctr applies them only when both flags are given.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

/// The runtime-spec's `LinuxIDMapping`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Default)]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

/// Go's `strconv.ParseUint(s, 0, 32)`: decimal, `0x` hex, `0o`/leading-0 octal, `0b`.
fn parse_uint32(s: &str) -> Result<u32, String> {
    let digits = s.replace('_', "");
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        (16, h.to_string())
    } else if let Some(b) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, b.to_string())
    } else if let Some(o) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, o.to_string())
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits[1..].to_string())
    } else {
        (10, digits.clone())
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    match u64::from_str_radix(&body, radix) {
        Ok(v) if v <= u64::from(u32::MAX) => Ok(v as u32),
        Ok(_) => Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        )),
        Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        )),
        Err(_) => Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax")),
    }
}

/// ctr's `parseIDMapping`.
pub fn parse_id_mapping(mapping: &str) -> Result<IdMapping> {
    let parts: Vec<&str> = mapping.splitn(4, ':').collect();
    if parts.len() != 3 {
        bail!("user namespace mappings require the format `container-id:host-id:size`");
    }
    let field = |i: usize, what: &str| {
        parse_uint32(parts[i])
            .map_err(|e| anyhow!("invalid {what} for user namespace remapping: {e}"))
    };
    Ok(IdMapping {
        container_id: field(0, "container id")?,
        host_id: field(1, "host id")?,
        size: field(2, "size")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_forms_and_messages() {
        assert_eq!(
            parse_id_mapping("0:100000:65536").unwrap(),
            IdMapping {
                container_id: 0,
                host_id: 100000,
                size: 65536
            }
        );
        assert_eq!(parse_id_mapping("0x10:010:0b11").unwrap().host_id, 8);
        assert_eq!(
            parse_id_mapping("0:100000").unwrap_err().to_string(),
            "user namespace mappings require the format `container-id:host-id:size`"
        );
        assert_eq!(
            parse_id_mapping("0:x:1").unwrap_err().to_string(),
            "invalid host id for user namespace remapping: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert!(parse_id_mapping("0:1:4294967296")
            .unwrap_err()
            .to_string()
            .ends_with("value out of range"));
    }
}
