//! Fetch an image into the content store: what `ctr content fetch` does, and the first half
//! of `ctr image pull` (containerd's `client.fetch` with its handlers).
//!
//! 1. Resolve the reference to the descriptor of its index or manifest.
//! 2. Walk indexes and manifests (small, one after the other, from the calling thread): each
//!    is fetched into the store (or found there), parsed with limits, and labelled with its
//!    children (`containerd.io/gc.ref.content.*`, as containerd's `SetChildrenMappedLabels`
//!    labels *all* children of an index, also the platforms not fetched). An index's
//!    manifests are chosen by the platform matcher (linux/amd64 by default, `--platform`,
//!    or all), at most `manifest_limit` of them.
//! 3. Download the configs and layers on up to `max_concurrent_downloads` threads, each
//!    blob streamed from the registry straight into its ingest (`layer-sha256:…`, the ref
//!    key containerd uses, so a containerd ingest is resumed too and the other way round).
//!    An ingest left by an interrupted fetch (a kill -9) is resumed at its offset with
//!    `Range`; every blob is verified (size and digest over the whole ingest) when it is
//!    committed. A blob whose bytes do not match is refused and its ingest aborted, so the
//!    next fetch starts it over; nothing of it is committed.
//! 4. With `image_name`, record the image (name → target) as containerd's pull does
//!    (create, or update an existing one).
//!
//! Run it under a lease (`NamespacedContent::lease`) when the caller wants the blobs kept
//! until the image record or the snapshots hold them: garbage collection may otherwise take
//! blobs of a half-done fetch (the daemon's pull creates that lease).
//!
//! Foreign (non-distributable) layers are not fetched, as containerd 1.6 skips them
//! unless told otherwise (`remotes.SkipNonDistributableBlobs`).

use crate::content::{read_blob, Digest, Writer};
use crate::errdefs::{kind_of, ErrorKind};
use crate::image::manifest::{
    parse_manifest_or_index, select_manifests, ManifestOrIndex, MAX_INDEX_DEPTH, MAX_MANIFEST_SIZE,
};
use crate::image::media_types::{self, Kind};
use crate::image::{Descriptor, Matcher, Reference};
use crate::metadata::encoding::Labels;
use crate::metadata::images::{self, Image, Target};
use crate::metadata::namespaced_content::NamespacedContent;
use crate::pull::gc_labels::{children_labels, distribution_source};
use crate::pull::progress::{ProgressEvent, ProgressFn, ProgressStatus};
use crate::registry::download_limit::DownloadLimit;
use crate::registry::{RegistryClient, Repository};
use anyhow::{bail, Context, Result};
use std::collections::{HashSet, VecDeque};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// ctr's `--max-concurrent-downloads` default.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

/// How long a fetch waits for another writer of the same blob to finish.
pub const LOCKED_INGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The read size of a blob download (and the granularity of its progress events).
const CHUNK: usize = 256 << 10;

/// What to fetch and how.
#[derive(Clone)]
pub struct FetchOptions {
    /// Which manifests of an index are wanted ([`Matcher::default_for_host`], linux/amd64
    /// here, unless told otherwise; [`Matcher::All`] for `--all-platforms`).
    pub platforms: Matcher,
    /// At most this many manifests per index, best first: a pull takes 1 (containerd's
    /// `LimitManifests(…, 1)`); `ctr content fetch` and `--all-platforms` take all (None).
    pub manifest_limit: Option<usize>,
    /// The bound on parallel blob downloads; share one between fetches to bound them
    /// together. A limit of 0 downloads every blob at once.
    pub downloads: DownloadLimit,
    /// Record the image under this name (usually the reference as given) when set.
    pub image_name: Option<String>,
    /// Labels of the image record.
    pub image_labels: Labels,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            platforms: Matcher::default_for_host(),
            manifest_limit: Some(1),
            downloads: DownloadLimit::new(DEFAULT_CONCURRENT_DOWNLOADS),
            image_name: None,
            image_labels: Labels::new(),
        }
    }
}

