//! Fetching images (`ctr content fetch`, the first half of `ctr image pull`) from a real
//! docker-registry on 127.0.0.1 with skopeo-pushed busybox images: tags and digests,
//! platform selection, all platforms, a second fetch that finds everything there, a kill -9
//! mid-download resumed by the next fetch, a registry serving wrong bytes, and the same
//! fetch by a real containerd 1.6 for comparison.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::registry::*;
use common::TempDir;
use ocibox::content::{Digest, Store};
use ocibox::image::{Matcher, Platform, Reference};
use ocibox::metadata::images;
use ocibox::metadata::namespaced_content::NamespacedContent;
use ocibox::metadata::Database;
use ocibox::pull::{fetch, FetchOptions, Fetched, ProgressEvent, ProgressStatus};
use ocibox::registry::transport::RetryPolicy;
use ocibox::registry::{ClientOptions, RegistryClient};

const NS: &str = "default";

struct Stores {
    dir: TempDir,
    store: Store,
    db: Database,
}

impl Stores {
    fn new() -> Stores {
        let dir = TempDir::new("ocibox-fetch");
        Stores::open(dir)
    }
    fn open(dir: TempDir) -> Stores {
        let store = Store::open(dir.path().join("io.containerd.content.v1.content")).unwrap();
        let db = Database::open(&dir.path().join("meta.db")).unwrap();
        Stores { dir, store, db }
    }
    fn content(&self) -> NamespacedContent<'_> {
        NamespacedContent {
            db: &self.db,
            store: &self.store,
            ns: NS.into(),
            lease: None,
        }
    }
    /// Every blob's digest in the store (verified: each hashes to its name).
    fn verified_digests(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.store
            .walk(|info| {
                let data = std::fs::read(self.store.blob_path(&info.digest))?;
                assert_eq!(Digest::of(&data), info.digest, "blob hashes to its name");
                assert_eq!(data.len() as u64, info.size);
                out.insert(info.digest.to_string());
                Ok(())
            })
            .unwrap();
        out
    }
    fn labels(&self, d: &str) -> BTreeMap<String, String> {
        self.content().info(&d.parse().unwrap()).unwrap().labels
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
    RegistryClient::new(o)
}

fn run_fetch(
    s: &Stores,
    reference: &str,
    opts: &FetchOptions,
) -> (anyhow::Result<Fetched>, Vec<ProgressEvent>) {
    let events = Mutex::new(Vec::new());
    let r = Reference::parse_docker_ref(reference).unwrap();
    let res = fetch(&client(), &s.content(), &r, opts, &|e: &ProgressEvent| {
        events.lock().unwrap().push(e.clone())
    });
    (res, events.into_inner().unwrap())
}

fn digests(blobs: &[&Blob]) -> BTreeSet<String> {
    blobs.iter().map(|b| b.digest.clone()).collect()
}

/// The last status each line reached.
fn final_status(events: &[ProgressEvent]) -> BTreeMap<String, ProgressStatus> {
    events.iter().map(|e| (e.ref_.clone(), e.status)).collect()
}

fn multi_image(reg: &DockerRegistry, tmp: &TempDir, tag: &str) -> BusyboxImage {
    let image = busybox_layout(tmp.path(), tag, &["amd64", "arm64", "riscv64"]);
    skopeo_push(&image, &format!("{}/busybox:{tag}", reg.host()), &[]);
    image
}

fn manifest_of<'a>(image: &'a BusyboxImage, arch: &str) -> &'a (String, Blob, Blob) {
    image.manifests.iter().find(|(a, _, _)| a == arch).unwrap()
}

