//! The whole pull (`ctr image pull` in one call: fetch, streaming parallel unpack into
//! snapshots, image record, all under a lease) against a real docker-registry on 127.0.0.1
//! with skopeo-pushed busybox images (two layers, a three-platform index): the snapshot is
//! mounted for real and holds the files; keys, parents and labels are those real containerd
//! 1.6's `ctr image pull --plain-http` makes of the same image; a lying config (diffID) is
//! refused with nothing committed; kill -9 at three points of a pull, then a second pull
//! completes, resuming what was there, with a clean store and no half snapshot.
//!
//! Killing: the test binary re-runs itself (`--exact pull_child`) with the store and the
//! kill point in its environment; the child's progress callback sends the child SIGKILL
//! when the pull reaches that point, so the kill lands exactly there (a real kill -9: no
//! destructor, no unwinding, the database's lock released by the kernel).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::registry::*;
use common::TempDir;
use ocibox::content::Digest;
use ocibox::image::{Matcher, Platform, Reference};
use ocibox::linux::mount::{mount_all, unmount_all};
use ocibox::metadata::{images, leases};
use ocibox::pull::{pull, ImageRoot, ProgressEvent, ProgressStatus, PullOptions, PullTarget};
use ocibox::pull::{FetchOptions, Pulled};
use ocibox::registry::transport::RetryPolicy;
use ocibox::registry::{ClientOptions, RegistryClient};
use ocibox::snapshot::{Kind, Snapshotter};

const NS: &str = "default";

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

struct Root {
    dir: TempDir,
    root: ImageRoot,
    sn: Snapshotter,
}

impl Root {
    fn new() -> Root {
        Root::open(TempDir::new("ocibox-pull"), "overlayfs")
    }
    fn open(dir: TempDir, snapshotter: &str) -> Root {
        let root = ImageRoot::open(dir.path()).unwrap();
        let sn = root.snapshotter(NS, snapshotter).unwrap();
        Root { dir, root, sn }
    }
    fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> (anyhow::Result<Pulled>, Vec<ProgressEvent>) {
        self.pull_with(reference, opts, &|_| {})
    }
    fn pull_with(
        &self,
        reference: &str,
        opts: &PullOptions,
        hook: &(dyn Fn(&ProgressEvent) + Sync),
    ) -> (anyhow::Result<Pulled>, Vec<ProgressEvent>) {
        let events = Mutex::new(Vec::new());
        let r = Reference::parse_docker_ref(reference).unwrap();
        let target = PullTarget {
            db: &self.root.db,
            store: &self.root.store,
            ns: NS,
            snapshotter: &self.sn,
        };
        let res = pull(&client(), &target, &r, opts, &|e: &ProgressEvent| {
            events.lock().unwrap().push(e.clone());
            hook(e);
        });
        (res, events.into_inner().unwrap())
    }
    /// Every blob's digest, each verified (it hashes to its name, its size is right).
    fn verified_digests(&self) -> BTreeSet<String> {
        let store = &self.root.store;
        let mut out = BTreeSet::new();
        store
            .walk(|info| {
                let data = std::fs::read(store.blob_path(&info.digest))?;
                assert_eq!(Digest::of(&data), info.digest, "blob hashes to its name");
                assert_eq!(data.len() as u64, info.size);
                out.insert(info.digest.to_string());
                Ok(())
            })
            .unwrap();
        out
    }
    fn labels(&self, d: &str) -> BTreeMap<String, String> {
        self.root
            .content(NS)
            .info(&d.parse().unwrap())
            .unwrap()
            .labels
    }
    /// (name, parent, kind, labels) of every snapshot.
    fn snapshots(&self) -> Vec<(String, String, Kind, BTreeMap<String, String>)> {
        let mut v = Vec::new();
        self.sn
            .walk(|i| {
                v.push((i.name.clone(), i.parent.clone(), i.kind, i.labels.clone()));
                Ok(())
            })
            .unwrap();
        v
    }
    fn unpack_leftovers(&self) -> Vec<String> {
        match std::fs::read_dir(self.sn.root().join("unpack")) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
    fn image(&self, name: &str) -> Option<images::Image> {
        self.root.db.view(|v| images::get(v, NS, name)).ok()
    }
    fn leases(&self) -> Vec<leases::Lease> {
        self.root.db.view(|v| leases::list(v, NS, &[])).unwrap()
    }
}

/// Unmounts on drop (also when an assertion fails while mounted).
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_all(&self.0);
    }
}

