//! ocibox's ctr beside Debian's ctr on the same daemon, once on a private real containerd
//! 1.6 and once on ociboxd (tests/common/daemons.rs, namespaces per case): `image pull` from a loopback docker-registry (progress, content labels, image
//! record, snapshots), `run` (output, exit status, `--rm` cleanup, stdin EOF), `container
//! create` (the spec ctr builds from the image and its flags), the `task` commands on a
//! detached task (`ls`, `ps`, `metrics` table and JSON, `exec`, `pause`/`resume`, `kill`,
//! `delete`), `shim state`, and `run -t` through a pty (window size, exit status).
//! Outputs are compared after normalising ids, times, pids, numbers and digests only.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::containerd::text;
use common::daemons::{daemon, Case, Which};
use common::registry::{busybox_layout, skopeo_push, DockerRegistry, RegistryConfig};
use common::{no_digests, TempDir};

/// A case on a shared daemon with a loopback registry serving the busybox image.
struct Fixture {
    c: Case,
    _reg: DockerRegistry,
    _layout: TempDir,
    image: String,
}

impl Fixture {
    fn start(which: Which, tag: &str) -> Fixture {
        let c = daemon(which).case(tag);
        let reg = DockerRegistry::start(RegistryConfig {
            htpasswd: None,
            tls: false,
        });
        let layout = TempDir::new("ocibox-ctl-run-layout");
        let img = busybox_layout(layout.path(), "latest", &["amd64"]);
        let image = format!("{}/busybox:latest", reg.host());
        skopeo_push(&img, &image, &[]);
        Fixture {
            c,
            _reg: reg,
            _layout: layout,
            image,
        }
    }

    /// ocibox's ctr in namespace `ns`.
    fn own(&self, ns: &str, args: &[&str]) -> Output {
        let mut cmd = self.own_cmd(ns, args);
        common::containerd::with_timeout(&mut cmd, Duration::from_secs(60))
    }

    fn own_cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocibox"));
        c.arg("ctr")
            .args(["-a", &self.c.address, "-n", ns])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Debian's ctr in namespace `ns`.
    fn real(&self, ns: &str, args: &[&str]) -> Output {
        let mut cmd = self.real_cmd(ns, args);
        common::containerd::with_timeout(&mut cmd, Duration::from_secs(60))
    }

    fn real_cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.c.address, "-n", ns])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ns(&self, which: &str) -> String {
        self.c.sub(which)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    stdout(o)
}

/// Digits runs of `min` or more replaced by N (pids, sizes, times).
fn numbers(s: &str, min: usize) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for ch in s.chars().chain(std::iter::once('\0')) {
        if ch.is_ascii_digit() {
            run.push(ch);
            continue;
        }
        if run.len() >= min {
            out.push('N');
        } else {
            out.push_str(&run);
        }
        run.clear();
        if ch != '\0' {
            out.push(ch);
        }
    }
    out
}

/// A pull's output with what depends on timing made equal: statuses of blob lines,
/// the footer's figures, the unpack duration.
fn normalise_pull(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| {
            if l.starts_with("elapsed:") {
                "elapsed".to_string()
            } else if l.starts_with("done: ") {
                "done".to_string()
            } else if let Some((r, _)) = l.split_once(": ") {
                if l.starts_with("unpacking ") {
                    l.to_string()
                } else {
                    r.to_string()
                }
            } else {
                l.to_string()
            }
        })
        .collect()
}

/// `content ls` as a set of (digest, sorted labels).
fn content_labels(f: &Fixture, ns: &str) -> BTreeSet<(String, Vec<String>)> {
    ok(&f.real(ns, &["content", "ls"]))
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let mut labels: Vec<String> = cols
                .last()
                .unwrap_or(&"")
                .split(',')
                .map(str::to_string)
                .collect();
            labels.sort();
            (cols[0].to_string(), labels)
        })
        .collect()
}

crate::both_daemons!(pull_matches_ctr_progress_labels_and_snapshots);

