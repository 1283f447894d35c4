//! ociboxd's store services (Content, Images, Snapshots, Diff) as a user of Debian's real
//! `ctr` (containerd 1.6) sees them, each case run against ociboxd and against a real
//! containerd 1.6 in a namespace of its own, the outputs compared after normalising ages,
//! times and ids: `ctr content …`, `ctr image pull --plain-http` from a loopback
//! docker-registry (ctr 1.6 pulls client-side: Content.Write, Leases, Images, Snapshots,
//! Diff.Apply), `ctr image …`, `ctr image import/export`, `ctr snapshots …`, and the mounts
//! `ctr snapshots mounts` prints, really mounted. Hostile input through a Rust client: a
//! Write with a wrong digest commits nothing, a client that disappears mid-Write leaves an
//! ingest the next Write resumes.

mod common;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::containerd::{Containerd, Runtime};
use common::ociboxd::Ociboxd;
use common::registry::{
    busybox_layout, busybox_layout_with_extra, sha256_hex, skopeo_push, DockerRegistry,
};
use common::TempDir;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::content::v1 as ct;

/// The namespace both daemons are driven in (containerd's fixture imported an image into
/// its own namespace, which this test leaves alone).
const NS: &str = "stores-test";

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Collapse a table's column padding and the ages ctr prints (`Less than a second`,
/// `3 seconds`), which depend on timing; label lists (`a=1,b=2`, printed in Go's random
/// map order) sorted.
fn norm(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l.replace("Less than a second", "<age>");
            let words: Vec<&str> = l.split_whitespace().collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if i + 1 < words.len()
                    && words[i].parse::<u64>().is_ok()
                    && words[i + 1].starts_with("second")
                {
                    out.push("<age>".to_string());
                    i += 2;
                } else {
                    out.push(sort_labels(words[i]));
                    i += 1;
                }
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sort_labels(w: &str) -> String {
    if !w.contains('=') {
        return w.to_string();
    }
    // ctr stamps gc.root with the time it ran.
    let mut parts: Vec<&str> = w
        .split(',')
        .map(|p| {
            if p.starts_with("containerd.io/gc.root=") {
                "containerd.io/gc.root=<time>"
            } else {
                p
            }
        })
        .collect();
    parts.sort_unstable();
    parts.join(",")
}

/// One daemon ctr can talk to: its socket.
struct Target {
    address: String,
    what: &'static str,
}

impl Target {
    fn of_ociboxd(d: &Ociboxd) -> Target {
        Target {
            address: d.address.display().to_string(),
            what: "ociboxd",
        }
    }
    fn of_containerd(c: &Containerd) -> Target {
        Target {
            address: c.address.clone(),
            what: "containerd",
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.address, "-n", NS]).args(args);
        c.stdin(Stdio::null());
        c
    }
    fn ctr(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run ctr")
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(o.status.success(), "{} {args:?}: {}", self.what, text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn ctr_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run ctr");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
    /// Wait until `ctr args` prints only its header (garbage collection is asynchronous).
    fn wait_empty(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.ok(args);
            if out.lines().count() <= 1 || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Unmounts a directory when dropped (a test that fails leaves no mount behind).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Run the `mount …` command `ctr snapshots mounts` printed, onto `target`.
fn run_mount_line(line: &str, target: &Path) -> Unmount {
    std::fs::create_dir_all(target).unwrap();
    let guard = Unmount(target.to_path_buf());
    let st = Command::new("sh").arg("-c").arg(line).status().unwrap();
    assert!(st.success(), "{line}");
    guard
}

fn both() -> (Ociboxd, Containerd) {
    (Ociboxd::start(), Containerd::start(Runtime::Own))
}

#[test]
fn content_commands_match_containerd() {
    let (d, c) = both();
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let data = b"hello stores\n";
        let dg = format!("sha256:{}", sha256_hex(data));
        let o = t.ctr_stdin(&["content", "ingest", "ref-1"], data);
        assert!(o.status.success(), "{}: {}", t.what, text(&o));
        let mut v = vec![norm(&t.ok(&["content", "ls"]))];
        v.push(t.ok(&["content", "get", &dg]));
        v.push(norm(&t.ok(&["content", "label", &dg, "a=1", "b=2"])));
        v.push(norm(&t.ok(&["content", "ls"])));
        v.push(norm(&t.ok(&["content", "label", &dg, "a="])));
        v.push(norm(&t.ok(&["content", "ls", "-q"])));
        v.push(norm(&t.ok(&["content", "active"])));
        // A second ingest of the same bytes: nothing new.
        let o = t.ctr_stdin(&["content", "ingest", "ref-2"], data);
        v.push(format!("again {}", o.status.success()));
        let o = t.ctr(&[
            "content",
            "get",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ]);
        v.push(format!(
            "missing {} {}",
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
        v.push(t.ok(&["content", "rm", &dg]));
        v.push(norm(&t.ok(&["content", "ls"])));
        let o = t.ctr(&["content", "get", &dg]);
        v.push(format!("after rm {}", o.status.success()));
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
    assert!(seen[0][3].contains("a=1,b=2"), "{:?}", seen[0]);
}

#[test]
fn pull_from_a_registry_unpacks_and_mounts_like_containerd() {
    let (d, c) = both();
    let reg = DockerRegistry::start(Default::default());
    let work = TempDir::new("stores-pull");
    let img = busybox_layout(work.path(), "1", &["amd64"]);
    let name = format!("{}/busybox:1", reg.host());
    skopeo_push(&img, &name, &[]);
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let out = t.ok(&["image", "pull", "--plain-http", &name]);
        assert!(out.contains("unpacking linux/amd64"), "{}: {out}", t.what);
        let mut v = vec![norm(&t.ok(&["image", "ls"]))];
        v.push(norm(&t.ok(&["image", "check"])));
        let snaps = norm(&t.ok(&["snapshots", "ls"]));
        let chain = snaps
            .lines()
            .nth(1)
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("{}: no snapshot after pull: {snaps}", t.what))
            .to_string();
        v.push(snaps);
        v.push(norm(&t.ok(&["content", "ls"])));

        // The unpacked layer, under a writable snapshot, really mounted.
        t.ok(&["snapshots", "prepare", "rw-test", &chain]);
        v.push(norm(&t.ok(&["snapshots", "tree"])));
        let target = work.path().join(format!("mnt-{}", t.what));
        let line = t.ok(&["snapshots", "mounts", target.to_str().unwrap(), "rw-test"]);
        {
            let _m = run_mount_line(line.trim(), &target);
            let bb = std::fs::metadata(target.join("bin/busybox")).unwrap();
            assert_eq!(
                bb.len(),
                std::fs::metadata("/bin/busybox").unwrap().len(),
                "{}",
                t.what
            );
            assert_eq!(
                std::fs::read_link(target.join("bin/sh")).unwrap(),
                Path::new("busybox")
            );
            std::fs::write(target.join("written"), b"x").unwrap();
        }
        let usage = norm(&t.ok(&["snapshots", "usage", "rw-test"]));
        v.push(usage.lines().next().unwrap_or("").to_string());
        let info = t.ok(&["snapshots", "info", "rw-test"]);
        v.push(
            info.lines()
                .filter(|l| {
                    !l.contains("\"Created\"")
                        && !l.contains("\"Updated\"")
                        && !l.contains("gc.root")
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        t.ok(&["snapshots", "rm", "rw-test"]);

        v.push(t.ok(&["image", "tag", &name, "example.com/tagged:2"]));
        v.push(norm(&t.ok(&["image", "label", &name, "x=y"])));
        v.push(norm(&t.ok(&["image", "ls", "-q"])));
        v.push(norm(&t.ok(&["image", "ls", "labels.x==y"])));
        t.ok(&["image", "rm", &name, "example.com/tagged:2"]);
        v.push(norm(&t.ok(&["image", "ls"])));
        // Garbage collection takes the blobs and the unpacked snapshot.
        v.push(norm(&t.wait_empty(&["content", "ls"])));
        v.push(norm(&t.wait_empty(&["snapshots", "ls"])));
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
}

#[test]
fn two_layer_pull_into_native_and_overlayfs_matches_containerd() {
    let (d, c) = both();
    let reg = DockerRegistry::start(Default::default());
    let work = TempDir::new("stores-pull2");
    let img = busybox_layout_with_extra(work.path(), "2", &["amd64"], 256 << 10);
    let name = format!("{}/busybox:2", reg.host());
    skopeo_push(&img, &name, &[]);
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let mut v = Vec::new();
        for sn in ["native", "overlayfs"] {
            t.ok(&["image", "pull", "--plain-http", "--snapshotter", sn, &name]);
            let snaps = norm(&t.ok(&["snapshots", "--snapshotter", sn, "ls"]));
            // The top layer's chain ID: the one snapshot with a parent.
            let top = snaps
                .lines()
                .skip(1)
                .find(|l| l.split(' ').count() == 3)
                .and_then(|l| l.split(' ').next())
                .unwrap_or_else(|| panic!("{} {sn}: no two layers: {snaps}", t.what))
                .to_string();
            v.push(snaps);
            // `prepare` (ctr labels it gc.root; a view it does not, and ociboxd collects
            // right after the pull's lease goes, containerd only later).
            t.ok(&["snapshots", "--snapshotter", sn, "prepare", "look", &top]);
            let target = work.path().join(format!("mnt-{}-{sn}", t.what));
            let line = t.ok(&[
                "snapshots",
                "--snapshotter",
                sn,
                "mounts",
                target.to_str().unwrap(),
                "look",
            ]);
            {
                let _m = run_mount_line(line.trim(), &target);
                assert_eq!(
                    std::fs::metadata(target.join("random.bin")).unwrap().len(),
                    256 << 10,
                    "{} {sn}",
                    t.what
                );
                assert!(target.join("bin/busybox").exists(), "{} {sn}", t.what);
            }
            t.ok(&["snapshots", "--snapshotter", sn, "rm", "look"]);
            t.ok(&["image", "rm", &name]);
        }
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
}

#[test]
fn import_and_export_match_containerd() {
    let (d, c) = both();
    let work = TempDir::new("stores-import");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let out = t.ok(&["image", "import", archive.to_str().unwrap()]);
        let mut v = vec![out];
        v.push(norm(&t.ok(&["image", "ls"])));
        v.push(norm(&t.ok(&["image", "check"])));
        v.push(norm(&t.ok(&["snapshots", "ls"])));
        let exported = work.path().join(format!("export-{}.tar", t.what));
        t.ok(&[
            "image",
            "export",
            exported.to_str().unwrap(),
            "docker.io/library/busybox:latest",
        ]);
        let list = ok(Command::new("tar")
            .arg("tf")
            .arg(&exported)
            .output()
            .unwrap());
        let mut names: Vec<&str> = list.lines().collect();
        names.sort_unstable();
        v.push(names.join("\n"));
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
    // The same archive into a second namespace: its blobs are on disk already (ctr 1.6
    // commits them naming no digest), yet the namespace must get its own records.
    let mut again = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let ctr = |args: &[&str]| {
            let o = Command::new("ctr")
                .args(["-a", &t.address, "-n", "stores-import-2"])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(o.status.success(), "{} {args:?}: {}", t.what, text(&o));
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let mut v = vec![ctr(&["image", "import", archive.to_str().unwrap()])];
        // (Not `content ls`: ociboxd keeps the import's unreferenced index blobs until its
        // next collection; containerd drops them when ctr deletes the import's lease. The
        // README lists this.)
        v.push(norm(&ctr(&["image", "check"])));
        ctr(&["image", "rm", "docker.io/library/busybox:latest"]);
        again.push(v);
    }
    assert_eq!(again[0], again[1], "ociboxd (left) vs containerd (right)");
}

#[test]
fn snapshot_commands_match_containerd() {
    let (d, c) = both();
    let work = TempDir::new("stores-snap");
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let mut v = Vec::new();
        t.ok(&["snapshots", "prepare", "base-active"]);
        let target = work.path().join(format!("m-{}", t.what));
        let line = t.ok(&[
            "snapshots",
            "mounts",
            target.to_str().unwrap(),
            "base-active",
        ]);
        {
            let _m = run_mount_line(line.trim(), &target);
            std::fs::write(target.join("file"), b"layer one\n").unwrap();
        }
        t.ok(&["snapshots", "commit", "base", "base-active"]);
        t.ok(&["snapshots", "prepare", "child", "base"]);
        t.ok(&["snapshots", "view", "look", "base"]);
        let line = t.ok(&["snapshots", "mounts", target.to_str().unwrap(), "look"]);
        {
            let _m = run_mount_line(line.trim(), &target);
            assert_eq!(std::fs::read(target.join("file")).unwrap(), b"layer one\n");
            assert!(
                std::fs::write(target.join("other"), b"x").is_err(),
                "{}: a view is read-only",
                t.what
            );
        }
        v.push(norm(&t.ok(&["snapshots", "ls"])));
        v.push(norm(&t.ok(&["snapshots", "tree"])));
        v.push(norm(&t.ok(&["snapshots", "label", "base", "k=v"])));
        let info = t.ok(&["snapshots", "info", "base"]);
        v.push(
            info.lines()
                .filter(|l| !l.contains("\"Created\"") && !l.contains("\"Updated\""))
                .filter(|l| !l.contains("gc.root"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        for (what, args) in [
            ("dup", vec!["snapshots", "prepare", "child", "base"]),
            ("rm parent", vec!["snapshots", "rm", "base"]),
            ("no parent", vec!["snapshots", "prepare", "x", "nope"]),
            ("commit view", vec!["snapshots", "commit", "y", "look"]),
        ] {
            let o = t.ctr(&args);
            v.push(format!("{what}: {}", o.status.success()));
        }
        let usage = norm(&t.ok(&["snapshots", "usage", "base"]));
        v.push(usage);
        // The view goes first: the diff below runs under a lease whose deletion triggers a
        // collection on ociboxd, and a view has no gc.root label (containerd collects it
        // on its next collection too, which a lease deletion does not start at once).
        t.ok(&["snapshots", "rm", "look"]);
        // A layer of a child's changes (Diff.Diff): an added file, a whiteout, a change.
        let line = t.ok(&["snapshots", "mounts", target.to_str().unwrap(), "child"]);
        {
            let _m = run_mount_line(line.trim(), &target);
            std::fs::write(target.join("added"), b"new\n").unwrap();
            std::fs::create_dir(target.join("dir")).unwrap();
            std::fs::write(target.join("dir/inner"), b"inner\n").unwrap();
            std::fs::remove_file(target.join("file")).unwrap();
        }
        let o = t.cmd(&["snapshots", "diff", "child"]).output().unwrap();
        assert!(o.status.success(), "{}: {}", t.what, text(&o));
        let layer = work.path().join(format!("diff-{}.tgz", t.what));
        std::fs::write(&layer, &o.stdout).unwrap();
        let list = ok(Command::new("tar").arg("tzf").arg(&layer).output().unwrap());
        let mut names: Vec<&str> = list.lines().map(|l| l.trim_end_matches('/')).collect();
        names.sort_unstable();
        v.push(names.join(" "));
        let extracted = work.path().join(format!("x-{}", t.what));
        std::fs::create_dir_all(&extracted).unwrap();
        ok(Command::new("tar")
            .arg("xzf")
            .arg(&layer)
            .arg("-C")
            .arg(&extracted)
            .output()
            .unwrap());
        v.push(std::fs::read_to_string(extracted.join("dir/inner")).unwrap());
        t.ok(&["snapshots", "rm", "child"]);
        t.ok(&["snapshots", "rm", "base"]);
        v.push(norm(&t.ok(&["snapshots", "ls"])));
        // The native snapshotter: a bind of a full copy.
        t.ok(&["snapshots", "--snapshotter", "native", "prepare", "n1"]);
        let line = t.ok(&[
            "snapshots",
            "--snapshotter",
            "native",
            "mounts",
            target.to_str().unwrap(),
            "n1",
        ]);
        // `mount -t bind <root>/…/snapshots/<n> <target> -o …`: the roots differ.
        v.push(
            line.split(' ')
                .enumerate()
                .filter(|(i, _)| *i != 4)
                .map(|(_, w)| w.split_once("/root/").map_or(w, |(_, rest)| rest))
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_string(),
        );
        v.push(norm(&t.ok(&["snapshots", "--snapshotter", "native", "ls"])));
        t.ok(&["snapshots", "--snapshotter", "native", "rm", "n1"]);
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
    assert!(
        std::fs::read_dir(
            d.root()
                .join("io.containerd.snapshotter.v1.overlayfs/snapshots")
        )
        .unwrap()
        .next()
        .is_none(),
        "removed snapshots leave no directory"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile writers, through the API

/// A request stream the test feeds by hand.
struct Feed(tokio::sync::mpsc::Receiver<ct::WriteContentRequest>);

impl tonic::codegen::tokio_stream::Stream for Feed {
    type Item = ct::WriteContentRequest;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn with_ns<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    ocibox::api::namespace::set(&mut r, NS).unwrap();
    r
}

async fn client(addr: &str) -> ct::content_client::ContentClient<UnixChannel> {
    let ch = UnixChannel::connect(Path::new(addr)).await.unwrap();
    ct::content_client::ContentClient::with_origin(ch, origin())
}

fn req(action: ct::WriteAction, r: &str) -> ct::WriteContentRequest {
    ct::WriteContentRequest {
        action: action as i32,
        r#ref: r.into(),
        ..Default::default()
    }
}

#[test]
fn hostile_writes_commit_nothing_and_interrupted_ones_resume() {
    let (d, c) = both();
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let data = b"0123456789abcdef".to_vec();
        let good = format!("sha256:{}", sha256_hex(&data));
        let wrong = format!("sha256:{}", sha256_hex(b"something else"));
        let v = runtime().block_on(async {
            let mut v = Vec::new();
            let mut cl = client(&t.address).await;

            // A commit whose digest is wrong: an error, and no blob.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(ct::WriteContentRequest {
                data: data.clone(),
                total: data.len() as i64,
                expected: wrong.clone(),
                ..req(ct::WriteAction::Commit, "wrong-digest")
            })
            .await
            .unwrap();
            drop(tx);
            let r = match cl.write(with_ns(Feed(rx))).await {
                Ok(resp) => resp.into_inner().message().await.map(|_| ()),
                Err(s) => Err(s),
            };
            let code = r.err().map(|s| s.code());
            v.push(format!("wrong digest: {code:?}"));
            let info = cl
                .info(with_ns(ct::InfoRequest {
                    digest: data_digest(&data),
                }))
                .await;
            v.push(format!(
                "blob after wrong digest: {:?}",
                info.err().map(|s| s.code())
            ));

            // A writer that goes away after 6 bytes.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(ct::WriteContentRequest {
                data: data[..6].to_vec(),
                total: data.len() as i64,
                expected: good.clone(),
                ..req(ct::WriteAction::Write, "resume-me")
            })
            .await
            .unwrap();
            let mut resp = cl.write(with_ns(Feed(rx))).await.unwrap().into_inner();
            let first = resp.message().await.unwrap().unwrap();
            v.push(format!("first write offset {}", first.offset));
            drop(tx);
            drop(resp);
            v
        });
        // The daemon notices the client is gone and keeps the ingest.
        let deadline = Instant::now() + Duration::from_secs(10);
        let active = loop {
            let a = norm(&t.ok(&["content", "active"]));
            if a.contains("resume-me") || Instant::now() > deadline {
                break a;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut v = v;
        // Ingests come in no particular order (containerd's in directory order).
        let mut rows: Vec<String> = active
            .lines()
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect();
        rows.sort();
        v.push(rows.join("\n"));
        let more = runtime().block_on(async {
            let mut v = Vec::new();
            let mut cl = client(&t.address).await;
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(req(ct::WriteAction::Stat, "resume-me"))
                .await
                .unwrap();
            let mut resp = cl.write(with_ns(Feed(rx))).await.unwrap().into_inner();
            let st = resp.message().await.unwrap().unwrap();
            v.push(format!("resumed at {} of {}", st.offset, st.total));
            // A write at an offset that is not the ingest's is refused.
            tx.send(ct::WriteContentRequest {
                offset: 3,
                data: b"x".to_vec(),
                ..req(ct::WriteAction::Write, "resume-me")
            })
            .await
            .unwrap();
            let e = resp.message().await.err().map(|s| s.code());
            v.push(format!("bad offset: {e:?}"));
            drop(tx);

            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(req(ct::WriteAction::Stat, "resume-me"))
                .await
                .unwrap();
            let mut resp = cl.write(with_ns(Feed(rx))).await.unwrap().into_inner();
            let st = resp.message().await.unwrap().unwrap();
            tx.send(ct::WriteContentRequest {
                offset: st.offset,
                data: data[st.offset as usize..].to_vec(),
                total: data.len() as i64,
                expected: good.clone(),
                // Held by a root label: unreferenced content may be collected any time.
                labels: [("containerd.io/gc.root".to_string(), "test".to_string())].into(),
                ..req(ct::WriteAction::Commit, "resume-me")
            })
            .await
            .unwrap();
            let done = resp.message().await.unwrap().unwrap();
            v.push(format!(
                "committed {} at {}",
                done.digest == good,
                done.offset
            ));
            drop(tx);

            // Writing what the namespace holds: AlreadyExists, at once.
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.send(ct::WriteContentRequest {
                total: data.len() as i64,
                expected: good.clone(),
                ..req(ct::WriteAction::Stat, "again")
            })
            .await
            .unwrap();
            let r = match cl.write(with_ns(Feed(rx))).await {
                Ok(resp) => resp.into_inner().message().await.map(|_| ()),
                Err(s) => Err(s),
            };
            v.push(format!("existing: {:?}", r.err().map(|s| s.code())));
            v
        });
        v.extend(more);
        v.push(t.ok(&["content", "get", &good]));
        v.push(norm(&t.ok(&["content", "active"])));
        seen.push(v);
    }
    assert_eq!(seen[0], seen[1], "ociboxd (left) vs containerd (right)");
    assert!(seen[0][1].contains("NotFound"), "{:?}", seen[0]);
}

fn data_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

// ---------------------------------------------------------------------------------------
// Events

/// `ctr events` on `t`, its lines' `<namespace> <topic>` as they arrive.
fn subscribe(t: &Target) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new("ctr")
        .args(["-a", &t.address, "events", &format!("namespace=={NS}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            // `2026-12-02 03:04:05.123456789 +0000 UTC ns /topic {json}`
            let w: Vec<&str> = l.splitn(7, ' ').collect();
            let line = format!("{} {}", w.get(4).unwrap_or(&""), w.get(5).unwrap_or(&""));
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // ctr subscribes after it starts; give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    (child, rx)
}

#[test]
fn store_changes_publish_containerds_events() {
    let (d, c) = both();
    let work = TempDir::new("stores-events");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    // ctr 1.6 cannot decode /content/create (containerd 1.7's event): a Rust subscriber
    // sees ociboxd's topics whole.
    let api_topics = api_subscribe(&Target::of_ociboxd(&d));
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let (mut child, rx) = subscribe(&t);
        let data = b"event bytes\n";
        let dg = format!("sha256:{}", sha256_hex(data));
        assert!(t
            .ctr_stdin(&["content", "ingest", "ev-1"], data)
            .status
            .success());
        t.ok(&["content", "rm", &dg]);
        t.ok(&["snapshots", "prepare", "ev-a"]);
        t.ok(&["snapshots", "commit", "ev-b", "ev-a"]);
        t.ok(&["snapshots", "rm", "ev-b"]);
        t.ok(&["image", "import", "--no-unpack", archive.to_str().unwrap()]);
        t.ok(&["image", "label", "docker.io/library/busybox:latest", "e=1"]);
        t.ok(&["image", "rm", "docker.io/library/busybox:latest"]);
        let mut v = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(l) => v.push(l),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if v.iter().any(|l| l.ends_with("/images/delete")) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        seen.push(v);
    }
    let own = &seen[0];
    // containerd 1.6 publishes no /content/create (ociboxd does, as 1.7); leases are
    // daemon-core's and their events the same on both.
    let without_create: Vec<&String> = own
        .iter()
        .filter(|l| !l.ends_with("/content/create"))
        .collect();
    let real: Vec<&String> = seen[1].iter().collect();
    assert_eq!(without_create, real, "ociboxd (left) vs containerd (right)");
    let mut topics = Vec::new();
    while let Ok(t) = api_topics.recv_timeout(Duration::from_secs(2)) {
        topics.push(t);
    }
    for want in [
        "/content/create",
        "/content/delete",
        "/snapshot/prepare",
        "/snapshot/commit",
        "/snapshot/remove",
        "/images/create",
        "/images/update",
        "/images/delete",
    ] {
        assert!(
            topics.iter().any(|t| t == want),
            "{want} missing from {topics:?}"
        );
    }
}

/// Events.Subscribe through the API (filtered to the test's namespace): the topics.
fn api_subscribe(t: &Target) -> std::sync::mpsc::Receiver<String> {
    use ocibox::api::services::events::v1 as ev;
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let addr = t.address.clone();
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let ch = UnixChannel::connect(Path::new(&addr)).await.unwrap();
            let mut cl = ev::events_client::EventsClient::with_origin(ch, origin());
            let mut sub = cl
                .subscribe(ev::SubscribeRequest {
                    filters: vec![format!("namespace=={NS}")],
                })
                .await
                .unwrap()
                .into_inner();
            let _ = ready_tx.send(());
            while let Ok(Some(e)) = sub.message().await {
                if tx.send(e.topic).is_err() {
                    break;
                }
            }
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    rx
}

/// A request in namespace `ns`.
fn in_ns<T>(msg: T, ns: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    ocibox::api::namespace::set(&mut r, ns).unwrap();
    r
}

/// One Write session of `msgs` in `ns`: every answer (offset, total), or the error.
async fn write_session(
    cl: &mut ct::content_client::ContentClient<UnixChannel>,
    ns: &str,
    msgs: Vec<ct::WriteContentRequest>,
) -> Result<Vec<(i64, i64)>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    for m in msgs {
        tx.send(m).await.unwrap();
    }
    drop(tx);
    let mut resp = cl.write(in_ns(Feed(rx), ns)).await?.into_inner();
    let mut seen = Vec::new();
    while let Some(m) = resp.message().await? {
        seen.push((m.offset, m.total));
    }
    Ok(seen)
}

/// Bytes one namespace committed, written again in a second namespace (containerd's
/// shared content policy, its default): the second writer opens with nothing to write
/// (a stat answers offset = size), and its commit adds the blob with the labels the
/// commit names. Then Images Create and Update with targets containerd refuses, and its
/// words for each, compared with a real containerd 1.6.
#[test]
fn shared_blobs_and_image_targets_as_containerd() {
    use ocibox::api::services::images::v1 as im;
    use ocibox::api::types::Descriptor;
    let (d, c) = both();
    let mut seen = Vec::new();
    for t in [Target::of_ociboxd(&d), Target::of_containerd(&c)] {
        let data = b"shared between namespaces".to_vec();
        let dg = data_digest(&data);
        let labels = |k: &str| std::collections::HashMap::from([(k.to_string(), "1".to_string())]);
        let v = runtime().block_on(async {
            let mut v = Vec::new();
            let mut cl = client(&t.address).await;
            let first = write_session(
                &mut cl,
                NS,
                vec![ct::WriteContentRequest {
                    data: data.clone(),
                    total: data.len() as i64,
                    expected: dg.clone(),
                    labels: labels("first"),
                    ..req(ct::WriteAction::Commit, "shared-1")
                }],
            )
            .await;
            v.push(format!("first commit: {:?}", first.map(|_| ())));
            let second = write_session(
                &mut cl,
                "stores-test-b",
                vec![
                    ct::WriteContentRequest {
                        total: data.len() as i64,
                        expected: dg.clone(),
                        ..req(ct::WriteAction::Stat, "shared-2")
                    },
                    // As ctr's content.Copy after that stat: nothing left to write, the
                    // commit at the writer's offset.
                    ct::WriteContentRequest {
                        total: data.len() as i64,
                        offset: data.len() as i64,
                        expected: dg.clone(),
                        labels: labels("second"),
                        ..req(ct::WriteAction::Commit, "shared-2")
                    },
                ],
            )
            .await;
            v.push(format!(
                "second session: {:?}",
                second.map(|s| s.first().copied())
            ));
            let info = cl
                .info(in_ns(
                    ct::InfoRequest { digest: dg.clone() },
                    "stores-test-b",
                ))
                .await
                .map(|i| {
                    let mut l: Vec<String> =
                        i.into_inner().info.unwrap().labels.into_keys().collect();
                    l.sort();
                    l
                });
            v.push(format!(
                "labels in the second namespace: {:?}",
                info.map_err(|s| s.code())
            ));

            let ch = UnixChannel::connect(Path::new(&t.address)).await.unwrap();
            let mut images = im::images_client::ImagesClient::with_origin(ch, origin());
            let good = Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: dg.clone(),
                size: data.len() as i64,
                ..Default::default()
            };
            let targets = [
                None,
                Some(Descriptor::default()),
                Some(Descriptor {
                    digest: "sha256:abc".into(),
                    ..good.clone()
                }),
                Some(Descriptor {
                    digest: "md5:abc".into(),
                    ..good.clone()
                }),
                Some(Descriptor {
                    size: 0,
                    ..good.clone()
                }),
                Some(Descriptor {
                    media_type: String::new(),
                    ..good.clone()
                }),
                Some(good.clone()),
            ];
            for target in targets {
                let r = images
                    .create(in_ns(
                        im::CreateImageRequest {
                            image: Some(im::Image {
                                name: "validated:1".into(),
                                target,
                                ..Default::default()
                            }),
                            source_date_epoch: None,
                        },
                        NS,
                    ))
                    .await;
                v.push(format!(
                    "create: {:?}",
                    r.map(|_| ())
                        .map_err(|s| (s.code(), s.message().to_string()))
                ));
            }
            for (name, target) in [("validated:1", None), ("nosuch:1", None)] {
                let r = images
                    .update(in_ns(
                        im::UpdateImageRequest {
                            image: Some(im::Image {
                                name: name.into(),
                                target,
                                ..Default::default()
                            }),
                            update_mask: None,
                            source_date_epoch: None,
                        },
                        NS,
                    ))
                    .await;
                v.push(format!(
                    "update {name}: {:?}",
                    r.map(|_| ())
                        .map_err(|s| (s.code(), s.message().to_string()))
                ));
            }
            let _ = images
                .delete(in_ns(
                    im::DeleteImageRequest {
                        name: "validated:1".into(),
                        sync: false,
                        target: None,
                    },
                    NS,
                ))
                .await;
            v
        });
        seen.push((t.what, v));
    }
    let (ours, theirs) = (&seen[0].1, &seen[1].1);
    assert!(
        theirs.contains(&"labels in the second namespace: Ok([\"second\"])".to_string()),
        "{theirs:#?}"
    );
    assert_eq!(ours, theirs);
}