/// Prepare an active snapshot on `parent`, mount it for real, let `f` look, unmount,
/// remove the snapshot.
fn with_mounted(r: &Root, parent: &str, f: impl FnOnce(&Path)) {
    let key = format!("test-active-{}", std::process::id());
    let mounts = r.sn.prepare(&key, parent, BTreeMap::new()).unwrap();
    let target = r.dir.path().join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    mount_all(&target, &mounts).unwrap();
    {
        let _m = Mounted(target.clone());
        f(&target);
    }
    r.sn.remove(&key).unwrap();
}

fn two_layer_image(reg: &DockerRegistry, tmp: &TempDir, tag: &str, extra: usize) -> BusyboxImage {
    let image = busybox_layout_with_extra(tmp.path(), tag, &["amd64", "arm64", "riscv64"], extra);
    skopeo_push(&image, &format!("{}/busybox:{tag}", reg.host()), &[]);
    image
}

fn extra_file(tmp: &TempDir) -> Vec<u8> {
    std::fs::read(tmp.path().join("extra-rootfs/random.bin")).unwrap()
}

fn last_status(events: &[ProgressEvent], ref_: &str) -> Option<ProgressStatus> {
    events
        .iter()
        .rev()
        .find(|e| e.ref_ == ref_)
        .map(|e| e.status)
}