impl FetchOptions {
    /// Every platform of an index (`--all-platforms`).
    pub fn all_platforms() -> FetchOptions {
        FetchOptions {
            platforms: Matcher::All,
            manifest_limit: None,
            ..FetchOptions::default()
        }
    }
}

/// What a fetch fetched.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The reference as resolved.
    pub name: String,
    /// What it resolved to (the image's target).
    pub target: Descriptor,
    /// The image manifests chosen (one per platform fetched).
    pub manifests: Vec<Descriptor>,
    /// Every blob the image consists of as fetched: indexes and manifests in walk order,
    /// then configs and layers.
    pub blobs: Vec<Descriptor>,
}

/// containerd's `remotes.MakeRefKey`: the ingest ref of a blob.
pub fn ref_key(d: &Descriptor) -> String {
    let prefix = match media_types::kind(&d.media_type) {
        Kind::Index => "index",
        Kind::Manifest => "manifest",
        Kind::Config => "config",
        Kind::Layer { .. } => "layer",
        _ => "unknown",
    };
    format!("{prefix}-{}", d.digest)
}

pub(crate) fn event(progress: ProgressFn, d: &Descriptor, status: ProgressStatus, offset: u64) {
    progress(&ProgressEvent {
        ref_: ref_key(d),
        status,
        offset,
        total: d.size,
        digest: Some(d.digest),
    });
}

/// Fetch `reference` into `content` (see the module doc). The reference must name its
/// registry (`docker.io/library/busybox:latest`, as [`Reference::parse_docker_ref`] gives).
pub fn fetch(
    client: &RegistryClient,
    content: &NamespacedContent,
    reference: &Reference,
    opts: &FetchOptions,
    progress: ProgressFn,
) -> Result<Fetched> {
    if reference.domain().is_empty() {
        bail!("reference {reference} names no registry");
    }
    let name = reference.to_string();
    let repo = Repository::of(reference);
    let source = distribution_source(&repo.namespace, &repo.name);
    progress(&ProgressEvent {
        ref_: name.clone(),
        status: ProgressStatus::Resolving,
        offset: 0,
        total: 0,
        digest: None,
    });
    let target = client.resolve(reference)?;
    progress(&ProgressEvent {
        ref_: name.clone(),
        status: ProgressStatus::Resolved,
        offset: 0,
        total: 0,
        digest: Some(target.digest),
    });

    let ctx = Ctx {
        client,
        content,
        repo: &repo,
        source: &source,
        progress,
    };
    let Walked {
        mut walked,
        manifests,
        leaves,
    } = ctx.walk(&name, &target, opts)?;

    ctx.download_all(&leaves, &opts.downloads)?;

    if let Some(image_name) = &opts.image_name {
        record_image(content, image_name, &target, &opts.image_labels)?;
    }
    walked.extend(leaves);
    Ok(Fetched {
        name,
        target,
        manifests,
        blobs: walked,
    })
}

/// containerd's `createNewImage`: create, or replace target and labels of an existing one.
pub(crate) fn record_image(
    content: &NamespacedContent,
    name: &str,
    target: &Descriptor,
    labels: &Labels,
) -> Result<()> {
    let image = Image {
        name: name.to_owned(),
        target: Target {
            media_type: target.media_type.clone(),
            digest: target.digest,
            size: target.size,
            annotations: target.annotations.clone(),
        },
        labels: labels.clone(),
        created_at: 0,
        updated_at: 0,
    };
    content
        .db
        .update(|tx| {
            if images::get(tx, &content.ns, name).is_ok() {
                images::update(tx, &content.ns, image, &[]).map(|_| ())
            } else {
                images::create(tx, &content.ns, image).map(|_| ())
            }
        })
        .with_context(|| format!("record image {name}"))
}

/// What the walk of indexes and manifests found.
pub(crate) struct Walked {
    /// Indexes and manifests in walk order (each in the store now, labelled).
    pub walked: Vec<Descriptor>,
    /// The image manifests chosen.
    pub manifests: Vec<Descriptor>,
    /// Their configs and (distributable) layers, each once, in document order.
    pub leaves: Vec<Descriptor>,
}

