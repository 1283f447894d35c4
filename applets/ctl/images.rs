//! `ctr images list|delete|tag|label|check` (and the rest of the group, listed).

use anyhow::{bail, Result};
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::images::v1::images_client::ImagesClient;
use ocibox::api::services::images::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use ocibox::api::services::snapshots::v1::snapshots_client::SnapshotsClient;
use ocibox::api::services::snapshots::v1::StatSnapshotRequest;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{label_args, label_pairs, log_error, log_warn, platform, progress_bytes};
use ocibox::ctl::image::{self, Desc};
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;
use ocibox::errdefs::{kind_of, ErrorKind};
use ocibox::image::chain_id::chain_id;
use ocibox::image::platform::Matcher;

use super::flags::SNAPSHOTTER;
use super::stubs::stub;

pub const COMMAND: Command = Command {
    aliases: &["image", "i"],
    subcommands: &[
        CHECK,
        super::archive::EXPORT,
        super::archive::IMPORT,
        LIST,
        super::mount::MOUNT,
        super::mount::UNMOUNT,
        super::pull::PULL,
        super::push::PUSH,
        DELETE,
        TAG,
        LABEL,
        stub("convert", "convert an image"),
    ],
    ..Command::new("images", "manage images")
};

const CHECK: Command = Command {
    args_usage: "[flags] [<filter>, ...]",
    description: "check existing images to ensure all content is available locally",
    flags: &[
        Flag::bool(
            "quiet, q",
            "print only the ready image refs (fully downloaded and unpacked)",
        ),
        SNAPSHOTTER,
    ],
    action: Some(check),
    ..Command::new(
        "check",
        "check existing images to ensure all content is available locally",
    )
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags] [<filter>, ...]",
    description: "list images registered with containerd",
    flags: &[Flag::bool("quiet, q", "print only the image refs")],
    action: Some(list),
    ..Command::new("list", "list images known to containerd")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[flags] <ref> [<ref>, ...]",
    description: "remove one or more images by reference",
    flags: &[Flag::bool(
        "sync",
        "Synchronously remove image and all associated resources",
    )],
    action: Some(delete),
    ..Command::new("delete", "remove one or more images by reference")
};

const TAG: Command = Command {
    args_usage: "[flags] <source_ref> <target_ref> [<target_ref>, ...]",
    description: "Tag an image for use in containerd.",
    flags: &[Flag::bool(
        "force",
        "force target_ref to be created, regardless if it already exists",
    )],
    action: Some(tag),
    ..Command::new("tag", "tag an image")
};

const LABEL: Command = Command {
    args_usage: "[flags] <name> [<key>=<value>, ...]",
    description: "set and clear labels for an image",
    flags: &[Flag::bool("replace-all, r", "replace all labels")],
    action: Some(label),
    ..Command::new("label", "set and clear labels for an image")
};

fn client(ch: UnixChannel) -> ImagesClient<UnixChannel> {
    ImagesClient::with_origin(ch, origin()).max_decoding_message_size(ocibox::api::MAX_MESSAGE_SIZE)
}

