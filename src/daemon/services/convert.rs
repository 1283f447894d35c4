//! Conversions between containerd's API messages and the library's types: timestamps,
//! descriptors, mounts, label maps.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::api::types;
use crate::content::Digest;
use crate::errdefs::{err, ErrorKind};
use crate::linux::mount::Mount;
use crate::metadata::images::Target;

/// A protobuf timestamp of unix nanoseconds.
pub fn timestamp_nanos(n: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: n.div_euclid(1_000_000_000),
        nanos: n.rem_euclid(1_000_000_000) as i32,
    }
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    timestamp_nanos(crate::timefmt::to_unix_nanos(t))
}

/// A digest from the API, with containerd's InvalidArgument when it does not parse.
pub fn digest(s: &str) -> anyhow::Result<Digest> {
    s.parse::<Digest>().map_err(|_| {
        err(
            ErrorKind::InvalidArgument,
            format!("{s:?} failed validation"),
        )
    })
}

pub fn labels_in(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn labels_out(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn descriptor_out(t: &Target) -> types::Descriptor {
    types::Descriptor {
        media_type: t.media_type.clone(),
        digest: t.digest.to_string(),
        size: t.size as i64,
        annotations: labels_out(&t.annotations),
    }
}

pub fn descriptor_in(d: &types::Descriptor) -> anyhow::Result<Target> {
    Ok(Target {
        media_type: d.media_type.clone(),
        digest: digest(&d.digest)?,
        size: u64::try_from(d.size).map_err(|_| {
            err(
                ErrorKind::InvalidArgument,
                format!("descriptor size {} is negative", d.size),
            )
        })?,
        annotations: labels_in(&d.annotations),
    })
}

pub fn mount_out(m: &Mount) -> types::Mount {
    types::Mount {
        r#type: m.fs_type.clone(),
        source: m.source.clone(),
        target: String::new(),
        options: m.options.clone(),
    }
}

pub fn mount_in(m: &types::Mount) -> Mount {
    Mount {
        fs_type: m.r#type.clone(),
        source: m.source.clone(),
        options: m.options.clone(),
    }
}
