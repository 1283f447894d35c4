//! `ctr images mount|unmount` as ctr 1.6.20 does them: a lease named after the target
//! (24h, holding the snapshot), the image unpacked for the platform, a View (or with
//! `--rw` an active snapshot) keyed by the target on the image's chain ID, its mounts
//! stacked on the target here; unmount takes every mount off the target and with `--rm`
//! drops the lease and the snapshot.
//!
//! As ctr 1.6.20: `mount` always uses the default snapshotter (its `--snapshotter` is
//! listed but not read), `unmount --rm` honours `--snapshotter`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use ocibox::api::services::images::v1::GetImageRequest;
use ocibox::api::services::leases::v1 as leases_api;
use ocibox::api::services::snapshots::v1 as snapshots_api;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::image::{self, Desc};
use ocibox::ctl::out;
use ocibox::ctl::pull_client::{self, grpc, Session};
use ocibox::errdefs::{kind_of, ErrorKind};
use ocibox::image::chain_id::chain_id;
use ocibox::image::{Descriptor, Matcher, Platform};

use super::flags::SNAPSHOTTER;

pub const MOUNT: Command = Command {
    args_usage: "[flags] <ref> <target>",
    description: "Mount an image rootfs to a specified path.

When you are done, use the unmount command.
",
    flags: registry_flags![
        SNAPSHOTTER,
        Flag::strings("label", "labels to attach to the image"),
        Flag::bool("rw", "Enable write support on the mount"),
        Flag::string("platform", "Mount the image for the specified platform")
            .default("linux/amd64"),
    ],
    action: Some(mount),
    ..Command::new("mount", "mount an image to a target path")
};

pub const UNMOUNT: Command = Command {
    args_usage: "[flags] <target>",
    description: "Unmount the image rootfs from the specified target.",
    flags: registry_flags![
        SNAPSHOTTER,
        Flag::strings("label", "labels to attach to the image"),
        Flag::bool("rm", "remove the snapshot after a successful unmount"),
    ],
    action: Some(unmount),
    ..Command::new("unmount", "unmount the image from the target")
};

fn rfc3339_in(d: std::time::Duration) -> String {
    ocibox::timefmt::format_seconds(std::time::SystemTime::now() + d)
}

fn mount(p: &Parsed) -> Result<()> {
    let reference = p.first().to_string();
    let target = p.args.get(1).cloned().unwrap_or_default();
    if reference.is_empty() {
        bail!("please provide an image reference to mount");
    }
    if target.is_empty() {
        bail!("please provide a target path to mount to");
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let snapshotter = pull_client::DEFAULT_SNAPSHOTTER.to_string();
    let mut s = Session::new(ch, &c.namespace);
    // `client.WithLease(ctx, WithID(target), …)`: an existing lease is no error, but then
    // the work goes on without one and nothing is deleted on failure.
    let created = c.run(async {
        let r = s
            .leases()
            .create(s.req(leases_api::CreateRequest {
                id: target.clone(),
                labels: HashMap::from([
                    (
                        "containerd.io/gc.expire".to_string(),
                        rfc3339_in(std::time::Duration::from_secs(86400)),
                    ),
                    (
                        format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
                        target.clone(),
                    ),
                ]),
            }))
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.code() == tonic::Code::AlreadyExists => Ok(false),
            Err(e) => Err(grpc(e)),
        }
    })?;
    if created {
        s.lease = Some(target.clone());
    }
    let result = mount_leased(p, &c, &s, &reference, &target, &snapshotter);
    if result.is_err() && created {
        let _ = c.run(pull_client::delete_lease(&s, &target));
    }
    result
}

