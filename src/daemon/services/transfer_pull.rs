//! Transfer `OCIRegistry` → `ImageStore`: the pull in the daemon, through the pull library
//! ([`crate::pull::pull`]: one lease, parallel downloads each streamed into its layer's
//! own unpack, snapshots committed by chain ID, the image record last), as containerd
//! 1.7's `localTransferService.pull` does it with its unpacker.
//!
//! - Hosts: `RegistryResolver.host_dir` (ctr's `--hosts-dir`), else the daemon's
//!   `config_path`; `default_scheme = "http"` is ctr's `--plain-http`. Of the headers only
//!   `User-Agent` is used.
//! - Credentials: asked of the client over `RegistryResolver.auth_stream` when a host
//!   challenges (`AuthRequest{host, reference}` → `AuthResponse`), once per host.
//! - `ImageStore`: `name` is the image record, `labels` its labels, `platforms` what is
//!   fetched (none: all), `manifest_limit` (0: no limit); the first of `unpacks` names the
//!   snapshotter (none given there: the daemon's default); no `unpacks`: fetch only.
//!   `all_metadata` is not honoured (only the chosen platforms' manifests are fetched, as
//!   containerd 1.6's client-side pull does).
//! - Progress: containerd 1.7's events (see [`PullEvents`]).
//! - The snapshots the pull commits go through [`locked_store`], which takes the daemon's
//!   snapshotter change lock and GC hold around every read-modify-write of the records.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::api::services::images::v1::{ImageCreate, ImageUpdate};
use crate::api::types::transfer::{
    AuthRequest, AuthResponse, AuthType, ImageStore, OciRegistry, Progress, RegistryResolver,
};
use crate::api::typeurl;
use crate::content::{read_blob, Digest, Store};
use crate::daemon::context::Daemon;
use crate::errdefs::{err, ErrorKind};
use crate::image::manifest::{parse_manifest_or_index, MAX_MANIFEST_SIZE};
use crate::image::platform::{Matcher, Platform};
use crate::image::{Descriptor, Reference};
use crate::metadata::images;
use crate::metadata::namespaced_content::NamespacedContent;
use crate::metadata::temp_lease::with_leased_content;
use crate::pull::{FetchOptions, ProgressEvent, ProgressStatus, PullOptions, PullTarget};
use crate::registry::auth::CredentialSource;
use crate::registry::hosts::HostsOptions;
use crate::registry::{ClientOptions, Credentials, RegistryClient};

use super::streaming::Stream;
use super::transfer::ProgressSink;
use super::transfer_snapshots::locked_snapshotter;

/// How often a blob's `downloading` event is sent at most (containerd's tracker polls
/// every 300 ms; the last bytes are always reported by `complete`).
const DOWNLOAD_EVENT_EVERY: Duration = Duration::from_millis(100);

pub fn pull(
    d: &Arc<Daemon>,
    ns: &str,
    reg: &OciRegistry,
    store: &ImageStore,
    auth: Option<Stream>,
    progress: &ProgressSink,
) -> Result<()> {
    let reference = Reference::parse_docker_ref(&reg.reference).map_err(|e| {
        err(
            ErrorKind::InvalidArgument,
            format!("failed to resolve image: {e:#}"),
        )
    })?;
    if store.name.is_empty() {
        return Err(err(ErrorKind::NotFound, "no image name found"));
    }
    let source = format!("OCI Registry ({})", reg.reference);
    progress.status(format!("Resolving from {source}"));
    let client = registry_client(d, &reference, reg.resolver.as_ref(), auth);
    let fetch = FetchOptions {
        platforms: matcher(&store.platforms),
        manifest_limit: (store.manifest_limit > 0).then_some(store.manifest_limit as usize),
        image_name: Some(store.name.clone()),
        image_labels: store.labels.clone().into_iter().collect(),
        ..FetchOptions::default()
    };
    let existed =
        d.db.view(|v| images::get(v, ns, &store.name).map(|_| ()))
            .is_ok();
    let events = PullEvents::new(d.content.clone(), &reg.reference, &source, progress);
    let on_event = |e: &ProgressEvent| events.on(e);
    let result = match store.unpacks.first() {
        Some(u) => {
            let sn_name = match u.snapshotter.as_str() {
                "" => d.config.snapshotter.clone(),
                s => s.to_owned(),
            };
            // containerd's errors for an unknown snapshotter, before anything is fetched.
            d.snapshotters.get(ns, &sn_name)?;
            let sn = locked_snapshotter(d, ns, &sn_name)?;
            let opts = PullOptions {
                fetch,
                snapshotter: sn_name,
                ..PullOptions::default()
            };
            let target = PullTarget {
                db: &d.db,
                store: &d.content,
                ns,
                snapshotter: &sn,
            };
            crate::pull::pull(&client, &target, &reference, &opts, &on_event).map(|_| ())
        }
        None => fetch_only(d, ns, &client, &reference, &fetch, &on_event),
    };
    result?;
    let i = d.db.view(|v| images::get(v, ns, &store.name))?;
    let labels = i.labels.clone().into_iter().collect();
    if existed {
        d.events.publish(
            ns,
            "/images/update",
            &ImageUpdate {
                name: i.name.clone(),
                labels,
            },
        );
    } else {
        d.events.publish(
            ns,
            "/images/create",
            &ImageCreate {
                name: i.name.clone(),
                labels,
            },
        );
    }
    progress.send(Progress {
        event: "saved".into(),
        name: store.name.clone(),
        ..Default::default()
    });
    progress.status(format!("Completed pull from {source}"));
    Ok(())
}

