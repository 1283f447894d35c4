//! The whole pull, what `ctr image pull` does in one call, with the unpack streamed and
//! parallel:
//!
//! 1. A lease is created first (`containerd.io/gc.expire` a day ahead, as containerd's
//!    client leases), and everything the pull writes is added to it: garbage collection
//!    never takes a half-done pull. It is deleted at the end, after the image record, which
//!    holds everything from then on (also on failure: what was done is then collectable,
//!    except ingests, which stay resumable).
//! 2. Resolve, walk indexes and manifests, fetch the configs (see [`crate::pull::fetch`]);
//!    the configs' diffIDs give each layer its chain ID.
//! 3. Every layer whose snapshot (named by its chain ID) does not exist yet is downloaded
//!    on up to `max_concurrent_downloads` threads, and *each is unpacked as it arrives*: the
//!    registry's body goes through the ingest (resumable, see [`crate::pull::tee`]) straight
//!    into decompress → digest (blob and diffID) → untar into the layer's own directory
//!    ([`crate::unpack::unpack_layer`]), so layers unpack in parallel, not one after the
//!    other as containerd 1.6 does. A layer already in the store is unpacked from the store
//!    (bounded by `unpack_threads`). A diffID or digest mismatch refuses the layer: its
//!    directory is removed, its ingest dropped, nothing of it committed.
//! 4. The snapshots are committed in chain order under their chain IDs (the parent is the
//!    previous chain ID), with the `containerd.io/snapshot.ref` label of containerd's
//!    unpacker (optional: 1.6's ctr sets none, see [`PullOptions::snapshot_ref_label`]); the layer
//!    blobs get `containerd.io/uncompressed` = diffID, the config
//!    `containerd.io/gc.ref.snapshot.<snapshotter>` = the top chain ID, as containerd's
//!    unpack sets them.
//! 5. The image record is written last: a pull killed before it is invisible as an image
//!    (its committed snapshots are whole; the next pull finds them and its blobs and
//!    finishes, resuming a broken download with `Range`; or collection takes them once the
//!    lease expires). Unpack directories a killed pull left are removed by the next pull.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::content::{read_blob, Digest, Store};
use crate::errdefs::{kind_of, ErrorKind};
use crate::image::chain_id::chain_ids;
use crate::image::manifest::{
    diff_ids, parse_config, parse_manifest, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE,
};
use crate::image::{Descriptor, Reference};
use crate::metadata::db::Database;
use crate::metadata::encoding::Labels;
use crate::metadata::leases::{self, Resource};
use crate::metadata::namespaced_content::NamespacedContent;
use crate::metadata::temp_lease::with_temp_lease;
use crate::pull::fetch::{event, record_image, ref_key, Ctx, FetchOptions, Walked};
use crate::pull::gc_labels::distribution_source;
use crate::pull::progress::{ProgressEvent, ProgressFn, ProgressStatus};
use crate::pull::tee::TeeToIngest;
use crate::registry::download_limit::DownloadLimit;
use crate::registry::{RegistryClient, Repository};
use crate::snapshot::{Kind, Snapshotter};
use crate::unpack::{unpack_layer, Compression, Limits, UnpackOptions};

/// The label containerd's unpacker puts on the snapshots it makes (the chain ID).
pub const SNAPSHOT_REF_LABEL: &str = "containerd.io/snapshot.ref";
/// The label on a layer blob naming its diffID, set once an unpack verified it.
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";
/// The content label naming an image's top snapshot (`.<snapshotter>` follows).
pub const GC_REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot";

/// How long a pull's lease outlives a killed pull (containerd's client default).
pub const DEFAULT_LEASE_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// What to pull and how.
#[derive(Clone)]
pub struct PullOptions {
    /// Platforms, manifest limit, download bound and the image record's name and labels
    /// (the name defaults to the reference as resolved).
    pub fetch: FetchOptions,
    /// The snapshotter's name in labels and lease resources (`overlayfs`, `native`); it must
    /// be the name of the snapshotter passed to [`pull`].
    pub snapshotter: String,
    /// Concurrent unpacks of layers that are already in the content store (CPU-bound).
    pub unpack_threads: usize,
    /// Limits of each layer's tar stream.
    pub limits: Limits,
    /// The expiry of the pull's lease.
    pub lease_expiry: Duration,
    /// Label committed snapshots `containerd.io/snapshot.ref` = chain ID. containerd's
    /// unpacker (`client.Pull` with unpack: CRI, nerdctl, Docker, 1.7's transfer service)
    /// sets it; 1.6's `ctr image pull` unpacks through `image.Unpack`, which sets no label
    /// (tests/image_pull.rs shows both). Decision: on by default (what most of containerd's
    /// pulls make, and what remote snapshotters read); the ctl turns it off to be 1.6's ctr.
    pub snapshot_ref_label: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            fetch: FetchOptions::default(),
            snapshotter: "overlayfs".into(),
            unpack_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            limits: Limits::default(),
            lease_expiry: DEFAULT_LEASE_EXPIRY,
            snapshot_ref_label: true,
        }
    }
}

