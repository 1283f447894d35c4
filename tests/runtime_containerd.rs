//! ocibox's runtime applet as containerd's runc: Debian's containerd 1.6 with its own shim
//! (`io.containerd.runc.v2` = /usr/bin/containerd-shim-runc-v2), told by
//! `ctr run --runc-binary <dir>/runc-link/runc` to call a link named `runc` that points at
//! the built ocibox binary. Every test also runs with Debian's runc in that place (the
//! `_runc` twins): what ocibox shows must be what runc shows.
//!
//! Each test starts its own containerd with its own namespace (see `common::containerd`);
//! the shim gives its runc `--root /run/containerd/runc/<namespace>`, which the fixture's
//! Drop removes with the shims, cgroups, mounts and directories, also when a test fails.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::containerd::{text, with_timeout, Containerd, Runtime, IMAGE};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ctr ARGS…`, killed after 30 s.
fn ctr(c: &Containerd, args: &[&str]) -> Output {
    with_timeout(&mut c.ctr_cmd(args), Duration::from_secs(30))
}

/// `ctr task exec --fifo-dir <ours> --exec-id EXEC [flags…] ID CMD…`
fn task_exec(c: &Containerd, exec_id: &str, flags: &[&str], id: &str, cmd: &[&str]) -> Command {
    let fifo = c.fifo_dir();
    let mut args = vec!["task", "exec", "--fifo-dir", &fifo, "--exec-id", exec_id];
    args.extend(flags);
    args.push(id);
    args.extend(cmd);
    c.ctr_cmd(&args)
}

// ---- a command on a pseudo-terminal ------------------------------------------------------

