//! containerd.services.diff.v1.Diff: Apply (unpack a layer blob from content onto the
//! mounts of a snapshot; how ctr 1.6's client-side pull and import unpack) and Diff (a
//! layer tar of the changes from lower mounts to upper mounts, into content).
//!
//! Apply, as containerd's applier: a single overlay mount with an `upperdir` is unpacked
//! straight into that directory (the layer's whiteouts become overlay whiteouts there), a
//! single writable bind of an empty directory (a first layer) straight into it; anything
//! else is mounted on a private temporary directory under `<root>/tmpmounts`, the layer
//! unpacked beside it and applied onto the mount with its whiteouts interpreted. Mounts are
//! always unmounted, also on error. The blob is verified against the descriptor's digest as
//! it streams; the answer is the uncompressed descriptor (the diffID), which the client
//! checks against the image config. One limit of the direct overlay path: a hardlink in the
//! layer to a file only a lower layer has fails (containerd copies such targets up).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tonic::{Request, Response, Status};

use crate::api::namespace;
use crate::api::services::diff::v1::diff_server::{Diff, DiffServer};
use crate::api::services::diff::v1::{ApplyRequest, ApplyResponse, DiffRequest, DiffResponse};
use crate::api::types::Descriptor;
use crate::daemon::context::Daemon;
use crate::daemon::services::convert::{descriptor_in, labels_in, mount_in};
use crate::daemon::services::layer_diff;
use crate::daemon::services::plumbing::{blocking, lease_of};
use crate::errdefs::{err, ErrorKind};
use crate::linux::mount::{mount_all, unmount_all, Mount};
use crate::metadata::namespaced_content::NamespacedContent;
use crate::unpack::{layer::unpack_into, Compression, UnpackOptions};

/// The media type of an uncompressed layer, as containerd's applier answers.
const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub struct DiffService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> DiffServer<DiffService> {
    DiffServer::new(DiffService { d: d.clone() })
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A directory with mounts stacked on it, unmounted and removed when dropped.
pub(crate) struct TempMount {
    pub path: PathBuf,
    mounted: bool,
}

impl TempMount {
    /// Mount `mounts` on a fresh directory under `<root>/tmpmounts`.
    pub fn new(root: &Path, mounts: &[Mount]) -> anyhow::Result<TempMount> {
        let base = root.join("tmpmounts");
        std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("m-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        let mut t = TempMount {
            path,
            mounted: false,
        };
        mount_all(&t.path, mounts)?;
        t.mounted = true;
        Ok(t)
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if self.mounted {
            unmount_all(&self.path);
        }
        // Only an empty directory goes: if an unmount failed, what is mounted stays.
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Where a layer can be unpacked without mounting, if anywhere.
fn direct_target(mounts: &[Mount]) -> Option<PathBuf> {
    let [m] = mounts else { return None };
    if m.fs_type == "overlay" {
        return m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from);
    }
    let bind = m.fs_type == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind");
    let ro = m.options.iter().any(|o| o == "ro");
    if bind && !ro {
        let src = PathBuf::from(&m.source);
        let empty = std::fs::read_dir(&src)
            .map(|mut rd| rd.next().is_none())
            .unwrap_or(false);
        if empty {
            return Some(src);
        }
    }
    None
}

fn apply(
    d: &Daemon,
    ns: &str,
    desc: Option<Descriptor>,
    mounts: Vec<Mount>,
) -> anyhow::Result<Descriptor> {
    let desc = desc.ok_or_else(|| ErrorKind::InvalidArgument.err("diff descriptor required"))?;
    let target = descriptor_in(&desc)?;
    let compression = Compression::from_media_type(&target.media_type).map_err(|_| {
        err(
            ErrorKind::NotImplemented,
            format!("unsupported diff media type: {}", target.media_type),
        )
    })?;
    let nc = NamespacedContent {
        db: &d.db,
        store: &d.content,
        ns: ns.to_owned(),
        lease: None,
    };
    let reader = nc.reader(&target.digest)?;
    let blob = reader
        .stream_from(0)
        .with_context(|| format!("read {}", target.digest))?;
    // A store blob: its name was checked when it was committed (containerd's applier does
    // not hash it again either); its size still is.
    let opts = UnpackOptions {
        compression,
        digest_blob: false,
        ..UnpackOptions::default()
    };
    let info = match direct_target(&mounts) {
        Some(dir) => unpack_into(blob, &dir, &opts)?,
        None => {
            let m = TempMount::new(&d.config.root, &mounts)?;
            let staging = m.path.with_extension("layer");
            std::fs::create_dir(&staging)
                .with_context(|| format!("create {}", staging.display()))?;
            let r = unpack_into(blob, &staging, &opts).and_then(|info| {
                crate::snapshot::native::apply_overlay_diff(&staging, &m.path)?;
                Ok(info)
            });
            let _ = std::fs::remove_dir_all(&staging);
            r?
        }
    };
    if target.size != 0 && info.size != target.size {
        return Err(err(
            ErrorKind::FailedPrecondition,
            format!(
                "unexpected layer size {}, expected {}",
                info.size, target.size
            ),
        ));
    }
    Ok(Descriptor {
        media_type: MEDIA_TYPE_LAYER.into(),
        digest: info.diff_id.to_string(),
        size: info.uncompressed_size as i64,
        annotations: Default::default(),
    })
}

#[tonic::async_trait]
impl Diff for DiffService {
    async fn apply(&self, req: Request<ApplyRequest>) -> Result<Response<ApplyResponse>, Status> {
        let ns = namespace::of(&req)?;
        let d = self.d.clone();
        let r = req.into_inner();
        let applied = blocking(move || {
            let mounts: Vec<Mount> = r.mounts.iter().map(mount_in).collect();
            apply(&d, &ns, r.diff, mounts)
        })
        .await?;
        Ok(Response::new(ApplyResponse {
            applied: Some(applied),
        }))
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let ns = namespace::of(&req)?;
        let lease = lease_of(&req);
        let d = self.d.clone();
        let r = req.into_inner();
        let desc = blocking(move || {
            let left: Vec<Mount> = r.left.iter().map(mount_in).map(read_only).collect();
            let right: Vec<Mount> = r.right.iter().map(mount_in).map(read_only).collect();
            let nc = NamespacedContent {
                db: &d.db,
                store: &d.content,
                ns: ns.clone(),
                lease,
            };
            layer_diff::diff_into_content(
                &d.config.root,
                &nc,
                &left,
                &right,
                &r.media_type,
                &r.r#ref,
                labels_in(&r.labels),
            )
        })
        .await?;
        Ok(Response::new(DiffResponse { diff: Some(desc) }))
    }
}

/// A mount made read-only (containerd's differ mounts both sides so). An overlay with an
/// upper directory becomes a read-only stack with the upper as its top lower, so the
/// writable overlay a container may have mounted is never mounted twice.
fn read_only(mut m: Mount) -> Mount {
    if m.fs_type == "overlay" {
        let upper = m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(str::to_owned);
        if let Some(upper) = upper {
            m.options
                .retain(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="));
            match m.options.iter_mut().find(|o| o.starts_with("lowerdir=")) {
                Some(l) => *l = format!("lowerdir={upper}:{}", &l["lowerdir=".len()..]),
                None => m.options.push(format!("lowerdir={upper}")),
            }
        }
    }
    m.options.retain(|o| o != "rw");
    if !m.options.iter().any(|o| o == "ro") {
        m.options.push("ro".into());
    }
    m
}