impl Ctx<'_> {
    /// Step 2 of the module doc: fetch (or find) every index and chosen manifest, label them
    /// with their children, and list the configs and layers to fetch.
    pub(crate) fn walk(
        &self,
        name: &str,
        target: &Descriptor,
        opts: &FetchOptions,
    ) -> Result<Walked> {
        let mut queue: VecDeque<(Descriptor, usize)> = VecDeque::from([(target.clone(), 0)]);
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut walked = Vec::new();
        let mut manifests = Vec::new();
        let mut leaves: Vec<Descriptor> = Vec::new();
        while let Some((d, depth)) = queue.pop_front() {
            if !seen.insert(d.digest) {
                continue;
            }
            if depth > MAX_INDEX_DEPTH {
                bail!(
                    "{name}: indexes nested deeper than {MAX_INDEX_DEPTH} levels at {}",
                    d.digest
                );
            }
            let data = self.manifest_blob(&d)?;
            walked.push(d.clone());
            match parse_manifest_or_index(&d.media_type, &data)
                .with_context(|| format!("{} of {name}", ref_key(&d)))?
            {
                ManifestOrIndex::Index(ix) => {
                    let all: Vec<Descriptor> = ix
                        .manifests()
                        .iter()
                        .filter_map(|c| Descriptor::from_oci(c).ok())
                        .collect();
                    self.add_labels(&d, &children_labels(&all))?;
                    for c in select_manifests(&ix, &opts.platforms, opts.manifest_limit) {
                        let c = Descriptor::from_oci(&c)
                            .with_context(|| format!("a manifest of index {}", d.digest))?;
                        queue.push_back((c, depth + 1));
                    }
                }
                ManifestOrIndex::Manifest(m) => {
                    let mut children = vec![Descriptor::from_oci(m.config())
                        .with_context(|| format!("the config of manifest {}", d.digest))?];
                    for l in m.layers() {
                        children.push(
                            Descriptor::from_oci(l)
                                .with_context(|| format!("a layer of manifest {}", d.digest))?,
                        );
                    }
                    self.add_labels(&d, &children_labels(&children))?;
                    for c in children {
                        let foreign = matches!(
                            media_types::kind(&c.media_type),
                            Kind::Layer {
                                non_distributable: true,
                                ..
                            }
                        );
                        if foreign || !seen.insert(c.digest) {
                            continue;
                        }
                        event(self.progress, &c, ProgressStatus::Waiting, 0);
                        leaves.push(c);
                    }
                    manifests.push(d);
                }
            }
        }
        if manifests.is_empty() {
            bail!(
                "{name}: no manifest in the index matches the platform ({:?})",
                opts.platforms
            );
        }
        Ok(Walked {
            walked,
            manifests,
            leaves,
        })
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) client: &'a RegistryClient,
    pub(crate) content: &'a NamespacedContent<'a>,
    pub(crate) repo: &'a Repository,
    pub(crate) source: &'a (String, String),
    pub(crate) progress: ProgressFn<'a>,
}