#[test]
fn pull_mounts_the_image_and_a_second_pull_finds_it_all() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-pull-img");
    let image = two_layer_image(&reg, &tmp, "two", 1 << 20);
    let reference = format!("{}/busybox:two", reg.host());
    let r = Root::new();
    let (res, events) = r.pull(&reference, &PullOptions::default());
    let pulled = res.unwrap();
    assert_eq!(pulled.images.len(), 1, "one platform");
    let img = &pulled.images[0];
    let (_, m, c) = image
        .manifests
        .iter()
        .find(|(a, _, _)| a == "amd64")
        .unwrap();
    assert_eq!(img.manifest.digest.to_string(), m.digest);
    assert_eq!(img.chain_ids.len(), 2);
    let top = img.chain_id().unwrap().to_string();

    // Both layers were streamed into their snapshots: unpacking, downloaded, unpacked.
    let extra = image.extra.as_ref().unwrap();
    for l in [&image.layer, extra] {
        let key = format!("layer-{}", l.digest);
        let seen: Vec<_> = events
            .iter()
            .filter(|e| e.ref_ == key)
            .map(|e| e.status)
            .collect();
        assert!(seen.contains(&ProgressStatus::Unpacking), "{key}: {seen:?}");
        assert!(seen.contains(&ProgressStatus::Done), "{key}: {seen:?}");
        assert_eq!(
            seen.last(),
            Some(&ProgressStatus::Unpacked),
            "{key}: {seen:?}"
        );
    }
    // Committed snapshots by chain ID, parent chained, nothing else; no unpack leftovers,
    // no lease left, the image recorded.
    let snaps = r.snapshots();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let by_name: BTreeMap<_, _> = snaps.iter().map(|s| (s.0.clone(), s.clone())).collect();
    let base = img.chain_ids[0].to_string();
    assert_eq!(by_name[&base].1, "");
    assert_eq!(by_name[&top].1, base);
    assert!(snaps.iter().all(|s| s.2 == Kind::Committed));
    assert!(
        r.unpack_leftovers().is_empty(),
        "{:?}",
        r.unpack_leftovers()
    );
    assert!(r.leases().is_empty(), "the pull's lease is gone");
    assert_eq!(
        r.image(&reference).unwrap().target.digest.to_string(),
        image.top.digest
    );
    assert_eq!(
        r.labels(&c.digest)
            .get("containerd.io/gc.ref.snapshot.overlayfs"),
        Some(&top)
    );
    assert_eq!(
        r.labels(&image.layer.digest)
            .get("containerd.io/uncompressed"),
        Some(&img.diff_ids[0].to_string())
    );

    // Mounted (overlay of the two layers plus an upper): busybox and the random file are
    // there, byte for byte.
    let want_extra = extra_file(&tmp);
    with_mounted(&r, &top, |root| {
        assert_eq!(
            std::fs::read(root.join("bin/busybox")).unwrap(),
            std::fs::read("/bin/busybox").unwrap()
        );
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(std::fs::read(root.join("random.bin")).unwrap(), want_extra);
        let out = Command::new("chroot")
            .arg(root)
            .args(["/bin/sh", "-c", "echo hello from the pulled image"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from the pulled image\n"
        );
    });

    // Again: nothing downloads, nothing unpacks, every layer exists.
    let (res, events) = r.pull(&reference, &PullOptions::default());
    res.unwrap();
    assert!(
        !events.iter().any(|e| matches!(
            e.status,
            ProgressStatus::Downloading | ProgressStatus::Unpacking | ProgressStatus::Done
        )),
        "{events:?}"
    );
    assert_eq!(
        last_status(&events, &format!("layer-{}", extra.digest)),
        Some(ProgressStatus::Exists)
    );
    assert_eq!(r.snapshots().len(), 2);

    // The same image on the native snapshotter of the same root: blobs are in the store,
    // so both layers unpack from there; the copy holds the files too.
    let native = r.root.snapshotter(NS, "native").unwrap();
    let target = PullTarget {
        db: &r.root.db,
        store: &r.root.store,
        ns: NS,
        snapshotter: &native,
    };
    let opts = PullOptions {
        snapshotter: "native".into(),
        ..PullOptions::default()
    };
    let rf = Reference::parse_docker_ref(&reference).unwrap();
    let pulled = pull(&client(), &target, &rf, &opts, &|_| {}).unwrap();
    let top_native = pulled.images[0].chain_id().unwrap().to_string();
    assert_eq!(
        top_native, top,
        "chain IDs do not depend on the snapshotter"
    );
    assert_eq!(
        std::fs::read(native.path_of(&top_native).unwrap().join("random.bin")).unwrap(),
        want_extra
    );
    assert!(native
        .path_of(&top_native)
        .unwrap()
        .join("bin/busybox")
        .exists());
}

#[test]
fn all_platforms_and_one_platform() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-pull-plat");
    let image = two_layer_image(&reg, &tmp, "plat", 0);
    let reference = format!("{}/busybox:plat", reg.host());

    let r = Root::new();
    let opts = PullOptions {
        fetch: FetchOptions {
            platforms: Matcher::only(&Platform::parse("linux/arm64").unwrap()),
            ..FetchOptions::default()
        },
        ..PullOptions::default()
    };
    let pulled = r.pull(&reference, &opts).0.unwrap();
    let (_, m, _) = image
        .manifests
        .iter()
        .find(|(a, _, _)| a == "arm64")
        .unwrap();
    assert_eq!(pulled.images[0].manifest.digest.to_string(), m.digest);

    let r = Root::new();
    let opts = PullOptions {
        fetch: FetchOptions::all_platforms(),
        ..PullOptions::default()
    };
    let pulled = r.pull(&reference, &opts).0.unwrap();
    assert_eq!(pulled.images.len(), 3);
    // One layer shared by all three: one snapshot, unpacked once.
    assert_eq!(r.snapshots().len(), 1);
    assert_eq!(
        r.verified_digests(),
        image.blobs().iter().map(|b| b.digest.clone()).collect()
    );
}