/// The images matching `filters` (Images List).
pub fn list_images(c: &Client, filters: &[String]) -> Result<Vec<Image>> {
    let ch = c.channel()?;
    c.run(async {
        let r = client(ch)
            .list(c.req(ListImagesRequest {
                filters: filters.to_vec(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().images)
    })
}

fn target(i: &Image) -> Desc {
    i.target.as_ref().map(Desc::from_api).unwrap_or_default()
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    c.channel()?;
    let images = list_images(&c, &p.args).map_err(|e| e.context("failed to list images"))?;
    if p.bool("quiet") {
        out(&images
            .iter()
            .map(|i| format!("{}\n", i.name))
            .collect::<String>());
        return Ok(());
    }
    let m = Matcher::default_for_host();
    let mut t = TabWriter::table();
    t.write("REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t\n");
    for i in &images {
        let d = target(i);
        let (size, err) = image::size(&c, &d, &m);
        if let Some(e) = err {
            log_error(&format!("failed calculating size for image {}", i.name), &e);
        }
        let plats = match image::platforms(&c, &d) {
            Err(e) => {
                log_error(
                    &format!("failed resolving platform for image {}", i.name),
                    &e,
                );
                "-".to_string()
            }
            Ok(ps) if ps.is_empty() => "-".to_string(),
            Ok(ps) => {
                let mut v: Vec<String> = ps
                    .iter()
                    .map(|p| platform(&p.os, &p.architecture, &p.variant))
                    .collect();
                v.sort();
                v.dedup();
                v.join(",")
            }
        };
        let labels = if i.labels.is_empty() {
            "-".to_string()
        } else {
            label_pairs(&i.labels).join(",")
        };
        t.write(&format!(
            "{}\t{}\t{}\t{}\t{plats}\t{labels}\t\n",
            i.name,
            d.media_type,
            d.digest,
            progress_bytes(size)
        ));
    }
    out(&t.finish());
    Ok(())
}

fn delete(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mut first_err = None;
    let n = p.args.len();
    for (idx, name) in p.args.iter().enumerate() {
        // ctr makes only the last deletion synchronous.
        let sync = p.bool("sync") && idx + 1 == n;
        let r = c.run(async {
            client(ch.clone())
                .delete(c.req(DeleteImageRequest {
                    name: name.clone(),
                    sync,
                    target: None,
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        match r {
            Ok(()) => out(&format!("{name}\n")),
            Err(e) if kind_of(&e) == ErrorKind::NotFound => {
                log_warn(&format!("{name}: image not found"));
            }
            Err(e) => {
                log_error(&format!("unable to delete {name}"), &e);
                if first_err.is_none() {
                    first_err = Some(e.context(format!("unable to delete {name}")));
                }
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn tag(p: &Parsed) -> Result<()> {
    let source = p.first();
    if source.is_empty() {
        bail!("please provide an image reference to tag from");
    }
    if p.args.len() <= 1 {
        bail!("please provide an image reference to tag to");
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let image = c.run(async {
        let r = client(ch.clone())
            .get(c.req(GetImageRequest {
                name: source.to_string(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().image.unwrap_or_default())
    })?;
    for to in &p.args[1..] {
        let mut img = image.clone();
        img.name = to.clone();
        let create = |img: Image| {
            let ch = ch.clone();
            let c = &c;
            async move {
                client(ch)
                    .create(c.req(CreateImageRequest {
                        image: Some(img),
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(grpc)
            }
        };
        c.run(async {
            match create(img.clone()).await {
                Ok(_) => Ok(()),
                Err(e) if kind_of(&e) == ErrorKind::AlreadyExists && p.bool("force") => {
                    client(ch.clone())
                        .delete(c.req(DeleteImageRequest {
                            name: to.clone(),
                            sync: false,
                            target: None,
                        }))
                        .await
                        .map_err(grpc)?;
                    create(img).await?;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })?;
        out(&format!("{to}\n"));
    }
    Ok(())
}

fn label(p: &Parsed) -> Result<()> {
    let name = p.first().to_string();
    let labels = label_args(p.args.get(1..).unwrap_or_default());
    let c = Client::new(p)?;
    if name.is_empty() {
        bail!("please specify an image");
    }
    let ch = c.channel()?;
    let paths: Vec<String> = labels
        .keys()
        .map(|k| {
            if p.bool("replace-all") {
                "labels".to_string()
            } else {
                format!("labels.{k}")
            }
        })
        .collect();
    let updated = c.run(async {
        let r = client(ch)
            .update(c.req(UpdateImageRequest {
                image: Some(Image {
                    name,
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
                source_date_epoch: None,
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().image.unwrap_or_default())
    })?;
    // ctr joins them in Go's map order (random); sorted here.
    out(&format!("{}\n", label_pairs(&updated.labels).join(",")));
    Ok(())
}

/// containerd's default snapshotter, for `--snapshotter ""`.
const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// `image.IsUnpacked`: whether the snapshotter has the chain ID of the image's rootfs.
fn is_unpacked(c: &Client, d: &Desc, m: &Matcher, snapshotter: &str) -> Result<bool> {
    let diffs = image::diff_ids(c, d, m)?;
    let Some(chain) = chain_id(&diffs) else {
        return Ok(false);
    };
    let ch = c.channel()?;
    let r = c.run(async {
        SnapshotsClient::with_origin(ch, origin())
            .stat(c.req(StatSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: chain.to_string(),
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

fn check(p: &Parsed) -> Result<()> {
    let quiet = p.bool("quiet");
    let c = Client::new(p)?;
    c.channel()?;
    let images = list_images(&c, &p.args).map_err(|e| e.context("failed listing images"))?;
    if images.is_empty() {
        return Ok(());
    }
    let mut sn = p.string("snapshotter");
    if sn.is_empty() {
        sn = DEFAULT_SNAPSHOTTER.to_string();
    }
    let m = Matcher::default_for_host();
    let mut first_err: Option<anyhow::Error> = None;
    let mut t = TabWriter::table();
    if !quiet {
        t.write("REF\tTYPE\tDIGEST\tSTATUS\tSIZE\tUNPACKED\t\n");
    }
    let mut quiet_out = String::new();
    for i in &images {
        let d = target(i);
        let mut complete = true;
        let (status, size) = match image::check(&c, &d, &m) {
            Err(e) => {
                log_error(&format!("unable to check {}", i.name), &e);
                first_err.get_or_insert(e.context(format!("unable to check {}", i.name)));
                complete = false;
                ("error".to_string(), "-".to_string())
            }
            Ok(ck) => {
                let req: i64 = ck.required.iter().map(|d| d.size).sum();
                let pres: i64 = ck.present.iter().map(|d| d.size).sum();
                let mut status = "complete".to_string();
                if !ck.missing.is_empty() {
                    status = "incomplete".into();
                    complete = false;
                }
                if ck.available {
                    status += &format!(" ({}/{})", ck.present.len(), ck.required.len());
                    (
                        status,
                        format!("{}/{}", progress_bytes(pres), progress_bytes(req)),
                    )
                } else {
                    complete = false;
                    (
                        format!("unavailable ({}/?)", ck.present.len()),
                        format!("{}/?", progress_bytes(pres)),
                    )
                }
            }
        };
        let unpacked = match is_unpacked(&c, &d, &m, &sn) {
            Ok(u) => u,
            Err(e) => {
                log_error(&format!("unable to check unpack for {}", i.name), &e);
                first_err
                    .get_or_insert(e.context(format!("unable to check unpack for {}", i.name)));
                false
            }
        };
        if quiet {
            if complete {
                quiet_out.push_str(&format!("{}\n", i.name));
            }
        } else {
            t.write(&format!(
                "{}\t{}\t{}\t{status}\t{size}\t{unpacked}\n",
                i.name, d.media_type, d.digest
            ));
        }
    }
    if quiet {
        out(&quiet_out);
    } else {
        out(&t.finish());
    }
    first_err.map_or(Ok(()), Err)
}