/// Fetch without unpack, under a lease of its own (as the pull makes one).
fn fetch_only(
    d: &Daemon,
    ns: &str,
    client: &RegistryClient,
    reference: &Reference,
    fetch: &FetchOptions,
    on_event: &(dyn Fn(&ProgressEvent) + Sync),
) -> Result<()> {
    let content = NamespacedContent {
        db: &d.db,
        store: &d.content,
        ns: ns.to_owned(),
        lease: None,
    };
    with_leased_content(&content, "transfer", |content, _| {
        crate::pull::fetch(client, content, reference, fetch, on_event).map(|_| ())
    })
}

/// `ImageStore.platforms` as a matcher: containerd's `platforms.Ordered` (each platform
/// normalised, preferred in order), or every platform when none is named.
fn matcher(ps: &[crate::api::types::Platform]) -> Matcher {
    if ps.is_empty() {
        return Matcher::All;
    }
    Matcher::Ordered(
        ps.iter()
            .map(|p| Platform::new(&p.os, &p.architecture, &p.variant).normalize())
            .collect(),
    )
}

/// The hosts directory: the resolver's, else the first of the daemon's `config_path` that
/// configures this registry (or has a `_default`), else its first.
fn hosts_dir(d: &Daemon, host: &str, resolver: Option<&RegistryResolver>) -> Option<PathBuf> {
    if let Some(dir) = resolver
        .map(|r| r.host_dir.as_str())
        .filter(|s| !s.is_empty())
    {
        return Some(PathBuf::from(dir));
    }
    let dirs = &d.config.registry_config_path;
    dirs.iter()
        .find(|p| p.join(host).is_dir() || p.join("_default").is_dir())
        .or(dirs.first())
        .cloned()
}

fn registry_client(
    d: &Daemon,
    reference: &Reference,
    resolver: Option<&RegistryResolver>,
    auth: Option<Stream>,
) -> RegistryClient {
    let mut opts = ClientOptions {
        hosts: HostsOptions {
            hosts_dir: hosts_dir(d, reference.domain(), resolver),
            plain_http: resolver.is_some_and(|r| r.default_scheme == "http"),
            ..HostsOptions::default()
        },
        ..ClientOptions::default()
    };
    if let Some(ua) = resolver.and_then(|r| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map(|(_, v)| v.clone())
    }) {
        opts.user_agent = ua;
    }
    let creds: CredentialSource = match auth {
        Some(s) => credentials_over(s, reference.to_string()),
        None => Arc::new(|_: &str| None),
    };
    RegistryClient::with_credential_source(opts, creds)
}

/// Credentials asked of the client over its auth stream, once per host (containerd's
/// `credCallback`).
fn credentials_over(stream: Stream, reference: String) -> CredentialSource {
    let stream = Mutex::new(stream);
    let asked: Mutex<HashMap<String, Option<Credentials>>> = Mutex::new(HashMap::new());
    Arc::new(move |host: &str| {
        let mut asked = asked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = asked.get(host) {
            return c.clone();
        }
        let mut s = stream.lock().unwrap_or_else(|p| p.into_inner());
        let answer = ask(&mut s, &reference, host);
        asked.insert(host.to_owned(), answer.clone());
        answer
    })
}

fn ask(s: &mut Stream, reference: &str, host: &str) -> Option<Credentials> {
    let req = AuthRequest {
        host: host.to_owned(),
        reference: reference.to_owned(),
        wwwauthenticate: Vec::new(),
    };
    s.blocking_send(typeurl::pack(&req)).ok()?;
    let a = s.blocking_recv()?;
    let r: AuthResponse = typeurl::unpack(&a).ok()?;
    // REFRESH (an identity token) and HEADER are not served by the registry client; with
    // neither a user nor a secret the host is asked anonymously.
    match AuthType::try_from(r.auth_type) {
        Ok(AuthType::Credentials) if !r.username.is_empty() => Some(Credentials {
            username: r.username,
            password: Some(r.secret),
        }),
        _ => None,
    }
}

