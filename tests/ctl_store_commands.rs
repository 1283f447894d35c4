//! ocibox's ctl against Debian's real ctr on the same daemon, once on a private containerd
//! 1.6 and once on ociboxd (tests/common/daemons.rs, a namespace per case): every store
//! command (version, namespaces, plugins, leases, content, snapshots, images, containers,
//! events), its help page and its bad input give the same stdout, stderr and exit code,
//! after normalising only times, ages, ids and Go's random map order.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::containerd::{text, IMAGE};
use common::daemons::{daemon, Case, Which};

/// What one run printed and how it ended, normalised for comparison.
#[derive(Debug, PartialEq)]
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Times in logrus lines, `ctr version`'s client block, ctr's own version in help pages.
fn normalise(s: &str) -> String {
    let mut out = String::new();
    for line in s.split_inclusive('\n') {
        let mut l = line.to_string();
        if let Some(i) = l.find("time=\"") {
            if let Some(j) = l[i + 6..].find('"') {
                l.replace_range(i..i + 6 + j + 1, "time=T");
            }
        }
        l = l.replace(env!("CARGO_PKG_VERSION"), "VERSION");
        l = l.replace("1.6.20~ds1", "VERSION");
        out.push_str(&l);
    }
    out
}

fn seen(o: &Output) -> Seen {
    Seen {
        code: o.status.code(),
        stdout: normalise(&String::from_utf8_lossy(&o.stdout)),
        stderr: normalise(&String::from_utf8_lossy(&o.stderr)),
    }
}

fn own(address: &str, namespace: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .arg("ctr")
        .args(["-a", address, "-n", namespace])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ocibox ctr")
}

fn real(address: &str, namespace: &str, args: &[&str]) -> Output {
    Command::new("ctr")
        .args(["-a", address, "-n", namespace])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ctr")
}

/// Both clients, one command; returns ours after asserting they agree under `norm`.
fn same_with(c: &Case, args: &[&str], norm: impl Fn(&str) -> String) -> Output {
    let theirs = real(&c.address, &c.namespace, args);
    let ours = own(&c.address, &c.namespace, args);
    let (mut t, mut o) = (seen(&theirs), seen(&ours));
    t.stdout = norm(&t.stdout);
    o.stdout = norm(&o.stdout);
    assert_eq!(
        o,
        t,
        "ctr {args:?} differs\nours: {}\nctr's: {}",
        text(&ours),
        text(&theirs)
    );
    ours
}

fn same(c: &Case, args: &[&str]) -> Output {
    same_with(c, args, |s| s.to_string())
}

