//! ociboxd's Transfer and Streaming services (containerd 1.7's server-side pull, import
//! and export), driven by ocibox's ctl (`ctr image pull` switches to Transfer when the
//! daemon's Introspection lists it) and by a Rust client of the API, and judged by what
//! Debian's real `ctr` (containerd 1.6, which pulls client-side) sees:
//!
//! - a pull of busybox and of a two-layer image through Transfer leaves the same image,
//!   content (labels included) and snapshots as ctr 1.6's client-side pull into a second
//!   ociboxd; the image runs (`ctr run --rm`); the progress lines are ctr's;
//! - `--user` credentials reach an htpasswd registry through the auth stream; a wrong
//!   password fails with the registry's refusal and commits nothing;
//! - an archive imported and exported through Transfer (byte streams with windows) gives
//!   what `ctr image import` / `export` give;
//! - a client killed mid-pull leaves a healthy daemon: a second pull completes, and once
//!   the image is removed garbage collection leaves no blob, snapshot, ingest, lease or
//!   snapshot directory behind.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::ociboxd::Ociboxd;
use common::registry::{
    busybox_layout, busybox_layout_with_extra, skopeo_push, DockerRegistry, RegistryConfig,
    SlowRelay,
};
use common::TempDir;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::transfer::v1::transfer_client::TransferClient;
use ocibox::api::services::transfer::v1::TransferRequest;
use ocibox::api::types::transfer::{
    Data, ImageExportStream, ImageImportStream, ImageReference, ImageStore, UnpackConfiguration,
    WindowUpdate,
};
use ocibox::api::types::Platform;
use ocibox::api::typeurl;
use ocibox::ctl::pull_client::Session;
use ocibox::ctl::pull_transfer::open_stream;

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

/// Column padding collapsed, ages (`Less than a second`, `3 seconds`) replaced, label
/// lists sorted (Go prints maps in random order), ctr's gc.root time stamp cut.
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
                    let mut parts: Vec<&str> = words[i].split(',').collect();
                    if words[i].contains('=') {
                        parts.sort_unstable();
                    }
                    out.push(parts.join(","));
                    i += 1;
                }
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What Debian's ctr sees of a daemon's stores.
fn stores(d: &Ociboxd) -> Vec<String> {
    vec![
        norm(&ok(d.ctr(&["image", "ls"]))),
        norm(&ok(d.ctr(&["content", "ls"]))),
        norm(&ok(d.ctr(&["snapshots", "ls"]))),
    ]
}

/// Wait until `ctr args` prints only its header (collection is asynchronous).
fn wait_empty(d: &Ociboxd, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = ok(d.ctr(args));
        if out.lines().count() <= 1 || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pull's output reduced to its last progress frame, as (ref, status) pairs sorted, the
/// footer's and the unpack lines' first word.
fn last_frame(out: &str) -> Vec<String> {
    let lines: Vec<&str> = out.lines().collect();
    let footers: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("elapsed:"))
        .collect();
    let start = match footers.len() {
        0 | 1 => 0,
        n => footers[n - 2] + 1,
    };
    let (mut frame, mut rest) = (Vec::new(), Vec::new());
    let mut in_frame = true;
    for l in &lines[start..] {
        let w: Vec<&str> = l.split_whitespace().collect();
        if in_frame
            && w.first()
                .is_some_and(|f| f.ends_with(':') && *f != "elapsed:")
        {
            // ctr 1.6 prints `exists` for a blob already in the store only when its 100 ms
            // ticker looked at the job before the pull finished, `done` otherwise: on
            // loopback either can come out, so the two count as one here.
            let status = match w.get(1) {
                Some(&"exists") => "done",
                s => s.unwrap_or(&""),
            };
            frame.push(format!("{} {status}", w[0]));
        } else {
            in_frame = false;
            // `unpacking linux/amd64 sha256:…...`, `done:`, `elapsed:`.
            rest.push(w.iter().take(3).copied().collect::<Vec<_>>().join(" "));
        }
    }
    frame.sort();
    rest.retain(|l| !l.starts_with("elapsed:") && !l.starts_with("done:"));
    frame.extend(rest);
    frame
}