/// One platform's image as pulled.
#[derive(Clone, Debug)]
pub struct PulledImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// The chain ID of every layer prefix: the last one names the image's rootfs snapshot.
    pub chain_ids: Vec<Digest>,
}

impl PulledImage {
    /// The rootfs snapshot's name (None for an image without layers).
    pub fn chain_id(&self) -> Option<Digest> {
        self.chain_ids.last().copied()
    }
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The image record's name.
    pub name: String,
    /// What the reference resolved to.
    pub target: Descriptor,
    /// One per platform pulled.
    pub images: Vec<PulledImage>,
}

/// The stores a pull writes.
pub struct PullTarget<'a> {
    pub db: &'a Database,
    pub store: &'a Store,
    pub ns: &'a str,
    pub snapshotter: &'a Snapshotter,
}

/// Pull `reference` (it must name its registry, as [`Reference::parse_docker_ref`] gives)
/// into `target`; see the module doc.
pub fn pull(
    client: &RegistryClient,
    target: &PullTarget,
    reference: &Reference,
    opts: &PullOptions,
    progress: ProgressFn,
) -> Result<Pulled> {
    if reference.domain().is_empty() {
        bail!("reference {reference} names no registry");
    }
    remove_stale_unpacks(target.snapshotter);
    with_temp_lease(target.db, target.ns, "pull", opts.lease_expiry, |lease| {
        pull_under_lease(client, target, reference, opts, progress, lease)
    })
}

/// A layer's chain that needs work.
struct Job {
    layer: Descriptor,
    diff_id: Digest,
    chain: Digest,
    /// False when its snapshot exists and only the blob is missing.
    unpack: bool,
}

/// Unpack directories not committed (yet): removed when the pull ends, whichever way.
struct Unpacked(Mutex<HashMap<Digest, PathBuf>>);