/// Go ranges over maps in random order where ctr joins labels without sorting: compare
/// the comma-separated `k=v` lists of each line sorted.
fn sorted_labels(s: &str) -> String {
    s.lines()
        .map(|l| {
            l.split('\t')
                .map(|f| {
                    if f.contains('=') && !f.contains(' ') {
                        let mut v: Vec<&str> = f.split(',').collect();
                        v.sort();
                        v.join(",")
                    } else {
                        f.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\t")
                + "\n"
        })
        .collect()
}

/// `content ls`: the AGE column (go-units words that change with the clock) blanked, the
/// tab padding (which depends on it) collapsed, the labels sorted.
fn content_table(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut f: Vec<String> = l
                .split('\t')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            if f.len() >= 3 {
                f[2] = "AGE".into();
            }
            sorted_labels(&f.join("\t"))
        })
        .collect()
}

/// Lines sorted (for `plugins ls -d`, whose export maps Go prints in random order).
fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v.join("\n")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every command path the ctl has, as ctr names them.
const HELP_PATHS: &[&str] = &[
    "",
    "version",
    "namespaces",
    "namespaces create",
    "namespaces list",
    "namespaces remove",
    "namespaces label",
    "plugins",
    "plugins list",
    "leases",
    "leases list",
    "leases create",
    "leases delete",
    "content",
    "content list",
    "content get",
    "content delete",
    "content active",
    "content label",
    "content fetch",
    "snapshots",
    "snapshots list",
    "snapshots tree",
    "snapshots info",
    "snapshots mounts",
    "snapshots prepare",
    "snapshots view",
    "snapshots commit",
    "snapshots delete",
    "snapshots usage",
    "images",
    "images list",
    "images remove",
    "images tag",
    "images label",
    "images check",
    "containers",
    "containers list",
    "containers info",
    "containers delete",
    "containers label",
    "events",
    "tasks",
    "shim",
    "oci",
    "pprof",
];

/// No daemon needed: help pages (through every spelling ctr accepts), usage errors,
/// unknown commands, as ctr prints them and with its exit codes.
#[test]
fn help_and_usage_errors_match_ctr() {
    let nowhere = "/nonexistent/ocibox-ctl-test.sock";
    let mut cases: Vec<Vec<String>> = Vec::new();
    for p in HELP_PATHS {
        let words: Vec<String> = p.split_whitespace().map(str::to_string).collect();
        for h in ["--help", "-h"] {
            let mut v = words.clone();
            v.push(h.to_string());
            cases.push(v);
        }
    }
    for c in [
        "",
        "bogus",
        "--bogus version",
        "ns",
        "ns bogus",
        "ns --bogus",
        "ns ls --bogus",
        "ns ls -q=maybe",
        "--timeout bad ns ls",
        "--timeout",
        "snapshots --snapshotter",
        "help",
        "help ns",
        "help version",
        "help bogus",
        "ns help",
        "ns h",
        "ns help ls",
        "ns help bogus",
        "ns create foo --help",
        "images ls name==x -h",
        "i ls --help",
        "c rm --help",
        "snapshot m --help",
        "leases del -h",
    ] {
        cases.push(c.split_whitespace().map(str::to_string).collect());
    }
    for args in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = real(nowhere, "default", &a);
        let ours = own(nowhere, "default", &a);
        assert_eq!(
            seen(&ours),
            seen(&theirs),
            "ctr {a:?} differs\nours: {}\nctr's: {}",
            text(&ours),
            text(&theirs)
        );
    }
}

/// A daemon that is not there: ctr's dial error after its connect timeout (the default
/// 10s and an explicit one), exit 1; `version` prints its client half first.
#[test]
fn unreachable_daemon_fails_as_ctr() {
    let nowhere = "/nonexistent/ocibox-ctl-test.sock";
    for args in [
        vec!["--connect-timeout", "300ms", "ns", "ls"],
        vec!["--connect-timeout=300ms", "images", "ls"],
        vec!["ns", "ls"],
    ] {
        // The default timeout is 10s for both: run them side by side.
        let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let t = std::thread::spawn(move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            real(nowhere, "default", &a)
        });
        let start = std::time::Instant::now();
        let ours = own(nowhere, "default", &args);
        let took = start.elapsed();
        let theirs = t.join().unwrap();
        assert_eq!(seen(&ours), seen(&theirs), "ctr {args:?}: {}", text(&ours));
        assert_eq!(ours.status.code(), Some(1));
        if args[0] == "ns" {
            assert!(took >= Duration::from_secs(9), "gave up after {took:?}");
        }
    }
    let out = own(
        nowhere,
        "default",
        &["--connect-timeout", "200ms", "version"],
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("Client:\n  Version:  "), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("ctr: failed to dial \"{nowhere}\": context deadline exceeded\n")
    );
}

/// `ns ls` with the header and only this case's namespaces: the daemon is shared with
/// cases running beside it.
fn mine(c: &Case) -> impl Fn(&str) -> String + '_ {
    move |s: &str| {
        s.lines()
            .enumerate()
            .filter(|(i, l)| *i == 0 || l.starts_with(&c.namespace))
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }
}

crate::both_daemons!(store_commands);

