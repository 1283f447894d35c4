//! `ctr image pull` against a containerd 1.6, client-side as ctr 1.6 pulls
//! (`cmd/ctr/commands/images/pull.go`: `content.Fetch` then `image.Unpack`):
//!
//! 1. a lease (`containerd.io/gc.expire` 24h ahead, as `client.WithLease`), carried by every
//!    call in the `containerd-lease` header and deleted at the end;
//! 2. resolve the reference and walk index → manifest(s) → config + layers with the
//!    registry client (src/registry), every blob not already in the daemon's store written
//!    through the `Content.Write` stream under its ref key (`layer-sha256:…`), committed
//!    with the expected digest and size and its labels (`containerd.io/distribution.source.*`,
//!    and on indexes and manifests the `containerd.io/gc.ref.content.*` children labels);
//! 3. `Images.Create`, or `Images.Update` of an image that exists;
//! 4. per platform: every layer not yet a snapshot is applied as containerd's
//!    `rootfs.ApplyLayer` does: `Snapshots.Prepare` of `extract-<unique> <chainID>` on the
//!    parent chain, `Diff.Apply` of the blob onto its mounts (its digest must be the
//!    layer's diff ID), `Snapshots.Commit` under the chain ID; then the layer blob gets
//!    `containerd.io/uncompressed` and the config `containerd.io/gc.ref.snapshot.<name>`.
//!
//! Progress goes to a callback as ctr's display lines ([`super::progress`]).

use std::collections::HashMap;
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use anyhow::{anyhow, bail, Context, Result};
use tonic::codegen::tokio_stream::Stream;
use tonic::metadata::MetadataValue;

use crate::api::channel::{origin, UnixChannel};
use crate::api::services::content::v1 as content_api;
use crate::api::services::content::v1::content_client::ContentClient;
use crate::api::services::diff::v1 as diff_api;
use crate::api::services::diff::v1::diff_client::DiffClient;
use crate::api::services::images::v1 as images_api;
use crate::api::services::images::v1::images_client::ImagesClient;
use crate::api::services::leases::v1 as leases_api;
use crate::api::services::leases::v1::leases_client::LeasesClient;
use crate::api::services::snapshots::v1 as snapshots_api;
use crate::api::services::snapshots::v1::snapshots_client::SnapshotsClient;
use crate::api::types as api_types;
use crate::content::Digest;
use crate::ctl::progress::StatusLine;
use crate::image::chain_id::chain_ids;
use crate::image::manifest::ManifestOrIndex;
use crate::image::manifest::{diff_ids, parse_config, parse_manifest_or_index, select_manifests};
use crate::image::{Descriptor, Matcher, Platform, Reference};
use crate::pull::fetch::ref_key;
use crate::pull::gc_labels::{children_labels, distribution_source};
use crate::registry::{RegistryClient, Repository};

/// The lease header containerd's client sets from the context's lease.
pub const LEASE_HEADER: &str = "containerd-lease";

/// containerd's default snapshotter (what an empty `--snapshotter` means).
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// The bytes one `Content.Write` message carries (containerd's client copies in 1 MiB
/// buffers).
const WRITE_CHUNK: usize = 1 << 20;

/// A namespaced connection with an optional lease: what every call of a pull carries.
#[derive(Clone)]
pub struct Session {
    pub channel: UnixChannel,
    pub namespace: String,
    pub lease: Option<String>,
}

impl Session {
    pub fn new(channel: UnixChannel, namespace: &str) -> Session {
        Session {
            channel,
            namespace: namespace.to_string(),
            lease: None,
        }
    }

    /// `m` as a request with the namespace and lease headers.
    pub fn req<T>(&self, m: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(m);
        let _ = crate::api::namespace::set(&mut r, &self.namespace);
        if let Some(l) = &self.lease {
            if let Ok(v) = MetadataValue::try_from(l.as_str()) {
                r.metadata_mut().insert(LEASE_HEADER, v);
            }
        }
        r
    }

    pub fn content(&self) -> ContentClient<UnixChannel> {
        ContentClient::with_origin(self.channel.clone(), origin())
            .max_decoding_message_size(crate::api::MAX_MESSAGE_SIZE)
    }

    pub fn snapshots(&self) -> SnapshotsClient<UnixChannel> {
        SnapshotsClient::with_origin(self.channel.clone(), origin())
    }

    pub fn diff(&self) -> DiffClient<UnixChannel> {
        DiffClient::with_origin(self.channel.clone(), origin())
    }

