//! `ctr images push`: the image's content read from the daemon and pushed to the registry
//! from here, as ctr 1.6 does, with its progress display.

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context as _, Result};
use ocibox::api::services::images::v1::GetImageRequest;
use ocibox::content::Digest;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::go_errors::go_request_errors;
use ocibox::ctl::progress_loop::{run_with_progress, Display};
use ocibox::ctl::pull_client::{grpc, read_content, Session, Statuses};
use ocibox::ctl::push_client::{self, PushOptions};
use ocibox::image::manifest::{parse_manifest_or_index, ManifestOrIndex};
use ocibox::image::{Descriptor, Matcher, Platform, Reference};

pub const PUSH: Command = Command {
    args_usage: "[flags] <remote> [<local>]",
    description: "Pushes an image reference from containerd.

  All resources associated with the manifest reference will be pushed.
  The ref is used to resolve to a locally existing image manifest.
  The image manifest must exist before push. Creating a new image
  manifest can be done through calculating the diff for layers,
  creating the associated configuration, and creating the manifest
  which references those resources.
",
    flags: registry_flags![
        Flag::string("manifest", "digest of manifest"),
        Flag::string("manifest-type", "media type of manifest digest")
            .default("application/vnd.oci.image.manifest.v1+json"),
        Flag::strings("platform", "push content from a specific platform"),
        Flag::number(
            "max-concurrent-uploaded-layers",
            "Set the max concurrent uploaded layers for each push"
        ),
        Flag::bool(
            "allow-non-distributable-blobs",
            "Allow pushing blobs that are marked as non-distributable"
        ),
    ],
    action: Some(push),
    ..Command::new("push", "push an image to a remote")
};

fn push(p: &Parsed) -> Result<()> {
    let remote = p.first().to_string();
    if remote.is_empty() {
        bail!("please provide a remote image reference to push");
    }
    let local = p
        .args
        .get(1)
        .cloned()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| remote.clone());
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let s = Session::new(ch, &c.namespace);
    let manifest = p.string("manifest");
    let platforms = p.strings("platform");
    let top = c.run(async {
        if !manifest.is_empty() {
            let digest: Digest = manifest
                .parse()
                .map_err(|e: anyhow::Error| anyhow!("invalid manifest digest: {e:#}"))?;
            let info = s
                .content()
                .info(s.req(ocibox::api::services::content::v1::InfoRequest {
                    digest: digest.to_string(),
                }))
                .await
                .map_err(grpc)?
                .into_inner()
                .info
                .unwrap_or_default();
            return Ok(Descriptor::new(
                p.string("manifest-type"),
                digest,
                info.size.max(0) as u64,
            ));
        }
        let img = s
            .images()
            .get(s.req(GetImageRequest { name: local }))
            .await
            .map_err(|e| grpc(e).context("unable to resolve image to manifest"))?
            .into_inner()
            .image
            .unwrap_or_default();
        let t = img.target.unwrap_or_default();
        let mut top = Descriptor::new(
            t.media_type,
            t.digest
                .parse()
                .with_context(|| format!("image target digest {:?}", t.digest))?,
            t.size.max(0) as u64,
        );
        top.annotations = t.annotations.into_iter().collect();
        if platforms.len() == 1 {
            let ps = &platforms[0];
            let pl = Platform::parse(ps).map_err(|e| anyhow!("invalid platform {ps:?}: {e:#}"))?;
            if let Some(m) = platform_manifest(&s, &top, &pl).await? {
                top = m;
            }
        }
        Ok(top)
    })?;
    let reference = Reference::parse_docker_ref(&remote)
        .with_context(|| format!("parse reference {remote:?}"))?;
    let opts = PushOptions {
        reference,
        registry: super::pull::registry_client(p)?,
        allow_non_distributable: p.bool("allow-non-distributable-blobs"),
        max_concurrent: p
            .string("max-concurrent-uploaded-layers")
            .parse()
            .unwrap_or(0),
    };
    let statuses: Statuses = Arc::new(Mutex::new(Vec::new()));
    let display = Display::stdout(!p.global().is_set("debug"));
    c.run(run_with_progress(
        display,
        &statuses,
        push_client::push(&s, &top, &opts, &statuses),
        |_, _| true,
    ))
    .map_err(|e| anyhow!(go_request_errors(&format!("{e:#}"))))
}

/// ctr's `--platform` for an index: the first manifest whose platform matches, once its
/// own children can be read; `None` when `top` is not an index or nothing matches.
async fn platform_manifest(
    s: &Session,
    top: &Descriptor,
    p: &Platform,
) -> Result<Option<Descriptor>> {
    if !ocibox::image::media_types::is_manifest_or_index(&top.media_type) {
        return Ok(None);
    }
    let Ok(bytes) = read_content(
        s,
        &top.digest.to_string(),
        ocibox::registry::client::MAX_MANIFEST_SIZE,
    )
    .await
    else {
        return Ok(None);
    };
    let Ok(ManifestOrIndex::Index(ix)) = parse_manifest_or_index(&top.media_type, &bytes) else {
        return Ok(None);
    };
    let m = Matcher::only_strict(p);
    for d in ix.manifests() {
        let d = Descriptor::from_oci(d)?;
        if d.platform.as_ref().is_some_and(|pl| m.matches(pl)) {
            read_content(
                s,
                &d.digest.to_string(),
                ocibox::registry::client::MAX_MANIFEST_SIZE,
            )
            .await
            .map_err(|e| e.context("no matching manifest"))?;
            return Ok(Some(d));
        }
    }
    Ok(None)
}
