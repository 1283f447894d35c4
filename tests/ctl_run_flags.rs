//! ctr 1.6's `run` / `container create` flags and `task exec --user` through ocibox's ctr,
//! beside Debian's ctr on the same daemon, once a private containerd 1.6 and once ociboxd
//! (tests/common/daemons.rs; containerd-shim-runc-v2 and Debian's runc run the containers): the spec each stores (`ctr container info`, read by
//! Debian's ctr for both), the errors and exit codes, and what the flags do in a running
//! container (seccomp denies `unshare`, a dropped capability leaves CapEff, a device node
//! appears, a uid map maps, a log URI gets the output, CNI gives an address and takes it
//! back). Normalised only: ids and times, cgroupsPath (it names the namespace), the order
//! of the default seccomp profile's rules (ctr emits its capability groups in Go map order)
//! and the number in ctr's temporary mount directory name.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::containerd::{text, IMAGE};
use common::daemons::{daemon, Case, Which};
use serde_json::Value;

/// A case on a shared daemon with the busybox image in two namespaces: one for ocibox's
/// ctr, one for Debian's.
struct Fixture {
    c: Case,
}

const OWN: &str = "own";
const REAL: &str = "real";

impl Fixture {
    fn start(which: Which, tag: &str) -> Fixture {
        let f = Fixture {
            c: daemon(which).case(tag),
        };
        for which in [OWN, REAL] {
            f.c.import_busybox(&f.ns(which));
        }
        f
    }

    fn ns(&self, which: &str) -> String {
        self.c.sub(which)
    }

