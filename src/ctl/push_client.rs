//! `ctr image push` as ctr 1.6 pushes (`client.Push` → `remotes.PushContent` with the
//! docker pusher): the image's tree is read from the daemon's content store (Content.Read)
//! and walked from the target; configs and layers are uploaded in parallel (bounded by
//! `--max-concurrent-uploaded-layers`), each skipped when the registry has it; then the
//! manifests and indexes, children before parents, the top one under the reference's tag.
//!
//! The progress jobs are the ones ctr 1.6 shows: every descriptor walked except layers
//! (ctr's `SkipNonDistributableBlobs` wrapper returns before its job handler sees a
//! layer), and with `--allow-non-distributable-blobs` every one. Non-distributable
//! (foreign) layers are not pushed unless that flag is given.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::runtime::Handle;

use super::api_store::ContentStream;
use super::progress::StatusLine;
use super::pull_client::{read_content, Session, Statuses};
use crate::image::manifest::parse_manifest_or_index;
use crate::image::media_types::{self, Kind};
use crate::image::{Descriptor, Reference};
use crate::registry::client::MAX_MANIFEST_SIZE;
use crate::registry::push::PushOutcome;
use crate::registry::transport::BlobSource;
use crate::registry::{RegistryClient, Repository};

/// The OCI ref name annotation, which ctr's ref keys carry (`manifest-latest@sha256:…`).
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What `ctr image push` was asked.
#[derive(Clone)]
pub struct PushOptions {
    /// The remote reference (normalised, with its tag).
    pub reference: Reference,
    pub registry: RegistryClient,
    /// `--allow-non-distributable-blobs`.
    pub allow_non_distributable: bool,
    /// `--max-concurrent-uploaded-layers` (0: no bound).
    pub max_concurrent: usize,
}

/// `remotes.MakeRefKey`: the job name of a descriptor.
pub fn ref_key(d: &Descriptor) -> String {
    let key = match d.annotations.get(ANNOTATION_REF_NAME) {
        Some(name) => format!("{name}@{}", d.digest),
        None => d.digest.to_string(),
    };
    let prefix = match media_types::kind(&d.media_type) {
        Kind::Index => "index",
        Kind::Manifest => "manifest",
        Kind::Config => "config",
        Kind::Layer { .. } => "layer",
        _ => "unknown",
    };
    format!("{prefix}-{key}")
}

fn is_layer(d: &Descriptor) -> bool {
    matches!(media_types::kind(&d.media_type), Kind::Layer { .. })
}

fn is_foreign(d: &Descriptor) -> bool {
    matches!(
        media_types::kind(&d.media_type),
        Kind::Layer {
            non_distributable: true,
            ..
        }
    )
}

/// Update the line of job `key`, if it is one shown.
fn set(st: &Statuses, key: &str, status: &str, offset: u64, total: u64) {
    let Ok(mut v) = st.lock() else { return };
    if let Some(l) = v.iter_mut().find(|l| l.ref_ == key) {
        *l = StatusLine {
            ref_: key.to_string(),
            status: status.to_string(),
            offset,
            total,
        };
    }
}

/// A blob of the daemon's store as the registry client reads it, counting what it hands
/// out into the job's line.
struct StoreBlob {
    session: Session,
    handle: Handle,
    desc: Descriptor,
    key: String,
    statuses: Statuses,
}

struct Counted {
    inner: ContentStream,
    done: u64,
    key: String,
    total: u64,
    statuses: Statuses,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        set(
            &self.statuses,
            &self.key,
            "uploading",
            self.done.min(self.total),
            self.total,
        );
        Ok(n)
    }
}

impl BlobSource for StoreBlob {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Counted {
            inner: ContentStream::open(
                &self.session,
                &self.handle,
                &self.desc.digest.to_string(),
                0,
            ),
            done: 0,
            key: self.key.clone(),
            total: self.desc.size,
            statuses: self.statuses.clone(),
        }))
    }
}

/// A manifest or index read from the store, with its children.
struct Walked {
    desc: Descriptor,
    bytes: Vec<u8>,
}

/// Push `top` (an image's target, or `--manifest`) from the daemon's store to
/// `opts.reference`, the jobs' lines in `st`.
pub async fn push(s: &Session, top: &Descriptor, opts: &PushOptions, st: &Statuses) -> Result<()> {
    let tag = opts
        .reference
        .tag()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("pusher: digest reference not supported"))?;
    if opts.reference.digest().is_some() {
        bail!("pusher: digest reference not supported");
    }
    let repo = Repository::of(&opts.reference);

    // The walk: manifests and indexes read, blobs collected, jobs listed in walk order.
    let mut queue = VecDeque::from([top.clone()]);
    let mut manifests: Vec<Walked> = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = queue.pop_front() {
        if !seen.insert(d.digest) {
            continue;
        }
        if is_foreign(&d) && !opts.allow_non_distributable {
            continue;
        }
        if !is_layer(&d) || opts.allow_non_distributable {
            if let Ok(mut v) = st.lock() {
                v.push(StatusLine {
                    ref_: ref_key(&d),
                    status: "waiting".into(),
                    offset: 0,
                    total: d.size,
                });
            }
        }
        if !media_types::is_manifest_or_index(&d.media_type) {
            blobs.push(d);
            continue;
        }
        let bytes = read_content(s, &d.digest.to_string(), MAX_MANIFEST_SIZE).await?;
        let children: Vec<Descriptor> = parse_manifest_or_index(&d.media_type, &bytes)
            .with_context(|| format!("{} {}", d.media_type, d.digest))?
            .children()
            .map(Descriptor::from_oci)
            .collect::<Result<_>>()?;
        queue.extend(children);
        manifests.push(Walked { desc: d, bytes });
    }

    // Configs and layers, in parallel.
    let limit = if opts.max_concurrent == 0 {
        blobs.len().max(1)
    } else {
        opts.max_concurrent
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = Vec::new();
    for d in blobs {
        let (sem, st) = (sem.clone(), st.clone());
        let source = StoreBlob {
            session: s.clone(),
            handle: Handle::current(),
            key: ref_key(&d),
            desc: d.clone(),
            statuses: st.clone(),
        };
        let (client, repo) = (opts.registry.clone(), repo.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| anyhow!("{e}"))?;
            let key = source.key.clone();
            let size = d.size;
            tokio::task::spawn_blocking(move || client.push_blob(&repo, &d, &source))
                .await
                .map_err(|e| anyhow!("upload task: {e}"))?
                .map(|_: PushOutcome| set(&st, &key, "done", size, size))
        }));
    }
    let mut first_err = None;
    for t in tasks {
        let r = t
            .await
            .map_err(|e| anyhow!("upload task: {e}"))
            .and_then(|r| r);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }

    // Manifests and indexes, children first; the top one under the tag.
    for m in manifests.iter().rev() {
        let object = if m.desc.digest == top.digest {
            tag.clone()
        } else {
            m.desc.digest.to_string()
        };
        let (client, repo, mt, bytes) = (
            opts.registry.clone(),
            repo.clone(),
            m.desc.media_type.clone(),
            m.bytes.clone(),
        );
        tokio::task::spawn_blocking(move || client.push_manifest(&repo, &object, &mt, &bytes))
            .await
            .map_err(|e| anyhow!("upload task: {e}"))??;
        set(st, &ref_key(&m.desc), "done", m.desc.size, m.desc.size);
    }
    Ok(())
}