fn mount_leased(
    p: &Parsed,
    c: &Client,
    s: &Session,
    reference: &str,
    target: &str,
    snapshotter: &str,
) -> Result<()> {
    let ps = p.string("platform");
    let platform =
        Platform::parse(&ps).map_err(|e| anyhow!("unable to parse platform {ps}: {e:#}"))?;
    let img = c.run(async {
        let r = s
            .images()
            .get(s.req(GetImageRequest {
                name: reference.to_string(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().image.unwrap_or_default())
    })?;
    let t = img.target.unwrap_or_default();
    let top = Desc::from_api(&t);
    let matcher = Matcher::only(&platform);
    let unpacked = (|| -> Result<()> {
        let (m, _) = image::manifest_desc(c, &top, &matcher)?;
        let manifest = Descriptor::new(m.media_type, m.digest.parse()?, m.size.max(0) as u64);
        c.run(pull_client::unpack(s, &manifest, snapshotter))?;
        Ok(())
    })();
    unpacked.map_err(|e| anyhow!("error unpacking image: {e:#}"))?;
    let diffs = image::diff_ids(c, &top, &matcher)?;
    let chain = chain_id(&diffs)
        .ok_or_else(|| anyhow!("image has no layers"))?
        .to_string();
    out(&format!("{chain}\n"));
    let rw = p.bool("rw");
    let mounts = c.run(async {
        let made = if rw {
            s.snapshots()
                .prepare(s.req(snapshots_api::PrepareSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    key: target.to_string(),
                    parent: chain.clone(),
                    labels: HashMap::new(),
                }))
                .await
                .map(|r| r.into_inner().mounts)
        } else {
            s.snapshots()
                .view(s.req(snapshots_api::ViewSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    key: target.to_string(),
                    parent: chain.clone(),
                    labels: HashMap::new(),
                }))
                .await
                .map(|r| r.into_inner().mounts)
        };
        match made {
            Ok(m) => Ok(m),
            Err(e) if e.code() == tonic::Code::AlreadyExists => {
                let r = s
                    .snapshots()
                    .mounts(s.req(snapshots_api::MountsRequest {
                        snapshotter: snapshotter.to_string(),
                        key: target.to_string(),
                    }))
                    .await
                    .map_err(grpc)?;
                Ok(r.into_inner().mounts)
            }
            Err(e) => Err(grpc(e)),
        }
    })?;
    let mounts: Vec<ocibox::linux::mount::Mount> = mounts
        .into_iter()
        .map(|m| ocibox::linux::mount::Mount {
            fs_type: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect();
    if let Err(e) = ocibox::linux::mount::mount_all(Path::new(target), &mounts) {
        let removed = c.run(async {
            s.snapshots()
                .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    key: target.to_string(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        if let Err(re) = removed {
            if kind_of(&re) != ErrorKind::NotFound {
                eprintln!("Error cleaning up snapshot after mount error: {re:#}");
            }
        }
        return Err(e);
    }
    out(&format!("{target}\n"));
    Ok(())
}

fn unmount(p: &Parsed) -> Result<()> {
    let target = p.first().to_string();
    if target.is_empty() {
        bail!("please provide a target path to unmount from");
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    ocibox::linux::mount::unmount_all(Path::new(&target));
    if p.bool("rm") {
        let mut snapshotter = p.string("snapshotter");
        if snapshotter.is_empty() {
            snapshotter = pull_client::DEFAULT_SNAPSHOTTER.to_string();
        }
        let s = Session::new(ch, &c.namespace);
        let deleted = c.run(pull_client::delete_lease(&s, &target));
        if let Err(e) = deleted {
            if kind_of(&e) != ErrorKind::NotFound {
                return Err(anyhow!("error deleting lease: {e:#}"));
            }
        }
        let removed = c.run(async {
            s.snapshots()
                .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                    snapshotter: snapshotter.clone(),
                    key: target.clone(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        if let Err(e) = removed {
            if kind_of(&e) != ErrorKind::NotFound {
                return Err(anyhow!("error removing snapshot: {e:#}"));
            }
        }
    }
    out(&format!("{target}\n"));
    Ok(())
}