fn store_commands(which: Which) {
    let c = daemon(which).case("store");
    c.import_busybox(&c.namespace);
    let ctl_ns = c.sub("ns");
    let ctl_ns = ctl_ns.as_str();

    // version: the server half is the same (the client half is ocibox's own).
    let v = ok(&own(&c.address, &c.namespace, &["version"]));
    let theirs = ok(&real(&c.address, &c.namespace, &["version"]));
    let server = |s: &str| s[s.find("Server:").unwrap_or(0)..].to_string();
    assert_eq!(server(&v), server(&theirs));
    assert!(v.starts_with(&format!(
        "Client:\n  Version:  {}\n",
        env!("CARGO_PKG_VERSION")
    )));

    // namespaces
    same_with(&c, &["namespaces", "ls"], mine(&c));
    same_with(&c, &["ns", "ls", "-q"], mine(&c));
    same(&c, &["ns", "create"]);
    same(&c, &["ns", "label"]);
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["ns", "create", ctl_ns, "a=b", "flag"]
        )),
        ""
    );
    same_with(&c, &["ns", "ls"], mine(&c));
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["ns", "label", ctl_ns, "a=", "c=d"]
        )),
        ""
    );
    same_with(&c, &["ns", "ls"], mine(&c));
    same(&c, &["ns", "create", ctl_ns]);
    same(&c, &["ns", "rm", "no-such-ns"]);
    assert_eq!(
        ok(&own(&c.address, &c.namespace, &["ns", "rm", ctl_ns])),
        format!("{ctl_ns}\n")
    );
    same_with(&c, &["ns", "ls", "-q"], mine(&c));

    // plugins
    same(&c, &["plugins", "ls"]);
    same(&c, &["plugin", "ls", "-q"]);
    same_with(&c, &["plugins", "ls", "--detailed"], sorted_lines);
    same(&c, &["plugins", "ls", "id==content"]);

    // leases
    same(&c, &["leases", "ls"]);
    let id = ok(&own(&c.address, &c.namespace, &["leases", "create", "k=v"]));
    assert!(id.trim().contains('-'), "a generated id: {id}");
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["leases", "create", "--id", "ctl-l", "-x", "0", "a=b"]
        )),
        "ctl-l\n"
    );
    same(&c, &["leases", "ls"]);
    same(&c, &["leases", "ls", "-q"]);
    same(&c, &["leases", "ls", "id==ctl-l"]);
    same(&c, &["leases", "create", "--id", "ctl-l"]);
    same(&c, &["leases", "rm"]);
    same(&c, &["leases", "rm", "no-such-lease"]);
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["leases", "rm", "--sync", "ctl-l", id.trim()]
        )),
        format!("ctl-l\n{id}")
    );
    same(&c, &["leases", "ls"]);

    // content
    let zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    same_with(&c, &["content", "ls"], content_table);
    let blobs = ok(&same(&c, &["content", "ls", "-q"]));
    let blob = blobs.lines().next().expect("a blob").to_string();
    same(&c, &["content", "get", &blob]);
    same(&c, &["content", "get"]);
    same(&c, &["content", "get", "sha256:abc"]);
    same(&c, &["content", "get", "md5:abc"]);
    same(&c, &["content", "get", zero]);
    same(&c, &["content", "rm", "bogus", zero]);
    same(&c, &["content", "label", "bogus"]);
    same(&c, &["content", "label", zero, "a=b"]);
    same_with(&c, &["content", "label", &blob], sorted_labels);
    ok(&own(
        &c.address,
        &c.namespace,
        &["content", "label", &blob, "ctl=yes"],
    ));
    same_with(
        &c,
        &["content", "ls", &format!("digest=={blob}")],
        content_table,
    );
    ok(&own(
        &c.address,
        &c.namespace,
        &["content", "label", &blob, "ctl="],
    ));
    same_with(&c, &["content", "ls"], content_table);
    same(&c, &["content", "active"]);

    // snapshots
    same(&c, &["snapshots", "ls"]);
    same(&c, &["snapshots", "tree"]);
    let snaps = ok(&real(&c.address, &c.namespace, &["snapshots", "ls"]));
    let parent = snaps
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("the image's snapshot")
        .to_string();
    let prep = ok(&own(
        &c.address,
        &c.namespace,
        &[
            "snapshots",
            "prepare",
            "--mounts",
            "-t",
            "/mnt/x",
            "ctl-act",
            &parent,
        ],
    ));
    assert!(
        prep.starts_with("mount -t overlay overlay /mnt/x -o "),
        "{prep}"
    );
    assert!(
        prep.contains("\n[\n    {\n        \"Type\": \"overlay\","),
        "{prep}"
    );
    // A view carries no gc.root label (ctr's `view` writes none, unlike `prepare` and
    // `commit`), so the daemon's GC may collect it whenever any case on this shared daemon
    // triggers a collection. What is certain is what creating it prints: the same mounts
    // from both clients. Both views are removed at once; nothing later depends on them.
    let view = |run: fn(&str, &str, &[&str]) -> Output, key: &str| {
        let args = [
            "snapshots",
            "view",
            "--mounts",
            "-t",
            "/mnt/v",
            key,
            &parent,
        ];
        ok(&run(&c.address, &c.namespace, &args))
    };
    assert_eq!(view(own, "ctl-view"), view(real, "ctr-view"));
    for key in ["ctl-view", "ctr-view"] {
        let rm = own(&c.address, &c.namespace, &["snapshots", "rm", key]);
        assert!(
            rm.status.success() || text(&rm).contains("does not exist: not found"),
            "{}",
            text(&rm)
        );
        let info = real(&c.address, &c.namespace, &["snapshots", "info", key]);
        assert!(
            text(&info).contains("does not exist: not found"),
            "{}",
            text(&info)
        );
    }
    same(&c, &["snapshots", "view", "x", "ctl-act"]);
    ok(&own(
        &c.address,
        &c.namespace,
        &["snapshots", "prepare", "ctl-act2", &parent],
    ));
    same(&c, &["snapshots", "info", "ctl-act"]);
    same(&c, &["snapshots", "mounts", "/tmp/t", "ctl-act"]);
    same(&c, &["snapshot", "m", "/tmp/t"]);
    same(&c, &["snapshots", "usage"]);
    same(&c, &["snapshots", "usage", "-b", "ctl-act"]);
    same(&c, &["snapshots", "usage", "no-such"]);
    same(&c, &["snapshots", "tree"]);
    ok(&own(
        &c.address,
        &c.namespace,
        &["snapshots", "commit", "ctl-commit", "ctl-act"],
    ));
    same(&c, &["snapshots", "ls"]);
    same(&c, &["snapshots", "tree"]);
    same(&c, &["snapshots", "info", "ctl-commit"]);
    same(&c, &["snapshots", "info"]);
    same(&c, &["snapshots", "info", "no-such"]);
    same(&c, &["snapshots", "prepare"]);
    same(&c, &["snapshots", "commit", "a"]);
    same(&c, &["snapshots", "rm", "no-such"]);
    same(&c, &["snapshots", "--snapshotter", "bogus", "ls"]);
    ok(&own(
        &c.address,
        &c.namespace,
        &["snapshots", "rm", "ctl-commit", "ctl-act2"],
    ));
    same(&c, &["snapshots", "ls"]);

    // images
    same(&c, &["images", "ls"]);
    same(&c, &["image", "ls", "-q"]);
    same(&c, &["i", "check"]);
    same(&c, &["images", "check", "-q"]);
    same(&c, &["images", "check", "name==none"]);
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["images", "tag", IMAGE, "ctl/one:a", "ctl/two:b"]
        )),
        "ctl/one:a\nctl/two:b\n"
    );
    same(&c, &["images", "ls"]);
    same(&c, &["images", "tag", IMAGE, "ctl/one:a"]);
    same(&c, &["images", "tag", "--force", IMAGE, "ctl/one:a"]);
    same(&c, &["images", "tag"]);
    same(&c, &["images", "tag", IMAGE]);
    same(&c, &["images", "tag", "no/such:image", "x"]);
    same(&c, &["images", "label"]);
    same(&c, &["images", "label", "ctl/one:a"]);
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["images", "label", "ctl/one:a", "k=v"]
        )),
        "k=v\n"
    );
    same(&c, &["images", "ls"]);
    same(&c, &["images", "label", "no/such:image", "a=b"]);
    same(&c, &["images", "rm", "no/such:image"]);
    same(&c, &["images", "ls", "name==ctl/one:a"]);
    same(&c, &["images", "ls", "bad filter((("]);
    // urfave moves `--sync` and the word after it to the front: ctr deletes two:b first.
    assert_eq!(
        ok(&own(
            &c.address,
            &c.namespace,
            &["images", "rm", "ctl/one:a", "--sync", "ctl/two:b"]
        )),
        "ctl/two:b\nctl/one:a\n"
    );
    same(&c, &["images", "ls"]);

    // containers (made by the real ctr, which builds the spec from the image)
    ok(&real(
        &c.address,
        &c.namespace,
        &[
            "containers",
            "create",
            "--label",
            "who=ctl",
            IMAGE,
            "ctl-c1",
        ],
    ));
    ok(&real(
        &c.address,
        &c.namespace,
        &["containers", "create", IMAGE, "ctl-c2", "echo", "<&>"],
    ));
    same(&c, &["containers", "ls"]);
    same(&c, &["c", "ls", "-q"]);
    same(&c, &["containers", "ls", "labels.who==ctl"]);
    same(&c, &["containers", "info", "ctl-c1"]);
    same(&c, &["containers", "info", "ctl-c2"]);
    same(&c, &["containers", "info", "--spec", "ctl-c2"]);
    same(&c, &["containers", "info", "no-such"]);
    same(&c, &["containers", "info"]);
    same(&c, &["containers", "label", "ctl-c1"]);
    same(&c, &["containers", "label"]);
    same(&c, &["containers", "label", "no-such", "a=b"]);
    same_with(&c, &["containers", "label", "ctl-c1", "x=y"], sorted_labels);
    same(&c, &["containers", "rm"]);
    same(&c, &["containers", "rm", "no-such"]);
    same(&c, &["containers", "ls", "bad(("]);
    ok(&own(
        &c.address,
        &c.namespace,
        &["containers", "rm", "ctl-c1"],
    ));
    ok(&own(
        &c.address,
        &c.namespace,
        &["containers", "rm", "--keep-snapshot", "ctl-c2"],
    ));
    same(&c, &["containers", "ls"]);
    // (Whether --keep-snapshot's snapshot stays is up to containerd's GC: nothing roots it.)
    same(&c, &["containers", "rm", "ctl-c1"]);
}