    pub fn images(&self) -> ImagesClient<UnixChannel> {
        ImagesClient::with_origin(self.channel.clone(), origin())
    }

    pub fn leases(&self) -> LeasesClient<UnixChannel> {
        LeasesClient::with_origin(self.channel.clone(), origin())
    }
}

/// A gRPC error in containerd's client words (the server's message, errdefs kind kept).
pub fn grpc(s: tonic::Status) -> anyhow::Error {
    crate::api::status::from_status(&s)
}

fn is_code(e: &tonic::Status, c: tonic::Code) -> bool {
    e.code() == c
}

/// RFC 3339 UTC with seconds, as Go's `time.RFC3339` prints a UTC time.
fn rfc3339(t: std::time::SystemTime) -> String {
    crate::timefmt::format_seconds(t)
}

/// A short random-ish unique part for ids and keys (containerd's `uniquePart`: the
/// nanoseconds of now and three random bytes, base64url).
pub fn unique_part() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut b = [0u8; 3];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    use base64::Engine;
    let part = base64::engine::general_purpose::URL_SAFE.encode(b);
    format!("{}-{part}", now.subsec_nanos())
}

/// Create the pull's lease (`client.WithLease`: expires in 24h).
pub async fn create_lease(s: &Session) -> Result<String> {
    let id = format!("ocibox-ctl-{}", unique_part());
    let expire = rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(86400));
    let req = s.req(leases_api::CreateRequest {
        id: id.clone(),
        labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
    });
    s.leases().create(req).await.map_err(grpc)?;
    Ok(id)
}

/// Delete a lease (the pull's, at the end).
pub async fn delete_lease(s: &Session, id: &str) -> Result<()> {
    let mut plain = s.clone();
    plain.lease = None;
    let req = plain.req(leases_api::DeleteRequest {
        id: id.to_string(),
        sync: false,
    });
    plain.leases().delete(req).await.map_err(grpc)?;
    Ok(())
}

/// Whether the daemon's store has `digest`.
pub async fn content_exists(s: &Session, digest: &Digest) -> Result<bool> {
    match s
        .content()
        .info(s.req(content_api::InfoRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, tonic::Code::NotFound) => Ok(false),
        Err(e) => Err(grpc(e)),
    }
}

