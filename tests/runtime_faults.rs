//! Faults and corrupted state: a config.json that is not a file, a `create` killed half-way,
//! a corrupted state.json. Each case also runs against Debian's runc where runc survives it;
//! runc's result is printed (it is what ocibox improves on), ocibox's is required.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const RUNC: &str = "/usr/sbin/runc";

fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        ("ocibox", Runtime::new()),
        ("runc", Runtime::with_binary(Path::new(RUNC))),
    ]
}

/// Every cgroup directory named `id` (a relative cgroupsPath puts it below the test's own
/// cgroup, which may be a few levels down in some hierarchies).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == id {
                out.push(e.path());
            } else if depth > 0 {
                walk(&e.path(), id, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 5, &mut out);
    out
}

fn alive(pid: i32) -> bool {
    // A zombie is as good as gone: its parent (here: pid 1 or us) reaps it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .is_some_and(|st| st != "Z")
        })
        .unwrap_or(false)
}

fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// What a case made, removed on drop also when the case failed (or when the runtime under
/// test leaves it, as runc does): processes, cgroup directories, the state directory.
struct Scrub {
    id: String,
    state_dir: PathBuf,
    pids: Vec<i32>,
}

impl Drop for Scrub {
    fn drop(&mut self) {
        for p in &self.pids {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        for d in cgroup_dirs(&self.id) {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                    // SAFETY: as above.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        }
        for p in &self.pids {
            wait_dead(*p);
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut dirs = cgroup_dirs(&self.id);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn scrub(rt: &Runtime, id: &str) -> Scrub {
    Scrub {
        id: id.to_string(),
        state_dir: rt.root.path().join(id),
        pids: Vec::new(),
    }
}

/// What is left of container `id`: cgroup dirs, live processes of `pids`, the state dir.
fn left(rt: &Runtime, id: &str, pids: &[i32]) -> Vec<String> {
    let mut out: Vec<String> = cgroup_dirs(id)
        .into_iter()
        .map(|d| format!("cgroup {}", d.display()))
        .collect();
    out.extend(
        pids.iter()
            .filter(|p| alive(**p))
            .map(|p| format!("process {p}")),
    );
    if rt.root.path().join(id).exists() {
        out.push("state directory".into());
    }
    out
}

// ---- config.json that is not a regular file -------------------------------------------

/// Run `create` with a time limit: a runtime that opens a fifo without O_NONBLOCK blocks.
fn create_limited(rt: &Runtime, b: &Bundle, id: &str) -> (Option<i32>, String) {
    let err = rt.root.path().join(format!("{id}.err"));
    let mut child = rt
        .command(&["create", "--bundle", b.path().to_str().unwrap(), id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&err).unwrap_or_default())
}

type MakeFile = dyn Fn(&Path);

#[test]
fn config_json_that_is_not_a_regular_file_is_refused_at_once() {
    // runc reads /dev/zero until the OOM killer comes and blocks on a fifo for ever: not run.
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let cfg = b.path().join("config.json");
    let kinds: [(&str, &MakeFile); 3] = [
        ("a character device", &|p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("a fifo", &|p| {
            nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
        }),
        ("a directory", &|p| std::fs::create_dir(p).unwrap()),
    ];
    for (what, make) in kinds {
        let _ = std::fs::remove_file(&cfg);
        let _ = std::fs::remove_dir(&cfg);
        make(&cfg);
        let id = unique("cfg");
        rt.track(&id);
        let _s = scrub(&rt, &id);
        let (code, err) = create_limited(&rt, &b, &id);
        assert_eq!(code, Some(1), "config.json as {what}: {err}");
        assert!(
            err.contains(&format!("is {what}, not a regular file")),
            "config.json as {what}: {err}"
        );
        assert_eq!(left(&rt, &id, &[]), Vec::<String>::new());
    }
}

#[test]
fn config_json_bigger_than_32_mib_is_refused() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(b.path().join("config.json"))
        .unwrap();
    f.set_len((32 << 20) + 1).unwrap();
    let id = unique("big");
    rt.track(&id);
    let (code, err) = create_limited(&rt, &b, &id);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("byte limit"), "{err}");
}

#[test]
fn config_json_symlink_to_a_file_in_the_bundle_works_as_with_runc() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&["true"]);
        std::fs::rename(b.path().join("config.json"), b.path().join("real.json")).unwrap();
        std::os::unix::fs::symlink("real.json", b.path().join("config.json")).unwrap();
        let id = unique("link");
        rt.track(&id);
        let _s = scrub(&rt, &id);
        let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
}

#[test]
fn exec_process_json_that_is_not_a_regular_file_is_refused() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("execp");
    let _s = scrub(&rt, &id);
    rt.create(&id, &b);
    let fifo = rt.root.path().join("process.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (p, what) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a fifo"),
    ] {
        let out = rt.run(&["exec", "-p", p.to_str().unwrap(), &id]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(&format!("is {what}, not a regular file")),
            "{}",
            stderr(&out)
        );
    }
}

// ---- create killed before it finished -------------------------------------------------

/// A bundle whose createRuntime hook writes its pid to `marker` and then waits: create
/// stops there, with the cgroups and the init made and state.json not yet written.
fn bundle_stopping_in_create(marker: &Path) -> Bundle {
    let b = Bundle::new(&["sleep", "100"]);
    let script = format!("echo $$ > {}; exec sleep 100", marker.display());
    b.edit(|c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", script] }]
        });
    });
    b
}