#[test]
fn fetches_a_tag_and_a_digest_with_containerds_labels_then_all_exists() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-img");
    let image = multi_image(&reg, &tmp, "multi");
    let (_, m, c) = manifest_of(&image, "amd64");
    let want = digests(&[&image.top, m, c, &image.layer]);
    let reference = format!("{}/busybox:multi", reg.host());

    let s = Stores::new();
    let opts = FetchOptions {
        image_name: Some(reference.clone()),
        ..FetchOptions::default()
    };
    let (res, events) = run_fetch(&s, &reference, &opts);
    let fetched = res.unwrap();
    assert_eq!(fetched.target.digest.to_string(), image.top.digest);
    assert_eq!(
        s.verified_digests(),
        want,
        "index, amd64 manifest, config, layer"
    );
    // Progress: resolving then resolved for the reference; every blob waits or downloads
    // and ends done.
    assert_eq!(events[0].status, ProgressStatus::Resolving);
    assert_eq!(events[0].ref_, fetched.name);
    assert_eq!(events[1].status, ProgressStatus::Resolved);
    let fin = final_status(&events);
    assert_eq!(fin.len(), 5, "{fin:?}");
    for b in [&image.top, m, c, &image.layer] {
        let key = fin
            .iter()
            .find(|(k, _)| k.ends_with(&b.digest))
            .unwrap_or_else(|| panic!("no line for {}", b.digest));
        assert_eq!(*key.1, ProgressStatus::Done, "{}", key.0);
    }
    assert!(fin.contains_key(&format!("layer-{}", image.layer.digest)));
    assert!(fin.contains_key(&format!("index-{}", image.top.digest)));
    let last_layer_dl = events
        .iter()
        .rev()
        .find(|e| e.status == ProgressStatus::Downloading && e.ref_.starts_with("layer-"))
        .unwrap();
    assert_eq!(last_layer_dl.offset, image.layer.data.len() as u64);
    assert_eq!(last_layer_dl.total, image.layer.data.len() as u64);

    // containerd's gc labels: the index names every manifest (also those not fetched),
    // the manifest its config and layers; all carry the distribution source.
    // containerd's key has the host without its port.
    let src = "containerd.io/distribution.source.127.0.0.1".to_string();
    let mut want_index = BTreeMap::from([(src.clone(), "busybox".to_string())]);
    for (i, (_, m, _)) in image.manifests.iter().enumerate() {
        want_index.insert(
            format!("containerd.io/gc.ref.content.m.{i}"),
            m.digest.clone(),
        );
    }
    assert_eq!(s.labels(&image.top.digest), want_index);
    assert_eq!(
        s.labels(&m.digest),
        BTreeMap::from([
            (src.clone(), "busybox".to_string()),
            (
                "containerd.io/gc.ref.content.config".into(),
                c.digest.clone()
            ),
            (
                "containerd.io/gc.ref.content.l.0".into(),
                image.layer.digest.clone()
            ),
        ])
    );
    assert_eq!(
        s.labels(&image.layer.digest),
        BTreeMap::from([(src.clone(), "busybox".to_string())])
    );
    // The image record points at the index.
    let rec = s.db.view(|v| images::get(v, NS, &reference)).unwrap();
    assert_eq!(rec.target.digest.to_string(), image.top.digest);
    assert_eq!(rec.target.media_type, OCI_INDEX);
    assert!(
        s.content().list_statuses(&[]).unwrap().is_empty(),
        "no ingest left"
    );

    // A second fetch finds everything: every blob line is "exists", nothing downloads.
    let (res, events) = run_fetch(&s, &reference, &opts);
    res.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.status, ProgressStatus::Downloading | ProgressStatus::Done)),
        "{events:?}"
    );
    let fin = final_status(&events);
    assert_eq!(
        fin.values()
            .filter(|s| **s == ProgressStatus::Exists)
            .count(),
        4,
        "{fin:?}"
    );

    // By digest, into a fresh store: the same blobs.
    let s2 = Stores::new();
    let by_digest = format!("{}/busybox@{}", reg.host(), image.top.digest);
    let (res, _) = run_fetch(&s2, &by_digest, &FetchOptions::default());
    assert_eq!(res.unwrap().target.digest.to_string(), image.top.digest);
    assert_eq!(s2.verified_digests(), want);
    // A single-platform manifest by digest: no index, just manifest, config, layer.
    let s3 = Stores::new();
    let (res, _) = run_fetch(
        &s3,
        &format!("{}/busybox@{}", reg.host(), m.digest),
        &FetchOptions::default(),
    );
    assert_eq!(res.unwrap().manifests.len(), 1);
    assert_eq!(s3.verified_digests(), digests(&[m, c, &image.layer]));
}

