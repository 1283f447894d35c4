//! Hostile registries through `pull::fetch` (the first half of `ctr image pull`): a
//! manifest over the size limit, an index loop and a chain of indexes deeper than the
//! limit, manifest bytes that are not their digest, a blob body that ends early, endless
//! response headers, and `Content-Length`s that lie. Each fetch fails with a clear error,
//! records no image, commits no blob that did not verify, leaves no ingest but a
//! resumable layer's, and the store verifies clean (every blob hashes to its name; after a
//! garbage collection nothing is left, as nothing holds what the failed fetch stored).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::hostile_registry::{HostileRegistry, Reply, Request};
use common::registry::*;
use common::TempDir;
use ocibox::content::{Digest, Store};
use ocibox::image::Reference;
use ocibox::metadata::namespaced_content::NamespacedContent;
use ocibox::metadata::{gc, images, Database};
use ocibox::pull::{fetch, FetchOptions};
use ocibox::registry::transport::RetryPolicy;
use ocibox::registry::{ClientOptions, RegistryClient};

const NS: &str = "default";

struct Stores {
    _dir: TempDir,
    store: Store,
    db: Database,
}

impl Stores {
    fn new() -> Stores {
        let dir = TempDir::new("ocibox-hostile-reg");
        let store = Store::open(dir.path().join("io.containerd.content.v1.content")).unwrap();
        let db = Database::open(&dir.path().join("meta.db")).unwrap();
        Stores {
            _dir: dir,
            store,
            db,
        }
    }
    fn content(&self) -> NamespacedContent<'_> {
        NamespacedContent {
            db: &self.db,
            store: &self.store,
            ns: NS.into(),
            lease: None,
        }
    }
    fn verified_digests(&self) -> BTreeSet<Digest> {
        let mut out = BTreeSet::new();
        self.store
            .walk(|info| {
                let data = std::fs::read(self.store.blob_path(&info.digest))?;
                assert_eq!(Digest::of(&data), info.digest, "blob hashes to its name");
                out.insert(info.digest);
                Ok(())
            })
            .unwrap();
        out
    }
}

fn client() -> RegistryClient {
    let mut o = ClientOptions::default();
    o.hosts.plain_http = true;
    o.retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    o.blob_resumes = 2;
    RegistryClient::new(o)
}

/// Fetch `<server>/busybox:t` into fresh stores; the error (it must fail), and the stores.
fn fetch_fails(server: &HostileRegistry) -> (String, Stores) {
    let s = Stores::new();
    let reference = format!("{}/busybox:t", server.host());
    let r = Reference::parse_docker_ref(&reference).unwrap();
    let opts = FetchOptions {
        image_name: Some(reference.clone()),
        ..FetchOptions::default()
    };
    let started = Instant::now();
    let e = fetch(&client(), &s.content(), &r, &opts, &|_| {})
        .expect_err("a hostile registry's image is refused");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it fails promptly"
    );
    let msg = format!("{e:#}");
    eprintln!("refused: {msg}");
    // No image; only verified blobs; no ingest but resumable layers'.
    assert!(
        s.db.view(|v| images::get(v, NS, &reference)).is_err(),
        "no image record: {msg}"
    );
    s.verified_digests();
    for st in s.content().list_statuses(&[]).unwrap() {
        assert!(
            st.ref_.starts_with("layer-") || st.ref_.starts_with("config-"),
            "leftover ingest {st:?}: {msg}"
        );
        assert!(st.offset < st.total, "{st:?}");
    }
    // Nothing holds what the failed fetch stored.
    let now = std::time::SystemTime::now();
    gc::collect(&s.db, &s.store, now, now).unwrap();
    assert!(
        s.verified_digests().is_empty(),
        "nothing left after gc: {msg}"
    );
    (msg, s)
}

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(b))
}

/// A registry serving `blobs` (the first answering tag `t`), with `hook` taking over any
/// request it returns Some for.
fn serve(
    blobs: Vec<Blob>,
    hook: impl Fn(&Request, Option<&Blob>) -> Option<Reply> + Send + Sync + 'static,
) -> HostileRegistry {
    HostileRegistry::start(move |req| {
        if req.path == "/v2/" {
            return Reply::status(200);
        }
        let last = req.path.rsplit('/').next().unwrap_or("");
        let blob = if last == "t" {
            blobs.first()
        } else {
            blobs.iter().find(|b| b.digest == last)
        };
        if let Some(r) = hook(req, blob) {
            return r;
        }
        match blob {
            Some(b) => Reply::content(&b.media_type, &b.digest, &b.data),
            None => Reply::status(404),
        }
    })
}

fn image_blobs(tmp: &TempDir) -> (BusyboxImage, Vec<Blob>) {
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let blobs = image.blobs().into_iter().cloned().collect();
    (image, blobs)
}

#[test]
fn a_manifest_over_the_size_limit() {
    let tmp = TempDir::new("ocibox-hostile-big");
    let (_, blobs) = image_blobs(&tmp);
    // A HEAD that claims 5 MiB: refused by its size, no GET made.
    let top = blobs[0].clone();
    let server = serve(blobs.clone(), move |req, b| {
        (b.is_some_and(|b| b.digest == top.digest) || req.path.ends_with("/t"))
            .then(|| Reply::content(OCI_MANIFEST, &top.digest, &top.data).with_length(5 << 20))
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.contains("over the limit"), "{msg}");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.method != "GET" || !r.path.contains("/manifests/")),
        "{:?}",
        server.requests()
    );

    // No HEAD; a GET with a body of 5 MiB: refused by its Content-Length, unread.
    let huge = vec![b' '; 5 << 20];
    let server = serve(blobs, move |req, _| {
        req.path.ends_with("/t").then(|| {
            if req.method == "HEAD" {
                Reply::status(405)
            } else {
                Reply::content(OCI_MANIFEST, &digest_of(&huge), &huge)
            }
        })
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.contains("over the limit"), "{msg}");
}