/// The pull library's events as containerd 1.7's transfer sends them
/// (`pkg/transfer/local/progress.go`): `waiting` (a blob is known), `downloading` with
/// progress and total, `complete`, `already exists`, `extracted` (its snapshot committed);
/// each blob names its parents (the manifest or index that lists it, the reference for
/// the root), its name is the ingest ref (`layer-sha256:…`).
pub struct PullEvents<'a> {
    content: Arc<Store>,
    root: String,
    source: String,
    sink: &'a ProgressSink,
    parents: Mutex<HashMap<Digest, Vec<String>>>,
    last_download: Mutex<HashMap<String, Instant>>,
}

impl<'a> PullEvents<'a> {
    pub fn new(
        content: Arc<Store>,
        root: &str,
        source: &str,
        sink: &'a ProgressSink,
    ) -> PullEvents<'a> {
        PullEvents {
            content,
            root: root.to_owned(),
            source: source.to_owned(),
            sink,
            parents: Mutex::new(HashMap::new()),
            last_download: Mutex::new(HashMap::new()),
        }
    }

    fn parents_of(&self, d: Option<&Digest>) -> Vec<String> {
        let known = d.and_then(|d| {
            self.parents
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(d)
                .cloned()
        });
        known.unwrap_or_else(|| vec![self.root.clone()])
    }

    /// An index or manifest is in the store: its children's parent is known.
    fn learn_children(&self, e: &ProgressEvent) {
        let media_type = if e.ref_.starts_with("index-") {
            crate::image::media_types::OCI_INDEX
        } else if e.ref_.starts_with("manifest-") {
            crate::image::media_types::OCI_MANIFEST
        } else {
            return;
        };
        let Some(digest) = e.digest else { return };
        let Ok(data) = read_blob(&self.content, &digest, MAX_MANIFEST_SIZE) else {
            return;
        };
        // The JSON's own mediaType decides; the one guessed from the ref only routes.
        let Ok(parsed) = parse_manifest_or_index(media_type, &data) else {
            return;
        };
        let children: Vec<Descriptor> = parsed
            .children()
            .filter_map(|c| Descriptor::from_oci(c).ok())
            .collect();
        let mut p = self.parents.lock().unwrap_or_else(|p| p.into_inner());
        for c in children {
            let v = p.entry(c.digest).or_default();
            if !v.contains(&e.ref_) {
                v.push(e.ref_.clone());
            }
        }
    }

    pub fn on(&self, e: &ProgressEvent) {
        if !self.sink.wanted() {
            return;
        }
        let blob = |event: &str, progress: u64, parents: Vec<String>| Progress {
            event: event.to_owned(),
            name: e.ref_.clone(),
            parents,
            progress: progress as i64,
            total: e.total as i64,
            desc: None,
        };
        match e.status {
            ProgressStatus::Resolving | ProgressStatus::Unpacking => {}
            ProgressStatus::Resolved => {
                self.sink.status(format!("Pulling from {}", self.source));
                self.sink.send(Progress {
                    event: "fetching image content".into(),
                    name: self.root.clone(),
                    ..Default::default()
                });
            }
            ProgressStatus::Waiting => {
                self.sink
                    .send(blob("waiting", 0, self.parents_of(e.digest.as_ref())));
            }
            ProgressStatus::Downloading => {
                let now = Instant::now();
                {
                    let mut last = self.last_download.lock().unwrap_or_else(|p| p.into_inner());
                    match last.get(&e.ref_) {
                        Some(t) if now.duration_since(*t) < DOWNLOAD_EVENT_EVERY => return,
                        _ => {
                            last.insert(e.ref_.clone(), now);
                        }
                    }
                }
                self.sink.send(blob(
                    "downloading",
                    e.offset,
                    self.parents_of(e.digest.as_ref()),
                ));
            }
            ProgressStatus::Done => {
                self.learn_children(e);
                self.sink.send(blob(
                    "complete",
                    e.total,
                    self.parents_of(e.digest.as_ref()),
                ));
            }
            ProgressStatus::Exists => {
                self.learn_children(e);
                // containerd's tracker sends this one without parents.
                self.sink.send(blob("already exists", e.total, Vec::new()));
            }
            ProgressStatus::Unpacked => {
                self.sink.send(blob(
                    "extracted",
                    e.total,
                    self.parents_of(e.digest.as_ref()),
                ));
            }
        }
    }
}