#[test]
fn a_wrong_diff_id_refuses_the_layer_and_commits_nothing_of_it() {
    let tmp = TempDir::new("ocibox-pull-liar");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    // A config whose diffID is not the layer's; a manifest naming it.
    let (_, _, good_config) = &image.manifests[0];
    let mut cfg: serde_json::Value = serde_json::from_slice(&good_config.data).unwrap();
    cfg["rootfs"]["diff_ids"][0] = serde_json::json!(format!("sha256:{}", "ab".repeat(32)));
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = format!("sha256:{}", sha256_hex(&cfg_bytes));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": cfg_bytes.len()},
        "layers": [image.layer.descriptor_json()]
    }))
    .unwrap();
    let layer = image.layer.clone();
    let served = [
        (OCI_CONFIG.to_string(), cfg_digest.clone(), cfg_bytes),
        (
            layer.media_type.clone(),
            layer.digest.clone(),
            layer.data.clone(),
        ),
    ];
    let server = TestServer::start(move |req| {
        let wanted = req.path_only().rsplit('/').next().unwrap_or("").to_string();
        if wanted == "t" || wanted == format!("sha256:{}", sha256_hex(&manifest)) {
            return TestResponse::content(OCI_MANIFEST, &manifest);
        }
        match served.iter().find(|(_, d, _)| *d == wanted) {
            Some((mt, d, data)) => TestResponse::new(200)
                .header("Content-Type", mt)
                .header("Docker-Content-Digest", d)
                .body(data.clone()),
            None => TestResponse::new(404),
        }
    });
    let r = Root::new();
    let reference = format!("{}/busybox:t", server.host());
    let (res, _) = r.pull(&reference, &PullOptions::default());
    let msg = format!("{:#}", res.unwrap_err());
    assert!(
        msg.contains("wrong diff id calculated on extraction"),
        "{msg}"
    );
    let layer_digest: Digest = layer.digest.parse().unwrap();
    assert!(
        !r.root.store.blob_path(&layer_digest).exists(),
        "the layer is not committed"
    );
    assert!(
        r.root.content(NS).list_statuses(&[]).unwrap().is_empty(),
        "its ingest is gone"
    );
    assert!(r.snapshots().is_empty(), "no snapshot");
    assert!(
        r.unpack_leftovers().is_empty(),
        "{:?}",
        r.unpack_leftovers()
    );
    assert!(r.image(&reference).is_none(), "no image");
    assert!(r.leases().is_empty(), "the lease went with the failed pull");
}

// ---------------------------------------------------------------------------------------
// kill -9

/// The child half of the kill tests: pull, and SIGKILL itself at the point
/// `OCIBOX_PULL_KILL_AT` names. A no-op without the parent's environment.
#[test]
fn pull_child() {
    let (Ok(dir), Ok(reference), Ok(at)) = (
        std::env::var("OCIBOX_PULL_CHILD_DIR"),
        std::env::var("OCIBOX_PULL_CHILD_REF"),
        std::env::var("OCIBOX_PULL_KILL_AT"),
    ) else {
        return;
    };
    let big = std::env::var("OCIBOX_PULL_BIG_LAYER").unwrap();
    let small = std::env::var("OCIBOX_PULL_SMALL_LAYER").unwrap();
    let r = Root::open(TempDir(dir.into()), "overlayfs");
    let die = || {
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
    };
    let hook = |e: &ProgressEvent| match at.as_str() {
        // Mid-layer: the big layer streamed 1 MiB into its ingest and its unpack.
        "mid-layer"
            if e.ref_ == big && e.status == ProgressStatus::Downloading && e.offset > (1 << 20) =>
        {
            die()
        }
        // A layer downloaded, unpacked and its blob committed, its snapshot not yet.
        "layer-done" if e.ref_ == small && e.status == ProgressStatus::Done => die(),
        // Every snapshot committed, the image not recorded yet.
        "before-image" if e.ref_ == big && e.status == ProgressStatus::Unpacked => die(),
        _ => {}
    };
    let (res, _) = r.pull_with(&reference, &PullOptions::default(), &hook);
    res.unwrap();
    std::mem::forget(r.dir);
    panic!("the pull finished without reaching the kill point {at}");
}