#[test]
fn platform_selection_and_all_platforms() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-plat");
    let image = multi_image(&reg, &tmp, "multi");
    let reference = format!("{}/busybox:multi", reg.host());

    let s = Stores::new();
    let opts = FetchOptions {
        platforms: Matcher::only(&Platform::parse("linux/arm64").unwrap()),
        ..FetchOptions::default()
    };
    let (res, _) = run_fetch(&s, &reference, &opts);
    let (_, m, c) = manifest_of(&image, "arm64");
    assert_eq!(res.unwrap().manifests[0].digest.to_string(), m.digest);
    assert_eq!(
        s.verified_digests(),
        digests(&[&image.top, m, c, &image.layer])
    );

    let s = Stores::new();
    let (res, _) = run_fetch(&s, &reference, &FetchOptions::all_platforms());
    assert_eq!(res.unwrap().manifests.len(), 3);
    assert_eq!(
        s.verified_digests(),
        image.blobs().iter().map(|b| b.digest.clone()).collect()
    );

    // A platform the index does not have is an error, and records no image.
    let s = Stores::new();
    let opts = FetchOptions {
        platforms: Matcher::only_strict(&Platform::parse("linux/s390x").unwrap()),
        image_name: Some(reference.clone()),
        ..FetchOptions::default()
    };
    let (res, _) = run_fetch(&s, &reference, &opts);
    let e = res.unwrap_err();
    assert!(format!("{e:#}").contains("no manifest"), "{e:#}");
    assert!(s.db.view(|v| images::get(v, NS, &reference)).is_err());
}

#[test]
fn wrong_digest_is_refused_and_nothing_of_it_committed() {
    let tmp = TempDir::new("ocibox-fetch-liar");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let top = image.top.clone();
    let mut blobs: Vec<Blob> = image.blobs().into_iter().cloned().collect();
    // Same length, one byte changed: only the digest can tell.
    let layer_digest = image.layer.digest.clone();
    for b in &mut blobs {
        if b.digest == layer_digest {
            let mid = b.data.len() / 2;
            b.data[mid] ^= 0xff;
        }
    }
    let server = TestServer::start(move |req| {
        let wanted = req.path_only().rsplit('/').next().unwrap_or("").to_string();
        if wanted == "t" {
            return TestResponse::content(&top.media_type, &top.data);
        }
        match blobs.iter().find(|b| b.digest == wanted) {
            Some(b) => TestResponse::new(200)
                .header("Content-Type", &b.media_type)
                .header("Docker-Content-Digest", &b.digest)
                .body(b.data.clone()),
            None => TestResponse::new(404),
        }
    });
    let s = Stores::new();
    let reference = format!("{}/busybox:t", server.host());
    let opts = FetchOptions {
        image_name: Some(reference.clone()),
        ..FetchOptions::default()
    };
    let (res, events) = run_fetch(&s, &reference, &opts);
    let e = res.unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("failed commit on ref \"layer-sha256:"),
        "{msg}"
    );
    assert!(msg.contains("unexpected commit digest"), "{msg}");
    let layer: Digest = layer_digest.parse().unwrap();
    assert!(
        !s.store.blob_path(&layer).exists(),
        "the wrong layer is not committed"
    );
    assert!(s.content().info(&layer).is_err());
    // The wrong layer's ingest is gone; a sibling download the failure cancelled half-way
    // (the config, when the machine is slow) keeps its ingest for the next pull to resume,
    // as containerd keeps it.
    let statuses = s.content().list_statuses(&[]).unwrap();
    assert!(
        statuses.iter().all(|st| !st.ref_.contains(&layer_digest)),
        "its ingest is gone: {:?}",
        statuses.iter().map(|st| &st.ref_).collect::<Vec<_>>()
    );
    assert!(
        s.db.view(|v| images::get(v, NS, &reference)).is_err(),
        "no image"
    );
    assert!(!final_status(&events)
        .get(&format!("layer-{layer_digest}"))
        .is_some_and(|s| *s == ProgressStatus::Done));
}

/// The child half of the kill -9 test: fetch what the parent says and exit. A no-op when
/// run without the parent's environment.
#[test]
fn fetch_child() {
    let (Ok(dir), Ok(reference)) = (
        std::env::var("OCIBOX_FETCH_CHILD_DIR"),
        std::env::var("OCIBOX_FETCH_CHILD_REF"),
    ) else {
        return;
    };
    let s = Stores::open(TempDir(dir.into()));
    let (res, _) = run_fetch(&s, &reference, &FetchOptions::default());
    res.unwrap();
    // The parent owns the directory.
    std::mem::forget(s.dir);
}

