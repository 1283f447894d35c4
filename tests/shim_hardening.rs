//! The shim under load and bad clients, against Debian's containerd 1.6, each case beside
//! containerd's own shim (containerd-shim-runc-v2) where the behaviour is containerd's:
//! a flood of idle connections, a payload that is not protobuf, a Create that fails after
//! mounting thousands of rootfs layers, the sockets' mode, piped stdin of an exec, the
//! runtime root option, and the socket a shim killed with -9 leaves behind.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerd_shim_protos::api::{
    CreateTaskRequest, Mount, ShutdownRequest, StateRequest, StateResponse,
};
use containerd_shim_protos::protobuf::Message;

use common::containerd::{text, with_timeout, Containerd, Runtime};
use common::ttrpc_by_hand::read_response;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- ttrpc by hand ----------------------------------------------------------------------

/// A request to containerd's task service.
fn send_request(s: &mut UnixStream, stream: u32, method: &str, payload: Vec<u8>) {
    common::ttrpc_by_hand::send_request(s, stream, "containerd.task.v2.Task", method, payload)
}

fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn alive(pid: i32) -> bool {
    // Not a zombie either.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn threads_of(pid: i32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn kill9(pid: i32) {
    // SAFETY: plain kill(2) of a process this test found for its own shim.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// `ctr run -d` of a sleeping busybox as `id`, running.
fn run_sleeper(c: &Containerd, id: &str) {
    let out = c.run(&["-d"], id, &["sleep", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status(id, "RUNNING");
}

fn exec_echo(c: &Containerd, id: &str, exec_id: &str) -> std::process::Output {
    let fifo = c.fifo_dir();
    with_timeout(
        &mut c.ctr_cmd(&[
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            exec_id,
            id,
            "echo",
            "still-here",
        ]),
        Duration::from_secs(30),
    )
}

// ---- 1. a flood of idle connections ------------------------------------------------------

const FLOOD: usize = 10_000;

/// Raises this process's soft fd limit as far as the hard one allows; returns it.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    hard
}

/// Opens up to `n` connections to `sock` and keeps them (idle: nothing is sent). Stops
/// early when the socket refuses outright (nobody listens any more: the shim died).
/// Returns the connections and how many connects failed.
fn open_idle(sock: &Path, n: usize) -> (Vec<UnixStream>, usize) {
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while held.len() < n && Instant::now() < deadline {
        match nonblocking_connect(sock) {
            Ok(s) => held.push(s),
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => {
                failed += 1;
                if failed > 100 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    (held, failed)
}

/// A connect that does not block when the listener's backlog is full (EAGAIN then).
fn nonblocking_connect(sock: &Path) -> Result<UnixStream, nix::errno::Errno> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(sock)?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(UnixStream::from(fd))
}

/// Holds idle connections in child processes (this test binary again, running
/// [`flood_holder`]) when this process may not open enough fds itself.
struct Holders(Vec<std::process::Child>);

impl Holders {
    fn spawn(sock: &Path, total: usize, per_child: usize) -> (Holders, usize) {
        let mut kids = Vec::new();
        let mut held = 0;
        let mut left = total;
        while left > 0 {
            let n = left.min(per_child);
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "flood_holder",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("OCIBOX_FLOOD_SOCKET", sock)
                .env("OCIBOX_FLOOD_COUNT", n.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // The harness prints its own lines first; ours is `held=N`.
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            loop {
                line.clear();
                if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
                    break;
                }
                // (`test flood_holder ... ` may precede it on the line.)
                if let Some(i) = line.find("held=") {
                    held += line[i + 5..].trim().parse::<usize>().unwrap_or(0);
                    break;
                }
            }
            kids.push(child);
            left -= n;
        }
        (Holders(kids), held)
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for k in &mut self.0 {
            // Their stdin closes: they let go and exit.
            drop(k.stdin.take());
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

/// Not a test of its own: the child side of [`Holders`] (does nothing unless spawned so).
#[test]
fn flood_holder() {
    let (Ok(sock), Ok(n)) = (
        std::env::var("OCIBOX_FLOOD_SOCKET"),
        std::env::var("OCIBOX_FLOOD_COUNT"),
    ) else {
        return;
    };
    raise_nofile();
    let (held, _) = open_idle(Path::new(&sock), n.parse().unwrap());
    println!("held={}", held.len());
    let mut b = [0u8; 1];
    let _ = std::io::stdin().read(&mut b);
}

/// One flood at a time: two would need twice the fds of this process.
static FLOOD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn connection_flood(rt: Runtime) {
    let _one = FLOOD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let hard = raise_nofile();
    let c = Containerd::start(rt);
    // The shim's threads come out of this: a thread per connection runs out long before
    // 10,000 connections, while the machine's other work keeps its pids.
    c.limit_pids(2048);
    run_sleeper(&c, "f1");
    let sock = c.shim_socket("f1");
    let shim = c.shim_pid_of("f1").expect("the shim's pid");

    let margin = 512;
    // OCIBOX_FLOOD_IN_CHILDREN=1 takes the child-process path even when this process could
    // hold them all (to exercise it).
    let in_children = std::env::var_os("OCIBOX_FLOOD_IN_CHILDREN").is_some();
    let (_conns, _holders, held) = if hard as usize >= FLOOD + margin && !in_children {
        let (conns, _) = open_idle(&sock, FLOOD);
        let n = conns.len();
        (conns, None, n)
    } else {
        let per = (hard as usize).saturating_sub(margin).clamp(100, FLOOD / 4);
        let (h, n) = Holders::spawn(&sock, FLOOD, per);
        (Vec::new(), Some(h), n)
    };
    // While they are all open: the shim is alive and containerd drives the task.
    assert!(alive(shim), "the shim died under {held} idle connections");
    assert_eq!(held, FLOOD, "connects failed: the shim stopped listening");
    // An idle connection costs no thread.
    let threads = threads_of(shim);
    assert!(
        threads < 64,
        "{threads} threads for {held} idle connections"
    );
    let e = exec_echo(&c, "f1", "x1");
    assert!(e.status.success(), "exec under the flood: {}", text(&e));
    assert_eq!(stdout(&e), "still-here\n");
    assert!(alive(shim), "the shim died");
    let k = c.ctr(&["task", "kill", "-s", "KILL", "f1"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("f1", "STOPPED");
    let d = c.ctr(&["task", "delete", "f1"]);
    assert!(d.status.success(), "{}", text(&d));
    assert!(c.ctr(&["container", "rm", "f1"]).status.success());
}

#[test]
fn connection_flood_own() {
    connection_flood(Runtime::Own);
}

#[test]
fn connection_flood_runc_shim() {
    connection_flood(Runtime::RuncShimRunc);
}

// ---- 2. a payload that is not protobuf ---------------------------------------------------

fn invalid_payload(rt: Runtime) -> i32 {
    let c = Containerd::start(rt);
    run_sleeper(&c, "p1");
    let mut s = connect(&c.shim_socket("p1"));
    // A length-delimited field whose length runs past the end: no message decodes from it.
    send_request(&mut s, 1, "State", vec![0x0a, 0x7f, b'x']);
    let (stream, res) = read_response(&mut s).expect("no answer to a bad payload: hung");
    assert_eq!(stream, 1);
    let code = res.status.code.value();
    assert_ne!(code, 0, "{res:?}");
    assert!(
        res.status
            .message
            .starts_with("ttrpc: error unmarshalling payload: "),
        "{res:?}"
    );
    // The connection goes on.
    let mut st = StateRequest::new();
    st.id = "p1".into();
    send_request(&mut s, 3, "State", st.write_to_bytes().unwrap());
    let (stream, res) = read_response(&mut s).expect("no answer after a bad payload");
    assert_eq!((stream, res.status.code.value()), (3, 0), "{res:?}");
    assert_eq!(
        StateResponse::parse_from_bytes(&res.payload).unwrap().id,
        "p1"
    );
    assert_eq!(c.task_status("p1").as_deref(), Some("RUNNING"));
    code
}

/// What containerd-shim-runc-v2 1.6.20 answers a payload that does not decode (measured:
/// INTERNAL, "ttrpc: error unmarshalling payload: unexpected EOF").
const BAD_PAYLOAD_CODE: i32 = 13;

#[test]
fn invalid_payload_own() {
    assert_eq!(invalid_payload(Runtime::Own), BAD_PAYLOAD_CODE);
}

#[test]
fn invalid_payload_runc_shim() {
    assert_eq!(invalid_payload(Runtime::RuncShimRunc), BAD_PAYLOAD_CODE);
}

// ---- 3 and 4. a shim started by hand: socket mode, a failed Create -----------------------

/// A shim binary started by hand (`start` with the bundle as cwd), as containerd would.
struct HandShim {
    dir: PathBuf,
    sock: PathBuf,
    binary: PathBuf,
    address: String,
    namespace: String,
    id: String,
    _log: std::fs::File,
}

impl HandShim {
    fn start(binary: &Path, tag: &str) -> HandShim {
        let name = common::unique(&format!("ocibox-hard-{tag}"));
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A spec no runtime creates a container from (containerd's shim reads it at start).
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        // The log FIFO containerd would read: containerd's shim cannot serve without it.
        nix::unistd::mkfifo(
            &dir.join("log"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.join("log"))
            .unwrap();
        let address = dir.join("fake-containerd.sock").display().to_string();
        let mut shim = HandShim {
            dir: dir.clone(),
            sock: PathBuf::new(),
            binary: binary.to_path_buf(),
            address,
            namespace: name.clone(),
            id: "h1".into(),
            _log: log,
        };
        let out = shim.command("start").output().unwrap();
        assert!(out.status.success(), "shim start: {}", text(&out));
        let addr = stdout(&out);
        shim.sock = PathBuf::from(addr.trim().trim_start_matches("unix://"));
        shim
    }

    fn command(&self, action: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.binary);
        if self.binary.ends_with("ocibox") {
            c.arg0("containerd-shim-ocibox-v2");
        }
        c.args([
            "-namespace",
            &self.namespace,
            "-address",
            &self.address,
            "-publish-binary",
            "/bin/true",
            "-id",
            &self.id,
        ]);
        if action == "delete" {
            c.args(["-bundle", &self.dir.display().to_string()]);
        }
        c.arg(action)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_remove("TTRPC_ADDRESS");
        c
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// Mounts whose mount point is `dir`.
fn mounts_on(dir: &Path) -> usize {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(d.as_str()))
        .count()
}

impl HandShim {
    fn kill(&self) {
        for p in common::containerd::pids_with_namespace_flag(&self.namespace) {
            kill9(p);
        }
    }
}

impl Drop for HandShim {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.sock);
        for _ in 0..10_000 {
            if nix::mount::umount2(&self.rootfs(), nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
        for root in ["/run/containerd/ocibox", "/run/containerd/runc"] {
            let _ = std::fs::remove_dir_all(Path::new(root).join(&self.namespace));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RUNC_SHIM_BIN: &str = "/usr/bin/containerd-shim-runc-v2";

fn socket_mode(binary: &Path) -> u32 {
    let shim = HandShim::start(binary, "mode");
    std::fs::metadata(&shim.sock).unwrap().permissions().mode() & 0o7777
}

#[test]
fn sockets_are_0600_own() {
    assert_eq!(socket_mode(Path::new(env!("CARGO_BIN_EXE_ocibox"))), 0o600);
}

#[test]
fn sockets_are_0600_runc_shim() {
    assert_eq!(socket_mode(Path::new(RUNC_SHIM_BIN)), 0o600);
}

/// Create with 2,000 rootfs layers and a config.json of `{}`: the runtime fails after the
/// mounts are made. Returns the mounts left on the rootfs afterwards.
fn failed_create_mounts_left(binary: &Path) -> usize {
    let shim = HandShim::start(binary, "create");
    let mut s = connect(&shim.sock);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = CreateTaskRequest::new();
    req.id = shim.id.clone();
    req.bundle = shim.dir.display().to_string();
    for _ in 0..2000 {
        let mut m = Mount::new();
        m.type_ = "tmpfs".into();
        m.source = "tmpfs".into();
        m.options = vec!["size=16k".into()];
        req.rootfs.push(m);
    }
    send_request(&mut s, 1, "Create", req.write_to_bytes().unwrap());
    let (_, res) = read_response(&mut s).expect("no answer to Create");
    assert_ne!(res.status.code.value(), 0, "Create of an empty spec worked");
    mounts_on(&shim.rootfs())
}

#[test]
fn failed_create_unmounts_everything_own() {
    assert_eq!(
        failed_create_mounts_left(Path::new(env!("CARGO_BIN_EXE_ocibox"))),
        0
    );
}

#[test]
fn failed_create_unmounts_everything_runc_shim() {
    assert_eq!(failed_create_mounts_left(Path::new(RUNC_SHIM_BIN)), 0);
}

// ---- 5. piped stdin of an exec reaches EOF -----------------------------------------------

fn exec_piped_stdin(rt: Runtime) {
    let c = Containerd::start(rt);
    run_sleeper(&c, "s1");
    let fifo = c.fifo_dir();
    let mut cmd = c.ctr_cmd(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "x",
        "s1",
        "cat",
    ]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let started = Instant::now();
    let pid = child.id() as i32;
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        kill9(pid);
    });
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    drop(watchdog);
    assert!(
        took < Duration::from_secs(15),
        "cat never saw EOF: {}",
        text(&out)
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "hello\n");
}

#[test]
fn exec_piped_stdin_own() {
    exec_piped_stdin(Runtime::Own);
}

#[test]
fn exec_piped_stdin_runc_shim() {
    exec_piped_stdin(Runtime::RuncShimRunc);
}

// ---- 6. the runtime root option ----------------------------------------------------------

/// Runs a task with the runtime root set to `<dir>/rr` (the ocibox shim through a runtime
/// options file, containerd's shim through `--runc-root`: ctr sends that one only for
/// io.containerd.runc.v2); returns the root and whether the runtime's state is at
/// `<root>/<namespace>/<id>`.
fn runtime_root(shim: &str) -> bool {
    let c = Containerd::start(Runtime::Own);
    let root = c.dir.join("rr");
    let fifo = c.fifo_dir();
    let root_s = root.display().to_string();
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--fifo-dir".into(), fifo];
    if shim == "own" {
        let cfg = c.dir.join("root.toml");
        std::fs::write(&cfg, format!("Root = \"{root_s}\"\n")).unwrap();
        args.extend([
            "--runtime".into(),
            common::containerd::RUNTIME.into(),
            "--runtime-config-path".into(),
            cfg.display().to_string(),
        ]);
    } else {
        args.extend([
            "--runtime".into(),
            common::containerd::RUNC_SHIM.into(),
            "--runc-binary".into(),
            "/usr/sbin/runc".into(),
            "--runc-root".into(),
            root_s.clone(),
        ]);
    }
    args.extend([
        common::containerd::IMAGE.into(),
        "r1".into(),
        "sleep".into(),
        "1000".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = with_timeout(&mut c.ctr_cmd(&argv), Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out));
    c.wait_status("r1", "RUNNING");
    let there = root.join(&c.namespace).join("r1/state.json").exists();
    let k = c.ctr(&["task", "kill", "-s", "KILL", "r1"]);
    assert!(k.status.success(), "{}", text(&k));
    c.wait_status("r1", "STOPPED");
    let d = c.ctr(&["task", "delete", "r1"]);
    assert!(d.status.success(), "{}", text(&d));
    // The runtime's delete went to the same root.
    assert!(!root.join(&c.namespace).join("r1").exists());
    there
}

#[test]
fn runtime_root_own() {
    assert!(
        runtime_root("own"),
        "state not under <root>/<namespace>/<id>"
    );
}

#[test]
fn runtime_root_runc_shim() {
    assert!(
        runtime_root("runc"),
        "state not under <root>/<namespace>/<id>"
    );
}

// ---- 7. the socket of a shim killed with -9 ----------------------------------------------

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// kill -9 of the shim: containerd runs the shim's `delete`; returns whether the socket
/// file is gone afterwards. Then the same id runs again.
fn killed_shim_socket_removed(rt: Runtime) -> bool {
    let c = Containerd::start(rt);
    run_sleeper(&c, "k1");
    let sock = c.shim_socket("k1");
    let shim = c.shim_pid_of("k1").expect("the shim's pid");
    kill9(shim);
    // containerd sees the shim gone and cleans up after it.
    assert!(
        wait_until(Duration::from_secs(20), || c.task_status("k1").is_none()
            || c.task_status("k1").as_deref() == Some("STOPPED")),
        "containerd never noticed: {:?}",
        c.task_status("k1")
    );
    let gone = wait_until(Duration::from_secs(5), || {
        std::fs::symlink_metadata(&sock).is_err()
    });
    let _ = c.ctr(&["task", "delete", "k1"]);
    assert!(c.ctr(&["container", "rm", "k1"]).status.success());
    // A stale socket never keeps the id from running again.
    run_sleeper(&c, "k1");
    let e = exec_echo(&c, "k1", "x2");
    assert!(e.status.success(), "{}", text(&e));
    gone
}

#[test]
fn killed_shim_socket_removed_own() {
    assert!(
        killed_shim_socket_removed(Runtime::Own),
        "socket left behind"
    );
}

#[test]
fn killed_shim_socket_removed_runc_shim() {
    let gone = killed_shim_socket_removed(Runtime::RuncShimRunc);
    eprintln!("containerd-shim-runc-v2 removed its socket after kill -9: {gone}");
}

/// `start` over a stale socket file of the same id (nobody listening) replaces it.
#[test]
fn start_replaces_a_stale_socket_own() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ocibox"));
    let first = HandShim::start(bin, "stale");
    let sock = first.sock.clone();
    first.kill();
    assert!(wait_until(Duration::from_secs(5), || UnixStream::connect(
        &sock
    )
    .is_err()));
    assert!(
        sock.exists(),
        "the killed shim's socket is not there to be stale"
    );
    let out = first.command("start").output().unwrap();
    assert!(
        out.status.success(),
        "start over a stale socket: {}",
        text(&out)
    );
    assert!(
        UnixStream::connect(&sock).is_ok(),
        "the new shim does not listen"
    );
    // And `delete` of a dead shim removes its socket.
    first.kill();
    assert!(wait_until(Duration::from_secs(5), || UnixStream::connect(
        &sock
    )
    .is_err()));
    let out = first.command("delete").output().unwrap();
    assert!(out.status.success(), "delete: {}", text(&out));
    assert!(!sock.exists(), "delete left the dead shim's socket");
}

/// Shutdown of a shim that serves no task: the reply comes back and the socket's name is
/// already gone, so a shim started for the same id right after (`ctr run --rm X id` twice
/// in a row) binds its own instead of finding this one live. Returns whether the name was
/// gone when the reply arrived.
fn socket_gone_at_shutdown_reply(binary: &Path) -> bool {
    let shim = HandShim::start(binary, "shutdown");
    let mut s = connect(&shim.sock);
    let req = ShutdownRequest {
        id: "shutdown".into(),
        ..Default::default()
    };
    send_request(&mut s, 1, "Shutdown", req.write_to_bytes().unwrap());
    let (stream, resp) = read_response(&mut s).expect("a Shutdown reply");
    assert_eq!(stream, 1);
    assert_eq!(resp.status.code.value(), 0, "{:?}", resp.status);
    !shim.sock.exists()
}

#[test]
fn shutdown_removes_the_socket_before_replying_own() {
    for _ in 0..5 {
        assert!(socket_gone_at_shutdown_reply(Path::new(env!(
            "CARGO_BIN_EXE_ocibox"
        ))));
    }
}
