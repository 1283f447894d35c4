//! Image archives (`ctr image import` / `ctr image export`) beside a real containerd 1.6:
//! archives made by skopeo (`oci-archive:`, `docker-archive:`) from busybox-static images,
//! by `scripts/make-busybox-image.sh` and by `ctr image export` are imported by ocibox and
//! by ctr, which must give the same image names, targets, blobs and gc labels; ocibox's
//! export is imported by ctr and read by skopeo, and matches ctr's own export entry for
//! entry. Hostile archives are refused with a clear error and leave nothing behind.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::containerd::{text, Containerd, Runtime};
use common::registry::*;
use common::TempDir;
use ocibox::archive::{export, import, ExportOptions, ImportOptions, Naming};
use ocibox::content::{Digest, Store};
use ocibox::image::{Matcher, Platform};
use ocibox::metadata::namespaced_content::NamespacedContent;
use ocibox::metadata::{gc, images, leases, Database};

const NS: &str = "default";

struct Stores {
    _dir: TempDir,
    store: Store,
    db: Database,
}

impl Stores {
    fn new() -> Stores {
        let dir = TempDir::new("ocibox-archive");
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
    fn import_file(&self, path: &Path, opts: &ImportOptions) -> anyhow::Result<()> {
        import(&self.content(), std::fs::File::open(path).unwrap(), opts).map(|_| ())
    }
    /// name → (media type, digest)
    fn images(&self) -> BTreeMap<String, (String, String)> {
        self.db
            .view(|v| images::list(v, NS, &[]))
            .unwrap()
            .into_iter()
            .map(|i| (i.name, (i.target.media_type, i.target.digest.to_string())))
            .collect()
    }
    fn labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.content()
            .walk(&[])
            .unwrap()
            .into_iter()
            .map(|r| (r.digest.to_string(), r.labels))
            .collect()
    }
    /// Every blob's digest on disk, each checked to hash to its name.
    fn verified_digests(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.store
            .walk(|info| {
                let data = std::fs::read(self.store.blob_path(&info.digest))?;
                assert_eq!(Digest::of(&data), info.digest, "blob hashes to its name");
                out.insert(info.digest.to_string());
                Ok(())
            })
            .unwrap();
        out
    }
    fn collect_garbage(&self) {
        let now = std::time::SystemTime::now();
        gc::collect(&self.db, &self.store, now, now).unwrap();
    }
    /// Nothing of a failed import is left: no image, no lease, no ingest, and after a
    /// garbage collection no blob.
    fn assert_nothing_left(&self) {
        assert!(self.images().is_empty(), "no image: {:?}", self.images());
        assert!(
            self.db
                .view(|v| leases::list(v, NS, &[]))
                .unwrap()
                .is_empty(),
            "no lease"
        );
        assert!(
            self.content().list_statuses(&[]).unwrap().is_empty(),
            "no ingest"
        );
        self.collect_garbage();
        assert!(self.verified_digests().is_empty(), "no blob after gc");
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    out
}

/// ctr in namespace `ns` of `c`.
fn ctr(c: &Containerd, ns: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("ctr");
    // ctr names imports `import-<local date>`; ocibox uses the UTC date.
    cmd.env("TZ", "UTC")
        .args(["-a", &c.address, "-n", ns])
        .args(args);
    run(&mut cmd)
}

fn ctr_images(c: &Containerd, ns: &str) -> BTreeMap<String, (String, String)> {
    let out = ctr(c, ns, &["image", "ls"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((
                cols.first()?.to_string(),
                (cols.get(1)?.to_string(), cols.get(2)?.to_string()),
            ))
        })
        .collect()
}

fn ctr_labels(c: &Containerd, ns: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = ctr(c, ns, &["content", "ls"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let labels = cols
                .last()
                .filter(|l| cols.len() > 3 && l.contains('='))
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

/// The blobs the images reach through their gc labels, with those labels.
fn reachable(
    images: &BTreeMap<String, (String, String)>,
    labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<String> = images.values().map(|(_, d)| d.clone()).collect();
    while let Some(d) = todo.pop() {
        if out.contains_key(&d) {
            continue;
        }
        let l = labels
            .get(&d)
            .cloned()
            .unwrap_or_else(|| panic!("{d} is not in the store"));
        for (k, v) in &l {
            if k.starts_with("containerd.io/gc.ref.content") {
                todo.push(v.clone());
            }
        }
        out.insert(d, l);
    }
    out
}

/// A fresh namespace of `c` for one comparison.
fn fresh_ns(c: &Containerd, what: &str) -> String {
    format!("{}-{what}", c.namespace)
}

/// Import `archive` with ctr (`--no-unpack`, `flags`) and with ocibox (`opts`), and
/// compare what each made.
fn compare_import(
    c: &Containerd,
    archive: &Path,
    flags: &[&str],
    opts: &ImportOptions,
) -> BTreeMap<String, (String, String)> {
    let ns = fresh_ns(c, &common::unique("imp"));
    let mut args = vec!["image", "import", "--no-unpack"];
    args.extend_from_slice(flags);
    let p = archive.display().to_string();
    args.push(&p);
    ctr(c, &ns, &args);
    let theirs = ctr_images(c, &ns);
    let s = Stores::new();
    s.import_file(archive, opts)
        .unwrap_or_else(|e| panic!("import {p} {flags:?}: {e:#}"));
    let ours = s.images();
    assert_eq!(ours, theirs, "image names and targets of {p} {flags:?}");
    assert!(!ours.is_empty());
    let their_blobs = reachable(&theirs, &ctr_labels(c, &ns));
    let our_blobs = reachable(&ours, &s.labels());
    assert_eq!(
        our_blobs, their_blobs,
        "blobs and gc labels of {p} {flags:?}"
    );
    // No lease is left, and what the images hold survives a garbage collection.
    assert!(s.db.view(|v| leases::list(v, NS, &[])).unwrap().is_empty());
    s.collect_garbage();
    assert_eq!(
        s.verified_digests(),
        our_blobs.keys().cloned().collect::<BTreeSet<_>>(),
        "after gc exactly the images' blobs are left"
    );
    ours
}

struct Archives {
    _tmp: TempDir,
    /// skopeo oci-archive of a linux/amd64 + arm64 busybox index, tag `multi`.
    oci_multi: PathBuf,
    /// skopeo docker-archive of a linux/amd64 busybox, `busybox:latest`.
    docker: PathBuf,
    /// scripts/make-busybox-image.sh (io.containerd.image.name annotation).
    script: PathBuf,
    /// The multi-platform layout tarred by GNU tar (`./`-prefixed names, directories).
    gnu_tar: PathBuf,
}

fn archives() -> Archives {
    let tmp = TempDir::new("ocibox-archive-src");
    let multi = busybox_layout(&tmp.path().join("multi"), "multi", &["amd64", "arm64"]);
    let single = busybox_layout(&tmp.path().join("single"), "one", &["amd64"]);
    let oci_multi = tmp.path().join("multi.tar");
    let docker = tmp.path().join("docker.tar");
    let script = tmp.path().join("script.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--all"])
        .arg(format!("oci:{}:multi", multi.layout.display()))
        .arg(format!("oci-archive:{}:multi", oci_multi.display())));
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:one", single.layout.display()))
        .arg(format!(
            "docker-archive:{}:busybox:latest",
            docker.display()
        )));
    common::make_busybox_image(&script);
    let gnu_tar = tmp.path().join("gnu.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&multi.layout)
        .arg("-cf")
        .arg(&gnu_tar)
        .arg("."));
    Archives {
        _tmp: tmp,
        oci_multi,
        docker,
        script,
        gnu_tar,
    }
}

/// A `docker save` archive of the classic (v1.2) shape, written by hand: two images whose
/// configs share one uncompressed layer, `<id>/layer.tar` of the second a symlink to the
/// first's, v1 `json`/`VERSION` files, `repositories`, three tags.
fn classic_docker_save(dir: &Path) -> PathBuf {
    let image = busybox_layout(&dir.join("classic"), "x", &["amd64"]);
    let layer = std::fs::read(dir.join("classic/layer.tar")).unwrap();
    let (_, _, config) = &image.manifests[0];
    let mut other: serde_json::Value = serde_json::from_slice(&config.data).unwrap();
    other["config"]["Cmd"] = serde_json::json!(["/bin/echo", "hi"]);
    let other = serde_json::to_vec(&other).unwrap();
    let (ca, cb) = (sha256_hex(&config.data), sha256_hex(&other));
    let (ida, idb) = (sha256_hex(b"layer-a"), sha256_hex(b"layer-b"));
    let manifest = serde_json::json!([
        {"Config": format!("{ca}.json"), "RepoTags": ["busybox:latest"], "Layers": [format!("{ida}/layer.tar")]},
        {"Config": format!("{cb}.json"), "RepoTags": ["example.com/x/y:v1", "other:2"], "Layers": [format!("{idb}/layer.tar")]},
    ]);
    let mut b = tar::Builder::new(Vec::new());
    let file = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    for id in [&ida, &idb] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("{id}/"), std::io::empty())
            .unwrap();
        file(&mut b, &format!("{id}/VERSION"), b"1.0");
        file(
            &mut b,
            &format!("{id}/json"),
            format!("{{\"id\":\"{id}\"}}").as_bytes(),
        );
    }
    file(&mut b, &format!("{ida}/layer.tar"), &layer);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(
        &mut h,
        format!("{idb}/layer.tar"),
        format!("../{ida}/layer.tar"),
    )
    .unwrap();
    file(&mut b, &format!("{ca}.json"), &config.data);
    file(&mut b, &format!("{cb}.json"), &other);
    file(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    file(&mut b, "repositories", br#"{"busybox":{"latest":"x"}}"#);
    let out = dir.join("classic.tar");
    std::fs::write(&out, b.into_inner().unwrap()).unwrap();
    out
}

fn today_base() -> String {
    Naming::default_for_today().base
}

#[test]
fn imports_skopeo_and_script_archives_as_ctr_1_6_does() {
    let a = archives();
    let c = Containerd::start(Runtime::Runc);
    let def = ImportOptions::default();

    let got = compare_import(&c, &a.oci_multi, &[], &def);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [&format!("{}:multi", today_base())]
    );
    compare_import(
        &c,
        &a.oci_multi,
        &["--all-platforms"],
        &ImportOptions {
            platforms: Matcher::All,
            ..ImportOptions::default()
        },
    );
    compare_import(
        &c,
        &a.oci_multi,
        &["--platform", "linux/arm64"],
        &ImportOptions {
            platforms: Matcher::only(&Platform::parse("linux/arm64").unwrap()),
            ..ImportOptions::default()
        },
    );
    let mut naming = Naming::with_base_name("example.com/bb");
    naming.digests = true;
    let got = compare_import(
        &c,
        &a.oci_multi,
        &[
            "--base-name",
            "example.com/bb",
            "--digests",
            "--index-name",
            "kept-index",
        ],
        &ImportOptions {
            naming,
            index_name: Some("kept-index".into()),
            ..ImportOptions::default()
        },
    );
    assert!(
        got.contains_key("kept-index") && got.contains_key("example.com/bb:multi"),
        "{got:?}"
    );

    // docker save format: a schema 2 manifest made for it, named from RepoTags.
    let got = compare_import(&c, &a.docker, &[], &def);
    assert!(
        got.contains_key("docker.io/library/busybox:latest"),
        "{got:?}"
    );
    assert_eq!(
        got["docker.io/library/busybox:latest"].0,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let mut naming = Naming::default_for_today();
    naming.digests = true;
    naming.skip_digest_for_named = true;
    compare_import(
        &c,
        &a.docker,
        &["--digests", "--skip-digest-for-named", "--index-name", "ix"],
        &ImportOptions {
            naming,
            index_name: Some("ix".into()),
            ..ImportOptions::default()
        },
    );

    // --compress-blobs: plain layers are stored gzip'd, labelled with their plain digest.
    // flate2's gzip is not Go's, so the compressed digests differ from ctr's; the names,
    // media types and uncompressed labels are the same.
    let ns = fresh_ns(&c, "compress");
    let p = a.docker.display().to_string();
    ctr(
        &c,
        &ns,
        &["image", "import", "--no-unpack", "--compress-blobs", &p],
    );
    let theirs = ctr_images(&c, &ns);
    let s = Stores::new();
    let copts = ImportOptions {
        compress_blobs: true,
        ..ImportOptions::default()
    };
    s.import_file(&a.docker, &copts).unwrap();
    let ours = s.images();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    let name = "docker.io/library/busybox:latest";
    let their_manifest: serde_json::Value =
        serde_json::from_slice(&ctr(&c, &ns, &["content", "get", &theirs[name].1]).stdout).unwrap();
    let our_digest: Digest = ours[name].1.parse().unwrap();
    let our_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store.blob_path(&our_digest)).unwrap()).unwrap();
    let (their_labels, our_labels) = (ctr_labels(&c, &ns), s.labels());
    let uncompressed = |m: &serde_json::Value,
                        labels: &BTreeMap<String, BTreeMap<String, String>>|
     -> Vec<(String, String)> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let d = l["digest"].as_str().unwrap();
                (
                    l["mediaType"].as_str().unwrap().to_owned(),
                    labels[d]["containerd.io/uncompressed"].clone(),
                )
            })
            .collect()
    };
    let ul = uncompressed(&our_manifest, &our_labels);
    assert_eq!(ul, uncompressed(&their_manifest, &their_labels));
    assert_eq!(ul[0].0, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    // Our gzip blob is the plain layer, compressed.
    let gz: Digest = our_manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(s.store.blob_path(&gz)).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(Digest::of(&plain).to_string(), ul[0].1);
    // Imported again without the flag: the compressed blob is found by its label and used.
    s.import_file(&a.docker, &ImportOptions::default()).unwrap();
    assert_eq!(s.images()[name], ours[name]);

    // A classic docker save: shared layer by symlink, several tags, v1 files.
    let tmp = TempDir::new("ocibox-archive-classic");
    let classic = classic_docker_save(tmp.path());
    let got = compare_import(&c, &classic, &[], &def);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [
            "docker.io/library/busybox:latest",
            "docker.io/library/other:2",
            "example.com/x/y:v1"
        ]
    );
    compare_import(
        &c,
        &classic,
        &["--digests", "--index-name", "ix"],
        &ImportOptions {
            naming: Naming {
                digests: true,
                ..Naming::default_for_today()
            },
            index_name: Some("ix".into()),
            ..ImportOptions::default()
        },
    );

    // GNU tar's `./` names are the layout's names.
    let got = compare_import(
        &c,
        &a.gnu_tar,
        &["--all-platforms"],
        &ImportOptions {
            platforms: Matcher::All,
            ..ImportOptions::default()
        },
    );
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [&format!("{}:multi", today_base())]
    );

    // The containerd name annotation is used as it is; --base-name does not filter it.
    let got = compare_import(
        &c,
        &a.script,
        &["--base-name", "other"],
        &ImportOptions {
            naming: Naming::with_base_name("other"),
            ..ImportOptions::default()
        },
    );
    assert!(
        got.contains_key("docker.io/library/busybox:latest"),
        "{got:?}"
    );
}