/// A command whose stdin, stdout and stderr are the slave of a new pty (its controlling
/// terminal, in a new session); the test types into the master and reads what it prints.
struct PtySession {
    master: std::fs::File,
    child: Child,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl PtySession {
    fn spawn(mut cmd: Command) -> PtySession {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: runs in the forked child before exec; setsid(2) and ioctl(2) on fd 0 (the
        // pty slave) are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        // The Command held our copies of the slave: without them, reads on the master end
        // (EIO) once the child and its descendants have closed theirs.
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        PtySession {
            master,
            child,
            seen,
        }
    }

    fn output(&self) -> String {
        self.seen
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the terminal has shown `needle`; panics with the screen after `limit`.
    fn expect(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{needle:?} never appeared on the terminal:\n{:?}",
            self.output()
        );
    }

    fn type_line(&mut self, line: &str) {
        // A raw-mode terminal: Enter is CR; the container's tty turns it into NL.
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .expect("write to pty master");
    }

    /// Waits for the command to exit; panics with the screen after `limit`.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader drain what the command printed last.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("command on the pty did not exit:\n{:?}", self.output());
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- `ctr events` ------------------------------------------------------------------------

/// A running `ctr events`; `stop` returns the task topics seen for one container.
/// `ctr events`, read as it arrives (so a test can wait for one event).
struct Events {
    child: Child,
    seen: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Events {
    fn start(c: &Containerd) -> Events {
        let mut child = c
            .ctr_cmd(&["events"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ctr events");
        let seen = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().expect("ctr events stdout");
        let sink = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // ctr subscribes asynchronously; give it time to be listening.
        std::thread::sleep(Duration::from_millis(300));
        Events {
            child,
            seen,
            reader: Some(reader),
        }
    }

    fn topics(&self, container: &str) -> Vec<String> {
        let tag = format!("\"container_id\":\"{container}\"");
        self.seen
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(&tag))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `topic` was published for `container`.
    fn wait_for(&self, container: &str, topic: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.topics(container).iter().any(|t| t == topic) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no {topic} for {container}: {:?}", self.topics(container));
    }

    fn stop(mut self, container: &str) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.topics(container)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- ctr run --rm: echo hi -----------------------------------------------------------------

fn run_rm_echo_hi(rt: Runtime) {
    let c = Containerd::start(rt);
    let out = c.run(&["--rm"], "hi1", &["echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "hi\n", "{}", text(&out));
    // The container's exit status is ctr's.
    let out = c.run(&["--rm"], "hi2", &["sh", "-c", "echo bye >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stderr(&out).contains("bye"), "{}", text(&out));
    // A missing program fails `create` (runc checks it before waiting on exec.fifo), with
    // runc's words quoted by the shim from the runtime's json log.
    let out = c.run(&["--rm"], "hi3", &["/nonexistent"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains(
            "OCI runtime create failed: runc create failed: unable to start container process: \
             exec: \"/nonexistent\": stat /nonexistent: no such file or directory"
        ),
        "{}",
        text(&out)
    );
    // `--rm` deleted the containers: their runc state is gone from the shim's --root.
    for id in ["hi1", "hi2", "hi3"] {
        assert!(!c.runc_root().join(id).exists(), "{id}: runc state left");
    }
    let ls = ctr(&c, &["container", "ls", "-q"]);
    assert_eq!(stdout(&ls), "", "{}", text(&ls));
    assert_eq!(c.shims_left(), Vec::<i32>::new(), "shims left");
}

#[test]
fn run_rm_echo_hi_ocibox() {
    run_rm_echo_hi(Runtime::RuncShimOwn);
}

#[test]
fn run_rm_echo_hi_runc() {
    run_rm_echo_hi(Runtime::RuncShimRunc);
}

// ---- ctr run -t: an interactive shell ------------------------------------------------------

fn run_interactive_shell(rt: Runtime) {
    let c = Containerd::start(rt);
    let mut args = vec!["run".to_string(), "--rm".into(), "-t".into()];
    args.extend(c.runtime_flags());
    args.extend([IMAGE.to_string(), "tty1".into(), "sh".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut sh = PtySession::spawn(c.ctr_cmd(&args));
    sh.expect("# ", Duration::from_secs(20));
    sh.type_line("tty; echo $((6*7)); exit");
    let st = sh.wait(Duration::from_secs(20));
    let screen = sh.output();
    assert_eq!(st.code(), Some(0), "{screen:?}");
    // The typed line shows `$((6*7))`; only the shell's answer shows 42.
    assert!(screen.contains("\n42\r"), "{screen:?}");
    assert!(screen.contains("/dev/pts/"), "{screen:?}");
    assert!(!c.runc_root().join("tty1").exists());
}

#[test]
fn run_interactive_shell_ocibox() {
    run_interactive_shell(Runtime::RuncShimOwn);
}

#[test]
fn run_interactive_shell_runc() {
    run_interactive_shell(Runtime::RuncShimRunc);
}

// ---- -d, then the task commands ---------------------------------------------------------

/// The value column of `key` in `ctr task metrics`' table.
fn metric(table: &str, key: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(key)).then(|| f.collect::<Vec<_>>().join(" "))
    })
}

/// The pid column of `ctr task ps`.
fn ps_pids(c: &Containerd, id: &str) -> Vec<u32> {
    let ps = ctr(c, &["task", "ps", id]);
    assert!(ps.status.success(), "{}", text(&ps));
    stdout(&ps)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn task_pid(c: &Containerd, id: &str) -> u32 {
    let ls = ctr(c, &["task", "ls"]);
    stdout(&ls)
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{id} not in task ls: {}", text(&ls)))
}

fn detached_task_commands(rt: Runtime) {
    let c = Containerd::start(rt);
    let events = Events::start(&c);
    // An init that ends with status 9 on SIGTERM (ctr task kill's default signal).
    let out = c.run(
        &["-d", "--memory-limit", "67108864"],
        "d1",
        &["sh", "-c", "trap 'exit 9' TERM; sleep 1000 & wait"],
    );
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status("d1", "RUNNING");
    let pid = task_pid(&c, "d1");

    // containerd handed the shim our binary, and that binary keeps the container's state.
    let bundle = c.task_dir().join("d1");
    let options = std::fs::read_to_string(bundle.join("options.json")).unwrap_or_default();
    let bin = c.runc_binary().expect("a containerd-shim-runc-v2 variant");
    assert!(options.contains(&bin.display().to_string()), "{options}");
    let state = Command::new(&bin)
        .arg("--root")
        .arg(c.runc_root())
        .args(["state", "d1"])
        .output()
        .expect("runc state");
    assert!(state.status.success(), "{}", text(&state));
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state JSON");
    assert_eq!(state["pid"], pid, "{state}");
    assert_eq!(state["status"], "running", "{state}");

    // ps: the init shell and its sleep.
    let before = ps_pids(&c, "d1");
    assert!(before.contains(&pid), "{before:?} lacks {pid}");
    assert_eq!(before.len(), 2, "{before:?}");

    // metrics: cgroup v1 Metrics, with the limit given to ctr run.
    let m = ctr(&c, &["task", "metrics", "d1"]);
    assert!(m.status.success(), "{}", text(&m));
    let table = stdout(&m);
    assert_eq!(
        metric(&table, "memory.limit_in_bytes").as_deref(),
        Some("67108864"),
        "{table}"
    );
    assert_eq!(
        metric(&table, "pids.current").as_deref(),
        Some("2"),
        "{table}"
    );
    let usage: u64 = metric(&table, "memory.usage_in_bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(usage > 0, "{table}");
    assert!(metric(&table, "cpuacct.usage").is_some(), "{table}");

    // exec without a terminal: output and exit status.
    let e = with_timeout(
        &mut task_exec(&c, "e1", &[], "d1", &["sh", "-c", "echo fromexec; exit 5"]),
        Duration::from_secs(30),
    );
    assert_eq!(e.status.code(), Some(5), "{}", text(&e));
    assert_eq!(stdout(&e), "fromexec\n", "{}", text(&e));
    // …and a missing program: `runc exec` fails, in runc's words.
    let e = with_timeout(
        &mut task_exec(&c, "e0", &[], "d1", &["/nope"]),
        Duration::from_secs(30),
    );
    assert!(!e.status.success(), "{}", text(&e));
    assert!(
        stderr(&e).contains(
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"/nope\": stat /nope: no such file or directory"
        ),
        "{}",
        text(&e)
    );

    // exec -t: an interactive shell in the running container, seen by ps while it lives.
    let mut sh = PtySession::spawn(task_exec(&c, "e2", &["-t"], "d1", &["sh"]));
    sh.expect("# ", Duration::from_secs(20));
    let during = ps_pids(&c, "d1");
    assert_eq!(during.len(), 3, "exec'd shell not in ps: {during:?}");
    sh.type_line("tty; echo $((6*7)); exit 4");
    let st = sh.wait(Duration::from_secs(20));
    let screen = sh.output();
    assert_eq!(st.code(), Some(4), "{screen:?}");
    assert!(screen.contains("\n42\r"), "{screen:?}");
    assert!(screen.contains("/dev/pts/"), "{screen:?}");

    // pause / resume: the freezer, as `ctr task ls` shows it.
    let p = ctr(&c, &["task", "pause", "d1"]);
    assert!(p.status.success(), "{}", text(&p));
    c.wait_status("d1", "PAUSED");
    let r = ctr(&c, &["task", "resume", "d1"]);
    assert!(r.status.success(), "{}", text(&r));
    c.wait_status("d1", "RUNNING");

    // kill (SIGTERM): the trap ends the init with 9, which delete reports.
    let k = ctr(&c, &["task", "kill", "d1"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("d1", "STOPPED");
    let d = ctr(&c, &["task", "delete", "d1"]);
    assert!(d.status.success(), "{}", text(&d));
    assert!(stderr(&d).contains("exit code 9"), "{}", text(&d));
    assert!(!c.runc_root().join("d1").exists(), "runc state left");
    let rm = ctr(&c, &["container", "rm", "d1"]);
    assert!(rm.status.success(), "{}", text(&rm));

    let got = events.stop("d1");
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exec-added", // e0: added, never started
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert_eq!(got, want);

    // kill -s KILL: 128 + 9.
    let out = c.run(&["-d"], "d2", &["sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status("d2", "RUNNING");
    let k = ctr(&c, &["task", "kill", "-s", "KILL", "d2"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("d2", "STOPPED");
    let d = ctr(&c, &["task", "delete", "d2"]);
    assert!(d.status.success(), "{}", text(&d));
    assert!(stderr(&d).contains("exit code 137"), "{}", text(&d));
}

#[test]
fn detached_task_commands_ocibox() {
    detached_task_commands(Runtime::RuncShimOwn);
}

#[test]
fn detached_task_commands_runc() {
    detached_task_commands(Runtime::RuncShimRunc);
}

// ---- ctr run --seccomp -------------------------------------------------------------------

fn seccomp_default_profile(rt: Runtime) {
    let c = Containerd::start(rt);
    // Without a profile an unprivileged user namespace is allowed in the container…
    let out = c.run(&["--rm"], "noseccomp", &["unshare", "-U", "true"]);
    assert!(out.status.success(), "{}", text(&out));
    // …containerd's default profile (unshare only with CAP_SYS_ADMIN) denies it with EPERM,
    // while busybox itself runs.
    let out = c.run(
        &["--rm", "--seccomp"],
        "seccomp",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; echo ok; unshare -U true",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains("Seccomp:\t2"), "{}", text(&out));
    assert!(stdout(&out).contains("ok"), "{}", text(&out));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        text(&out)
    );
}

#[test]
fn seccomp_default_profile_ocibox() {
    seccomp_default_profile(Runtime::RuncShimOwn);
}

#[test]
fn seccomp_default_profile_runc() {
    seccomp_default_profile(Runtime::RuncShimRunc);
}

// ---- --memory-limit: OOM-killed ------------------------------------------------------------

fn oom_killed(rt: Runtime) {
    let c = Containerd::start(rt);
    let events = Events::start(&c);
    // containerd-shim-runc-v2 arms its OOM watch (an eventfd on memory.oom_control of the
    // cgroup the runtime made) only after `runc start` returned, just before it publishes
    // /tasks/start. A memory hog that runs at once can be killed before the watch exists
    // (1 run in 5 on a fresh machine), whatever the runtime does; so the hog waits for the
    // test's go-ahead, given once /tasks/start shows the watch is armed.
    let out = c.run(
        &["-d", "--memory-limit", "16777216"],
        "oom1",
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec tail /dev/zero",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    events.wait_for("oom1", "/tasks/start");
    let pid = task_pid(&c, "oom1");
    // busybox tail keeps a line-less stream in memory until the cgroup's limit kills it.
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").expect("go-ahead for the hog");
    c.wait_status("oom1", "STOPPED");
    let d = ctr(&c, &["task", "delete", "oom1"]);
    assert!(d.status.success(), "{}", text(&d));
    assert!(stderr(&d).contains("exit code 137"), "{}", text(&d));
    let rm = ctr(&c, &["container", "rm", "oom1"]);
    assert!(rm.status.success(), "{}", text(&rm));
    // The OOM and the exit are published by two independent goroutines of
    // containerd-shim-runc-v2 (its epoll on the cgroup's eventfd and its reaper), so their
    // order is the shim's race, not the runtime's doing: both must come, before the delete.
    let got = events.stop("oom1");
    let pos = |topic: &str| got.iter().position(|t| t == topic);
    let (oom, exit, delete) = (pos("/tasks/oom"), pos("/tasks/exit"), pos("/tasks/delete"));
    assert!(oom.is_some() && exit.is_some(), "events: {got:?}");
    assert!(oom < delete && exit < delete, "events: {got:?}");
}

#[test]
fn oom_killed_ocibox() {
    oom_killed(Runtime::RuncShimOwn);
}

#[test]
fn oom_killed_runc() {
    oom_killed(Runtime::RuncShimRunc);
}