/// The transfer lines ociboxd logged (proof the pull ran in the daemon).
fn transfers_logged(d: &Ociboxd) -> usize {
    d.log().matches("transfer: pull ").count()
}

#[test]
fn ctl_pull_through_transfer_matches_ctr_client_side_pull_and_runs() {
    let via_transfer = Ociboxd::start();
    let client_side = Ociboxd::start();
    let reg = DockerRegistry::start(Default::default());
    let work = TempDir::new("transfer-pull");
    let one = busybox_layout(work.path().join("one").as_path(), "1", &["amd64"]);
    let two = busybox_layout_with_extra(
        work.path().join("two").as_path(),
        "2",
        &["amd64"],
        300 << 10,
    );
    let names = [
        format!("{}/busybox:1", reg.host()),
        format!("{}/busybox:2", reg.host()),
    ];
    skopeo_push(&one, &names[0], &[]);
    skopeo_push(&two, &names[1], &[]);

    for name in &names {
        let out = ok(via_transfer.own_ctr(&["image", "pull", "--plain-http", name]));
        // ctr's plain progress lines (no cursor codes on a pipe), then the unpack lines.
        assert!(!out.contains("\x1b[1A"), "{out}");
        assert!(out.contains(&format!("{name}:")), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("layer-sha256:") && l.contains(" done ")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("manifest-sha256:") && l.contains(" done ")),
            "{out}"
        );
        assert!(out.lines().any(|l| l.starts_with("elapsed: ")), "{out}");
        assert!(out.contains("unpacking linux/amd64 sha256:"), "{out}");
        assert!(
            out.lines().last().unwrap_or("").starts_with("done: "),
            "{out}"
        );
        if name == &names[1] {
            // busybox:2 shares its base layer with busybox:1: the daemon knows it was
            // there and says so (ctr 1.6 does too when its ticker sees it in time).
            assert!(
                out.lines()
                    .any(|l| l.starts_with("layer-sha256:") && l.contains(" exists ")),
                "{out}"
            );
        }
        let real = ok(client_side.ctr(&["image", "pull", "--plain-http", name]));
        // The last frame's lines (ref and status; ctr adds them from concurrent handlers,
        // so sorted) and what follows it: the same as ctr 1.6's client-side pull draws.
        assert_eq!(
            last_frame(&out),
            last_frame(&real),
            "own:\n{out}\nctr:\n{real}"
        );
    }
    assert_eq!(transfers_logged(&via_transfer), 2, "{}", via_transfer.log());
    assert_eq!(transfers_logged(&client_side), 0);
    let seen = [stores(&via_transfer), stores(&client_side)];
    assert_eq!(
        seen[0], seen[1],
        "Transfer (left) vs ctr 1.6 client-side (right)"
    );
    assert_eq!(
        seen[0][2].lines().count(),
        1 + 2,
        "two chains:\n{}",
        seen[0][2]
    );

    // The pulled image runs.
    let run = via_transfer.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.ocibox.v2",
        &names[1],
        "transfer-run",
        "sh",
        "-c",
        "echo hi; ls -l /random.bin",
    ]);
    let out = ok(run);
    assert!(out.starts_with("hi\n"), "{out}");
    assert!(out.contains(&(300 << 10).to_string()), "{out}");
}

#[test]
fn local_flag_and_client_side_flags_pull_client_side() {
    let d = Ociboxd::start();
    let reg = DockerRegistry::start(Default::default());
    let work = TempDir::new("transfer-local");
    let img = busybox_layout(work.path(), "1", &["amd64"]);
    let name = format!("{}/busybox:1", reg.host());
    skopeo_push(&img, &name, &[]);
    ok(d.own_ctr(&["image", "pull", "--plain-http", "--local", &name]));
    let out = ok(d.own_ctr(&["image", "pull", "--plain-http", "--print-chainid", &name]));
    assert!(out.contains("image chain ID: sha256:"), "{out}");
    assert_eq!(transfers_logged(&d), 0, "{}", d.log());
}