#[test]
fn kill_9_mid_download_then_fetch_again_resumes_and_the_store_verifies() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-kill");
    let image = busybox_layout_with_extra(tmp.path(), "big", &["amd64"], 6 << 20);
    skopeo_push(&image, &format!("{}/busybox:big", reg.host()), &[]);
    let extra = image.extra.clone().unwrap();
    // 64 KiB every 20 ms: ~3 MB/s, about two seconds for the big layer.
    let relay = SlowRelay::start(reg.port, 64 << 10, Duration::from_millis(20));
    let reference = format!("{}/busybox:big", relay.host());

    let dir = TempDir::new("ocibox-fetch-kill-store");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fetch_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("OCIBOX_FETCH_CHILD_DIR", dir.path())
        .env("OCIBOX_FETCH_CHILD_REF", &reference)
        .spawn()
        .unwrap();
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Reap(&mut child);
    // Wait until the big layer's ingest holds a good part of it, then kill -9. (Only the
    // content store is looked at meanwhile: the child holds the database open.)
    let store = Store::open(dir.path().join("io.containerd.content.v1.content")).unwrap();
    let key = format!("{NS}/layer-{}", extra.digest);
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        let offset = store
            .list_statuses(&[])
            .unwrap()
            .into_iter()
            .find(|st| st.ref_ == key)
            .map(|st| st.offset)
            .unwrap_or(0);
        if offset > (1 << 20) {
            break offset;
        }
        assert!(
            Instant::now() < deadline,
            "the child never got 1 MiB into the layer"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the child finished too soon"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(child);
    assert!(killed_at < extra.data.len() as u64);
    drop(store);
    let s = Stores::open(dir);

    // Fetch again (straight from the registry): the big layer resumes where the ingest
    // ended, the rest is there or fetched, and every blob verifies.
    let (res, events) = run_fetch(
        &s,
        &format!("{}/busybox:big", reg.host()),
        &FetchOptions::default(),
    );
    res.unwrap();
    let first = events
        .iter()
        .find(|e| {
            e.ref_ == format!("layer-{}", extra.digest) && e.status == ProgressStatus::Downloading
        })
        .expect("the big layer downloads again");
    assert!(
        first.offset >= killed_at,
        "resumed at {} (the ingest had {killed_at})",
        first.offset
    );
    assert_eq!(
        s.verified_digests(),
        image.blobs().iter().map(|b| b.digest.clone()).collect()
    );
    assert!(s.content().list_statuses(&[]).unwrap().is_empty());
    // The resumed blob is the registry's exactly.
    assert_eq!(
        std::fs::read(s.store.blob_path(&extra.digest.parse().unwrap())).unwrap(),
        extra.data
    );
}

/// `ctr content ls`: digest → labels.
fn ctr_content(c: &common::containerd::Containerd) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = c.ctr(&["content", "ls"]);
    assert!(out.status.success(), "{}", common::containerd::text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let labels = cols
                .last()
                .filter(|_| cols.len() > 3)
                .map(|l| {
                    l.split(',')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Some((cols.first()?.to_string(), labels))
        })
        .collect()
}

#[test]
fn the_same_blobs_and_labels_as_ctr_content_fetch_of_containerd_1_6() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-ctr");
    let image = busybox_layout(tmp.path(), "multi", &["amd64", "arm64"]);
    skopeo_push(&image, &format!("{}/busybox:multi", reg.host()), &[]);
    let reference = format!("{}/busybox:multi", reg.host());

    let s = Stores::new();
    let (res, _) = run_fetch(&s, &reference, &FetchOptions::default());
    res.unwrap();
    let ours = s.verified_digests();

    let c = common::containerd::Containerd::start(common::containerd::Runtime::Runc);
    let before = ctr_content(&c);
    let out = c.ctr(&["content", "fetch", "--plain-http", &reference]);
    assert!(out.status.success(), "{}", common::containerd::text(&out));
    let after = ctr_content(&c);
    let theirs: BTreeSet<String> = after
        .keys()
        .filter(|d| !before.contains_key(*d) || ours.contains(*d))
        .cloned()
        .collect();
    assert_eq!(theirs, ours, "containerd fetched the same blobs");
    for d in &ours {
        assert_eq!(
            after[d],
            s.labels(d),
            "labels of {d} as containerd sets them"
        );
    }
}