fn pull_matches_ctr_progress_labels_and_snapshots(which: Which) {
    let f = Fixture::start(which, "pull");
    let (own_ns, real_ns) = (f.ns("own"), f.ns("real"));
    let own = f.own(&own_ns, &["image", "pull", "--plain-http", &f.image]);
    let real = f.real(&real_ns, &["image", "pull", "--plain-http", &f.image]);
    // Both draw a frame every 100ms, on a pipe one after the other: compared are the last
    // frame and what follows it (how many frames there are is timing).
    let last_frame = |s: String| {
        let lines: Vec<&str> = s.lines().collect();
        let footers: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("elapsed:"))
            .collect();
        let start = match footers.len() {
            0 | 1 => 0,
            n => footers[n - 2] + 1,
        };
        lines[start..].join("\n") + "\n"
    };
    let (own_out, real_out) = (last_frame(ok(&own)), last_frame(ok(&real)));
    // ctr adds the config and layer lines from concurrent handlers: their order varies.
    let sorted = |s: &str| {
        let mut v = normalise_pull(s);
        v[2..4].sort();
        v
    };
    assert_eq!(
        sorted(&own_out),
        sorted(&real_out),
        "own:{own_out}real:{real_out}"
    );
    // The last frame's layout: same columns (the tab alignment), same bar.
    let bar_col = |s: &str| s.lines().next().map(|l| l.find('|'));
    assert_eq!(bar_col(&own_out), bar_col(&real_out));
    assert!(own_out.contains("\x1b[32m++++++++++++++++++++++++++++++++++++++\x1b[0m"));
    assert!(!ok(&own).contains("\x1b[1A"), "no cursor codes on a pipe");

    assert_eq!(content_labels(&f, &own_ns), content_labels(&f, &real_ns));
    let images = |ns: &str| ok(&f.real(ns, &["image", "ls"]));
    assert_eq!(images(&own_ns), images(&real_ns));
    let snaps = |ns: &str| ok(&f.real(ns, &["snapshot", "ls"]));
    assert_eq!(snaps(&own_ns), snaps(&real_ns));
    // The pull's lease is gone.
    assert_eq!(ok(&f.real(&own_ns, &["leases", "ls", "-q"])).trim(), "");

    // --print-chainid on an image already there.
    let again = ok(&f.own(
        &own_ns,
        &["image", "pull", "--plain-http", "--print-chainid", &f.image],
    ));
    let real_again = ok(&f.real(
        &real_ns,
        &["image", "pull", "--plain-http", "--print-chainid", &f.image],
    ));
    let chain = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("image chain ID: "))
            .map(str::to_string)
    };
    assert!(chain(&again).is_some(), "{again}");
    assert_eq!(chain(&again), chain(&real_again));

    // Unknown image: an error, ctr's exit code.
    let bad = f.own(
        &own_ns,
        &["image", "pull", "--plain-http", &format!("{}x", f.image)],
    );
    let bad_real = f.real(
        &real_ns,
        &["image", "pull", "--plain-http", &format!("{}x", f.image)],
    );
    assert_eq!(
        bad.status.code(),
        bad_real.status.code(),
        "{}\n{}",
        text(&bad),
        text(&bad_real)
    );
}

/// The fixture with scripts/make-busybox-image.sh's image (every busybox applet) imported
/// into both namespaces; `f.image` names it.
fn pulled(which: Which, tag: &str) -> Fixture {
    let mut f = Fixture::start(which, tag);
    for ns in [f.ns("own"), f.ns("real")] {
        f.c.import_busybox(&ns);
    }
    f.image = common::containerd::IMAGE.to_string();
    f
}

crate::both_daemons!(run_rm_output_exit_status_and_cleanup_as_ctr);