#[test]
fn user_credentials_go_through_the_auth_stream() {
    let d = Ociboxd::start();
    let reg = DockerRegistry::start(RegistryConfig {
        htpasswd: Some(("tuser".into(), "tpass".into())),
        tls: false,
    });
    let work = TempDir::new("transfer-auth");
    let img = busybox_layout(work.path(), "1", &["amd64"]);
    let name = format!("{}/secret:1", reg.host());
    skopeo_push(&img, &name, &["--dest-creds", "tuser:tpass"]);

    // Without credentials and with a wrong password: the registry's refusal, nothing kept.
    for user in [None, Some("tuser:wrong")] {
        let mut args = vec!["image", "pull", "--plain-http"];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.push(&name);
        let o = d.own_ctr(&args);
        assert!(!o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(
            err.starts_with("ctr: ") && (err.contains("401") || err.contains("unauthorized")),
            "{}",
            text(&o)
        );
        assert_eq!(ok(d.ctr(&["image", "ls", "-q"])), "", "no image");
        assert_eq!(ok(d.ctr(&["content", "ls", "-q"])), "", "no blob");
        assert_eq!(
            ok(d.ctr(&["snapshots", "ls"])).lines().count(),
            1,
            "no snapshot"
        );
        assert_eq!(ok(d.ctr(&["leases", "ls", "-q"])), "", "no lease left");
    }
    assert_eq!(transfers_logged(&d), 2);

    let out = ok(d.own_ctr(&[
        "image",
        "pull",
        "--plain-http",
        "--user",
        "tuser:tpass",
        &name,
    ]));
    assert!(out.contains("unpacking linux/amd64"), "{out}");
    assert_eq!(ok(d.ctr(&["image", "ls", "-q"])).trim(), name);
    assert_eq!(ok(d.ctr(&["snapshots", "ls"])).lines().count(), 2);
}

// ---------------------------------------------------------------------------------------
// Import and export through a Rust client

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn session(d: &Ociboxd) -> Session {
    let ch = UnixChannel::connect(&d.address).await.unwrap();
    Session::new(ch, &d.namespace)
}

async fn transfer(
    s: &Session,
    src: prost_types::Any,
    dst: prost_types::Any,
) -> Result<(), tonic::Status> {
    let mut c = TransferClient::with_origin(s.channel.clone(), origin());
    c.transfer(s.req(TransferRequest {
        source: Some(src),
        destination: Some(dst),
        options: None,
    }))
    .await
    .map(|_| ())
}

/// Import `archive` through Transfer: its bytes sent as containerd's `SendStream` sends
/// them (32 KiB `Data` messages, only within the window the daemon opens).
async fn import_via_transfer(
    s: &Session,
    archive: &Path,
    store: ImageStore,
) -> Result<(), tonic::Status> {
    let id = "import-test-stream";
    let mut st = open_stream(s, id).await.unwrap();
    let bytes = std::fs::read(archive).unwrap();
    let pump = tokio::spawn(async move {
        let mut window: i64 = 0;
        let mut sent = 0usize;
        let mut messages = 0usize;
        while sent < bytes.len() {
            while window <= 0 {
                let a = st.rx.message().await.unwrap().expect("a window update");
                window += i64::from(typeurl::unpack::<WindowUpdate>(&a).unwrap().update);
            }
            let n = (bytes.len() - sent).min(32 << 10).min(window as usize);
            let data = Data {
                data: bytes[sent..sent + n].to_vec(),
            };
            st.tx.send(typeurl::pack(&data)).await.unwrap();
            sent += n;
            window -= n as i64;
            messages += 1;
        }
        // Closing our side is the end of the archive; the daemon's side stays open (as Go's
        // `SendStream` keeps receiving) until the import is done with the stream.
        drop(st.tx);
        while let Ok(Some(_)) = st.rx.message().await {}
        messages
    });
    let r = transfer(
        s,
        typeurl::pack(&ImageImportStream {
            stream: id.into(),
            ..Default::default()
        }),
        typeurl::pack(&store),
    )
    .await;
    let messages = pump.await.unwrap();
    assert!(
        messages > 2,
        "the archive went in several window-bounded messages"
    );
    r
}

/// Export `name` through Transfer, receiving as containerd's `ReceiveStream` does.
async fn export_via_transfer(s: &Session, name: &str) -> Vec<u8> {
    let id = "export-test-stream";
    let mut st = open_stream(s, id).await.unwrap();
    let pump = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut window: i64 = 0;
        loop {
            if window < 64 << 10 {
                let _ = st
                    .tx
                    .send(typeurl::pack(&WindowUpdate { update: 64 << 10 }))
                    .await;
                window += 64 << 10;
            }
            match st.rx.message().await {
                Ok(Some(a)) => {
                    let d = typeurl::unpack::<Data>(&a).unwrap();
                    assert!(d.data.len() <= 32 << 10);
                    window -= d.data.len() as i64;
                    assert!(window >= 0, "the daemon sent beyond the window");
                    out.extend_from_slice(&d.data);
                }
                Ok(None) => break,
                Err(e) => panic!("export stream failed: {e}"),
            }
        }
        out
    });
    transfer(
        s,
        typeurl::pack(&ImageStore {
            name: name.into(),
            ..Default::default()
        }),
        typeurl::pack(&ImageExportStream {
            stream: id.into(),
            ..Default::default()
        }),
    )
    .await
    .expect("export through Transfer");
    pump.await.unwrap()
}

