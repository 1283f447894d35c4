//! Unpack an image whose blobs are already in the content store into a snapshotter (what
//! containerd 1.7's transfer does after an import with `unpacks`, and what ctr 1.6's
//! import does client-side): per layer not yet a committed snapshot, the blob is read
//! from the store through [`crate::unpack::unpack_layer`] (digest and diffID checked)
//! into its own directory and committed under its chain ID on the previous one; the layer
//! blob gets `containerd.io/uncompressed`, the config `containerd.io/gc.ref.snapshot.<sn>`,
//! as the pull's unpack labels them. Everything is done under a lease of its own, so a
//! collection never takes a snapshot between its commit and the label that holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::content::{read_blob, Digest};
use crate::daemon::context::Daemon;
use crate::errdefs::{kind_of, ErrorKind};
use crate::image::chain_id::chain_ids;
use crate::image::manifest::{
    diff_ids, parse_config, parse_index, parse_manifest, select_manifests, MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
};
use crate::image::media_types::{self, Kind as MediaKind};
use crate::image::platform::Matcher;
use crate::image::Descriptor;
use crate::metadata::encoding::Labels;
use crate::metadata::leases::{self, Resource};
use crate::metadata::namespaced_content::NamespacedContent;
use crate::metadata::temp_lease::with_leased_content;
use crate::pull::image_pull::{GC_REF_SNAPSHOT, SNAPSHOT_REF_LABEL, UNCOMPRESSED_LABEL};
use crate::snapshot::{Kind, Snapshotter};
use crate::unpack::{unpack_layer, Compression, UnpackOptions};

use super::transfer_snapshots::locked_snapshotter;

/// The image manifests of `target` the matcher picks (the best one of an index, or the
/// manifest itself).
fn manifests_of(
    content: &NamespacedContent,
    target: &Descriptor,
    m: &Matcher,
) -> Result<Vec<Descriptor>> {
    match media_types::kind(&target.media_type) {
        MediaKind::Manifest => Ok(vec![target.clone()]),
        MediaKind::Index => {
            let data = read_blob(content.store, &target.digest, MAX_MANIFEST_SIZE)?;
            let ix = parse_index(&data).with_context(|| format!("index {}", target.digest))?;
            let mut out = Vec::new();
            for c in select_manifests(&ix, m, Some(1)) {
                let c = Descriptor::from_oci(&c)?;
                out.extend(manifests_of(content, &c, m)?);
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

/// Unpack the manifests of `target` that `platforms` picks into snapshotter `sn_name`.
pub fn unpack_image(
    d: &Arc<Daemon>,
    ns: &str,
    target: &Descriptor,
    platforms: &Matcher,
    sn_name: &str,
) -> Result<()> {
    d.snapshotters.get(ns, sn_name)?;
    let sn = locked_snapshotter(d, ns, sn_name)?;
    let content = NamespacedContent {
        db: &d.db,
        store: &d.content,
        ns: ns.to_owned(),
        lease: None,
    };
    with_leased_content(&content, "unpack", |content, lease| {
        manifests_of(content, target, platforms)?
            .iter()
            .try_for_each(|m| unpack_manifest(d, content, &sn, sn_name, lease, m))
    })
}

fn committed(sn: &Snapshotter, chain: &Digest) -> bool {
    sn.stat(&chain.to_string())
        .is_ok_and(|i| i.kind == Kind::Committed)
}

fn unpack_manifest(
    d: &Daemon,
    content: &NamespacedContent,
    sn: &Snapshotter,
    sn_name: &str,
    lease: &str,
    m: &Descriptor,
) -> Result<()> {
    let manifest = parse_manifest(&read_blob(content.store, &m.digest, MAX_MANIFEST_SIZE)?)
        .with_context(|| format!("manifest {}", m.digest))?;
    let config = Descriptor::from_oci(manifest.config())?;
    let cfg = parse_config(&read_blob(content.store, &config.digest, MAX_CONFIG_SIZE)?)
        .with_context(|| format!("config {}", config.digest))?;
    let diffs = diff_ids(&cfg)?;
    let layers = manifest
        .layers()
        .iter()
        .map(Descriptor::from_oci)
        .collect::<Result<Vec<_>>>()?;
    if layers.len() != diffs.len() {
        anyhow::bail!(
            "mismatched image rootfs and manifest layers: {} diff ids, {} layers in {}",
            diffs.len(),
            layers.len(),
            m.digest
        );
    }
    let chains = chain_ids(&diffs);
    let mut parent = String::new();
    for (i, layer) in layers.iter().enumerate() {
        let chain = chains[i].to_string();
        if !committed(sn, &chains[i]) {
            d.db.update(|tx| {
                leases::add_resource(
                    tx,
                    &content.ns,
                    lease,
                    Resource {
                        id: chain.clone(),
                        kind: format!("snapshots/{sn_name}"),
                    },
                )
            })?;
            let dir = sn.unpack_dir(&chains[i].encoded()[..12])?;
            let opts = UnpackOptions {
                compression: Compression::from_media_type(&layer.media_type)?,
                expected_diff_id: Some(diffs[i]),
                // A store blob: its name was checked when it was committed.
                digest_blob: false,
                ..UnpackOptions::default()
            };
            let blob = content.reader(&layer.digest)?.stream_from(0)?;
            unpack_layer(blob, &dir, &opts)
                .with_context(|| format!("unpack layer {}", layer.digest))?;
            let labels = BTreeMap::from([(SNAPSHOT_REF_LABEL.to_owned(), chain.clone())]);
            match sn.commit_dir(&chain, &parent, &dir, labels) {
                Ok(()) => {}
                Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
            set_label(
                content,
                &layer.digest,
                UNCOMPRESSED_LABEL,
                &diffs[i].to_string(),
            )?;
        }
        parent = chain;
    }
    if let Some(top) = chains.last() {
        set_label(
            content,
            &config.digest,
            &format!("{GC_REF_SNAPSHOT}.{sn_name}"),
            &top.to_string(),
        )?;
    }
    Ok(())
}

fn set_label(content: &NamespacedContent, d: &Digest, key: &str, value: &str) -> Result<()> {
    let labels = Labels::from([(key.to_owned(), value.to_owned())]);
    let path = format!("labels.{key}");
    content
        .update(d, &labels, &[path.as_str()])
        .map(|_| ())
        .with_context(|| format!("set label {key} of {d}"))
}