fn run_rm_output_exit_status_and_cleanup_as_ctr(which: Which) {
    let f = pulled(which, "runrm");
    let (own_ns, real_ns) = (f.ns("own"), f.ns("real"));
    let script = "echo out; echo err >&2; exit 7";
    let own = f.own(
        &own_ns,
        &["run", "--rm", &f.image, "r1", "sh", "-c", script],
    );
    let real = f.real(
        &real_ns,
        &["run", "--rm", &f.image, "r1", "sh", "-c", script],
    );
    assert_eq!(own.status.code(), Some(7), "{}", text(&own));
    assert_eq!(own.status.code(), real.status.code());
    assert_eq!(own.stdout, real.stdout);
    assert_eq!(own.stderr, real.stderr);
    for ns in [&own_ns, &real_ns] {
        assert_eq!(ok(&f.real(ns, &["container", "ls", "-q"])).trim(), "");
        assert!(!ok(&f.real(ns, &["snapshot", "ls"])).contains("r1"));
    }
    // stdin reaches the container and its EOF ends it (CloseIO).
    let mut cmd = f.own_cmd(&own_ns, &["run", "--rm", &f.image, "r2", "cat"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        si.write_all(b"through stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "through stdin\n");
    // Without --rm the container stays, its task is gone.
    ok(&f.own(&own_ns, &["run", &f.image, "r3", "true"]));
    assert_eq!(
        ok(&f.real(&own_ns, &["container", "ls", "-q"])).trim(),
        "r3"
    );
    assert_eq!(ok(&f.real(&own_ns, &["task", "ls", "-q"])).trim(), "");
    ok(&f.real(&own_ns, &["container", "rm", "r3"]));
}

/// `container info` without what differs by id and time.
fn info(f: &Fixture, ns: &str, id: &str) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&ok(&f.real(ns, &["container", "info", id]))).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in ["ID", "SnapshotKey", "CreatedAt", "UpdatedAt"] {
        o.remove(k);
    }
    v["Spec"]["linux"]["cgroupsPath"] = serde_json::Value::Null;
    v
}

crate::both_daemons!(container_create_spec_matches_ctr);

fn container_create_spec_matches_ctr(which: Which) {
    let f = pulled(which, "create");
    let (own_ns, real_ns) = (f.ns("own"), f.ns("real"));
    let env_file = TempDir::new("ocibox-ctl-envfile");
    let ef = env_file.path().join("env");
    std::fs::write(&ef, "A=1\nB\n").unwrap();
    let ef = ef.to_str().unwrap().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec![
            "-t",
            "--env",
            "FOO=bar",
            "--env",
            "PATH=/x",
            "--env-file",
            &ef,
            "--label",
            "a=b",
            "--cwd",
            "/tmp",
            "--read-only",
            "--memory-limit",
            "1048576",
            "--net-host",
            "--mount",
            "type=bind,src=/tmp,dst=/host,options=rbind:ro",
            "--with-ns",
            "pid:/proc/1/ns/pid",
        ],
        vec!["--privileged"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let id = format!("c{i}");
        let mut args = vec!["container", "create"];
        args.extend(flags.iter().copied());
        args.extend([f.image.as_str(), id.as_str(), "echo", "hi"]);
        ok(&f.own(&own_ns, &args));
        ok(&f.real(&real_ns, &args));
        assert_eq!(
            info(&f, &own_ns, &id),
            info(&f, &real_ns, &id),
            "flags {flags:?}"
        );
    }
    // A --with-ns of a bad type: ctr's message and exit code.
    let bad = [
        "container",
        "create",
        "--with-ns",
        "bogus:/x",
        f.image.as_str(),
        "bad",
    ];
    let (o, r) = (f.own(&own_ns, &bad), f.real(&real_ns, &bad));
    assert_eq!(o.status.code(), r.status.code());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&r.stderr)
    );
}

crate::both_daemons!(task_commands_on_a_detached_task_match_ctr);