fn index_of(children: &[&Blob]) -> Blob {
    let manifests: Vec<_> = children.iter().map(|b| b.descriptor_json()).collect();
    let data = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
    )
    .unwrap();
    Blob {
        media_type: OCI_INDEX.into(),
        digest: digest_of(&data),
        data,
    }
}

#[test]
fn an_index_loop_and_a_chain_deeper_than_the_limit() {
    let tmp = TempDir::new("ocibox-hostile-loop");
    let (_, blobs) = image_blobs(&tmp);
    // Content addressing makes a real loop impossible; a registry can only pretend one by
    // answering a child's digest with its parent's bytes. That is caught as a mismatch.
    let inner = index_of(&[&blobs[0]]);
    let outer = index_of(&[&inner]);
    let mut served = vec![outer.clone(), inner.clone()];
    served.extend(blobs.iter().cloned());
    let (o, i) = (outer.clone(), inner.digest.clone());
    let server = serve(served, move |_, b| {
        b.filter(|b| b.digest == i)
            .map(|_| Reply::content(OCI_INDEX, &i, &o.data))
    });
    let (msg, _) = fetch_fails(&server);
    assert!(
        msg.contains("does not match its digest") || msg.contains("its descriptor says"),
        "{msg}"
    );

    // Twelve indexes, each the only entry of the next: refused at the depth limit.
    let mut chain = vec![blobs[0].clone()];
    for _ in 0..12 {
        let next = index_of(&[chain.last().unwrap()]);
        chain.push(next);
    }
    chain.reverse();
    chain.extend(blobs.iter().skip(1).cloned());
    let server = serve(chain, |_, _| None);
    let (msg, _) = fetch_fails(&server);
    assert!(msg.contains("nested deeper than"), "{msg}");
}

#[test]
fn manifest_bytes_that_are_not_its_digest() {
    let tmp = TempDir::new("ocibox-hostile-mdigest");
    let (_, blobs) = image_blobs(&tmp);
    let top = blobs[0].clone();
    let server = serve(blobs, move |req, _| {
        (req.method == "GET" && req.path.contains("/manifests/")).then(|| {
            let mut wrong = top.data.clone();
            let n = wrong.len() - 2;
            wrong[n] = if wrong[n] == b' ' { b'\n' } else { b' ' };
            Reply::content(OCI_MANIFEST, &top.digest, &wrong)
        })
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.contains("does not match its digest"), "{msg}");
}

#[test]
fn a_short_blob_body() {
    let tmp = TempDir::new("ocibox-hostile-short");
    let (image, blobs) = image_blobs(&tmp);
    let layer = image.layer.digest.clone();
    // Every answer promises the whole layer and closes after 1000 bytes.
    let server = serve(blobs, move |_, b| {
        b.filter(|b| b.digest == layer)
            .map(|b| Reply::content(&b.media_type, &b.digest, &b.data).cut_after(1000))
    });
    let (msg, s) = fetch_fails(&server);
    assert!(msg.contains("layer-") && msg.contains("1000 of"), "{msg}");
    let layer: Digest = image.layer.digest.parse().unwrap();
    assert!(!s.store.blob_path(&layer).exists());
}

#[test]
fn endless_response_headers() {
    let tmp = TempDir::new("ocibox-hostile-headers");
    let (image, blobs) = image_blobs(&tmp);
    // On the manifest...
    let server = serve(blobs.clone(), |req, _| {
        req.path
            .contains("/manifests/")
            .then_some(Reply::EndlessHeaders { cap: 64 << 20 })
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.to_ascii_lowercase().contains("header"), "{msg}");
    // ... and on a layer.
    let layer = image.layer.digest.clone();
    let server = serve(blobs, move |_, b| {
        b.filter(|b| b.digest == layer)
            .map(|_| Reply::EndlessHeaders { cap: 64 << 20 })
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.to_ascii_lowercase().contains("header"), "{msg}");
}

#[test]
fn content_lengths_that_lie() {
    let tmp = TempDir::new("ocibox-hostile-length");
    let (image, blobs) = image_blobs(&tmp);
    let size = image.layer.data.len() as u64;
    for claimed in [size + 100, size - 100] {
        let layer = image.layer.digest.clone();
        let server = serve(blobs.clone(), move |_, b| {
            b.filter(|b| b.digest == layer)
                .map(|b| Reply::content(&b.media_type, &b.digest, &b.data).with_length(claimed))
        });
        let (msg, _) = fetch_fails(&server);
        assert!(msg.contains("its descriptor says"), "{claimed}: {msg}");
    }
    // A manifest GET whose Content-Length is shorter than what HEAD said.
    let top = blobs[0].clone();
    let server = serve(blobs, move |req, _| {
        (req.method == "GET" && req.path.contains("/manifests/")).then(|| {
            Reply::content(OCI_MANIFEST, &top.digest, &top.data)
                .with_length(top.data.len() as u64 - 10)
        })
    });
    let (msg, _) = fetch_fails(&server);
    assert!(msg.contains("its descriptor says"), "{msg}");
}