fn wait_for_file(p: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(t) = std::fs::read_to_string(p) {
            if t.ends_with('\n') {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn delete_force_removes_what_a_killed_create_made() {
    for (name, rt) in runtimes() {
        let marker = rt.root.path().join("hook.pid");
        let b = bundle_stopping_in_create(&marker);
        let id = unique("killed");
        rt.track(&id);
        let mut s = scrub(&rt, &id);
        let mut create = rt
            .command(&["create", "--bundle", b.path().to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let hook: i32 = wait_for_file(&marker).trim().parse().unwrap();
        s.pids.push(hook);
        // The init is in the container's cgroups by now.
        let init: Vec<i32> = cgroup_dirs(&id)
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        s.pids.extend(&init);
        assert!(!init.is_empty(), "{name}: no init in the cgroups");
        create.kill().unwrap();
        create.wait().unwrap();
        // The hook is the runtime's child, not the container's: whoever killed create
        // must deal with it (containerd kills the process group).
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(hook, libc::SIGKILL) };
        let before = left(&rt, &id, &init);
        let out = rt.run(&["delete", "--force", &id]);
        let after = left(&rt, &id, &init);
        eprintln!(
            "{name}: killed create left {before:?}; delete -f (exit {:?}: {}) left {after:?}",
            out.status.code(),
            stderr(&out).trim()
        );
        if name == "ocibox" {
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(after, Vec::<String>::new());
        }
    }
}

#[test]
fn delete_without_force_refuses_a_create_still_running() {
    let rt = Runtime::new();
    let marker = rt.root.path().join("hook.pid");
    let b = bundle_stopping_in_create(&marker);
    let id = unique("busy");
    rt.track(&id);
    let mut s = scrub(&rt, &id);
    let mut create = rt
        .command(&["create", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    s.pids.push(create.id() as i32);
    let hook: i32 = wait_for_file(&marker).trim().parse().unwrap();
    s.pids.push(hook);
    let out = rt.run(&["delete", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("creating"), "{}", stderr(&out));
    assert!(rt.root.path().join(&id).exists());
    // --force wins over the create: it is killed, and all it made goes.
    rt.ok(&["delete", "--force", &id]);
    let status = create.wait().unwrap();
    assert!(!status.success());
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(hook, libc::SIGKILL) };
    assert_eq!(left(&rt, &id, &[]), Vec::<String>::new());
}

// ---- corrupted state.json -------------------------------------------------------------

#[test]
fn corrupt_state_json_fails_clearly_and_delete_force_removes_everything() {
    for (name, rt) in runtimes() {
        for (what, bytes) in [
            ("garbage", &b"garbage\n"[..]),
            ("empty", &b""[..]),
            ("truncated", &b"{\"id\":\"x\",\"pid\":12"[..]),
        ] {
            let b = Bundle::new(&["sleep", "100"]);
            let id = unique("corrupt");
            let mut s = scrub(&rt, &id);
            rt.create(&id, &b);
            let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
            s.pids.push(pid);
            std::fs::write(rt.root.path().join(&id).join("state.json"), bytes).unwrap();

            for args in [
                &["state", &id][..],
                &["kill", &id, "KILL"],
                &["delete", &id],
            ] {
                let out = rt.run(args);
                assert!(!out.status.success(), "{name} {what}: {args:?} succeeded");
                if name == "ocibox" {
                    assert!(
                        stderr(&out).contains("is corrupt"),
                        "{what}: {args:?}: {}",
                        stderr(&out)
                    );
                }
            }
            assert!(alive(pid), "{name} {what}: a failed kill killed");

            // As runc: list names the container it cannot load on stderr, exit 0.
            let out = rt.run(&["list"]);
            assert!(out.status.success(), "{name} {what}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("load container {id}: ")),
                "{name} {what}: {}",
                stderr(&out)
            );
            assert!(
                !stdout(&out).contains(&id),
                "{name} {what}: {}",
                stdout(&out)
            );

            let out = rt.run(&["delete", "--force", &id]);
            wait_dead(pid);
            let after = left(&rt, &id, &[pid]);
            eprintln!(
                "{name}: {what} state.json, delete -f (exit {:?}) left {after:?}",
                out.status.code()
            );
            if name == "ocibox" {
                assert!(out.status.success(), "{what}: {}", stderr(&out));
                assert_eq!(after, Vec::<String>::new(), "{what}");
            }
        }
    }
}

#[test]
fn delete_force_without_any_record_still_finds_the_default_cgroups() {
    // Both records gone (state.json and intent.json corrupt): the cgroups a container without
    // cgroupsPath gets, and every process in them, are found by the container's id.
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("norecord");
    let mut s = scrub(&rt, &id);
    rt.create(&id, &b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    s.pids.push(pid);
    let dir = rt.root.path().join(&id);
    std::fs::write(dir.join("state.json"), "{").unwrap();
    std::fs::write(dir.join("intent.json"), "").unwrap();
    rt.ok(&["delete", "--force", &id]);
    wait_dead(pid);
    assert_eq!(left(&rt, &id, &[pid]), Vec::<String>::new());
}