/// The entries of a tar file: name → bytes.
fn tar_entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    tar_entries_of(&std::fs::read(path).unwrap())
}

fn our_export(s: &Stores, names: &[&str], out: &Path, opts: &ExportOptions) {
    let f = std::fs::File::create(out).unwrap();
    export(&s.content(), names, std::io::BufWriter::new(f), opts).unwrap();
}

#[test]
fn exports_as_ctr_1_6_and_both_read_each_others() {
    let a = archives();
    let c = Containerd::start(Runtime::Runc);
    let tmp = TempDir::new("ocibox-archive-export");
    // The same images on both sides: imported from the same archives.
    let ns = fresh_ns(&c, "exp");
    let s = Stores::new();
    for (p, flags) in [
        (
            &a.oci_multi,
            vec!["--all-platforms", "--base-name", "example.com/bb"],
        ),
        (&a.docker, vec![]),
    ] {
        let mut args = vec!["image", "import", "--no-unpack"];
        args.extend(flags.iter().copied());
        let ps = p.display().to_string();
        args.push(&ps);
        ctr(&c, &ns, &args);
        let naming = if flags.is_empty() {
            Naming::default_for_today()
        } else {
            Naming::with_base_name("example.com/bb")
        };
        let platforms = if flags.is_empty() {
            Matcher::default_for_host()
        } else {
            Matcher::All
        };
        s.import_file(
            p,
            &ImportOptions {
                naming,
                platforms,
                ..ImportOptions::default()
            },
        )
        .unwrap();
    }
    assert_eq!(s.images(), ctr_images(&c, &ns));
    let names = ["example.com/bb:multi", "docker.io/library/busybox:latest"];

    for (flags, opts) in [
        (vec![], ExportOptions::default()),
        (
            vec!["--all-platforms"],
            ExportOptions {
                all_platforms: true,
                ..ExportOptions::default()
            },
        ),
        (
            vec!["--platform", "linux/arm64"],
            ExportOptions {
                platforms: Matcher::from_specifiers(&["linux/arm64"]).unwrap(),
                ..ExportOptions::default()
            },
        ),
        (
            vec!["--skip-manifest-json"],
            ExportOptions {
                skip_manifest_json: true,
                ..ExportOptions::default()
            },
        ),
    ] {
        let theirs = tmp.path().join(common::unique("ctr-export"));
        let ours = tmp.path().join(common::unique("our-export"));
        let mut args = vec!["image", "export"];
        args.extend(flags.iter().copied());
        let ts = theirs.display().to_string();
        args.push(&ts);
        args.extend(names);
        ctr(&c, &ns, &args);
        our_export(&s, &names, &ours, &opts);
        // Entry for entry the same: names, index.json, manifest.json, blobs.
        let (mut t, o) = (tar_entries(&theirs), tar_entries(&ours));
        if opts.skip_manifest_json {
            // Debian's ctr 1.6.20 writes manifest.json even with --skip-manifest-json;
            // ocibox does what the flag says.
            assert!(!o.contains_key("manifest.json"));
            t.remove("manifest.json");
        }
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            t.keys().collect::<Vec<_>>(),
            "{flags:?}"
        );
        for (k, v) in &t {
            if k == "manifest.json" {
                // containerd writes its entries in Go map order (random): compare as sets.
                let set = |b: &[u8]| -> BTreeSet<String> {
                    let v: Vec<serde_json::Value> = serde_json::from_slice(b).unwrap();
                    v.iter().map(|e| e.to_string()).collect()
                };
                assert_eq!(set(&o[k]), set(v), "{flags:?}: manifest.json");
                continue;
            }
            assert!(
                o[k] == *v,
                "{flags:?}: {k} differs:\nours   {}\ntheirs {}",
                String::from_utf8_lossy(&o[k]),
                String::from_utf8_lossy(v)
            );
        }
        // skopeo reads ours (the platform exported; its default is the host's).
        let arch = if flags.contains(&"linux/arm64") {
            "arm64"
        } else {
            "amd64"
        };
        let out = run(Command::new("skopeo")
            .args(["inspect", "--override-arch", arch])
            .arg(format!("oci-archive:{}:multi", ours.display())));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Architecture"], arch, "{v}");

        // ctr imports ours as it imports its own, and ocibox imports ctr's as ctr does.
        let flags_imp: Vec<&str> = if opts.all_platforms {
            vec!["--all-platforms"]
        } else {
            vec![]
        };
        let iopts = ImportOptions {
            platforms: if opts.all_platforms {
                Matcher::All
            } else {
                Matcher::default_for_host()
            },
            ..ImportOptions::default()
        };
        if opts.platforms == Matcher::only_strict(&Platform::host()) {
            let from_ours = compare_import(&c, &ours, &flags_imp, &iopts);
            let from_theirs = compare_import(&c, &theirs, &flags_imp, &iopts);
            assert_eq!(from_ours, from_theirs);
            assert_eq!(
                from_ours.keys().collect::<Vec<_>>(),
                ["docker.io/library/busybox:latest", "example.com/bb:multi"]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile archives

enum Hostile<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A header claiming `size` bytes with the data cut after `have`.
    Truncated(&'a str, u64, &'a [u8]),
    /// A PAX extended header of `size` bytes before a small file.
    PaxHeader(usize),
}

/// A valid OCI layout tar of `image` with a hostile entry appended after it (so blobs
/// were stored before the import meets it).
fn hostile_archive(image: &BusyboxImage, entry: Hostile, skip: Option<&str>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            std::fs::read(image.layout.join("oci-layout")).unwrap(),
        ),
        (
            "index.json".into(),
            std::fs::read(image.layout.join("index.json")).unwrap(),
        ),
    ];
    for blob in image.blobs() {
        files.push((
            format!("blobs/sha256/{}", &blob.digest[7..]),
            blob.data.clone(),
        ));
    }
    for (name, data) in files {
        if Some(name.as_str()) == skip {
            continue;
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &name, data.as_slice()).unwrap();
    }
    let raw_header = |name: &str, kind: tar::EntryType, size: u64, link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        // Written by hand: the tar crate's own setters refuse `..` and absolute names.
        let n = name.as_bytes();
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        h
    };
    match entry {
        Hostile::File(name, data) => {
            let h = raw_header(name, tar::EntryType::Regular, data.len() as u64, None);
            b.append(&h, data).unwrap();
        }
        Hostile::Symlink(name, to) => {
            let h = raw_header(name, tar::EntryType::Symlink, 0, Some(to));
            b.append(&h, std::io::empty()).unwrap();
        }
        Hostile::HardLink(name, to) => {
            let h = raw_header(name, tar::EntryType::Link, 0, Some(to));
            b.append(&h, std::io::empty()).unwrap();
        }
        Hostile::PaxHeader(size) => {
            let h = raw_header("PaxHeaders/x", tar::EntryType::XHeader, size as u64, None);
            b.append(&h, vec![b'a'; size].as_slice()).unwrap();
            let h = raw_header("repositories", tar::EntryType::Regular, 2, None);
            b.append(&h, &b"{}"[..]).unwrap();
        }
        Hostile::Truncated(name, size, have) => {
            let h = raw_header(name, tar::EntryType::Regular, size, None);
            let mut out = b.into_inner().unwrap();
            // Without the two zero blocks that end an archive.
            out.truncate(out.len() - 1024);
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(have);
            return out;
        }
    }
    b.into_inner().unwrap()
}