impl Drop for Unpacked {
    fn drop(&mut self) {
        let dirs = std::mem::take(self.0.get_mut().unwrap_or_else(|e| e.into_inner()));
        for dir in dirs.into_values() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn pull_under_lease(
    client: &RegistryClient,
    target: &PullTarget,
    reference: &Reference,
    opts: &PullOptions,
    progress: ProgressFn,
    lease: &str,
) -> Result<Pulled> {
    let name = reference.to_string();
    let content = NamespacedContent {
        db: target.db,
        store: target.store,
        ns: target.ns.to_owned(),
        lease: Some(lease.to_owned()),
    };
    let repo = Repository::of(reference);
    let source = distribution_source(&repo.namespace, &repo.name);
    progress(&ProgressEvent {
        ref_: name.clone(),
        status: ProgressStatus::Resolving,
        offset: 0,
        total: 0,
        digest: None,
    });
    let resolved = client.resolve(reference)?;
    progress(&ProgressEvent {
        ref_: name.clone(),
        status: ProgressStatus::Resolved,
        offset: 0,
        total: 0,
        digest: Some(resolved.digest),
    });
    let ctx = Ctx {
        client,
        content: &content,
        repo: &repo,
        source: &source,
        progress,
    };
    let Walked { manifests, .. } = ctx.walk(&name, &resolved, &opts.fetch)?;
    if manifests.is_empty() {
        bail!(
            "{name}: no manifest in the index matches the platform ({:?})",
            opts.fetch.platforms
        );
    }

    // Configs first: their diffIDs name the snapshots and check every layer's unpack.
    let cancel = AtomicBool::new(false);
    let mut images = Vec::new();
    for m in &manifests {
        let data = read_blob(target.store, &m.digest, MAX_MANIFEST_SIZE)?;
        let manifest =
            parse_manifest(&data).with_context(|| format!("{} of {name}", ref_key(m)))?;
        let config = Descriptor::from_oci(manifest.config())
            .with_context(|| format!("the config of manifest {}", m.digest))?;
        ctx.download(&config, &cancel)?;
        let cfg = parse_config(&read_blob(target.store, &config.digest, MAX_CONFIG_SIZE)?)
            .with_context(|| format!("{} of {name}", ref_key(&config)))?;
        let diffs = diff_ids(&cfg)?;
        let layers = manifest
            .layers()
            .iter()
            .map(Descriptor::from_oci)
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("a layer of manifest {}", m.digest))?;
        if layers.len() != diffs.len() {
            bail!(
                "mismatched image rootfs and manifest layers: {} diff ids, {} layers in {}",
                diffs.len(),
                layers.len(),
                m.digest
            );
        }
        images.push(PulledImage {
            manifest: m.clone(),
            config,
            layers,
            chain_ids: chain_ids(&diffs),
            diff_ids: diffs,
        });
    }

    // What each chain needs.
    let mut jobs = Vec::new();
    let mut planned = HashSet::new();
    for img in &images {
        for (i, layer) in img.layers.iter().enumerate() {
            let chain = img.chain_ids[i];
            if !planned.insert(chain) {
                continue;
            }
            let exists = snapshot_exists(target.snapshotter, &chain);
            if exists && content.info(&layer.digest).is_ok() {
                event(progress, layer, ProgressStatus::Exists, layer.size);
                continue;
            }
            jobs.push(Job {
                layer: layer.clone(),
                diff_id: img.diff_ids[i],
                chain,
                unpack: !exists,
            });
        }
    }

    let unpacked = Unpacked(Mutex::new(HashMap::new()));
    run_jobs(&ctx, target, opts, &jobs, &cancel, &unpacked)?;

    // Commit in chain order.
    let sn = &opts.snapshotter;
    for img in &images {
        let mut parent = String::new();
        for (i, layer) in img.layers.iter().enumerate() {
            let chain = img.chain_ids[i].to_string();
            let dir = unpacked
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&img.chain_ids[i]);
            if let Some(dir) = dir {
                if snapshot_exists(target.snapshotter, &img.chain_ids[i]) {
                    // Another pull committed it meanwhile.
                    let _ = std::fs::remove_dir_all(&dir);
                } else {
                    let labels = match opts.snapshot_ref_label {
                        true => BTreeMap::from([(SNAPSHOT_REF_LABEL.to_owned(), chain.clone())]),
                        false => BTreeMap::new(),
                    };
                    commit_layer(target, sn, lease, &chain, &parent, &dir, labels)?;
                    ctx.add_labels(
                        layer,
                        &Labels::from([(
                            UNCOMPRESSED_LABEL.to_owned(),
                            img.diff_ids[i].to_string(),
                        )]),
                    )?;
                    event(progress, layer, ProgressStatus::Unpacked, layer.size);
                }
            } else if !snapshot_exists(target.snapshotter, &img.chain_ids[i]) {
                bail!(
                    "snapshot {chain} of layer {} went away during the pull",
                    layer.digest
                );
            }
            parent = chain;
        }
        if let Some(top) = img.chain_id() {
            ctx.add_labels(
                &img.config,
                &Labels::from([(format!("{GC_REF_SNAPSHOT}.{sn}"), top.to_string())]),
            )?;
        }
    }

    // Last: the image record (containerd's `createNewImage`).
    let image_name = opts
        .fetch
        .image_name
        .clone()
        .unwrap_or_else(|| name.clone());
    record_image(&content, &image_name, &resolved, &opts.fetch.image_labels)?;
    Ok(Pulled {
        name: image_name,
        target: resolved,
        images,
    })
}

fn snapshot_exists(sn: &Snapshotter, chain: &Digest) -> bool {
    sn.stat(&chain.to_string())
        .is_ok_and(|i| i.kind == Kind::Committed)
}