fn task_commands_on_a_detached_task_match_ctr(which: Which) {
    let f = pulled(which, "task");
    let (own_ns, real_ns) = (f.ns("own"), f.ns("real"));
    for (ns, own) in [(&own_ns, true), (&real_ns, false)] {
        // A detached task's fifos stay after ctr exits (ctr leaves them too): kept under
        // the fixture's directory, which its Drop removes.
        let fifo_dir = f.c.fifo_dir();
        let args = [
            "run",
            "-d",
            "--fifo-dir",
            fifo_dir.as_str(),
            f.image.as_str(),
            "d1",
            "sleep",
            "1000",
        ];
        let o = if own {
            f.own(ns, &args)
        } else {
            f.real(ns, &args)
        };
        assert_eq!(ok(&o), "");
    }
    // Every command through ocibox's ctl on its task, real ctr's on the other; outputs equal
    // after numbers are normalised.
    let both = |args: &[&str], min: usize| {
        let o = f.own(&own_ns, args);
        let r = f.real(&real_ns, args);
        assert_eq!(
            o.status.code(),
            r.status.code(),
            "{args:?}\n{}\n{}",
            text(&o),
            text(&r)
        );
        let norm = |s: String, ns: &str| numbers(&s.replace(ns, "NS"), min);
        assert_eq!(
            norm(stdout(&o), &own_ns),
            norm(stdout(&r), &real_ns),
            "{args:?}"
        );
        stdout(&o)
    };
    let ls = both(&["task", "ls"], 2);
    assert!(ls.contains("RUNNING"), "{ls}");
    both(&["task", "ps", "d1"], 2);
    // The table's column widths follow the values (a timestamp's nanoseconds lose their
    // trailing zeros, as Go prints them): compared with runs of spaces squashed; the exact
    // layout is pinned by the unit test against a captured ctr table.
    let squash = |s: &str| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let o = f.own(&own_ns, &["task", "metrics", "d1"]);
    let r = f.real(&real_ns, &["task", "metrics", "d1"]);
    assert_eq!(squash(&numbers(&ok(&o), 1)), squash(&numbers(&ok(&r), 1)));
    let table = stdout(&o);
    assert!(table.contains("pids.current"), "{table}");
    // JSON: Go's omitempty drops fields that are 0 in one task and not in the other, so
    // the documents are compared by their sections, in order, and as valid JSON.
    let keys = |o: Output| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    };
    let args = ["task", "metrics", "--format", "json", "d1"];
    assert_eq!(keys(f.own(&own_ns, &args)), keys(f.real(&real_ns, &args)));
    both(&["shim", "--id", "d1", "state"], 1);
    // The shim commands word for word, errors too: no id, no exec id, a shim exec without
    // stdio fifos (ctr makes them), a start or delete naming no task (ctr sends the
    // argument, not --id), a start of a running task, a shim that is not there
    // (its socket path has the namespace's hash).
    let spec = f.c.dir.join("exec-process.json");
    std::fs::write(
        &spec,
        r#"{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#,
    )
    .unwrap();
    let spec = spec.to_str().unwrap().to_string();
    let fifo = |n: &str| f.c.dir.join(n).display().to_string();
    let (si, so, se) = (fifo("se-in"), fifo("se-out"), fifo("se-err"));
    let no_socket_hash = |s: String| {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find("/run/containerd/s/") {
            out.push_str(&rest[..i + 18]);
            let after = &rest[i + 18..];
            out.push('H');
            rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
        }
        out + rest
    };
    for args in [
        &["shim", "state"][..],
        &["shim", "--id", "d1", "exec"],
        &["shim", "--id", "d1", "exec", "--spec", &spec, "se0"],
        &["shim", "--id", "d1", "start"],
        &["shim", "--id", "d1", "start", "d1"],
        &["shim", "--id", "d1", "delete"],
        &["shim", "--id", "nosuch", "state"],
    ] {
        let (o, r) = (f.own(&own_ns, args), f.real(&real_ns, args));
        assert_eq!(
            o.status.code(),
            r.status.code(),
            "{args:?}: {}\n{}",
            text(&o),
            text(&r)
        );
        assert_eq!(numbers(&stdout(&o), 1), numbers(&stdout(&r), 1), "{args:?}");
        assert_eq!(
            no_socket_hash(common::stderr(&o)),
            no_socket_hash(common::stderr(&r)),
            "{args:?}"
        );
    }
    // A shim exec with its fifos: ocibox's runs the process in the task; Debian's ctr 1.6
    // panics there (its typeurl refuses the Process it names), a known difference.
    let args = [
        "shim", "--id", "d1", "exec", "--stdin", &si, "--stdout", &so, "--stderr", &se, "--spec",
        &spec, "se1",
    ];
    let (o, r) = (f.own(&own_ns, &args), f.real(&real_ns, &args));
    assert!(ok(&o).starts_with("exec running with pid "), "{}", text(&o));
    assert!(
        r.status.code() == Some(2) && common::stderr(&r).starts_with("panic: "),
        "{}",
        text(&r)
    );
    let ex = both(
        &[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "d1",
            "sh",
            "-c",
            "echo in-exec; exit 3",
        ],
        9,
    );
    assert_eq!(ex, "in-exec\n");
    both(&["task", "pause", "d1"], 9);
    assert!(both(&["task", "ls"], 2).contains("PAUSED"));
    both(&["task", "resume", "d1"], 9);
    // A running task cannot be deleted: ctr's exit code (its message carries a time).
    let o = f.own(&own_ns, &["task", "delete", "d1"]);
    let r = f.real(&real_ns, &["task", "delete", "d1"]);
    assert_eq!(o.status.code(), r.status.code());
    let last = |o: &Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .map(str::to_string)
    };
    assert_eq!(last(&o), last(&r));
    both(&["task", "kill", "-s", "KILL", "d1"], 9);
    for ns in [&own_ns, &real_ns] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok(&f.real(ns, &["task", "ls"])).contains("STOPPED") {
            assert!(Instant::now() < deadline, "task did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // shim delete of the stopped task: its exit status, from the shim itself.
    let del = both(&["shim", "--id", "d1", "delete", "d1"], 9);
    assert!(del.contains("exit status 137"), "{del}");
    both(&["task", "delete", "d1"], 9);
    both(&["task", "ls"], 2);
    // task attach: a detached task's output and exit status through a second ctr.
    let fifo_dir = f.c.fifo_dir();
    let mut attached = Vec::new();
    for (ns, own) in [(&own_ns, true), (&real_ns, false)] {
        let script = "sleep 2; echo attached; exit 4";
        let args = [
            "run",
            "-d",
            "--fifo-dir",
            &fifo_dir,
            &f.image,
            "a1",
            "sh",
            "-c",
            script,
        ];
        let o = if own {
            f.own(ns, &args)
        } else {
            f.real(ns, &args)
        };
        ok(&o);
        let o = if own {
            f.own(ns, &["task", "attach", "a1"])
        } else {
            f.real(ns, &["task", "attach", "a1"])
        };
        attached.push((o.status.code(), stdout(&o)));
    }
    assert_eq!(attached[0], attached[1]);
    assert_eq!(attached[1], (Some(4), "attached\n".to_string()));
    // Missing task and missing container: ctr's words.
    let o = f.own(&own_ns, &["task", "kill", "nope"]);
    let r = f.real(&real_ns, &["task", "kill", "nope"]);
    assert_eq!(
        o.status.code(),
        r.status.code(),
        "{}\n{}",
        text(&o),
        text(&r)
    );
}

/// A pty pair with the given window size: (master, slave).
fn pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).unwrap();
    (p.master, p.slave)
}

