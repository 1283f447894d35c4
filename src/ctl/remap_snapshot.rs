//! `--uidmap`/`--gidmap` without `--remap-labels`: containerd's `WithRemappedSnapshot`,
//! done by the client as ctr does it. The image's top snapshot is copied once per
//! (host uid, host gid) pair into a committed snapshot `<chainID>-<uid>-<gid>` whose files
//! are owned by the mapped ids (every entry's uid and gid increased by the host ids,
//! `lchown`, never through a symlink), and the container's snapshot is prepared on it.
//! A second container with the same mapping reuses it.
//!
//! The copy is made through a temporary mount of the `-remap` snapshot in a private
//! directory (containerd's `WithTempMount`), so the ctl must run on the daemon's host, as
//! ctr must.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::api::services::snapshots::v1 as snapshots_api;
use crate::api::types as api_types;
use crate::ctl::pull_client::{grpc, Session};
use crate::linux::mount;

/// Directory depth past which the walk stops: deeper trees are not images.
const MAX_DEPTH: usize = 4096;

/// The committed snapshot's name for a mapping.
pub fn remapped_name(parent: &str, uid: u32, gid: u32) -> String {
    format!("{parent}-{uid}-{gid}")
}

/// `incrementFS`: lchown every entry under `root` (itself included) to uid + `uid_inc`,
/// gid + `gid_inc` (wrapping as Go's uint32 sum does).
pub fn increment_ids(root: &Path, uid_inc: u32, gid_inc: u32) -> Result<()> {
    fn visit(p: &Path, depth: usize, u: u32, g: u32) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(anyhow!("{}: directory tree too deep", p.display()));
        }
        let md = std::fs::symlink_metadata(p).with_context(|| format!("lstat {}", p.display()))?;
        std::os::unix::fs::lchown(
            p,
            Some(md.uid().wrapping_add(u)),
            Some(md.gid().wrapping_add(g)),
        )
        .with_context(|| format!("lchown {}", p.display()))?;
        if md.is_dir() {
            for e in std::fs::read_dir(p).with_context(|| format!("read {}", p.display()))? {
                let e = e.with_context(|| format!("read {}", p.display()))?;
                visit(&e.path(), depth + 1, u, g)?;
            }
        }
        Ok(())
    }
    visit(root, 0, uid_inc, gid_inc)
}

/// Mount `mounts` on a fresh private directory, run `f` on it, unmount, remove the dir.
fn with_temp_mount<T>(
    mounts: &[api_types::Mount],
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let dir = std::env::temp_dir().join(format!(
        "ocibox-ctl-remap-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
    let list: Vec<mount::Mount> = mounts
        .iter()
        .map(|m| mount::Mount {
            fs_type: m.r#type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect();
    if let Err(e) = mount::mount_all(&dir, &list) {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    let r = f(&dir);
    let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&dir);
    r
}

/// Prepare the container snapshot `key` on the remapped copy of `parent` (made first when
/// missing).
pub async fn prepare_remapped(
    s: &Session,
    snapshotter: &str,
    key: &str,
    parent: &str,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let name = remapped_name(parent, uid, gid);
    let prepare = |parent: String| snapshots_api::PrepareSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: key.to_string(),
        parent,
        labels: HashMap::new(),
    };
    let stat = s
        .snapshots()
        .stat(s.req(snapshots_api::StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: name.clone(),
        }))
        .await;
    if stat.is_ok() {
        match s.snapshots().prepare(s.req(prepare(name.clone()))).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() != tonic::Code::NotFound => return Err(grpc(e)),
            Err(_) => {}
        }
    }
    let work = format!("{name}-remap");
    let mounts = s
        .snapshots()
        .prepare(s.req(snapshots_api::PrepareSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: work.clone(),
            parent: parent.to_string(),
            labels: HashMap::new(),
        }))
        .await
        .map_err(grpc)?
        .into_inner()
        .mounts;
    let shifted = tokio::task::spawn_blocking(move || {
        with_temp_mount(&mounts, |root| increment_ids(root, uid, gid))
    })
    .await
    .map_err(|e| anyhow!("remap: {e}"))?;
    if let Err(e) = shifted {
        let _ = s
            .snapshots()
            .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: work,
            }))
            .await;
        return Err(e);
    }
    s.snapshots()
        .commit(s.req(snapshots_api::CommitSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            name: name.clone(),
            key: work,
            labels: HashMap::new(),
        }))
        .await
        .map_err(grpc)?;
    s.snapshots()
        .prepare(s.req(prepare(name)))
        .await
        .map_err(grpc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_shift_without_following_symlinks() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let d = std::env::temp_dir().join(format!("ocibox-remap-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/f"), "x").unwrap();
        let outside = std::env::temp_dir().join(format!("ocibox-remap-out-{}", std::process::id()));
        std::fs::write(&outside, "y").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("etc/link")).unwrap();
        std::os::unix::fs::lchown(d.join("etc/f"), Some(5), Some(6)).unwrap();
        increment_ids(&d, 1000, 2000).unwrap();
        let md = std::fs::symlink_metadata(d.join("etc/f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1005, 2006));
        let l = std::fs::symlink_metadata(d.join("etc/link")).unwrap();
        assert_eq!(l.uid(), 1000);
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 0);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&outside);
    }
}