/// Commit one unpacked layer as the snapshot `chain` on `parent`, held by the lease from
/// before its record exists.
fn commit_layer(
    target: &PullTarget,
    sn: &str,
    lease: &str,
    chain: &str,
    parent: &str,
    dir: &std::path::Path,
    labels: BTreeMap<String, String>,
) -> Result<()> {
    target.db.update(|tx| {
        leases::add_resource(
            tx,
            target.ns,
            lease,
            Resource {
                id: chain.to_owned(),
                kind: format!("snapshots/{sn}"),
            },
        )
    })?;
    match target.snapshotter.commit_dir(chain, parent, dir, labels) {
        Ok(()) => Ok(()),
        Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_dir_all(dir);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Run every job on its own thread (downloads bounded by the fetch's limit, unpacks from
/// the store by `unpack_threads`); the first failure cancels the others and is returned.
fn run_jobs(
    ctx: &Ctx,
    target: &PullTarget,
    opts: &PullOptions,
    jobs: &[Job],
    cancel: &AtomicBool,
    unpacked: &Unpacked,
) -> Result<()> {
    let unpack_slots = DownloadLimit::new(opts.unpack_threads.max(1));
    let first_err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for job in jobs {
            let (unpack_slots, first_err) = (&unpack_slots, &first_err);
            s.spawn(move || {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let r = if job.unpack {
                    unpack_job(ctx, target, opts, job, cancel, unpack_slots).map(|dir| {
                        unpacked
                            .0
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(job.chain, dir);
                    })
                } else {
                    let _permit = opts.fetch.downloads.acquire();
                    ctx.download(&job.layer, cancel)
                };
                if let Err(e) = r {
                    first_err
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                    cancel.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One layer into its own unpack directory: streamed from the registry through its ingest,
/// or read from the store when the blob is there. Returns the directory.
fn unpack_job(
    ctx: &Ctx,
    target: &PullTarget,
    opts: &PullOptions,
    job: &Job,
    cancel: &AtomicBool,
    unpack_slots: &DownloadLimit,
) -> Result<PathBuf> {
    let d = &job.layer;
    let key = ref_key(d);
    // The blob's digest is the content store's to check, once: the writer the download is
    // tee'd into hashes it and its commit refuses a mismatch (the unpack is then removed),
    // and a blob already in the store was checked when it was committed.
    let uopts = UnpackOptions {
        compression: Compression::from_media_type(&d.media_type)?,
        expected_diff_id: Some(job.diff_id),
        expected_digest: None,
        digest_blob: false,
        limits: opts.limits,
    };
    let dest = target.snapshotter.unpack_dir(&job.chain.encoded()[..12])?;
    let permit = opts.fetch.downloads.acquire();
    if cancel.load(Ordering::Relaxed) {
        bail!("{key}: cancelled after another layer of the pull failed");
    }
    let Some(mut w) = ctx.open(d)? else {
        // In the store already (`exists` was reported): unpack from there.
        drop(permit);
        let _slot = unpack_slots.acquire();
        event(ctx.progress, d, ProgressStatus::Unpacking, 0);
        let blob = ctx.content.reader(&d.digest)?.stream_from(0)?;
        unpack_layer(blob, &dest, &uopts).with_context(|| format!("unpack {key}"))?;
        return Ok(dest);
    };
    let mut offset = w.status().offset;
    if offset > d.size {
        w.truncate(0)?;
        offset = 0;
    }
    event(ctx.progress, d, ProgressStatus::Downloading, offset);
    let prefix = match offset {
        0 => None,
        n => Some(w.written_data()?.take(n)),
    };
    let body = match offset < d.size {
        true => Some(ctx.client.fetch_blob_at(ctx.repo, d, offset)?),
        false => None,
    };
    event(ctx.progress, d, ProgressStatus::Unpacking, offset);
    let mut tee = TeeToIngest::new(prefix, body, w, d, cancel, ctx.progress);
    let result = unpack_layer(&mut tee, &dest, &uopts);
    let TeeToIngest {
        writer,
        source_failed,
        ..
    } = tee;
    match result {
        Ok(_) => {
            if let Err(e) = ctx.commit(writer, d) {
                let _ = std::fs::remove_dir_all(&dest);
                return Err(e);
            }
            Ok(dest)
        }
        Err(e) if source_failed => {
            // Good as far as it goes: the next pull resumes it.
            let _ = writer.close();
            Err(e.context(format!("failed to copy {key}")))
        }
        Err(e) => {
            // The content is wrong (digest, diffID, gzip, tar): start it over next time.
            drop(writer);
            let _ = ctx.content.abort(&key);
            Err(e.context(format!("unpack {key}")))
        }
    }
}

/// Remove what killed pulls left under the snapshotter's `unpack/` (their names carry the
/// pid of the pull that made them; a live pull's are kept).
fn remove_stale_unpacks(sn: &Snapshotter) {
    let base = sn.root().join("unpack");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name
            .trim_start_matches('.')
            .split('-')
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = pid as u32 == me
            || !matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            );
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
