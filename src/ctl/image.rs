//! An image's blobs read over containerd's Content API and walked as containerd's client
//! walks them (`images.Walk` with its handlers): the size ctr's `image ls` shows (the
//! target, the best-matching manifest, its config and layers), the platforms it lists, the
//! manifest for a platform (`images.Manifest`), `images.Check`, and the diff IDs of the
//! image's rootfs, whose chain ID names its unpacked snapshot.

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::client::{grpc, Client};
use crate::api::channel::origin;
use crate::api::services::content::v1::content_client::ContentClient;
use crate::api::services::content::v1::InfoRequest;
use crate::content::Digest;
use crate::errdefs::{kind_of, ErrorKind};
use crate::image::platform::{Matcher, Platform};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

fn is_index(mt: &str) -> bool {
    mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_LIST
}
fn is_manifest(mt: &str) -> bool {
    mt == MEDIA_OCI_MANIFEST || mt == MEDIA_DOCKER_MANIFEST
}
fn is_config(mt: &str) -> bool {
    mt == MEDIA_OCI_CONFIG || mt == MEDIA_DOCKER_CONFIG
}

/// A descriptor: what the walks need of one.
#[derive(Clone, Debug, Default)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    pub platform: Option<Platform>,
}

impl Desc {
    fn from_json(v: &Value) -> Desc {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Desc {
            media_type: s("mediaType"),
            digest: s("digest"),
            size: v.get("size").and_then(Value::as_i64).unwrap_or(0),
            platform: v
                .get("platform")
                .and_then(|p| serde_json::from_value::<Platform>(p.clone()).ok()),
        }
    }

    /// From an API descriptor (an image's target).
    pub fn from_api(d: &crate::api::types::Descriptor) -> Desc {
        Desc {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            platform: None,
        }
    }
}

/// The whole blob `digest` (Content Read), through the pull's reader.
pub fn read_blob(c: &Client, digest: &str) -> Result<Vec<u8>> {
    let s = super::pull_client::Session::new(c.channel()?, &c.namespace);
    c.run(super::pull_client::read_content(&s, digest, u64::MAX))
}