/// Run `cmd` with its stdio on a new pty; everything the master read and the exit code.
fn through_pty(mut cmd: Command) -> (String, Option<i32>) {
    let (master, slave) = pty(33, 101);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().unwrap();
    // The Command holds the slave ends until dropped; the reader's EOF needs them closed.
    drop(cmd);
    let fd = master.as_raw_fd();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = fd;
    // The slave ends are closed once the child is gone: the reader sees EIO and ends.
    let out = reader.join().unwrap();
    (out, status.code())
}

crate::both_daemons!(run_tty_through_a_pty_as_ctr);

fn run_tty_through_a_pty_as_ctr(which: Which) {
    let f = pulled(which, "tty");
    let (own_ns, real_ns) = (f.ns("own"), f.ns("real"));
    // ctr resizes the console after Start: the container waits for that before it looks.
    let script = "sleep 1; stty size; tty; exit 5";
    let mut own = f.own_cmd(
        &own_ns,
        &["run", "-t", "--rm", &f.image, "t1", "sh", "-c", script],
    );
    own.stdin(Stdio::null());
    let (o, oc) = through_pty(own);
    let real = f.real_cmd(
        &real_ns,
        &["run", "-t", "--rm", &f.image, "t1", "sh", "-c", script],
    );
    let (r, rc) = through_pty(real);
    assert_eq!(oc, Some(5), "{o}");
    assert_eq!(oc, rc);
    assert!(
        o.contains("33 101"),
        "the window size reached the container: {o:?}"
    );
    assert_eq!(o, r);
    for ns in [&own_ns, &real_ns] {
        assert_eq!(ok(&f.real(ns, &["container", "ls", "-q"])).trim(), "");
    }
}