#[test]
fn two_fetches_of_one_image_at_once_both_succeed() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-twice");
    let image = busybox_layout_with_extra(tmp.path(), "two", &["amd64"], 2 << 20);
    skopeo_push(&image, &format!("{}/busybox:two", reg.host()), &[]);
    // Slow enough that both are on the big layer at the same time.
    let relay = SlowRelay::start(reg.port, 64 << 10, Duration::from_millis(5));
    let reference = format!("{}/busybox:two", relay.host());
    let s = Stores::new();
    let results: Vec<_> = std::thread::scope(|sc| {
        let a = sc.spawn(|| run_fetch(&s, &reference, &FetchOptions::default()));
        let b = sc.spawn(|| run_fetch(&s, &reference, &FetchOptions::default()));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let mut done = 0;
    for (res, events) in results {
        res.unwrap();
        done += events
            .iter()
            .filter(|e| e.status == ProgressStatus::Done && e.ref_.starts_with("layer-"))
            .count();
    }
    assert_eq!(done, 2, "each layer was downloaded once, by one of the two");
    assert_eq!(
        s.verified_digests(),
        image.blobs().iter().map(|b| b.digest.clone()).collect()
    );
}

/// The most blobs between their first `downloading` and their end at any one time.
fn peak_parallel(events: &[ProgressEvent]) -> usize {
    let mut active = BTreeSet::new();
    let mut peak = 0;
    for e in events {
        match e.status {
            ProgressStatus::Downloading
                if !e.ref_.starts_with("index-") && !e.ref_.starts_with("manifest-") =>
            {
                active.insert(e.ref_.clone());
            }
            ProgressStatus::Done | ProgressStatus::Exists => {
                active.remove(&e.ref_);
            }
            _ => {}
        }
        peak = peak.max(active.len());
    }
    peak
}

/// A blob download's first event: config and layer lines, not the index or manifests.
fn is_blob_start(e: &ProgressEvent) -> bool {
    e.status == ProgressStatus::Downloading
        && e.offset == 0
        && !e.ref_.starts_with("index-")
        && !e.ref_.starts_with("manifest-")
}

#[test]
fn parallel_downloads_are_bounded_by_the_limit() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-fetch-limit");
    let image = busybox_layout_with_extra(tmp.path(), "lim", &["amd64"], 1 << 20);
    skopeo_push(&image, &format!("{}/busybox:lim", reg.host()), &[]);
    let relay = SlowRelay::start(reg.port, 32 << 10, Duration::from_millis(5));
    let reference = format!("{}/busybox:lim", relay.host());
    // Config and two layers: three blobs. How many run at once must not depend on how fast
    // threads get scheduled (a tiny config can finish before a slow machine starts the
    // third thread): each download, as it announces itself, waits (up to 20 s) until
    // `limit` downloads have started. With the limit honoured exactly `limit` are then in
    // flight together; one started past the limit shows as a higher peak.
    for limit in [1, 3] {
        let s = Stores::new();
        let opts = FetchOptions {
            downloads: ocibox::registry::download_limit::DownloadLimit::new(limit),
            ..FetchOptions::default()
        };
        let started = (Mutex::new(0usize), std::sync::Condvar::new());
        let events = Mutex::new(Vec::new());
        let r = Reference::parse_docker_ref(&reference).unwrap();
        let res = fetch(&client(), &s.content(), &r, &opts, &|e: &ProgressEvent| {
            events.lock().unwrap().push(e.clone());
            if is_blob_start(e) {
                let mut n = started.0.lock().unwrap();
                *n += 1;
                started.1.notify_all();
                let _ = started
                    .1
                    .wait_timeout_while(n, Duration::from_secs(20), |n| *n < limit);
            }
        });
        res.unwrap();
        let events = events.into_inner().unwrap();
        assert_eq!(peak_parallel(&events), limit, "limit {limit}");
        assert_eq!(events.iter().filter(|e| is_blob_start(e)).count(), 3);
    }
}
