//! The runtime applet's commands against the real kernel: run, create/start/state/list,
//! kill, delete, and bad input that must leave nothing behind.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn wait_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = rt.status(id);
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id}: status {s}, wanted {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_prints_output_and_returns_exit_status() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "echo hello; echo err >&2; exit 3"]);
    let id = unique("run");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "err\n");
    // run without --keep deletes the container.
    let st = rt.run(&["state", &id]);
    assert!(!st.status.success());
    assert!(stderr(&st).contains("container does not exist"));
}

/// `run` (foreground) in a child process; returns once the container is running.
fn run_in_background(rt: &Runtime, b: &Bundle, id: &str) -> std::process::Child {
    let fg = rt
        .command(&["run", "-b", b.path().to_str().unwrap(), id])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.run(&["state", id]).status.code() != Some(0) || rt.status(id) != "running" {
        assert!(Instant::now() < deadline, "container never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    fg
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("sig");
    rt.track(&id);
    let mut fg = run_in_background(&rt, &b, &id);
    rt.ok(&["kill", &id, "KILL"]);
    assert_eq!(fg.wait().unwrap().code(), Some(137));
}

#[test]
fn run_forwards_signals_to_the_container() {
    let rt = Runtime::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.05; done",
    ]);
    let id = unique("fwd");
    rt.track(&id);
    let mut fg = run_in_background(&rt, &b, &id);
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fg.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(fg.wait().unwrap().code(), Some(42));
}

#[test]
fn bundle_from_debian_runc_spec_runs() {
    let rt = Runtime::new();
    let b = Bundle::from_real_runc(&["sh", "-c", "echo from-runc-spec; hostname"]);
    let id = unique("runcspec");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-runc-spec\nrunc\n");
}

#[test]
fn create_start_state_list_kill_delete() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("life");
    let pidfile = b.path().join("pid");
    rt.track(&id);
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2-dev");
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));

    let table = rt.ok(&["list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID"));
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id) && row.contains("created"), "{table}");
    let js: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(js[0]["id"], id.as_str());
    assert_eq!(js[0]["pid"], pid);
    assert_eq!(rt.ok(&["list", "-q"]), format!("{id}\n"));

    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    let again = rt.run(&["start", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("cannot start an already running container"));

    let del = rt.run(&["delete", &id]);
    assert!(!del.status.success());
    assert!(
        stderr(&del).contains("is not stopped: running"),
        "{}",
        stderr(&del)
    );

    rt.ok(&["kill", &id, "KILL"]);
    wait_status(&rt, &id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    let k = rt.run(&["kill", &id]);
    assert!(
        stderr(&k).contains("container not running"),
        "{}",
        stderr(&k)
    );
    rt.ok(&["delete", &id]);
    assert!(!rt.root.path().join(&id).exists());
    assert!(leftovers(&id).is_empty(), "{:?}", leftovers(&id));
}

#[test]
fn kill_accepts_names_and_numbers_and_all() {
    let rt = Runtime::new();
    // The shell traps USR1 and reports it through a file in the rootfs.
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'echo usr1 > /tmp/got' USR1; while true; do sleep 0.05; done",
    ]);
    for (n, sig) in ["SIGUSR1", "usr1", "10"].iter().enumerate() {
        let id = unique(&format!("kill{n}"));
        rt.create(&id, &b);
        rt.ok(&["start", &id]);
        let got = b.rootfs().join("tmp/got");
        let _ = std::fs::remove_file(&got);
        std::thread::sleep(Duration::from_millis(100));
        rt.ok(&["kill", &id, sig]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !got.exists() {
            assert!(Instant::now() < deadline, "signal {sig} not delivered");
            std::thread::sleep(Duration::from_millis(20));
        }
        rt.ok(&["kill", "--all", &id, "KILL"]);
        wait_status(&rt, &id, "stopped");
        rt.ok(&["delete", &id]);
    }
    let bad = rt.run(&["kill", "nonexistent", "NOPE"]);
    assert!(!bad.status.success());
}