    fn cmd(&self, which: &str, args: &[&str], own_ctl: bool) -> Command {
        let mut c = if own_ctl {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ocibox"));
            c.arg("ctr");
            c
        } else {
            Command::new("ctr")
        };
        c.args(["-a", &self.c.address, "-n", &self.ns(which)])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `args` in namespace `which`, by ocibox's ctr (`own_ctl`) or Debian's.
    fn ctr(&self, which: &str, args: &[&str], own_ctl: bool) -> Output {
        let mut c = self.cmd(which, args, own_ctl);
        common::containerd::with_timeout(&mut c, Duration::from_secs(60))
    }

    /// The same command line through both: ocibox's ctr in `own`, Debian's in `real`.
    fn both(&self, args: &[&str]) -> (Output, Output) {
        (self.ctr(OWN, args, true), self.ctr(REAL, args, false))
    }

    /// `container info` as Debian's ctr prints it, without what differs legitimately.
    fn info(&self, which: &str, id: &str) -> Value {
        let out = self.ctr(which, &["container", "info", id], false);
        assert!(out.status.success(), "info {id}: {}", text(&out));
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in ["ID", "SnapshotKey", "CreatedAt", "UpdatedAt"] {
            o.remove(k);
        }
        if let Some(l) = v["Spec"].get_mut("linux").and_then(Value::as_object_mut) {
            l.remove("cgroupsPath");
            if let Some(rules) = l
                .get_mut("seccomp")
                .and_then(|s| s.get_mut("syscalls"))
                .and_then(Value::as_array_mut)
            {
                rules.sort_by_key(|r| r.to_string());
            }
        }
        v
    }

    /// The labels of snapshot `key`.
    fn snapshot(&self, which: &str, key: &str) -> Value {
        let out = self.ctr(which, &["snapshot", "info", key], false);
        assert!(out.status.success(), "snapshot info {key}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn fifo_dir(&self) -> String {
        self.c.fifo_dir()
    }
}

/// stderr with ctr's random temporary mount directory numbers blanked.
fn stderr(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("containerd-mount") {
        let (head, tail) = rest.split_at(i + "containerd-mount".len());
        out.push_str(head);
        out.push('N');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both succeeded and stored the same container.
fn same_container(f: &Fixture, (own, real): &(Output, Output), id: &str, what: &str) {
    assert!(own.status.success(), "{what}: ocibox: {}", text(own));
    assert!(real.status.success(), "{what}: ctr: {}", text(real));
    assert_eq!(f.info(OWN, id), f.info(REAL, id), "{what}");
}

/// Both failed alike: exit code and message.
fn same_error((own, real): &(Output, Output), what: &str) {
    assert!(
        !real.status.success(),
        "{what}: ctr succeeded: {}",
        text(real)
    );
    assert_eq!(
        own.status.code(),
        real.status.code(),
        "{what}: {}",
        text(own)
    );
    assert_eq!(stderr(own), stderr(real), "{what}");
}

crate::both_daemons!(container_create_specs_and_errors_match_ctr);

fn container_create_specs_and_errors_match_ctr(which: Which) {
    let f = Fixture::start(which, "create");
    let scratch = common::TempDir::new("ocibox-ctl-run-flags");
    let profile = scratch.path().join("seccomp.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
    )
    .unwrap();
    let profile = profile.to_str().unwrap();
    let mut cases: Vec<Vec<&str>> = vec![
        vec!["--seccomp"],
        vec!["--privileged", "--seccomp"],
        vec![
            "--cap-add",
            "CAP_SYS_ADMIN",
            "--cap-add",
            "CAP_BPF",
            "--seccomp",
        ],
        vec![
            "--cap-add",
            "CAP_SYS_ADMIN",
            "--cap-drop",
            "CAP_CHOWN",
            "--cap-drop",
            "CAP_KILL",
        ],
        vec!["--seccomp", "--seccomp-profile", profile],
        vec!["--device", "/dev/fuse", "--device", "/dev/null"],
        vec![
            "--annotation",
            "a=b",
            "--annotation",
            "c==d",
            "--label",
            "l=1",
            "--label",
            "bare",
        ],
        vec!["--apparmor-profile", "ocibox-test-profile"],
        vec!["--cpu-quota", "5000"],
        vec!["--cpu-period", "5000"],
        vec![
            "--rdt-class",
            "gold",
            "--rootfs-propagation",
            "rshared",
            "--allow-new-privs",
        ],
        vec![
            "--snapshotter-label",
            "foo=bar",
            "--snapshotter-label",
            "baz",
        ],
        vec!["--no-pivot", "--memory-limit", "1048576"],
    ];
    if Path::new("/dev/net").is_dir() {
        cases.push(vec!["--device", "/dev/net"]);
    }
    for (i, flags) in cases.iter().enumerate() {
        let id = format!("c{i}");
        let mut args = vec!["container", "create"];
        args.extend(flags.iter().copied());
        args.extend([IMAGE, id.as_str(), "echo", "hi"]);
        let r = f.both(&args);
        same_container(&f, &r, &id, &format!("{flags:?}"));
        if flags.contains(&"--snapshotter-label") {
            assert_eq!(
                f.snapshot(OWN, &id)["Labels"],
                f.snapshot(REAL, &id)["Labels"]
            );
            assert_eq!(f.snapshot(OWN, &id)["Labels"]["baz"], "true");
        }
    }
    // The default profile is the one ocibox's runtime tests know: unshare needs
    // CAP_SYS_ADMIN's group, which the default capabilities do not have.
    let spec = f.info(OWN, "c0");
    let rules = spec["Spec"]["linux"]["seccomp"]["syscalls"]
        .as_array()
        .unwrap();
    assert!(!rules.iter().any(|r| r["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "unshare")));

    // --rootfs: a host directory, no image, no snapshot; --config: the file's spec.
    let rootfs = scratch.path().join("rootfs");
    common::make_rootfs(&rootfs);
    let r = f.both(&[
        "container",
        "create",
        "--rootfs",
        "--label",
        "x",
        rootfs.to_str().unwrap(),
        "rf1",
        "echo",
        "hi",
    ]);
    same_container(&f, &r, "rf1", "--rootfs");
    assert_eq!(
        f.info(OWN, "rf1")["Spec"]["root"]["path"],
        rootfs.to_str().unwrap()
    );
    let config = scratch.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"/x"},"annotations":{"z":"1"},"linux":{"namespaces":[{"type":"pid"}]}}"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let r = f.both(&[
        "container",
        "create",
        "--config",
        config,
        "--label",
        "a=b",
        "cf1",
    ]);
    same_container(&f, &r, "cf1", "--config");
    assert_eq!(f.info(OWN, "cf1")["Spec"]["annotations"]["a"], "b");

    let not_a_device = scratch.path().join("plain");
    std::fs::write(&not_a_device, "x").unwrap();
    let errors: Vec<Vec<&str>> = vec![
        vec!["--device", "/dev/ocibox-no-such-device"],
        vec!["--device", not_a_device.to_str().unwrap()],
        vec!["--cap-add", "SYS_ADMIN"],
        vec!["--cap-drop", "ALL"],
        vec!["--annotation", "novalue"],
        vec!["--apparmor-default-profile", "a", "--apparmor-profile", "b"],
        vec!["--seccomp-profile", profile],
        vec!["--seccomp", "--seccomp-profile", "/nonexistent/ocibox.json"],
        vec!["--gpus", "0"],
        vec!["--with-ns", "user"],
    ];
    for (i, flags) in errors.iter().enumerate() {
        let id = format!("e{i}");
        let mut args = vec!["container", "create"];
        args.extend(flags.iter().copied());
        args.extend([IMAGE, id.as_str()]);
        same_error(&f.both(&args), &format!("{flags:?}"));
    }
    if !Path::new("/sys/kernel/security/apparmor/profiles").exists() {
        let args = [
            "container",
            "create",
            "--apparmor-default-profile",
            "x",
            IMAGE,
            "aa",
        ];
        same_error(
            &f.both(&args),
            "--apparmor-default-profile without AppArmor",
        );
    }
    for args in [
        vec!["container", "create", "--config", config, "cf2", "extra"],
        vec![
            "container",
            "create",
            "--config",
            "/nonexistent/config.json",
            "cf3",
        ],
        vec!["container", "create", IMAGE],
    ] {
        same_error(&f.both(&args), &format!("{args:?}"));
    }
}

crate::both_daemons!(run_specs_and_errors_match_ctr);

fn run_specs_and_errors_match_ctr(which: Which) {
    let f = Fixture::start(which, "runspec");
    let fifo = f.fifo_dir();
    let run = |flags: &[&str], id: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--fifo-dir".into(), fifo.clone()];
        a.extend(flags.iter().map(|s| s.to_string()));
        a.extend([IMAGE.to_string(), id.to_string(), "true".to_string()]);
        a
    };
    let cgroup = format!("/{}/custom", f.ns(OWN));
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        vec!["--uidmap", "0:100000:65536"],
        vec!["--cgroup", &cgroup],
        vec!["--cpus", "1.5", "--cpu-shares", "0"],
        vec![
            "--cpu-shares",
            "512",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "50000",
        ],
        vec!["--seccomp", "--cap-drop", "CAP_SYS_CHROOT"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let id = format!("r{i}");
        let args = run(flags, &id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = f.both(&args);
        same_container(&f, &r, &id, &format!("run {flags:?}"));
    }
    // The uid map's snapshot: prepared on a copy of the image's layers owned by the
    // mapped ids, named and parented as containerd's WithRemappedSnapshot does.
    let (own, real) = (f.snapshot(OWN, "r1"), f.snapshot(REAL, "r1"));
    assert_eq!(own["Parent"], real["Parent"]);
    assert!(own["Parent"].as_str().unwrap().ends_with("-100000-100000"));
    let remapped = own["Parent"].as_str().unwrap().to_string();
    assert_eq!(
        f.snapshot(OWN, &remapped)["Parent"],
        f.snapshot(REAL, &remapped)["Parent"]
    );
    // --remap-labels: the labels instead of a copy.
    let args = run(
        &[
            "--uidmap",
            "0:200000:1000",
            "--gidmap",
            "0:300000:1000",
            "--remap-labels",
        ],
        "rl",
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, r) = f.both(&args);
    assert_eq!(o.status.code(), r.status.code(), "{}", text(&o));
    assert_eq!(
        f.snapshot(OWN, "rl")["Labels"],
        f.snapshot(REAL, "rl")["Labels"]
    );
    assert_eq!(
        f.snapshot(OWN, "rl")["Labels"]["containerd.io/snapshot/uidmapping"],
        "0:200000:1000"
    );

    let errors: Vec<Vec<&str>> = vec![
        vec!["--uidmap", "0:100000", "--gidmap", "0:1:1"],
        vec!["--uidmap", "0:x:1", "--gidmap", "0:1:1"],
        vec!["--cpus", "1.5", "--cpu-quota", "10"],
        vec!["--runc-systemd-cgroup"],
        vec![
            "--runtime",
            "io.containerd.ocibox.v2",
            "--runc-systemd-cgroup",
        ],
    ];
    for (i, flags) in errors.iter().enumerate() {
        let args = run(flags, &format!("re{i}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        same_error(&f.both(&args), &format!("run {flags:?}"));
    }
    for args in [
        vec!["run", IMAGE],
        vec!["run", "--config", "/nonexistent/c.json", "x", "y"],
    ] {
        same_error(&f.both(&args), &format!("{args:?}"));
    }
}

crate::both_daemons!(flags_take_effect_in_running_containers_as_with_ctr);

fn flags_take_effect_in_running_containers_as_with_ctr(which: Which) {
    let f = Fixture::start(which, "effect");
    let fifo = f.fifo_dir();
    let run = |flags: &[&str], id: &str, cmd: &str| -> (Output, Output) {
        let mut a: Vec<&str> = vec!["run", "--rm", "--fifo-dir", &fifo];
        a.extend(flags);
        a.extend([IMAGE, id, "sh", "-c", cmd]);
        let r = f.both(&a);
        assert!(r.0.status.success(), "{flags:?}: ocibox: {}", text(&r.0));
        assert!(r.1.status.success(), "{flags:?}: ctr: {}", text(&r.1));
        assert_eq!(stdout(&r.0), stdout(&r.1), "{flags:?}");
        r
    };
    // seccomp: the default profile denies unshare without CAP_SYS_ADMIN.
    let unshare = "unshare -U true 2>/dev/null && echo allowed || echo denied";
    let (o, _) = run(&["--seccomp"], "sc", unshare);
    assert_eq!(stdout(&o), "denied\n");
    // --cap-drop: CAP_CHOWN (bit 0) gone from the effective set.
    let cap_eff = |o: &Output| {
        let s = stdout(o);
        let hex = s.split_whitespace().nth(1).unwrap_or("").to_string();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    let (with, _) = run(&[], "cap0", "grep CapEff /proc/self/status");
    let (without, _) = run(
        &["--cap-drop", "CAP_CHOWN"],
        "cap1",
        "grep CapEff /proc/self/status",
    );
    assert_eq!(cap_eff(&with) & 1, 1);
    assert_eq!(cap_eff(&without), cap_eff(&with) & !1);
    // --device: the node is there with its numbers.
    let (o, _) = run(
        &["--device", "/dev/fuse"],
        "dev",
        "stat -c '%t:%T %F' /dev/fuse",
    );
    assert_eq!(stdout(&o), "a:e5 character special file\n");
    // --uidmap/--gidmap: root in the container is 100000 outside; files are root's inside.
    let (o, _) = run(
        &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        "um",
        "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /bin/busybox",
    );
    let out = stdout(&o);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0:0"]
    );
    // The same through ocibox's shim: ctr 1.6 sends a runtime not named io.containerd.runc.*
    // its options as containerd.linux.runc.CreateOptions (IoUid/IoGid, NoPivotRoot).
    let (o, _) = run(
        &[
            "--runtime",
            "io.containerd.ocibox.v2",
            "--uidmap",
            "0:100000:65536",
            "--gidmap",
            "0:100000:65536",
        ],
        "umo",
        "cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; echo out >/dev/stdout",
    );
    let out = stdout(&o);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words, ["0", "100000", "65536", "0:0", "out"]);
    // --no-pivot runs as well, on both shims.
    run(&["--no-pivot"], "np", "echo ok");
    run(
        &["--runtime", "io.containerd.ocibox.v2", "--no-pivot"],
        "npo",
        "echo ok",
    );
    // --log-uri: the output goes to the file, not to ctr's stdout.
    let logs = common::TempDir::new("ocibox-ctl-log-uri");
    for (which, own_ctl) in [(OWN, true), (REAL, false)] {
        let uri = format!("file://{}/{which}.log", logs.path().display());
        let o = f.ctr(
            which,
            &[
                "run",
                "--rm",
                "--log-uri",
                &uri,
                IMAGE,
                "lu",
                "echo",
                "to the log",
            ],
            own_ctl,
        );
        assert!(o.status.success(), "{which}: {}", text(&o));
        assert_eq!(stdout(&o), "");
        let log = std::fs::read_to_string(logs.path().join(format!("{which}.log"))).unwrap();
        assert_eq!(log, "to the log\n", "{which}");
    }
    // ctr checks only the CAP_ prefix: an unknown name reaches the runtime (runc 1.1
    // warns and goes on), the same way for both.
    let mut a: Vec<&str> = vec!["run", "--fifo-dir", &fifo, "--cap-add", "CAP_OCIBOX"];
    a.extend([IMAGE, "unknown-cap", "true"]);
    let (o, r) = f.both(&a);
    assert_eq!(o.status.code(), r.status.code(), "{}", text(&o));
    let caps = &f.info(OWN, "unknown-cap")["Spec"]["process"]["capabilities"]["bounding"];
    assert!(caps.as_array().unwrap().iter().any(|c| c == "CAP_OCIBOX"));
    assert_eq!(f.info(OWN, "unknown-cap"), f.info(REAL, "unknown-cap"));
}

crate::both_daemons!(task_exec_user_matches_ctr);

fn task_exec_user_matches_ctr(which: Which) {
    let f = Fixture::start(which, "execuser");
    let fifo = f.fifo_dir();
    for (which, own_ctl) in [(OWN, true), (REAL, false)] {
        let o = f.ctr(
            which,
            &[
                "run",
                "-d",
                "--fifo-dir",
                &fifo,
                IMAGE,
                "ex",
                "sleep",
                "120",
            ],
            own_ctl,
        );
        assert!(o.status.success(), "{which}: {}", text(&o));
    }
    for (n, user) in ["1000", "1000:1000", "root", "0:0", "nobody", "0:nogroup"]
        .iter()
        .enumerate()
    {
        let exec_id = format!("x{n}");
        let args = [
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            &exec_id,
            "--user",
            user,
            "ex",
            "id",
        ];
        let (o, r) = f.both(&args);
        assert_eq!(
            o.status.code(),
            r.status.code(),
            "--user {user}: {}",
            text(&o)
        );
        assert_eq!(stdout(&o), stdout(&r), "--user {user}");
        assert_eq!(stderr(&o), stderr(&r), "--user {user}");
        if *user == "1000" {
            assert_eq!(stdout(&o), "uid=1000 gid=0(root) groups=0(root)\n");
        }
    }
}

/// The CNI network ctr's --cni would use here, if the host has one and its plugins.
fn cni_network() -> Option<ocibox::ctl::cni::Network> {
    let net = ocibox::ctl::cni::default_network(Path::new(ocibox::ctl::cni::CONF_DIR)).ok()?;
    let have = |t: &str| {
        ocibox::ctl::cni::PLUGIN_DIRS
            .iter()
            .any(|d| Path::new(d).join(t).is_file())
    };
    net.plugins
        .iter()
        .all(|p| have(p["type"].as_str().unwrap_or("")))
        .then_some(net)
}

/// Takes a test container's address back if the test ends early.
struct CniGuard(ocibox::ctl::cni::Network, Vec<String>);

impl Drop for CniGuard {
    fn drop(&mut self) {
        for id in &self.1 {
            let cache = Path::new(ocibox::ctl::cni::CACHE_DIR)
                .join("results")
                .join(format!(
                    "{}-{id}-{}",
                    self.0.name,
                    ocibox::ctl::cni::IF_NAME
                ));
            if cache.exists() {
                let _ = ocibox::ctl::cni::remove(&self.0, id);
            }
        }
    }
}

crate::both_daemons!(cni_run_gets_an_address_and_gives_it_back_as_ctr);

fn cni_run_gets_an_address_and_gives_it_back_as_ctr(which: Which) {
    let Some(net) = cni_network() else {
        eprintln!("skipped: no CNI network config in /etc/cni/net.d or its plugins missing");
        return;
    };
    let f = Fixture::start(which, "cni");
    let ids: Vec<String> = [OWN, REAL]
        .iter()
        .map(|w| format!("{}-cni", f.ns(w)))
        .collect();
    let _guard = CniGuard(net.clone(), ids.clone());
    let fifo = f.fifo_dir();
    let args = [
        "run",
        "--rm",
        "--cni",
        "--fifo-dir",
        &fifo,
        IMAGE,
        "cni",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | wc -l",
    ];
    let (o, r) = f.both(&args);
    assert!(o.status.success(), "ocibox: {}", text(&o));
    assert!(r.status.success(), "ctr: {}", text(&r));
    assert_eq!(stdout(&o).trim(), "1");
    assert_eq!(stdout(&o), stdout(&r));
    for id in &ids {
        let cache = Path::new(ocibox::ctl::cni::CACHE_DIR)
            .join("results")
            .join(format!("{}-{id}-{}", net.name, ocibox::ctl::cni::IF_NAME));
        assert!(!cache.exists(), "{} left behind", cache.display());
        // host-local keeps one file per address holding the container id.
        let ipam = Path::new("/var/lib/cni/networks").join(&net.name);
        if let Ok(rd) = std::fs::read_dir(&ipam) {
            for e in rd.flatten() {
                let held = std::fs::read_to_string(e.path()).unwrap_or_default();
                assert!(
                    !held.contains(id.as_str()),
                    "{} still reserved",
                    e.path().display()
                );
            }
        }
    }
}
