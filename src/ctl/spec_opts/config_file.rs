//! `--config FILE` (`oci.WithSpecFromFile`): the container's spec is the file's, not one
//! built from an image; ctr adds the `--label` annotations to it and nothing else.
//! The document is kept as JSON (fields the runtime-spec does not name are kept too; ctr's
//! Go decoding would drop them).

use std::path::Path;

use anyhow::{anyhow, Result};

use crate::linux::go_errno::errno_text;

/// The runtime-spec version ctr 1.6 reports in its decoding error.
const SPEC_VERSION: &str = "1.0.2-dev";

/// Largest spec file read.
const MAX_SPEC: u64 = 16 << 20;

/// The spec in `path`, with `annotations` merged into its own.
pub fn load(
    path: &Path,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Value> {
    let open_err = |e: std::io::Error| {
        anyhow!(
            "cannot load spec config file: open {}: {}",
            path.display(),
            errno_text(&e)
        )
    };
    let md = std::fs::metadata(path).map_err(open_err)?;
    if md.len() > MAX_SPEC {
        return Err(anyhow!(
            "cannot load spec config file: {}: larger than {MAX_SPEC} bytes",
            path.display()
        ));
    }
    let data = std::fs::read(path).map_err(open_err)?;
    let decode_err = |e: String| {
        anyhow!("decoding spec config file failed, current supported OCI runtime-spec : v{SPEC_VERSION}: {e}")
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| decode_err(e.to_string()))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(decode_err(
            "json: cannot unmarshal into Go value of type oci.Spec".into(),
        ));
    };
    if !annotations.is_empty() {
        let entry = obj
            .entry("annotations")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = serde_json::Value::Object(Default::default());
        }
        if let Some(a) = entry.as_object_mut() {
            for (k, val) in annotations {
                a.insert(k.clone(), serde_json::Value::String(val.clone()));
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_join_the_files_annotations() {
        let d = std::env::temp_dir().join(format!("ocibox-cfgfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("config.json");
        std::fs::write(&f, r#"{"ociVersion":"1.0.2","annotations":{"z":"1"}}"#).unwrap();
        let mut a = std::collections::BTreeMap::new();
        a.insert("a".to_string(), "b".to_string());
        let v = load(&f, &a).unwrap();
        assert_eq!(v["annotations"], serde_json::json!({"z": "1", "a": "b"}));
        let e = load(&d.join("none.json"), &a).unwrap_err().to_string();
        assert!(e.starts_with("cannot load spec config file: open "), "{e}");
        std::fs::write(&f, "{bad").unwrap();
        let e = load(&f, &a).unwrap_err().to_string();
        assert!(e.starts_with("decoding spec config file failed, current supported OCI runtime-spec : v1.0.2-dev: "), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
