//! ocibox's ctr `image import|export|push|mount|unmount` and `content fetch`, run beside
//! Debian's ctr 1.6 on one real containerd 1.6 (each in its own namespace), outputs and
//! store results compared (images, content and labels, snapshots, leases, the exported
//! archive's entries); a push to a loopback docker-registry pulled back by Debian's ctr;
//! ctr's messages and exit codes for missing arguments, unknown images and an unreachable
//! registry; and the same commands through ocibox's ctr against ociboxd.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::containerd::{text, with_timeout};
use common::daemons::{busybox_tar, daemon, Case, Which};
use common::no_digests;
use common::registry::{DockerRegistry, RegistryConfig};

const BUSYBOX: &str = "docker.io/library/busybox:latest";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    stdout(o)
}

/// `content ls` as (digest, size, sorted labels) rows: ctr joins labels in Go's map order.
fn content_rows(s: &str) -> BTreeSet<(String, String, Vec<String>)> {
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').filter(|x| !x.is_empty()).collect();
            let labels = f.last()?;
            let mut labels: Vec<String> = labels.split(',').map(str::to_string).collect();
            labels.sort();
            Some((f.first()?.to_string(), f.get(1)?.to_string(), labels))
        })
        .collect()
}

/// The last frame of ctr's progress on a pipe: the lines after the last-but-one footer,
/// each as (ref, status), the footer dropped (times and rates differ).
fn last_frame(s: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = s.lines().collect();
    let footers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("elapsed:"))
        .map(|(i, _)| i)
        .collect();
    let Some(&end) = footers.last() else {
        return Vec::new();
    };
    let start = if footers.len() > 1 {
        footers[footers.len() - 2] + 1
    } else {
        0
    };
    lines[start..end]
        .iter()
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A tar's entries: (name, size, mode, type) in order.
fn tar_entries(data: &[u8]) -> Vec<(String, u64, u32, u8)> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.size().unwrap(),
                h.mode().unwrap(),
                h.entry_type().as_byte(),
            )
        })
        .collect()
}

fn tar_file(data: &[u8], name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(data);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().display().to_string() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in the archive");
}

/// Unmounts its targets on drop (a failing test leaves no mount behind).
struct Mounted(Vec<PathBuf>);

impl Drop for Mounted {
    fn drop(&mut self) {
        for t in &self.0 {
            for _ in 0..16 {
                if nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH).is_err() {
                    break;
                }
            }
        }
    }
}