#[test]
fn delete_force_stops_a_running_container() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("force");
    rt.create(&id, &b);
    rt.ok(&["start", &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", "--force", &id]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            s.contains(") Z")
        }
    );
    assert!(leftovers(&id).is_empty());
    // Deleting a created container needs no force.
    let id2 = unique("created");
    rt.create(&id2, &b);
    rt.ok(&["delete", &id2]);
    assert!(!rt.root.path().join(&id2).exists());
    // Missing container: an error without --force, success with it.
    assert!(!rt.run(&["delete", "missing-one"]).status.success());
    assert!(rt.run(&["delete", "-f", "missing-one"]).status.success());
}

fn expect_create_failure(rt: &Runtime, b: &Bundle, id: &str, needle: &str) {
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), id]);
    assert!(!out.status.success(), "create {id} should fail");
    assert!(
        stderr(&out).contains(needle),
        "stderr of create {id} lacks {needle:?}: {}",
        stderr(&out)
    );
    assert!(!rt.root.path().join(id).exists(), "state dir left for {id}");
    assert!(leftovers(id).is_empty(), "{:?}", leftovers(id));
}

#[test]
fn bad_input_fails_cleanly() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    // runc accepts any string as ociVersion and refuses only other JSON types.
    b.edit(|c| c["ociVersion"] = json!(7));
    expect_create_failure(&rt, &b, &unique("badver"), "cannot unmarshal number");

    let b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "bogus"}]));
    expect_create_failure(&rt, &b, &unique("badns"), "bogus");

    let b = Bundle::new(&["true"]);
    std::fs::write(b.path().join("config.json"), "{ not json").unwrap();
    expect_create_failure(&rt, &b, &unique("badjson"), "config.json");

    let b = Bundle::new(&["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    expect_create_failure(&rt, &b, &unique("nocfg"), "config.json not found");

    let b = Bundle::new(&["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    expect_create_failure(&rt, &b, &unique("norootfs"), "does not exist");

    let b = Bundle::new(&["no-such-binary"]);
    expect_create_failure(&rt, &b, &unique("noexe"), "executable file not found");

    let b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["cwd"] = json!("relative"));
    expect_create_failure(&rt, &b, &unique("cwd"), "not an absolute path");

    let b = Bundle::new(&["true"]);
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), "bad/id"]);
    assert!(stderr(&out).contains("invalid container id format"));

    let id = unique("dup");
    let b = Bundle::new(&["sleep", "100"]);
    rt.create(&id, &b);
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container with id exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(rt.status(&id), "created");
}

#[test]
fn errors_go_to_the_json_log() {
    let rt = Runtime::new();
    let log = rt.root.path().join("log.json");
    let out = rt
        .command(&[])
        .args([
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("container does not exist"));
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert_eq!(v["msg"], "container does not exist");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn spec_writes_runcs_default_config() {
    let d1 = TempDir::new("spec-ours");
    let d2 = TempDir::new("spec-runc");
    let ours = std::process::Command::new(bin())
        .args(["runc", "spec", "--bundle"])
        .arg(d1.path())
        .status()
        .unwrap();
    assert!(ours.success());
    let theirs = std::process::Command::new("/usr/sbin/runc")
        .args(["spec", "--bundle"])
        .arg(d2.path())
        .status()
        .unwrap();
    assert!(theirs.success());
    assert_eq!(
        std::fs::read_to_string(d1.path().join("config.json")).unwrap(),
        std::fs::read_to_string(d2.path().join("config.json")).unwrap()
    );
    // A second spec refuses to overwrite.
    let again = std::process::Command::new(bin())
        .args(["runc", "spec", "-b"])
        .arg(d1.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let rootless = TempDir::new("spec-rootless");
    let st = std::process::Command::new(bin())
        .args(["runc", "spec", "--rootless", "--bundle"])
        .arg(rootless.path())
        .status()
        .unwrap();
    assert!(st.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootless.path().join("config.json")).unwrap())
            .unwrap();
    assert!(v["linux"]["uidMappings"].is_array());
}