fn refused(data: &[u8]) -> String {
    let s = Stores::new();
    let e = import(&s.content(), data, &ImportOptions::default())
        .expect_err("a hostile archive is refused");
    s.assert_nothing_left();
    format!("{e:#}")
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let tmp = TempDir::new("ocibox-archive-hostile");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    // The layout itself imports.
    let s = Stores::new();
    import(
        &s.content(),
        hostile_archive(&image, Hostile::File("repositories", b"{}"), None).as_slice(),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(s.images().len(), 1);

    let layer_hex = &image.layer.digest[7..];
    for (entry, skip, want) in [
        (Hostile::File("../escape", b"x"), None, "climbs out"),
        (
            Hostile::File("blobs/sha256/../../../etc/cron.d/x", b"x"),
            None,
            "climbs out",
        ),
        (Hostile::File("/etc/passwd", b"x"), None, "absolute name"),
        (
            Hostile::File("etc/passwd", b"x"),
            None,
            "is not a name of an OCI image layout",
        ),
        (
            Hostile::Symlink("index.json", "/etc/shadow"),
            Some("index.json"),
            "symlink",
        ),
        (
            Hostile::Symlink(
                &format!("blobs/sha256/{layer_hex}"),
                "../../../../etc/passwd",
            ),
            Some(&format!("blobs/sha256/{layer_hex}")),
            "symlink",
        ),
        (
            Hostile::HardLink("blobs/sha256/x", "/etc/passwd"),
            None,
            "hard link",
        ),
        // A docker layer link may only point at another layer of the archive.
        (
            Hostile::Symlink(&format!("{layer_hex}/layer.tar"), "../../../etc/passwd"),
            None,
            "not another layer",
        ),
        (
            Hostile::Symlink(&format!("{layer_hex}/layer.tar"), "/etc/passwd"),
            None,
            "not another layer",
        ),
        // Headers the tar reader would have to buffer: bounded.
        (
            Hostile::PaxHeader(2 << 20),
            None,
            "archive headers exceed the limit",
        ),
    ] {
        let msg = refused(&hostile_archive(&image, entry, skip));
        assert!(msg.contains(want), "want {want:?} in: {msg}");
    }

    // A blob whose bytes are not its name (same length, one byte changed).
    let mut wrong = image.layer.data.clone();
    let mid = wrong.len() / 2;
    wrong[mid] ^= 0xff;
    let name = format!("blobs/sha256/{layer_hex}");
    let msg = refused(&hostile_archive(
        &image,
        Hostile::File(&name, &wrong),
        Some(&name),
    ));
    assert!(msg.contains("does not match its name"), "{msg}");

    // A tar cut in the middle of a blob.
    let msg = refused(&hostile_archive(
        &image,
        Hostile::Truncated(
            &name,
            image.layer.data.len() as u64,
            &image.layer.data[..1000],
        ),
        Some(&name),
    ));
    assert!(msg.contains("truncated"), "{msg}");
    // ... and one cut after the blob, before index.json: no index, not an image.
    let msg = refused(&hostile_archive(
        &image,
        Hostile::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        Some("index.json"),
    ));
    assert!(msg.contains("missing index.json"), "{msg}");

    // index.json over the 4 MiB limit: refused by its header, before it is read.
    let big = vec![b' '; (4 << 20) + 1];
    let msg = refused(&hostile_archive(
        &image,
        Hostile::File("index.json", &big),
        Some("index.json"),
    ));
    assert!(msg.contains("over the limit"), "{msg}");

    let msg = refused(&hostile_archive(
        &image,
        Hostile::File("manifest.json", &big),
        None,
    ));
    assert!(
        msg.contains("manifest.json is") && msg.contains("over the limit"),
        "{msg}"
    );
    let msg = refused(&hostile_archive(
        &image,
        Hostile::File("oci-layout", br#"{"imageLayoutVersion":"9.9.9"}"#),
        Some("oci-layout"),
    ));
    assert!(msg.contains("unsupported OCI version 9.9.9"), "{msg}");

    // A referenced blob missing from the archive.
    let msg = refused(&hostile_archive(
        &image,
        Hostile::File("repositories", b"{}"),
        Some(&name),
    ));
    assert!(msg.contains("not in the archive"), "{msg}");
}

#[test]
fn export_refuses_missing_and_changed_blobs() {
    let tmp = TempDir::new("ocibox-archive-export-bad");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let s = Stores::new();
    import(
        &s.content(),
        hostile_archive(&image, Hostile::File("repositories", b"{}"), None).as_slice(),
        &ImportOptions::default(),
    )
    .unwrap();
    let name = format!("{}:t", today_base());
    let layer: Digest = image.layer.digest.parse().unwrap();
    let path = s.store.blob_path(&layer);
    let good = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    export(&s.content(), &[&name], &mut out, &ExportOptions::default()).unwrap();
    assert!(tar_entries_of(&out).contains_key(&format!("blobs/sha256/{}", layer.encoded())));

    // Bytes changed on disk under the blob's name: caught while copying.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bad).unwrap();
    let e = export(
        &s.content(),
        &[&name],
        &mut Vec::new(),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("unexpected digest"), "{e:#}");

    // A blob gone: refused before a byte is written.
    std::fs::remove_file(&path).unwrap();
    let mut out = Vec::new();
    let e = export(&s.content(), &[&name], &mut out, &ExportOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains(&layer.to_string()), "{e:#}");
    assert!(out.is_empty(), "nothing written");
    // An image that does not exist.
    let e = export(
        &s.content(),
        &["nope:1"],
        &mut Vec::new(),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("nope:1"), "{e:#}");
}

/// The entries of a tar in memory.
fn tar_entries_of(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(data);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

/// A reader that fails after `left` bytes, as a dropped connection or a full pipe would.
struct FailingAfter<R> {
    inner: R,
    left: usize,
}

impl<R: Read> Read for FailingAfter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the source went away"));
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn an_interrupted_import_then_the_next_one_succeeds() {
    let tmp = TempDir::new("ocibox-archive-interrupted");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let data = hostile_archive(&image, Hostile::File("repositories", b"{}"), None);
    let s = Stores::new();
    // Cut in the middle of the layer: refused, no image, no ingest, no lease.
    let e = import(
        &s.content(),
        FailingAfter {
            inner: data.as_slice(),
            left: data.len() / 2,
        },
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("the source went away"), "{e:#}");
    assert!(s.images().is_empty());
    assert!(s.content().list_statuses(&[]).unwrap().is_empty());
    assert!(s.db.view(|v| leases::list(v, NS, &[])).unwrap().is_empty());
    // What a kill -9 leaves: an ingest of the layer with wrong bytes in it.
    let layer_ref = format!("tar-blobs/sha256/{}", &image.layer.digest[7..]);
    let mut w = s
        .content()
        .writer(&layer_ref, image.layer.data.len() as u64, None)
        .unwrap();
    std::io::Write::write_all(&mut w, b"torn garbage").unwrap();
    drop(w);
    assert_eq!(s.content().list_statuses(&[]).unwrap().len(), 1);
    // The next import starts that ingest over and succeeds.
    import(&s.content(), data.as_slice(), &ImportOptions::default()).unwrap();
    assert_eq!(s.images().len(), 1);
    assert!(s.content().list_statuses(&[]).unwrap().is_empty());
    s.collect_garbage();
    let want: BTreeSet<String> = image.blobs().iter().map(|b| b.digest.clone()).collect();
    assert!(s.verified_digests().is_superset(&want));
}