fn tar_names(archive: &Path) -> String {
    let list = ok(Command::new("tar").arg("tf").arg(archive).output().unwrap());
    let mut names: Vec<&str> = list.lines().collect();
    names.sort_unstable();
    names.join("\n")
}

#[test]
fn import_and_export_through_transfer_match_ctr() {
    let via_transfer = Ociboxd::start();
    let by_ctr = Ociboxd::start();
    let work = TempDir::new("transfer-import");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    let day = ok(Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap());
    let base = format!("import-{}", day.trim());

    let rt = runtime();
    rt.block_on(async {
        let s = session(&via_transfer).await;
        // As ctr 1.7 names an import without --base-name: `WithNamedPrefix(import-<day>, true)`.
        let store = ImageStore {
            extra_references: vec![ImageReference {
                name: base.clone(),
                is_prefix: true,
                allow_overwrite: true,
                ..Default::default()
            }],
            // ctr 1.7 unpacks for the host platform into the default snapshotter.
            unpacks: vec![UnpackConfiguration {
                platform: Some(Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    ..Default::default()
                }),
                snapshotter: String::new(),
            }],
            ..Default::default()
        };
        import_via_transfer(&s, &archive, store)
            .await
            .expect("import through Transfer");
        // A stream nobody opened: containerd's NotFound.
        let missing = transfer(
            &s,
            typeurl::pack(&ImageImportStream {
                stream: "never-opened".into(),
                ..Default::default()
            }),
            typeurl::pack(&ImageStore::default()),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
        // A pair nothing implements: Unimplemented, with containerd's words.
        let odd = transfer(&s, typeurl::empty(), typeurl::empty())
            .await
            .unwrap_err();
        assert_eq!(odd.code(), tonic::Code::Unimplemented, "{odd:?}");
        assert!(
            odd.message()
                .starts_with("method Transfer not implemented for"),
            "{odd:?}"
        );
    });
    ok(by_ctr.ctr(&["image", "import", archive.to_str().unwrap()]));
    let seen = [stores(&via_transfer), stores(&by_ctr)];
    assert_eq!(
        seen[0], seen[1],
        "Transfer import (left) vs ctr import (right)"
    );
    assert!(
        seen[0][0].contains("docker.io/library/busybox:latest"),
        "{:?}",
        seen[0]
    );

    let name = "docker.io/library/busybox:latest";
    let exported = rt.block_on(async {
        let s = session(&via_transfer).await;
        export_via_transfer(&s, name).await
    });
    let mine = work.path().join("transfer-export.tar");
    std::fs::write(&mine, &exported).unwrap();
    let theirs = work.path().join("ctr-export.tar");
    ok(by_ctr.ctr(&["image", "export", theirs.to_str().unwrap(), name]));
    assert_eq!(tar_names(&mine), tar_names(&theirs));
    let index = |p: &Path| {
        ok(Command::new("tar")
            .arg("xOf")
            .arg(p)
            .arg("index.json")
            .output()
            .unwrap())
    };
    assert_eq!(index(&mine), index(&theirs));
    // The archive exported through Transfer imports with ctr, into a daemon of its own
    // (ociboxd's Content service refuses, today, a client-side import into a namespace
    // of a blob another namespace holds: a separate issue).
    let fresh = Ociboxd::start();
    ok(fresh.ctr(&["image", "import", mine.to_str().unwrap()]));
    assert!(ok(fresh.ctr(&["image", "ls", "-q"])).contains(name));
    assert_eq!(ok(fresh.ctr(&["snapshots", "ls"])).lines().count(), 2);
}