/// Whether the store has blob `digest` (Content Info; NotFound is `false`).
pub fn has_blob(c: &Client, digest: &str) -> Result<bool> {
    let ch = c.channel()?;
    let r = c.run(async {
        ContentClient::with_origin(ch, origin())
            .info(c.req(InfoRequest {
                digest: digest.to_string(),
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    });
    match r {
        Ok(()) => Ok(true),
        Err(e) if kind_of(&e) == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn read_json(c: &Client, d: &Desc) -> Result<Value> {
    let data = read_blob(c, &d.digest)?;
    serde_json::from_slice(&data).with_context(|| format!("parse {} {}", d.media_type, d.digest))
}

/// containerd's `ChildrenHandler`: a manifest's config and layers, an index's manifests,
/// nothing for anything else.
pub fn children(c: &Client, d: &Desc) -> Result<Vec<Desc>> {
    if is_manifest(&d.media_type) {
        let m = read_json(c, d)?;
        let mut v = Vec::new();
        if let Some(cfg) = m.get("config") {
            v.push(Desc::from_json(cfg));
        }
        for l in m
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            v.push(Desc::from_json(l));
        }
        return Ok(v);
    }
    if is_index(&d.media_type) {
        let m = read_json(c, d)?;
        return Ok(m
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(Desc::from_json)
            .collect());
    }
    Ok(Vec::new())
}

/// `FilterPlatforms` then `LimitManifests(…, 1)`: the children a platform-bound walk takes.
fn platform_children(c: &Client, d: &Desc, m: &Matcher) -> Result<Vec<Desc>> {
    let mut ch: Vec<Desc> = children(c, d)?
        .into_iter()
        .filter(|x| x.platform.as_ref().is_none_or(|p| m.matches(p)))
        .collect();
    if is_index(&d.media_type) {
        ch.sort_by(|a, b| match (&a.platform, &b.platform) {
            (Some(x), Some(y)) if m.less(x, y) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) if m.less(y, x) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        if ch.is_empty() {
            return Err(ErrorKind::NotFound.err("no match for platform in manifest"));
        }
        ch.truncate(1);
    }
    Ok(ch)
}

/// `Image.Size(ctx, cs, platforms.Default())`: the sizes of everything the platform walk
/// reaches. On an error, the sum so far and the error (ctr logs it and prints the sum).
pub fn size(c: &Client, target: &Desc, m: &Matcher) -> (i64, Option<anyhow::Error>) {
    let mut total = 0;
    let mut stack = vec![target.clone()];
    while let Some(d) = stack.pop() {
        total += d.size;
        match platform_children(c, &d, m) {
            Ok(ch) => stack.extend(ch.into_iter().rev()),
            Err(e) => return (total, Some(e)),
        }
    }
    (total, None)
}

/// `images.Platforms`: the platforms of the manifests an image names (from the index
/// entries' platform, or from each config's os/architecture), normalised.
pub fn platforms(c: &Client, target: &Desc) -> Result<Vec<Platform>> {
    let mut out = Vec::new();
    let mut stack = vec![target.clone()];
    while let Some(d) = stack.pop() {
        if let Some(p) = &d.platform {
            if p.os != "unknown" && p.architecture != "unknown" {
                out.push(p.clone());
            }
            continue;
        }
        if is_config(&d.media_type) {
            let cfg = read_json(c, &d)?;
            let s = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            out.push(Platform::new(&s("os"), &s("architecture"), "").normalize());
        }
        stack.extend(children(c, &d)?.into_iter().rev());
    }
    Ok(out)
}

/// `images.Manifest`: the manifest (JSON) for platform `m`, as containerd resolves it.
pub fn manifest(c: &Client, target: &Desc, m: &Matcher) -> Result<Value> {
    manifest_desc(c, target, m).map(|(_, v)| v)
}

/// [`manifest`] with the descriptor it was found under.
pub fn manifest_desc(c: &Client, target: &Desc, m: &Matcher) -> Result<(Desc, Value)> {
    let mut was_index = false;
    let mut stack = vec![target.clone()];
    while let Some(d) = stack.pop() {
        if is_manifest(&d.media_type) {
            let man = read_json(c, &d)?;
            if d.digest != target.digest {
                if let Some(p) = &d.platform {
                    if !m.matches(p) {
                        continue;
                    }
                } else {
                    let cfg = read_json(
                        c,
                        &Desc::from_json(man.get("config").unwrap_or(&Value::Null)),
                    )?;
                    let s = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    if !m.matches(&Platform::new(&s("os"), &s("architecture"), "").normalize()) {
                        continue;
                    }
                }
            }
            return Ok((d, man));
        } else if is_index(&d.media_type) {
            was_index = true;
            let mut ch: Vec<Desc> = children(c, &d)?
                .into_iter()
                .filter(|x| x.platform.as_ref().is_none_or(|p| m.matches(p)))
                .collect();
            ch.sort_by(|a, b| match (&a.platform, &b.platform) {
                (Some(x), Some(y)) if m.less(x, y) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) if m.less(y, x) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => std::cmp::Ordering::Equal,
            });
            ch.truncate(1);
            stack.extend(ch.into_iter().rev());
        } else {
            return Err(ErrorKind::NotFound.err(format!(
                "unexpected media type {} for {}: not found",
                d.media_type, d.digest
            )));
        }
    }
    if was_index {
        Err(ErrorKind::NotFound.err(format!(
            "no match for platform in manifest {}: not found",
            target.digest
        )))
    } else {
        Err(ErrorKind::NotFound.err(format!("manifest {}: not found", target.digest)))
    }
}

/// `images.Check`'s answer.
pub struct Check {
    pub available: bool,
    pub required: Vec<Desc>,
    pub present: Vec<Desc>,
    pub missing: Vec<Desc>,
}

/// `images.Check`: whether the manifest's config and layers are all in the store.
pub fn check(c: &Client, target: &Desc, m: &Matcher) -> Result<Check> {
    let man = match manifest(c, target, m) {
        Ok(v) => v,
        Err(e) if kind_of(&e) == ErrorKind::NotFound => {
            return Ok(Check {
                available: false,
                required: vec![target.clone()],
                present: vec![],
                missing: vec![target.clone()],
            })
        }
        Err(e) => return Err(e.context(format!("failed to check image {}", target.digest))),
    };
    let mut required = Vec::new();
    if let Some(cfg) = man.get("config") {
        required.push(Desc::from_json(cfg));
    }
    for l in man
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        required.push(Desc::from_json(l));
    }
    let (mut present, mut missing) = (Vec::new(), Vec::new());
    for d in &required {
        if has_blob(c, &d.digest).with_context(|| format!("failed to check image {}", d.digest))? {
            present.push(d.clone());
        } else {
            missing.push(d.clone());
        }
    }
    Ok(Check {
        available: true,
        required,
        present,
        missing,
    })
}

/// The image config (JSON) for platform `m`.
pub fn config(c: &Client, target: &Desc, m: &Matcher) -> Result<Value> {
    let man = manifest(c, target, m)?;
    read_json(
        c,
        &Desc::from_json(man.get("config").unwrap_or(&Value::Null)),
    )
}

/// The rootfs diff IDs of the image's config for platform `m`.
pub fn diff_ids(c: &Client, target: &Desc, m: &Matcher) -> Result<Vec<Digest>> {
    let cfg = config(c, target, m)?;
    cfg.pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| d.as_str().unwrap_or("").parse::<Digest>())
        .collect()
}
