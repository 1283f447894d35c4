//! The ocibox shim driven by Debian's containerd 1.6 (`ctr … --runtime
//! io.containerd.ocibox.v2`), over Debian's runc and over ocibox's own runtime. Each test
//! starts its own containerd (see `common::containerd`), which its Drop guard tears down.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use containerd_shim_protos::api::{StateRequest, StateResponse};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::proto::Response;

use common::containerd::{text, with_timeout, Containerd, Runtime};
use common::ttrpc_by_hand::{read_response, send_request};

const OWN_RUNTIME_PENDING: &str = "ocibox's own runtime applet is not built yet";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- ctr run --rm: output and exit status --------------------------------------------

fn run_rm_exit_status(rt: Runtime) {
    let c = Containerd::start(rt);
    let out = c.run(&["--rm"], "rm1", &["sh", "-c", "echo hi; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(stdout(&out), "hi\n", "{}", text(&out));
    // The shim went away with the task.
    assert_eq!(c.shims_left(), Vec::<i32>::new(), "shims left");
}

#[test]
fn run_rm_exit_status_runc() {
    run_rm_exit_status(Runtime::Runc);
}

#[test]
fn run_rm_exit_status_own() {
    run_rm_exit_status(Runtime::Own);
}

// ---- hooks: poststart and poststop run once, with the state on stdin -----------------

/// `ctr run --rm --config` of a spec with poststart and poststop hooks (the commands the
/// shim sends to the runtime binary, since hook processes must be reaped by the shim's own
/// reaper; without hooks ocibox's runtime starts and deletes in the shim's process).
fn hooks_run_once(rt: Runtime) {
    let c = Containerd::start(rt);
    let scratch = common::TempDir::new("ocibox-shim-hooks");
    let rootfs = scratch.path().join("rootfs");
    common::make_rootfs(&rootfs);
    let out_dir = scratch.path().display().to_string();
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >> {out_dir}/{name}.json; echo >> {out_dir}/{name}.json")],
        })
    };
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "echo ran"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "env": ["PATH=/bin"]},
        "root": {"path": rootfs},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "hooks": {"poststart": [hook("poststart")], "poststop": [hook("poststop")]},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                 {"type": "uts"}]},
    });
    let config = scratch.path().join("config.json");
    std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let flags = c.runtime_flags();
    let mut args = vec!["run", "--rm", "--config", config.to_str().unwrap()];
    args.extend(flags.iter().map(String::as_str));
    args.push("hk1");
    let out = with_timeout(&mut c.ctr_cmd(&args), Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "ran\n", "{}", text(&out));
    // Debian's runc 1.1 runs poststart hooks at create, so they see "created"; the runtime
    // spec (and runc since its PR 5186) runs them after start, as ocibox does: "running".
    let poststart = match rt {
        Runtime::Runc => "created",
        _ => "running",
    };
    for (name, status) in [("poststart", poststart), ("poststop", "stopped")] {
        let seen = std::fs::read_to_string(scratch.path().join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("{name} hook did not run: {e}"));
        let states: Vec<serde_json::Value> = seen
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {l}: {e}")))
            .collect();
        assert_eq!(states.len(), 1, "{name} ran once: {seen}");
        assert_eq!(states[0]["id"], "hk1", "{seen}");
        assert_eq!(states[0]["status"], status, "{name}: {seen}");
    }
    assert_eq!(c.shims_left(), Vec::<i32>::new(), "shims left");
}

#[test]
fn hooks_run_once_runc() {
    hooks_run_once(Runtime::Runc);
}

#[test]
fn hooks_run_once_own() {
    hooks_run_once(Runtime::Own);
}

// ---- -d, then the task commands, with the events in order ------------------------------

fn topics(events: &str) -> Vec<String> {
    events
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
        .map(str::to_string)
        .collect()
}