fn kill_then_pull_again(at: &str) {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-pull-kill");
    let image = two_layer_image(&reg, &tmp, "big", 6 << 20);
    let extra = image.extra.clone().unwrap();
    let big = format!("layer-{}", extra.digest);
    // 64 KiB every 20 ms: ~3 MB/s, two seconds for the big layer.
    let relay = SlowRelay::start(reg.port, 64 << 10, Duration::from_millis(20));
    let dir = TempDir::new("ocibox-pull-kill-root");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pull_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("OCIBOX_PULL_CHILD_DIR", dir.path())
        .env(
            "OCIBOX_PULL_CHILD_REF",
            format!("{}/busybox:big", relay.host()),
        )
        .env("OCIBOX_PULL_KILL_AT", at)
        .env("OCIBOX_PULL_BIG_LAYER", &big)
        .env(
            "OCIBOX_PULL_SMALL_LAYER",
            format!("layer-{}", image.layer.digest),
        )
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "{at}: the child was killed ({status})"
    );
    drop(relay);

    let r = Root::open(dir, "overlayfs");
    let reference = format!("{}/busybox:big", reg.host());
    assert!(
        r.image(&reference).is_none(),
        "{at}: no image before the pull completes"
    );
    // No half snapshot: whatever is there is committed, with its parent there.
    let snaps = r.snapshots();
    let names: BTreeSet<_> = snaps.iter().map(|s| s.0.clone()).collect();
    for s in &snaps {
        assert_eq!(s.2, Kind::Committed, "{at}: {s:?}");
        assert!(s.1.is_empty() || names.contains(&s.1), "{at}: {s:?}");
    }
    let killed_at = r
        .root
        .content(NS)
        .list_statuses(&[])
        .unwrap()
        .into_iter()
        .find(|s| s.ref_ == big)
        .map(|s| s.offset);
    if at == "mid-layer" {
        assert!(
            killed_at.is_some_and(|o| o > 0),
            "{at}: the big layer's ingest is there"
        );
    }
    if at == "before-image" {
        assert_eq!(snaps.len(), 2, "{at}: both snapshots were committed");
    }

    // Pull again, straight from the registry: it completes.
    let (res, events) = r.pull(&reference, &PullOptions::default());
    let pulled = res.unwrap_or_else(|e| panic!("{at}: {e:#}"));
    if let Some(k) = killed_at {
        let first = events
            .iter()
            .find(|e| e.ref_ == big && e.status == ProgressStatus::Downloading)
            .expect("the big layer downloads again");
        assert!(
            first.offset >= k,
            "{at}: resumed at {} (the ingest had {k})",
            first.offset
        );
    }
    if at == "before-image" {
        assert!(
            !events.iter().any(|e| matches!(
                e.status,
                ProgressStatus::Downloading | ProgressStatus::Unpacking
            )),
            "{at}: everything was there: {events:?}"
        );
    }
    assert_eq!(
        r.verified_digests(),
        [
            &image.top,
            &image.manifests[0].1,
            &image.manifests[0].2,
            &image.layer,
            &extra
        ]
        .iter()
        .map(|b| b.digest.clone())
        .collect(),
        "{at}"
    );
    assert!(
        r.root.content(NS).list_statuses(&[]).unwrap().is_empty(),
        "{at}: no ingest left"
    );
    assert!(
        r.unpack_leftovers().is_empty(),
        "{at}: {:?}",
        r.unpack_leftovers()
    );
    assert_eq!(r.snapshots().len(), 2, "{at}");
    assert!(r.image(&reference).is_some(), "{at}");
    let top = pulled.images[0].chain_id().unwrap().to_string();
    let want_extra = extra_file(&tmp);
    with_mounted(&r, &top, |root| {
        assert_eq!(
            std::fs::read(root.join("random.bin")).unwrap(),
            want_extra,
            "{at}"
        );
        assert!(root.join("bin/busybox").exists(), "{at}");
    });
    // The killed pull's lease is still there (it expires in a day); the new one is gone.
    assert_eq!(r.leases().len(), 1, "{at}");
}