impl Ctx<'_> {
    pub(crate) fn source_labels(&self) -> Labels {
        Labels::from([self.source.clone()])
    }

    /// Merge `labels` into a blob's labels (containerd's `Update` with `labels.<key>` paths).
    pub(crate) fn add_labels(&self, d: &Descriptor, labels: &Labels) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        self.content
            .update(&d.digest, labels, &paths)
            .with_context(|| format!("set labels of {}", d.digest))?;
        Ok(())
    }

    /// A writer for `d`, or None when the namespace has it (then labelled with its source).
    /// While another writer (another fetch of the same blob, here or in another process)
    /// holds the ingest, wait for it as containerd's `content.OpenWriter` does: it either
    /// commits (then the blob exists) or goes away (then this one resumes its ingest).
    /// containerd waits as long as its context lives; the bound here is
    /// [`LOCKED_INGEST_WAIT`].
    pub(crate) fn open(&self, d: &Descriptor) -> Result<Option<Writer>> {
        let start = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(16);
        let opened = loop {
            match self.content.writer(&ref_key(d), d.size, Some(d.digest)) {
                Err(e)
                    if kind_of(&e) == ErrorKind::Unavailable
                        && start.elapsed() < LOCKED_INGEST_WAIT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                other => break other,
            }
        };
        match opened {
            Ok(w) => Ok(Some(w)),
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
                self.add_labels(d, &self.source_labels())?;
                event(self.progress, d, ProgressStatus::Exists, d.size);
                Ok(None)
            }
            Err(e) => Err(e.context(format!("failed to open writer for {}", ref_key(d)))),
        }
    }

    /// Commit a written blob (verifying it); a blob that does not verify is refused and its
    /// ingest aborted.
    pub(crate) fn commit(&self, w: Writer, d: &Descriptor) -> Result<()> {
        let key = ref_key(d);
        match self
            .content
            .commit(w, d.size, Some(d.digest), self.source_labels())
        {
            Ok(_) => {
                event(self.progress, d, ProgressStatus::Done, d.size);
                Ok(())
            }
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {
                self.add_labels(d, &self.source_labels())?;
                event(self.progress, d, ProgressStatus::Done, d.size);
                Ok(())
            }
            Err(e) => {
                if kind_of(&e) == ErrorKind::FailedPrecondition {
                    // Wrong bytes: start over next time rather than resume into them.
                    let _ = self.content.abort(&key);
                }
                Err(e.context(format!("failed commit on ref \"{key}\"")))
            }
        }
    }

    /// A manifest or index: from the store, or fetched (verified) and stored.
    fn manifest_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let Some(mut w) = self.open(d)? else {
            return read_blob(self.content.store, &d.digest, MAX_MANIFEST_SIZE);
        };
        event(self.progress, d, ProgressStatus::Downloading, 0);
        let data = match self.client.fetch_manifest(self.repo, d) {
            Ok(data) => data,
            Err(e) => {
                // A manifest is fetched whole: an ingest of it has nothing to resume, and
                // one refused (too big, wrong bytes) must leave nothing behind.
                drop(w);
                let _ = self.content.abort(&ref_key(d));
                return Err(e);
            }
        };
        if w.status().offset > 0 {
            w.truncate(0)?;
        }
        w.write_all(&data)
            .with_context(|| format!("write {}", ref_key(d)))?;
        self.commit(w, d)?;
        Ok(data)
    }

    /// One config or layer, streamed into its ingest from where the ingest ends.
    pub(crate) fn download(&self, d: &Descriptor, cancel: &AtomicBool) -> Result<()> {
        let Some(mut w) = self.open(d)? else {
            return Ok(());
        };
        let mut offset = w.status().offset;
        if offset > d.size {
            w.truncate(0)?;
            offset = 0;
        }
        event(self.progress, d, ProgressStatus::Downloading, offset);
        if offset < d.size {
            let mut body = self.client.fetch_blob_at(self.repo, d, offset)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                if cancel.load(Ordering::Relaxed) {
                    bail!("{}: cancelled after another download failed", ref_key(d));
                }
                let n = body
                    .read(&mut buf)
                    .with_context(|| format!("failed to copy {}", ref_key(d)))?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n])
                    .with_context(|| format!("write {}", ref_key(d)))?;
                offset += n as u64;
                event(self.progress, d, ProgressStatus::Downloading, offset);
            }
        }
        self.commit(w, d)
    }

    /// Download `blobs` on threads bounded by `limit`; the first failure stops the others
    /// (at their next chunk) and is what is returned.
    fn download_all(&self, blobs: &[Descriptor], limit: &DownloadLimit) -> Result<()> {
        let threads = match limit.limit() {
            0 => blobs.len(),
            n => n.min(blobs.len()),
        };
        let queue = Mutex::new(blobs.iter().collect::<VecDeque<_>>());
        let cancel = AtomicBool::new(false);
        let first_err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    if cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(d) = next else { return };
                    let _permit = limit.acquire();
                    if let Err(e) = self.download(d, &cancel) {
                        // The error first, then the flag: a download stopped by the flag
                        // must not be what is reported.
                        first_err
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                });
            }
        });
        match first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