fn is_mounted(p: &Path) -> bool {
    let p = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// The same command through both ctrs: same exit status, stdout and stderr.
fn same_failure(d: &Case, ns: &str, args: &[&str]) {
    let (own, real) = (d.own(ns, args), d.real(ns, args));
    assert!(
        !real.status.success(),
        "ctr {args:?} succeeded: {}",
        text(&real)
    );
    assert_eq!(
        own.status.code(),
        real.status.code(),
        "{args:?}: {}",
        text(&own)
    );
    assert_eq!(stderr(&own), stderr(&real), "{args:?}");
    assert_eq!(stdout(&own), stdout(&real), "{args:?}");
}

crate::both_daemons!(import_export_mount_beside_ctr);

fn import_export_mount_beside_ctr(which: Which) {
    let d = daemon(which).case("impexp");
    let tar = busybox_tar();
    let tar = tar.to_str().unwrap();
    let (own_ns, real_ns) = (d.sub("own"), d.sub("real"));

    // import: the same lines, images, content labels and snapshots.
    let o = ok(&d.own(&own_ns, &["image", "import", "--index-name", "idx", tar]));
    let r = ok(&d.real(&real_ns, &["image", "import", "--index-name", "idx", tar]));
    assert_eq!(o, r);
    assert!(o.contains(&format!("unpacking {BUSYBOX} (sha256:")), "{o}");
    for args in [
        &["images", "ls"][..],
        &["snapshots", "ls"],
        &["leases", "ls"],
    ] {
        assert_eq!(
            ok(&d.real(&own_ns, args)),
            ok(&d.real(&real_ns, args)),
            "{args:?}"
        );
    }
    assert_eq!(
        content_rows(&ok(&d.real(&own_ns, &["content", "ls"]))),
        content_rows(&ok(&d.real(&real_ns, &["content", "ls"])))
    );

    // import from stdin, no unpack, with digest names under a base name.
    let args = [
        "image",
        "import",
        "--no-unpack",
        "--digests",
        "--base-name",
        "docker.io/library/busybox",
        "-",
    ];
    let piped = |own: bool, ns: &str| {
        let mut cmd = d.cmd(own, ns, &args);
        cmd.stdin(std::fs::File::open(tar).unwrap());
        with_timeout(&mut cmd, Duration::from_secs(60))
    };
    assert_eq!(ok(&piped(true, &own_ns)), ok(&piped(false, &real_ns)));
    let names = ok(&d.real(&own_ns, &["images", "ls", "-q"]));
    assert_eq!(names, ok(&d.real(&real_ns, &["images", "ls", "-q"])));
    assert!(
        names.contains("docker.io/library/busybox@sha256:"),
        "{names}"
    );

    // export: entry for entry what ctr writes, to a file and to stdout.
    let own_tar = d.dir.join("own-export.tar");
    let real_tar = d.dir.join("real-export.tar");
    ok(&d.own(
        &own_ns,
        &["image", "export", own_tar.to_str().unwrap(), BUSYBOX, "idx"],
    ));
    ok(&d.real(
        &real_ns,
        &[
            "image",
            "export",
            real_tar.to_str().unwrap(),
            BUSYBOX,
            "idx",
        ],
    ));
    let (ob, rb) = (
        std::fs::read(&own_tar).unwrap(),
        std::fs::read(&real_tar).unwrap(),
    );
    assert_eq!(tar_entries(&ob), tar_entries(&rb));
    for f in ["index.json", "manifest.json", "oci-layout"] {
        assert_eq!(tar_file(&ob, f), tar_file(&rb, f), "{f}");
    }
    assert!(ob == rb, "the archives differ byte for byte");
    let to_stdout = d.own(
        &own_ns,
        &["image", "export", "--skip-manifest-json", "-", BUSYBOX],
    );
    let rs = d.real(
        &real_ns,
        &["image", "export", "--skip-manifest-json", "-", BUSYBOX],
    );
    assert!(to_stdout.status.success(), "{}", text(&to_stdout));
    // Debian's ctr 1.6.20 writes manifest.json even with --skip-manifest-json (without
    // RepoTags); ocibox leaves it out, as the flag says. Everything else is the same.
    let mut theirs = tar_entries(&rs.stdout);
    theirs.retain(|e| e.0 != "manifest.json");
    assert_eq!(tar_entries(&to_stdout.stdout), theirs);
    // What ocibox exported imports with Debian's ctr.
    let back = d.sub("back");
    ok(&d.real(&back, &["image", "import", own_tar.to_str().unwrap()]));
    let rows = |ns: &str| -> Vec<String> {
        ok(&d.real(ns, &["images", "ls"]))
            .lines()
            .filter(|l| !l.contains('@'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(rows(&back), rows(&real_ns));

    // mount / unmount: the same lines, leases and snapshots; the rootfs is there.
    let own_t = d.dir.join("mnt-own");
    let real_t = d.dir.join("mnt-ctr");
    std::fs::create_dir_all(&own_t).unwrap();
    std::fs::create_dir_all(&real_t).unwrap();
    let _guard = Mounted(vec![own_t.clone(), real_t.clone()]);
    let mount = |own: bool, ns: &str, t: &Path, extra: &[&str]| {
        let mut a = vec!["image", "mount"];
        a.extend_from_slice(extra);
        a.extend([BUSYBOX, t.to_str().unwrap()]);
        ok(&d.run(own, ns, &a)).replace(t.to_str().unwrap(), "TARGET")
    };
    assert_eq!(
        mount(true, &own_ns, &own_t, &[]),
        mount(false, &real_ns, &real_t, &[])
    );
    assert!(is_mounted(&own_t));
    assert!(own_t.join("bin/busybox").exists());
    assert!(
        std::fs::write(own_t.join("x"), b"x").is_err(),
        "a view is read-only"
    );
    // Leases: (ID, labels without the expiry), the target named TARGET.
    let leases = |ns: &str, t: &Path| -> Vec<(String, Vec<String>)> {
        ok(&d.real(ns, &["leases", "ls"]))
            .replace(t.to_str().unwrap(), "TARGET")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let labels = f
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|x| !x.starts_with("containerd.io/gc.expire="))
                    .map(str::to_string)
                    .collect();
                (f.first().unwrap_or(&"").to_string(), labels)
            })
            .collect()
    };
    assert_eq!(
        ok(&d.real(&own_ns, &["snapshots", "ls"])).replace(own_t.to_str().unwrap(), "T"),
        ok(&d.real(&real_ns, &["snapshots", "ls"])).replace(real_t.to_str().unwrap(), "T")
    );
    let own_leases = leases(&own_ns, &own_t);
    assert_eq!(
        own_leases,
        vec![(
            "TARGET".to_string(),
            vec!["containerd.io/gc.ref.snapshot.overlayfs=TARGET".to_string()]
        )]
    );
    assert_eq!(own_leases, leases(&real_ns, &real_t));
    let unmount = |own: bool, ns: &str, t: &Path| {
        ok(&d.run(own, ns, &["image", "unmount", "--rm", t.to_str().unwrap()]))
            .replace(t.to_str().unwrap(), "TARGET")
    };
    assert_eq!(
        unmount(true, &own_ns, &own_t),
        unmount(false, &real_ns, &real_t)
    );
    assert!(!is_mounted(&own_t));
    assert_eq!(
        ok(&d.real(&own_ns, &["snapshots", "ls"])),
        ok(&d.real(&real_ns, &["snapshots", "ls"]))
    );
    assert_eq!(
        ok(&d.real(&own_ns, &["leases", "ls"])),
        "ID CREATED AT LABELS \n"
    );
    // --rw: a writable snapshot.
    mount(true, &own_ns, &own_t, &["--rw"]);
    std::fs::write(own_t.join("written"), b"x").expect("--rw mounts writable");
    assert!(ok(&d.real(&own_ns, &["snapshots", "ls"])).contains("Active"));
    unmount(true, &own_ns, &own_t);
    assert!(!is_mounted(&own_t));

    // ctr's messages and exit codes.
    for args in [
        &["image", "import"][..],
        &["image", "import", "/nonexistent/ocibox.tar"],
        &["image", "import", "--skip-digest-for-named", tar],
        &["image", "import", "--platform", "bad!", tar],
        &["image", "export"],
        &["image", "export", "only-out.tar"],
        &["image", "mount"],
        &["image", "mount", BUSYBOX],
        &["image", "mount", "nosuch:latest", own_t.to_str().unwrap()],
        &[
            "image",
            "mount",
            "--platform",
            "bad!",
            BUSYBOX,
            own_t.to_str().unwrap(),
        ],
        &["image", "unmount"],
    ] {
        same_failure(&d, &own_ns, args);
    }
    // An unknown image to export: ctr's message; the file is made as ctr makes it.
    let (o, r) = (d.dir.join("o.tar"), d.dir.join("r.tar"));
    let oe = d.own(
        &own_ns,
        &["image", "export", o.to_str().unwrap(), "nosuch:latest"],
    );
    let re = d.real(
        &real_ns,
        &["image", "export", r.to_str().unwrap(), "nosuch:latest"],
    );
    assert_eq!(oe.status.code(), re.status.code());
    assert_eq!(stderr(&oe), stderr(&re));
    assert_eq!(o.exists(), r.exists());
    assert_eq!(
        ok(&d.real(&own_ns, &["leases", "ls"])),
        "ID CREATED AT LABELS \n"
    );
}

fn registry() -> DockerRegistry {
    DockerRegistry::start(RegistryConfig {
        htpasswd: None,
        tls: false,
    })
}

crate::both_daemons!(push_fetch_beside_ctr);

fn push_fetch_beside_ctr(which: Which) {
    let d = daemon(which).case("push");
    let reg = registry();
    let tar = busybox_tar();
    let ns = d.sub("src");
    ok(&d.real(&ns, &["image", "import", tar.to_str().unwrap()]));
    let own_ref = format!("{}/ocibox/busybox:latest", reg.host());
    let real_ref = format!("{}/ctr/busybox:latest", reg.host());

    // push: ctr's job lines (layers are not among them in ctr 1.6), every one done.
    let o = ok(&d.own(&ns, &["image", "push", "--plain-http", &own_ref, BUSYBOX]));
    let r = ok(&d.real(&ns, &["image", "push", "--plain-http", &real_ref, BUSYBOX]));
    let (of, rf) = (last_frame(&o), last_frame(&r));
    assert_eq!(of, rf, "own:\n{o}\nreal:\n{r}");
    assert!(of.iter().all(|(_, s)| s == "done"), "{o}");
    assert!(of.iter().any(|(k, _)| k.starts_with("manifest-")), "{o}");
    // Again: everything is on the registry already.
    let again = ok(&d.own(&ns, &["image", "push", "--plain-http", &own_ref, BUSYBOX]));
    assert_eq!(last_frame(&again), rf);

    // Pulled back by Debian's ctr: the digests pushed.
    let back = d.sub("back");
    ok(&d.real(&back, &["image", "pull", "--plain-http", &own_ref]));
    let target = |ns: &str, name: &str| {
        ok(&d.real(ns, &["images", "ls"]))
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(target(&back, &own_ref), target(&ns, BUSYBOX));
    // Every blob pulled back is one the source holds (the source may still hold the
    // import's unreferenced index until containerd's collector runs): manifest, config,
    // layer.
    let pairs = |ns: &str| {
        content_rows(&ok(&d.real(ns, &["content", "ls"])))
            .into_iter()
            .map(|(dg, sz, _)| (dg, sz))
            .collect::<BTreeSet<_>>()
    };
    let (pulled, source) = (pairs(&back), pairs(&ns));
    assert_eq!(pulled.len(), 3, "{pulled:?}");
    assert!(pulled.is_subset(&source), "{pulled:?} not in {source:?}");

    // content fetch: the same image record, blobs and labels, nothing unpacked.
    let (fo, fr) = (d.sub("fetch-own"), d.sub("fetch-real"));
    let o = ok(&d.own(&fo, &["content", "fetch", "--plain-http", &own_ref]));
    let r = ok(&d.real(&fr, &["content", "fetch", "--plain-http", &own_ref]));
    let names = |f: Vec<(String, String)>| f.into_iter().map(|(k, _)| k).collect::<BTreeSet<_>>();
    assert_eq!(
        names(last_frame(&o)),
        names(last_frame(&r)),
        "own:\n{o}\nreal:\n{r}"
    );
    assert_eq!(
        ok(&d.real(&fo, &["images", "ls"])),
        ok(&d.real(&fr, &["images", "ls"]))
    );
    assert_eq!(
        content_rows(&ok(&d.real(&fo, &["content", "ls"]))),
        content_rows(&ok(&d.real(&fr, &["content", "ls"])))
    );
    assert_eq!(
        ok(&d.real(&fo, &["snapshots", "ls"])),
        ok(&d.real(&fr, &["snapshots", "ls"]))
    );

    // ctr's messages and exit codes: missing arguments, unknown image, no registry.
    let dead = "127.0.0.1:1/busybox:latest";
    for args in [
        &["image", "push"][..],
        &["image", "push", "--plain-http", &own_ref, "nosuch:latest"],
        &["content", "fetch"],
    ] {
        same_failure(&d, &ns, args);
    }
    for args in [
        &["image", "push", "--plain-http", dead, BUSYBOX][..],
        &["content", "fetch", "--plain-http", dead],
    ] {
        let (o, r) = (d.own(&ns, args), d.real(&ns, args));
        assert_eq!(o.status.code(), r.status.code(), "{args:?}");
        // Which blob fails first is a race in both (uploads run in parallel).
        let last = |s: String| no_digests(s.lines().last().unwrap_or(""));
        assert_eq!(last(stderr(&o)), last(stderr(&r)), "{args:?}");
    }
}

#[test]
fn image_commands_against_ociboxd() {
    let d = daemon(Which::Ociboxd).case("img");
    let reg = registry();
    let tar = busybox_tar();
    let ns = d.sub("own");

    let o = ok(&d.own(&ns, &["image", "import", tar.to_str().unwrap()]));
    assert!(
        o.starts_with(&format!("unpacking {BUSYBOX} (sha256:")),
        "{o}"
    );
    assert!(o.ends_with("...done\n"), "{o}");
    let ls = ok(&d.real(&ns, &["images", "ls", "-q"]));
    assert_eq!(ls, format!("{BUSYBOX}\n"));
    assert!(ok(&d.real(&ns, &["snapshots", "ls"])).contains("Committed"));

    // export: what the archive held comes back, entry for entry as ctr exports it here.
    let own_tar = d.dir.join("own-export.tar");
    let real_tar = d.dir.join("real-export.tar");
    ok(&d.own(
        &ns,
        &["image", "export", own_tar.to_str().unwrap(), BUSYBOX],
    ));
    ok(&d.real(
        &ns,
        &["image", "export", real_tar.to_str().unwrap(), BUSYBOX],
    ));
    assert_eq!(
        std::fs::read(&own_tar).unwrap(),
        std::fs::read(&real_tar).unwrap()
    );

    // push and fetch back into another namespace.
    let remote = format!("{}/ociboxd/busybox:latest", reg.host());
    let o = ok(&d.own(&ns, &["image", "push", "--plain-http", &remote, BUSYBOX]));
    assert!(last_frame(&o).iter().all(|(_, s)| s == "done"), "{o}");
    let f = d.sub("fetched");
    ok(&d.own(&f, &["content", "fetch", "--plain-http", &remote]));
    let digest = |ns: &str, name: &str| {
        ok(&d.real(ns, &["images", "ls"]))
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert!(!digest(&ns, BUSYBOX).is_empty());
    assert_eq!(digest(&f, &remote), digest(&ns, BUSYBOX));
    assert_eq!(ok(&d.real(&f, &["snapshots", "ls"])), "KEY PARENT KIND \n");

    // mount / unmount.
    let t = d.dir.join("mnt");
    std::fs::create_dir_all(&t).unwrap();
    let _guard = Mounted(vec![t.clone()]);
    let o = ok(&d.own(&ns, &["image", "mount", BUSYBOX, t.to_str().unwrap()]));
    assert!(o.ends_with(&format!("\n{}\n", t.display())), "{o}");
    assert!(t.join("bin/busybox").exists());
    ok(&d.own(&ns, &["image", "unmount", "--rm", t.to_str().unwrap()]));
    assert!(!is_mounted(&t));
    assert!(!ok(&d.real(&ns, &["snapshots", "ls"])).contains(t.to_str().unwrap()));
    assert_eq!(
        ok(&d.real(&ns, &["leases", "ls"])),
        "ID CREATED AT LABELS \n"
    );
}
