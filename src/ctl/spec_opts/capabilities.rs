//! `--cap-add` and `--cap-drop` as ctr 1.6 applies them (`WithAddedCapabilities`,
//! `WithDroppedCapabilities`): names must carry the `CAP_` prefix (ctr checks nothing
//! else: an unknown name reaches the runtime, which refuses it); an added capability is
//! appended to the bounding, effective and permitted sets where missing, a dropped one
//! removed from all three.

use anyhow::{bail, Result};

use crate::ctl::spec_from_image::Capabilities;

/// ctr's check of `--cap-add` / `--cap-drop` values.
pub fn check_names(caps: &[String]) -> Result<()> {
    if caps.iter().any(|c| !c.starts_with("CAP_")) {
        bail!("capabilities must be specified with 'CAP_' prefix");
    }
    Ok(())
}

fn sets(c: &mut Capabilities) -> [&mut Vec<String>; 3] {
    [&mut c.bounding, &mut c.effective, &mut c.permitted]
}

/// `WithAddedCapabilities`.
pub fn add(c: &mut Capabilities, caps: &[String]) {
    for cap in caps {
        for set in sets(c) {
            if !set.contains(cap) {
                set.push(cap.clone());
            }
        }
    }
}

/// `WithDroppedCapabilities`.
pub fn drop(c: &mut Capabilities, caps: &[String]) {
    for cap in caps {
        for set in sets(c) {
            set.retain(|x| x != cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_appends_once_and_drop_removes_everywhere() {
        let base = vec!["CAP_CHOWN".to_string(), "CAP_KILL".to_string()];
        let mut c = Capabilities {
            bounding: base.clone(),
            effective: base.clone(),
            permitted: base,
        };
        add(&mut c, &["CAP_SYS_ADMIN".into(), "CAP_KILL".into()]);
        drop(&mut c, &["CAP_CHOWN".into()]);
        assert_eq!(c.bounding, ["CAP_KILL", "CAP_SYS_ADMIN"]);
        assert_eq!(c.bounding, c.effective);
        assert_eq!(c.bounding, c.permitted);
        assert_eq!(
            check_names(&["ALL".into()]).unwrap_err().to_string(),
            "capabilities must be specified with 'CAP_' prefix"
        );
    }
}