crate::both_daemons!(events_match_ctr);

/// `ctr events` lines: the same events, the same JSON, from both clients subscribed side
/// by side while the store changes.
fn events_match_ctr(which: Which) {
    let c = daemon(which).case("events");
    c.import_busybox(&c.namespace);
    // Only this case's events: the daemon is shared.
    let only = format!("namespace=={}", c.namespace);
    let ev_ns = c.sub("ev");
    let ev_ns = ev_ns.as_str();
    let mut theirs = Command::new("ctr")
        .args(["-a", &c.address, "events", &only])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctr events");
    let mut ours = Command::new(env!("CARGO_BIN_EXE_ocibox"))
        .args(["ctr", "-a", &c.address, "events", &only])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ocibox ctr events");
    std::thread::sleep(Duration::from_millis(700));
    let ns = c.namespace.as_str();
    for args in [
        vec!["ns", "create", ev_ns, "x=y"],
        vec!["ns", "label", ev_ns, "x=<z>"],
        vec!["containers", "create", IMAGE, "ctl-ev-c"],
        vec!["containers", "label", "ctl-ev-c", "q=r"],
        vec!["images", "tag", IMAGE, "ctl/ev:1"],
        vec!["images", "label", "ctl/ev:1", "a=b"],
        vec!["images", "rm", "ctl/ev:1"],
        vec!["containers", "rm", "ctl-ev-c"],
        vec!["ns", "rm", ev_ns],
    ] {
        ok(&real(&c.address, ns, &args));
    }
    std::thread::sleep(Duration::from_millis(700));
    let _ = theirs.kill();
    let _ = ours.kill();
    let theirs = theirs.wait_with_output().unwrap();
    let ours = ours.wait_with_output().unwrap();
    // Each line starts with the event's time (`2026-01-02 15:04:05.123 +0000 UTC`).
    let strip = |o: &Output| -> String {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string() + "\n")
            .collect()
    };
    let (t, o) = (strip(&theirs), strip(&ours));
    assert!(
        t.contains(&format!(
            "/namespaces/create {{\"name\":\"{ev_ns}\",\"labels\":{{\"x\":\"y\"}}}}"
        )),
        "{t}"
    );
    assert!(t.contains("\\u003cz\\u003e"), "{t}");
    assert_eq!(o, t);
    let first = String::from_utf8_lossy(&ours.stdout);
    let ts = first.lines().next().unwrap_or("");
    assert!(ts.contains(" +0000 UTC "), "{ts}");
}