#[test]
fn kill_9_mid_layer_then_pull_again_resumes() {
    kill_then_pull_again("mid-layer");
}

#[test]
fn kill_9_after_a_layer_is_unpacked_then_pull_again_completes() {
    kill_then_pull_again("layer-done");
}

#[test]
fn kill_9_before_the_image_record_then_pull_again_completes() {
    kill_then_pull_again("before-image");
}

// ---------------------------------------------------------------------------------------
// Beside containerd 1.6

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

/// `ctr snapshot info KEY`: (parent, kind, labels).
fn ctr_snapshot(
    c: &common::containerd::Containerd,
    key: &str,
) -> (String, String, BTreeMap<String, String>) {
    let out = c.ctr(&["snapshot", "info", key]);
    assert!(out.status.success(), "{}", common::containerd::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    (
        v["Parent"].as_str().unwrap_or_default().to_owned(),
        v["Kind"].as_str().unwrap_or_default().to_owned(),
        labels,
    )
}

#[test]
fn the_same_snapshots_keys_and_labels_as_ctr_image_pull_of_containerd_1_6() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-pull-ctr");
    let image = two_layer_image(&reg, &tmp, "ctr", 256 << 10);
    let reference = format!("{}/busybox:ctr", reg.host());

    // As 1.6's ctr: no snapshot.ref label (see PullOptions::snapshot_ref_label).
    let as_ctr = PullOptions {
        snapshot_ref_label: false,
        ..PullOptions::default()
    };
    let r = Root::new();
    let pulled = r.pull(&reference, &as_ctr).0.unwrap();
    let ours = r.verified_digests();
    // By default, the label containerd's unpacker (client.Pull) sets, and nothing else.
    let r_default = Root::new();
    r_default
        .pull(&reference, &PullOptions::default())
        .0
        .unwrap();
    for ((n, p, k, mut l), theirs) in r_default.snapshots().into_iter().zip(r.snapshots()) {
        assert_eq!(
            l.remove("containerd.io/snapshot.ref").as_deref(),
            Some(n.as_str())
        );
        assert_eq!((n, p, k, l), theirs);
    }

    let c = common::containerd::Containerd::start(common::containerd::Runtime::Runc);
    let before = ctr_content(&c);
    let out = c.ctr(&["image", "pull", "--plain-http", &reference]);
    assert!(out.status.success(), "{}", common::containerd::text(&out));
    let after = ctr_content(&c);
    let theirs: BTreeSet<String> = after
        .keys()
        .filter(|d| !before.contains_key(*d) || ours.contains(*d))
        .cloned()
        .collect();
    assert_eq!(theirs, ours, "containerd pulled the same blobs");
    for d in &ours {
        assert_eq!(
            after[d],
            r.labels(d),
            "labels of {d} as containerd sets them"
        );
    }
    // The snapshots: same names (chain IDs), parents, kinds and labels.
    let img = &pulled.images[0];
    assert_eq!(r.snapshots().len(), 2);
    for (name, parent, kind, labels) in r.snapshots() {
        assert!(img.chain_ids.iter().any(|c| c.to_string() == name));
        let (their_parent, their_kind, their_labels) = ctr_snapshot(&c, &name);
        assert_eq!(their_parent, parent, "parent of {name}");
        assert_eq!(
            their_kind.to_lowercase(),
            format!("{kind:?}").to_lowercase()
        );
        assert_eq!(their_labels, labels, "labels of snapshot {name}");
    }
    // ctr's image record points at the same target.
    let out = c.ctr(&["image", "ls", "-q"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == reference));
    assert_eq!(
        r.image(&reference).unwrap().target.digest.to_string(),
        image.top.digest
    );
}