/// An interactive pty session: the child's stdio on the slave, what it prints collected,
/// keystrokes written to the master.
struct PtySession {
    child: std::process::Child,
    input: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtySession {
    fn spawn(mut cmd: Command) -> PtySession {
        let (master, slave) = pty(33, 101);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let input = std::fs::File::from(master.try_clone().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(master);
            let mut buf = [0u8; 4096];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtySession {
            child,
            input,
            seen,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the output holds `what`.
    fn expect(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} on the pty: {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, keys: &str) {
        use std::io::Write;
        self.input.write_all(keys.as_bytes()).unwrap();
    }

    /// The exit code once the child ends (killed after 30s), and the whole transcript.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The container's shell may still hold the slave (it got the pty's other end
        // through the shim, not from us): stop waiting for EOF once the child is gone.
        std::thread::sleep(Duration::from_millis(100));
        drop(self.reader.take());
        (status.code(), self.text())
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The seed's walkthrough, command for command, once by Debian's ctr and once by ocibox's
/// ctl, each in a namespace of its own on the same daemon: pull busybox from the loopback
/// registry, pull `docker.io/library/hello-world:latest` through a hosts.toml mirror that
/// points docker.io at it, `run -t docker.io/library/busybox:latest u2 sh` on a pty,
/// `container info u2`, `t metrics u2`, `shim --id u2 state`, `t kill u2` while it runs,
/// then `container create … demo` and `task start demo`. The outputs are compared after
/// the namespace, numbers (pids, sizes, times) and digests are normalised.
fn seed_walkthrough(which: Which) {
    let f = Fixture::start(which, "seed");
    let reg = f._reg.host();
    let busybox = format!("{reg}/library/busybox:latest");
    let layout = busybox_layout(f._layout.path(), "latest", &["amd64"]);
    skopeo_push(&layout, &busybox, &[]);
    skopeo_push(&layout, &format!("{reg}/library/hello-world:latest"), &[]);
    let hosts = f.c.dir.join("hosts");
    std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
    std::fs::write(
        hosts.join("docker.io/hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{reg}\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
    let hosts = hosts.display().to_string();
    let image = "docker.io/library/busybox:latest";
    let mut seen: Vec<Vec<String>> = Vec::new();
    for own in [false, true] {
        let ns = f.ns(if own { "ocibox" } else { "ctr" });
        let run = |args: &[&str]| f.c.run(own, &ns, args);
        let norm = |s: &str| no_digests(&numbers(&s.replace(&ns, "NS"), 2));
        let mut out: Vec<String> = Vec::new();
        let step = |out: &mut Vec<String>, what: &str, o: &Output, text: String| {
            out.push(format!("{what}: exit {:?}\n{text}", o.status.code()));
        };
        let o = run(&["image", "pull", "--plain-http", &busybox]);
        let last = |s: String| normalise_pull(&s).last().cloned().unwrap_or_default();
        step(&mut out, "pull busybox", &o, last(stdout(&o)));
        let o = run(&[
            "image",
            "pull",
            "--hosts-dir",
            &hosts,
            "docker.io/library/hello-world:latest",
        ]);
        step(&mut out, "pull hello-world", &o, last(stdout(&o)));
        let o = run(&["image", "tag", &busybox, image]);
        step(&mut out, "tag", &o, stdout(&o));
        let o = run(&["image", "ls", "-q"]);
        step(&mut out, "image ls", &o, stdout(&o));

        let mut tty = PtySession::spawn(f.c.cmd(own, &ns, &["run", "-t", image, "u2", "sh"]));
        // Typed once the shell prompts: ctr has the terminal in raw mode by then.
        tty.expect("# ");
        tty.send("echo seed-$((6*7))\n");
        tty.expect("seed-42");
        let o = run(&["container", "info", "u2"]);
        let mut info: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        if let Some(m) = info.as_object_mut() {
            m.remove("CreatedAt");
            m.remove("UpdatedAt");
        }
        step(
            &mut out,
            "container info",
            &o,
            serde_json::to_string_pretty(&info)
                .unwrap()
                .replace(&ns, "NS"),
        );
        let o = run(&["t", "metrics", "u2"]);
        let squash = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
        step(&mut out, "metrics", &o, numbers(&squash, 1));
        let o = run(&["shim", "--id", "u2", "state"]);
        step(&mut out, "shim state", &o, norm(&stdout(&o)));
        let o = run(&["t", "kill", "u2"]);
        step(&mut out, "kill", &o, stdout(&o) + &common::stderr(&o));
        // An interactive shell as pid 1 ignores SIGTERM: it still answers, then exits.
        tty.send("echo still-$((6*7)); exit 3\n");
        tty.expect("still-42");
        let (code, transcript) = tty.finish();
        out.push(format!("run -t: exit {code:?}"));
        // ash redraws its prompt when ctr's resize (SIGWINCH) comes after it drew it: when
        // that happens is timing, not either ctr.
        let transcript = transcript.replace("\u{1b}[6n\r/ # \u{1b}[J", "\u{1b}[6n");
        out.push(format!("transcript: {}", transcript.replace(&ns, "NS")));

        let o = run(&[
            "container",
            "create",
            image,
            "demo",
            "echo",
            "hello",
            "demo",
        ]);
        step(&mut out, "create demo", &o, stdout(&o));
        let o = run(&["task", "start", "demo"]);
        step(&mut out, "start demo", &o, stdout(&o));
        let o = run(&["container", "ls", "-q"]);
        step(&mut out, "container ls", &o, stdout(&o));
        let o = run(&["task", "ls"]);
        step(&mut out, "task ls", &o, stdout(&o));
        seen.push(out);
    }
    let (theirs, ours) = (&seen[0], &seen[1]);
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o, t, "on {}", f.c.daemon.name());
    }
    assert_eq!(ours.len(), theirs.len());
    assert!(
        theirs[0].starts_with("pull busybox: exit Some(0)\ndone"),
        "{theirs:?}"
    );
    // Every step worked (the comparison alone would pass two equal failures).
    for l in theirs
        .iter()
        .filter(|l| l.contains(": exit ") && !l.starts_with("run -t"))
    {
        assert!(l.contains(": exit Some(0)\n"), "{l}");
    }
    assert!(
        theirs
            .iter()
            .any(|l| l.starts_with("container info: exit Some(0)\n{\n  \"ID\": \"u2\"")),
        "{theirs:?}"
    );
    assert!(
        theirs
            .iter()
            .any(|l| l.starts_with("start demo: exit Some(0)\nhello demo\n")),
        "{theirs:?}"
    );
    assert!(
        theirs.iter().any(|l| l == "run -t: exit Some(3)"),
        "{theirs:?}"
    );
}

crate::both_daemons!(seed_walkthrough);