#[test]
fn client_killed_mid_pull_leaves_a_healthy_daemon_and_no_orphans() {
    let d = Ociboxd::start();
    let reg = DockerRegistry::start(Default::default());
    let work = TempDir::new("transfer-kill");
    let img = busybox_layout_with_extra(work.path(), "3", &["amd64"], 512 << 10);
    let direct = format!("{}/busybox:3", reg.host());
    skopeo_push(&img, &direct, &[]);
    let relay = SlowRelay::start(reg.port, 16 << 10, Duration::from_millis(40));
    let slow = format!("{}/busybox:3", relay.host());

    let mut child = Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args(["ctr", "-a"])
        .arg(&d.address)
        .args(["-n", &d.namespace, "image", "pull", "--plain-http", &slow])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a download is under way in the daemon.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let active = ok(d.ctr(&["content", "active"]));
        if active.lines().count() > 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no download started:\n{}",
            d.log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The daemon answers, and a second pull (straight from the registry) completes.
    ok(d.ctr(&["version"]));
    let out = ok(d.own_ctr(&["image", "pull", "--plain-http", &direct]));
    assert!(out.contains("unpacking linux/amd64"), "{out}");
    let run = ok(d.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.ocibox.v2",
        &direct,
        "transfer-kill-run",
        "ls",
        "/random.bin",
    ]));
    assert_eq!(run.trim(), "/random.bin");

    // The abandoned pull finishes or goes: wait for its lease to be gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok(d.ctr(&["leases", "ls", "-q"])).trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "a lease stays:\n{}",
            ok(d.ctr(&["leases", "ls"]))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for name in ok(d.ctr(&["image", "ls", "-q"])).lines() {
        ok(d.ctr(&["image", "rm", name]));
    }
    assert_eq!(wait_empty(&d, &["content", "ls"]).lines().count(), 1);
    assert_eq!(wait_empty(&d, &["snapshots", "ls"]).lines().count(), 1);
    assert_eq!(
        ok(d.ctr(&["content", "active"])).lines().count(),
        1,
        "no ingest left"
    );
    for sn in ["overlayfs", "native"] {
        let dir = d
            .root()
            .join(format!("io.containerd.snapshotter.v1.{sn}/snapshots"));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{sn}: snapshot directories left: {left:?}");
    }
}