fn detached_lifecycle(rt: Runtime) {
    let c = Containerd::start(rt);
    let mut events = c
        .ctr_cmd(&["events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctr events");
    std::thread::sleep(Duration::from_millis(300));

    let out = c.run(&["-d"], "d1", &["sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status("d1", "RUNNING");

    let ps = c.ctr(&["task", "ps", "d1"]);
    assert!(ps.status.success(), "{}", text(&ps));
    assert!(stdout(&ps).lines().count() >= 2, "{}", text(&ps));

    let m = c.ctr(&["task", "metrics", "d1"]);
    assert!(m.status.success(), "{}", text(&m));
    assert!(stdout(&m).contains("memory.usage_in_bytes"), "{}", text(&m));
    assert!(stdout(&m).contains("pids.current"), "{}", text(&m));

    let st = c.ctr(&["shim", "--id", "d1", "state"]);
    assert!(st.status.success(), "{}", text(&st));
    assert!(stdout(&st).contains("\"id\": \"d1\""), "{}", text(&st));

    let fifo = c.fifo_dir();
    let e = with_timeout(
        &mut c.ctr_cmd(&[
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e1",
            "d1",
            "sh",
            "-c",
            "echo fromexec; exit 5",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(e.status.code(), Some(5), "{}", text(&e));
    assert_eq!(stdout(&e), "fromexec\n");

    // exec -t, through a pty made by script(1).
    let cmdline = format!(
        "ctr -a {} -n {} task exec -t --fifo-dir {} --exec-id e2 d1 sh -c 'tty; exit 4'",
        c.address,
        c.namespace,
        c.fifo_dir()
    );
    let piped = format!(
        "sleep 10 | script -qefc \"{}\" /dev/null",
        cmdline.replace('"', "\\\"")
    );
    let e = with_timeout(
        Command::new("sh").args(["-c", &piped]),
        Duration::from_secs(30),
    );
    assert_eq!(e.status.code(), Some(4), "{}", text(&e));
    assert!(stdout(&e).contains("/dev/pts/"), "{}", text(&e));

    assert!(c.ctr(&["task", "pause", "d1"]).status.success());
    c.wait_status("d1", "PAUSED");
    assert!(c.ctr(&["task", "resume", "d1"]).status.success());
    c.wait_status("d1", "RUNNING");

    let k = c.ctr(&["task", "kill", "-s", "KILL", "d1"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("d1", "STOPPED");
    let d = c.ctr(&["task", "delete", "d1"]);
    assert!(d.status.success(), "{}", text(&d));
    assert!(c.ctr(&["container", "rm", "d1"]).status.success());

    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("ctr events output");
    let got = topics(&stdout(&out));
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert_eq!(got, want, "events:\n{}", stdout(&out));
}

#[test]
fn detached_lifecycle_runc() {
    detached_lifecycle(Runtime::Runc);
}

#[test]
fn detached_lifecycle_own() {
    detached_lifecycle(Runtime::Own);
}

// ---- OOM ------------------------------------------------------------------------------

fn oom_event(rt: Runtime) {
    let c = Containerd::start(rt);
    let mut events = c
        .ctr_cmd(&["events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctr events");
    std::thread::sleep(Duration::from_millis(300));
    // busybox tail keeps a line-less stream in memory until the cgroup limit kills it.
    let out = c.run(
        &["--rm", "--memory-limit", "16777216"],
        "oom1",
        &["sh", "-c", "tail /dev/zero"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("ctr events output");
    let got = topics(&stdout(&out));
    assert!(got.contains(&"/tasks/oom".to_string()), "events: {got:?}");
}

#[test]
fn oom_event_runc() {
    oom_event(Runtime::Runc);
}

#[test]
fn oom_event_own() {
    oom_event(Runtime::Own);
}

// ---- containerd killed and restarted ---------------------------------------------------

fn survives_containerd_restart(rt: Runtime) {
    let mut c = Containerd::start(rt);
    for id in ["s1", "s2", "s3"] {
        let out = c.run(&["-d"], id, &["sleep", "1000"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    for id in ["s1", "s2", "s3"] {
        c.wait_status(id, "RUNNING");
    }
    c.kill_daemon();
    std::thread::sleep(Duration::from_millis(300));
    c.spawn_daemon();
    for id in ["s1", "s2", "s3"] {
        assert_eq!(c.task_status(id).as_deref(), Some("RUNNING"), "{id}");
    }
    let k = c.ctr(&["task", "kill", "-s", "KILL", "s2"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("s2", "STOPPED");
    let d = c.ctr(&["task", "delete", "s2"]);
    assert!(
        String::from_utf8_lossy(&d.stderr).contains("137"),
        "exit status not reported: {}",
        text(&d)
    );
    assert_eq!(c.task_status("s1").as_deref(), Some("RUNNING"));
}

#[test]
fn survives_containerd_restart_runc() {
    survives_containerd_restart(Runtime::Runc);
}

#[test]
fn survives_containerd_restart_own() {
    survives_containerd_restart(Runtime::Own);
}

// ---- -t with a resize --------------------------------------------------------------------

fn terminal_with_resize(rt: Runtime) {
    let c = Containerd::start(rt);
    let flags = c.runtime_flags().join(" ");
    // script gives ctr a pty of 30x100; ctr sizes the container's terminal from it
    // (ResizePty after Start). Two seconds in, the outer terminal becomes 40x120: ctr gets
    // SIGWINCH and resizes again; the shell in the container reports both sizes.
    let cmdline = format!(
        "stty rows 30 cols 100; ctr -a {} -n {} run --rm -t {flags} {} t1 \
         sh -c 'sleep 1; stty size; sleep 2; stty size; exit 7' & \
         sleep 2; stty rows 40 cols 120; wait $!",
        c.address,
        c.namespace,
        common::containerd::IMAGE
    );
    // script's stdin stays open (a pipe from sleep) so the terminal sees no EOF.
    let piped = format!(
        "sleep 10 | script -qefc \"{}\" /dev/null",
        cmdline.replace('"', "\\\"").replace('$', "\\$")
    );
    let out = with_timeout(
        Command::new("sh").args(["-c", &piped]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(stdout(&out).contains("30 100"), "{}", text(&out));
    assert!(stdout(&out).contains("40 120"), "{}", text(&out));
}

#[test]
fn terminal_with_resize_runc() {
    terminal_with_resize(Runtime::Runc);
}

#[test]
fn terminal_with_resize_own() {
    terminal_with_resize(Runtime::Own);
}

// ---- malformed ttrpc frames --------------------------------------------------------------

#[test]
fn malformed_frames_do_not_crash_the_shim() {
    let c = Containerd::start(Runtime::Runc);
    let out = c.run(&["-d"], "m1", &["sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status("m1", "RUNNING");
    let bundle = c
        .dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&c.namespace)
        .join("m1");
    let addr = std::fs::read_to_string(bundle.join("address")).unwrap();
    let sock = addr.trim().trim_start_matches("unix://").to_string();
    let frames: Vec<Vec<u8>> = vec![
        // oversize length
        [
            &0x7fff_ffffu32.to_be_bytes()[..],
            &1u32.to_be_bytes(),
            &[1, 0],
        ]
        .concat(),
        // a request whose body is not protobuf
        [
            &8u32.to_be_bytes()[..],
            &3u32.to_be_bytes(),
            &[1, 0],
            &[0xff; 8],
        ]
        .concat(),
        // unknown message type
        [&0u32.to_be_bytes()[..], &5u32.to_be_bytes(), &[9, 0]].concat(),
        // half a header, then hang up
        vec![0, 0, 1],
    ];
    for f in frames {
        if let Ok(mut s) = UnixStream::connect(&sock) {
            let _ = s.write_all(&f);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(c.task_status("m1").as_deref(), Some("RUNNING"));
    unknown_methods_are_unimplemented(&sock);
    assert_eq!(c.task_status("m1").as_deref(), Some("RUNNING"));
    let ps = c.ctr(&["task", "ps", "m1"]);
    assert!(ps.status.success(), "{}", text(&ps));
    assert_eq!(c.shim_pids().len(), 1);
    let _ = OWN_RUNTIME_PENDING;
}

/// Unknown services and methods get UNIMPLEMENTED (gRPC code 12), as from Go's ttrpc, and
/// a known method still works on the same connection afterwards.
fn unknown_methods_are_unimplemented(sock: &str) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send_request(&mut s, 1, "containerd.task.v2.Task", "Nope", vec![]);
    send_request(&mut s, 3, "no.such.Service", "State", vec![]);
    let mut state = StateRequest::new();
    state.id = "m1".into();
    let payload = state.write_to_bytes().unwrap();
    send_request(&mut s, 5, "containerd.task.v2.Task", "State", payload);
    let mut got: Vec<(u32, Response)> = (0..3)
        .map(|_| read_response(&mut s).expect("a response"))
        .collect();
    got.sort_by_key(|(stream, _)| *stream);
    let codes: Vec<(u32, i32)> = got
        .iter()
        .map(|(stream, r)| (*stream, r.status.code.value()))
        .collect();
    assert_eq!(codes, [(1, 12), (3, 12), (5, 0)], "{got:?}");
    assert_eq!(got[0].1.status.message, "method Nope");
    assert_eq!(got[1].1.status.message, "service no.such.Service");
    let st = StateResponse::parse_from_bytes(&got[2].1.payload).unwrap();
    assert_eq!(st.id, "m1");
}