/// The whole blob `digest` from the daemon's store (`Content.Read`), refused beyond `limit`.
pub async fn read_content(s: &Session, digest: &str, limit: u64) -> Result<Vec<u8>> {
    let mut stream = s
        .content()
        .read(s.req(content_api::ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .map_err(grpc)?
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.map_err(grpc)? {
        out.extend_from_slice(&m.data);
        if out.len() as u64 > limit {
            bail!("content {digest}: larger than {limit} bytes");
        }
    }
    Ok(out)
}

/// Set labels of a blob (`Content.Update` with `labels.<key>` paths).
pub async fn add_content_labels(
    s: &Session,
    digest: &Digest,
    labels: &HashMap<String, String>,
) -> Result<()> {
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    s.content()
        .update(s.req(content_api::UpdateRequest {
            info: Some(content_api::Info {
                digest: digest.to_string(),
                labels: labels.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(grpc)?;
    Ok(())
}

/// A stream of write requests fed from a channel (tonic wants a `Stream`).
struct RequestStream(tokio::sync::mpsc::Receiver<content_api::WriteContentRequest>);

impl Stream for RequestStream {
    type Item = content_api::WriteContentRequest;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Progress of one blob write: called with the bytes sent so far.
pub type WriteProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// Write `reader`'s bytes as blob `desc` through `Content.Write` (ref `ref_key(desc)`),
/// committed with `labels`. A blob that is already there (AlreadyExists) is not an error.
/// `reader` runs on a blocking thread.
pub async fn write_blob(
    s: &Session,
    desc: &Descriptor,
    reader: Box<dyn Read + Send>,
    labels: HashMap<String, String>,
    progress: WriteProgress,
) -> Result<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reference = ref_key(desc);
    let total = desc.size as i64;
    let expected = desc.digest.to_string();
    let (r2, e2) = (reference.clone(), expected.clone());
    let producer = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut reader = reader;
        let mut offset: i64 = 0;
        let mut buf = vec![0u8; WRITE_CHUNK];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let n = reader.read(&mut buf[filled..]).context("read blob")?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            let last = filled < buf.len();
            let msg = content_api::WriteContentRequest {
                action: if last {
                    content_api::WriteAction::Commit as i32
                } else {
                    content_api::WriteAction::Write as i32
                },
                r#ref: r2.clone(),
                total,
                expected: e2.clone(),
                offset,
                data: buf[..filled].to_vec(),
                labels: if last { labels.clone() } else { HashMap::new() },
            };
            offset += filled as i64;
            if tx.blocking_send(msg).is_err() {
                // The call ended early; its error is reported by the caller.
                return Ok(());
            }
            progress(offset as u64);
            if last {
                return Ok(());
            }
        }
    });
    let call = s.content().write(s.req(RequestStream(rx))).await;
    let result = match call {
        Ok(resp) => {
            let mut stream = resp.into_inner();
            let mut last = None;
            loop {
                match stream.message().await {
                    Ok(Some(m)) => last = Some(m),
                    Ok(None) => break Ok(last),
                    Err(e) => break Err(e),
                }
            }
        }
        Err(e) => Err(e),
    };
    let produced = producer.await.map_err(|e| anyhow!("blob reader: {e}"))?;
    match result {
        Ok(Some(m)) if m.digest == expected || m.digest.is_empty() => produced,
        Ok(Some(m)) => bail!("unexpected commit digest {}, expected {expected}", m.digest),
        Ok(None) => produced,
        Err(e) if is_code(&e, tonic::Code::AlreadyExists) => Ok(()),
        Err(e) => Err(grpc(e)).with_context(|| format!("failed to write {reference}")),
    }
}

/// What `ctr image pull` was asked.
#[derive(Clone)]
pub struct PullOptions {
    pub reference: String,
    pub registry: RegistryClient,
    /// `--platform` (empty: the host's); `--all-platforms` uses [`Matcher::All`].
    pub platforms: Vec<String>,
    pub all_platforms: bool,
    pub snapshotter: String,
    pub labels: HashMap<String, String>,
    /// `--max-concurrent-downloads` (0: no bound, as ctr).
    pub max_concurrent_downloads: usize,
}

/// The display state a pull updates and the caller draws.
pub type Statuses = Arc<Mutex<Vec<StatusLine>>>;

fn set_status(st: &Statuses, r: &str, status: &str, offset: u64, total: u64) {
    let Ok(mut v) = st.lock() else { return };
    let line = StatusLine {
        ref_: r.to_string(),
        status: status.to_string(),
        offset,
        total,
    };
    match v.iter_mut().find(|l| l.ref_ == r) {
        Some(l) => *l = line,
        None => v.push(line),
    }
}

/// What a pull did, for the lines ctr prints after the progress.
pub struct Pulled {
    pub name: String,
    pub target: Descriptor,
    /// Per unpacked platform: its display name (`linux/amd64`) and chain ID.
    pub unpacked: Vec<(String, Digest)>,
}

fn to_api(d: &Descriptor) -> api_types::Descriptor {
    api_types::Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.to_string(),
        size: d.size as i64,
        annotations: d.annotations.clone().into_iter().collect(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("blocking task: {e}"))?
}

/// Fetch `opts.reference` into the daemon and record the image (the `content.Fetch` half).
/// Returns the target, the chosen manifests (with their platforms) and the labels written.
pub async fn fetch(
    s: &Session,
    opts: &PullOptions,
    st: &Statuses,
) -> Result<(Descriptor, Vec<(Descriptor, Option<Platform>)>)> {
    let reference = Reference::parse_docker_ref(&opts.reference)
        .with_context(|| format!("parse reference {:?}", opts.reference))?;
    let name = reference.to_string();
    let repo = Repository::of(&reference);
    let source = distribution_source(&repo.namespace, &repo.name);
    set_status(st, &name, "resolving", 0, 0);
    let client = opts.registry.clone();
    let r2 = reference.clone();
    let target = blocking(move || client.resolve(&r2)).await?;
    set_status(st, &name, "resolved", 0, 0);

    let matcher = if opts.all_platforms {
        Matcher::All
    } else if opts.platforms.is_empty() {
        Matcher::default_for_host()
    } else {
        let p: Vec<&str> = opts.platforms.iter().map(String::as_str).collect();
        Matcher::from_specifiers(&p)?
    };
    let limit = if opts.all_platforms { None } else { Some(1) };

    // Indexes and manifests, one after the other.
    let mut queue = std::collections::VecDeque::from([(target.clone(), None::<Platform>)]);
    let mut manifests = Vec::new();
    let mut leaves: Vec<Descriptor> = Vec::new();
    while let Some((d, plat)) = queue.pop_front() {
        let key = ref_key(&d);
        set_status(st, &key, "waiting", 0, d.size);
        let exists = content_exists(s, &d.digest).await?;
        let data = if exists {
            read_content(
                s,
                &d.digest.to_string(),
                crate::registry::client::MAX_MANIFEST_SIZE,
            )
            .await?
        } else {
            let (client, repo2, d2) = (opts.registry.clone(), repo.clone(), d.clone());
            blocking(move || client.fetch_manifest(&repo2, &d2)).await?
        };
        let parsed = parse_manifest_or_index(&d.media_type, &data)
            .with_context(|| format!("{key} of {name}"))?;
        let children: Vec<Descriptor> = match &parsed {
            ManifestOrIndex::Index(ix) => ix
                .manifests()
                .iter()
                .filter_map(|c| Descriptor::from_oci(c).ok())
                .collect(),
            ManifestOrIndex::Manifest(m) => {
                let mut v = vec![Descriptor::from_oci(m.config())?];
                for l in m.layers() {
                    v.push(Descriptor::from_oci(l)?);
                }
                v
            }
        };
        let mut labels: HashMap<String, String> = children_labels(&children).into_iter().collect();
        labels.insert(source.0.clone(), source.1.clone());
        if exists {
            add_content_labels(s, &d.digest, &labels).await?;
            set_status(st, &key, "exists", 0, d.size);
        } else {
            let size = d.size;
            let (st2, key2) = (st.clone(), key.clone());
            let prog: WriteProgress =
                Arc::new(move |off| set_status(&st2, &key2, "downloading", off, size));
            write_blob(s, &d, Box::new(std::io::Cursor::new(data)), labels, prog).await?;
            set_status(st, &key, "done", d.size, d.size);
        }
        match parsed {
            ManifestOrIndex::Index(ix) => {
                for c in select_manifests(&ix, &matcher, limit) {
                    let p = c.platform().as_ref().map(Platform::from_oci);
                    queue.push_back((Descriptor::from_oci(&c)?, p));
                }
            }
            ManifestOrIndex::Manifest(_) => {
                for c in children {
                    if !leaves.iter().any(|l| l.digest == c.digest) {
                        set_status(st, &ref_key(&c), "waiting", 0, c.size);
                        leaves.push(c);
                    }
                }
                manifests.push((d, plat));
            }
        }
    }
    if manifests.is_empty() {
        bail!("no match for platform in manifest: not found");
    }

    // Configs and layers, in parallel (bounded when asked).
    let limit = if opts.max_concurrent_downloads == 0 {
        leaves.len().max(1)
    } else {
        opts.max_concurrent_downloads
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = Vec::new();
    for d in leaves {
        let (s, st, sem) = (s.clone(), st.clone(), sem.clone());
        let (client, repo) = (opts.registry.clone(), repo.clone());
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.map_err(|e| anyhow!("{e}"))?;
            let key = ref_key(&d);
            let labels = HashMap::from([source]);
            if content_exists(&s, &d.digest).await? {
                add_content_labels(&s, &d.digest, &labels).await?;
                set_status(&st, &key, "exists", 0, d.size);
                return Ok::<(), anyhow::Error>(());
            }
            let d2 = d.clone();
            let reader = blocking(move || {
                let r = client.fetch_blob(&repo, &d2)?;
                Ok(Box::new(r) as Box<dyn Read + Send>)
            })
            .await?;
            let size = d.size;
            let (st2, key2) = (st.clone(), key.clone());
            let prog: WriteProgress =
                Arc::new(move |off| set_status(&st2, &key2, "downloading", off, size));
            write_blob(&s, &d, reader, labels, prog).await?;
            set_status(&st, &key, "done", d.size, d.size);
            Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| anyhow!("download task: {e}"))??;
    }

    record_image(s, &name, &target, &opts.labels).await?;
    Ok((target, manifests))
}

/// containerd's `createNewImage`: Create, or Update (target and labels) when it exists.
pub async fn record_image(
    s: &Session,
    name: &str,
    target: &Descriptor,
    labels: &HashMap<String, String>,
) -> Result<()> {
    let image = images_api::Image {
        name: name.to_string(),
        labels: labels.clone(),
        target: Some(to_api(target)),
        ..Default::default()
    };
    match s
        .images()
        .create(s.req(images_api::CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, tonic::Code::AlreadyExists) => {
            s.images()
                .update(s.req(images_api::UpdateImageRequest {
                    image: Some(image),
                    update_mask: None,
                    source_date_epoch: None,
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        }
        Err(e) => Err(grpc(e)),
    }
}

/// Whether snapshot `key` exists in `snapshotter`.
pub async fn snapshot_exists(s: &Session, snapshotter: &str, key: &str) -> Result<bool> {
    match s
        .snapshots()
        .stat(s.req(snapshots_api::StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_code(&e, tonic::Code::NotFound) => Ok(false),
        Err(e) => Err(grpc(e)),
    }
}

/// The image config and layers of manifest `manifest` as the daemon stores them.
pub async fn manifest_parts(
    s: &Session,
    manifest: &Descriptor,
) -> Result<(Descriptor, Vec<Descriptor>)> {
    let data = read_content(
        s,
        &manifest.digest.to_string(),
        crate::registry::client::MAX_MANIFEST_SIZE,
    )
    .await?;
    match parse_manifest_or_index(&manifest.media_type, &data)? {
        ManifestOrIndex::Manifest(m) => {
            let config = Descriptor::from_oci(m.config())?;
            let layers = m
                .layers()
                .iter()
                .map(Descriptor::from_oci)
                .collect::<Result<Vec<_>>>()?;
            Ok((config, layers))
        }
        ManifestOrIndex::Index(_) => bail!("{}: an index, not a manifest", manifest.digest),
    }
}

/// `image.Unpack` of one manifest into `snapshotter`; returns the chain ID of its top layer.
pub async fn unpack(s: &Session, manifest: &Descriptor, snapshotter: &str) -> Result<Digest> {
    let (config_desc, layers) = manifest_parts(s, manifest).await?;
    let config_bytes = read_content(s, &config_desc.digest.to_string(), 16 << 20).await?;
    let config = parse_config(&config_bytes)?;
    let diffs = diff_ids(&config)?;
    if diffs.len() != layers.len() {
        bail!("mismatched image rootfs and manifest layers");
    }
    let chains = chain_ids(&diffs);
    for (i, layer) in layers.iter().enumerate() {
        let chain = chains[i].to_string();
        if snapshot_exists(s, snapshotter, &chain).await? {
            continue;
        }
        let parent = if i == 0 {
            String::new()
        } else {
            chains[i - 1].to_string()
        };
        let key = format!("extract-{} {chain}", unique_part());
        let prepared = s
            .snapshots()
            .prepare(s.req(snapshots_api::PrepareSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.clone(),
                parent,
                labels: HashMap::new(),
            }))
            .await
            .map_err(grpc)?
            .into_inner();
        let applied = s
            .diff()
            .apply(s.req(diff_api::ApplyRequest {
                diff: Some(to_api(layer)),
                mounts: prepared.mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await;
        let remove = |s: Session, key: String, sn: String| async move {
            let _ = s
                .snapshots()
                .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                    snapshotter: sn,
                    key,
                }))
                .await;
        };
        let applied = match applied {
            Ok(a) => a.into_inner().applied,
            Err(e) => {
                remove(s.clone(), key, snapshotter.to_string()).await;
                return Err(grpc(e));
            }
        };
        let got = applied.map(|d| d.digest).unwrap_or_default();
        if got != diffs[i].to_string() {
            remove(s.clone(), key, snapshotter.to_string()).await;
            bail!("wrong diff id calculated on extraction {got:?}");
        }
        match s
            .snapshots()
            .commit(s.req(snapshots_api::CommitSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                name: chain.clone(),
                key: key.clone(),
                labels: HashMap::new(),
            }))
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, tonic::Code::AlreadyExists) => {
                remove(s.clone(), key, snapshotter.to_string()).await;
            }
            Err(e) => {
                remove(s.clone(), key, snapshotter.to_string()).await;
                return Err(grpc(e));
            }
        }
        add_content_labels(
            s,
            &layer.digest,
            &HashMap::from([(
                "containerd.io/uncompressed".to_string(),
                diffs[i].to_string(),
            )]),
        )
        .await?;
    }
    let top = *chains
        .last()
        .ok_or_else(|| anyhow!("image has no layers"))?;
    add_content_labels(
        s,
        &config_desc.digest,
        &HashMap::from([(
            format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
            top.to_string(),
        )]),
    )
    .await?;
    Ok(top)
}

/// The platform name ctr prints (`platforms.Format`: `linux/amd64`, `linux/arm/v7`).
pub fn platform_name(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_gos() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_798_761_600);
        assert_eq!(rfc3339(t), "2027-01-01T00:00:00Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
