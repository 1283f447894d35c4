//! A private containerd 1.6 for one test: its own root, state, sockets and namespace, the
//! ocibox shim reachable as `containerd-shim-ocibox-v2` on its PATH, a `runc` link to ocibox
//! for containerd's own shim (`--runc-binary`), the busybox image imported. Dropping it kills containerd and every shim and container it started,
//! unmounts what they mounted and removes the directories.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Which runtime the shim drives.
#[derive(Clone, Copy, Debug)]
pub enum Runtime {
    /// ocibox's own runtime applet (the shim's default).
    Own,
    /// Debian's runc, through a runtime options config (`BinaryName`).
    Runc,
    /// containerd's own shim (`io.containerd.runc.v2`, containerd-shim-runc-v2) driving
    /// ocibox as its runc: `ctr run --runc-binary <dir>/runc-link/runc`.
    RuncShimOwn,
    /// containerd's own shim driving Debian's runc (`--runc-binary /usr/sbin/runc`): the
    /// reference the `RuncShimOwn` results are compared with.
    RuncShimRunc,
}

pub const IMAGE: &str = "docker.io/library/busybox:latest";
pub const RUNTIME: &str = "io.containerd.ocibox.v2";
/// containerd's default runtime, served by /usr/bin/containerd-shim-runc-v2.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Containerd {
    pub dir: PathBuf,
    pub address: String,
    pub namespace: String,
    pub runtime: Runtime,
    config: PathBuf,
    child: Option<Child>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Containerd {
    /// Starts containerd and imports the busybox image.
    pub fn start(runtime: Runtime) -> Containerd {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ocibox-shim-test-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_ocibox"),
            dir.join("bin/containerd-shim-ocibox-v2"),
        )
        .unwrap();
        // Not on containerd's PATH: containerd-shim-runc-v2 must reach it by --runc-binary.
        std::fs::create_dir_all(dir.join("runc-link")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ocibox"), dir.join("runc-link/runc"))
            .unwrap();
        std::fs::write(dir.join("runc.toml"), "BinaryName = \"/usr/sbin/runc\"\n").unwrap();
        let address = dir.join("c.sock").display().to_string();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{address}\"\n[ttrpc]\n  address = \"{address}.ttrpc\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut c = Containerd {
            dir,
            address,
            namespace: format!("ocibox-shim-test-{tag}"),
            runtime,
            config,
            child: None,
        };
        c.spawn_daemon();
        let image = c.dir.join("busybox.tar");
        super::make_busybox_image(&image);
        let out = c.ctr(&["image", "import", image.to_str().unwrap()]);
        assert!(out.status.success(), "image import: {}", text(&out));
        c
    }

    /// Starts (or restarts) the containerd process and waits until it answers.
    pub fn spawn_daemon(&mut self) {
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&self.config)
            .env("PATH", path)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("containerd did not come up; log:\n{}", self.log());
    }

    /// kill -9 containerd (its shims and containers go on).
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a ADDR -n NS ARGS…`
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().expect("run ctr")
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.address, "-n", &self.namespace])
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// The `runc` link to the built ocibox binary that containerd-shim-runc-v2 is given.
    pub fn runc_link(&self) -> PathBuf {
        self.dir.join("runc-link/runc")
    }

    /// The runc-compatible binary the runtime options name, for the containerd-shim-runc-v2
    /// variants.
    pub fn runc_binary(&self) -> Option<PathBuf> {
        match self.runtime {
            Runtime::RuncShimOwn => Some(self.runc_link()),
            Runtime::RuncShimRunc => Some(PathBuf::from("/usr/sbin/runc")),
            Runtime::Own | Runtime::Runc => None,
        }
    }

    /// Where ctr makes its stdio fifos (`--fifo-dir`): under our directory, so a ctr killed by a timeout leaves none in
    /// /run/containerd/fifo.
    pub fn fifo_dir(&self) -> String {
        self.dir.join("fifo").display().to_string()
    }

    /// Where containerd-shim-runc-v2 tells its runc to keep state (`--root`).
    pub fn runc_root(&self) -> PathBuf {
        Path::new("/run/containerd/runc").join(&self.namespace)
    }

    /// The `ctr run` flags that select the shim and the runtime.
    pub fn runtime_flags(&self) -> Vec<String> {
        if let Some(bin) = self.runc_binary() {
            return vec![
                "--runtime".to_string(),
                RUNC_SHIM.to_string(),
                "--runc-binary".to_string(),
                bin.display().to_string(),
                "--fifo-dir".to_string(),
                self.fifo_dir(),
            ];
        }
        let mut v = vec![
            "--runtime".to_string(),
            RUNTIME.to_string(),
            "--fifo-dir".to_string(),
            self.fifo_dir(),
        ];
        if let Runtime::Runc = self.runtime {
            v.push("--runtime-config-path".into());
            v.push(self.dir.join("runc.toml").display().to_string());
        }
        v
    }

    /// `ctr run [extra…] --runtime … IMAGE ID CMD…`
    pub fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let flags = self.runtime_flags();
        let mut args: Vec<&str> = vec!["run"];
        args.extend(extra);
        args.extend(flags.iter().map(|s| s.as_str()));
        args.push(IMAGE);
        args.push(id);
        args.extend(cmd);
        let mut c = self.ctr_cmd(&args);
        with_timeout(&mut c, Duration::from_secs(60))
    }

    /// The task's status column in `ctr task ls`.
    pub fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
    }

    /// Waits until the task has `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.task_status(id).as_deref() == Some(status) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "task {id} never became {status}: {:?}",
            self.task_status(id)
        );
    }

    /// The task bundles: `<state>/io.containerd.runtime.v2.task/<namespace>`.
    pub fn task_dir(&self) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
    }

    /// The pids of the shims serving this containerd's tasks: from `shim.pid` in their
    /// bundles (the ocibox shim), and any process started with `-namespace <ours>`
    /// (containerd-shim-runc-v2 1.6 writes no `shim.pid`; our namespace is unique).
    /// The shims still running after up to 5 s: a shim exits just after it answered
    /// Shutdown, so the client's command may return a moment before the process is gone.
    pub fn shims_left(&self) -> Vec<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let pids = self.shim_pids();
            if pids.is_empty() || std::time::Instant::now() >= deadline {
                return pids;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn shim_pids(&self) -> Vec<i32> {
        let mut pids = self.pids_with_namespace_flag();
        if let Ok(rd) = std::fs::read_dir(self.task_dir()) {
            for e in rd.flatten() {
                if let Ok(s) = std::fs::read_to_string(e.path().join("shim.pid")) {
                    if let Ok(p) = s.trim().parse::<i32>() {
                        if Path::new(&format!("/proc/{p}")).exists() && !pids.contains(&p) {
                            pids.push(p);
                        }
                    }
                }
            }
        }
        pids
    }

    fn pids_with_namespace_flag(&self) -> Vec<i32> {
        pids_with_namespace_flag(&self.namespace)
    }

    /// Moves containerd into its own pids cgroup (v1, `/sys/fs/cgroup/pids/<namespace>/
    /// daemon`) with `pids.max` = `max`, so the shims it starts from now on share that
    /// limit: a shim that spends a thread per connection fails there instead of taking the
    /// whole machine's pids. Removed by Drop with the namespace's other cgroups.
    pub fn limit_pids(&self, max: u32) {
        let pid = self.child.as_ref().expect("containerd running").id();
        let cg = Path::new("/sys/fs/cgroup/pids")
            .join(&self.namespace)
            .join("daemon");
        std::fs::create_dir_all(&cg).expect("create pids cgroup");
        std::fs::write(cg.join("pids.max"), max.to_string()).expect("set pids.max");
        std::fs::write(cg.join("cgroup.procs"), pid.to_string()).expect("move containerd");
    }

    /// The bundle of task `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.task_dir().join(id)
    }

    /// The shim socket of task `id`, from its bundle's `address`.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        let a = std::fs::read_to_string(self.bundle(id).join("address")).expect("address");
        PathBuf::from(a.trim().trim_start_matches("unix://"))
    }

    /// The pid of the shim serving task `id`: the process listening on its socket, found
    /// by the socket's inode in /proc/net/unix and the fds of the shims we know.
    pub fn shim_pid_of(&self, id: &str) -> Option<i32> {
        let sock = self.shim_socket(id).display().to_string();
        let inode = std::fs::read_to_string("/proc/net/unix")
            .ok()?
            .lines()
            .find(|l| l.split_whitespace().nth(7) == Some(sock.as_str()))?
            .split_whitespace()
            .nth(6)?
            .to_string();
        let want = format!("socket:[{inode}]");
        self.shim_pids().into_iter().find(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.display().to_string() == want)
                        .unwrap_or(false)
                })
        })
    }

    /// The shim socket addresses recorded in the bundles.
    fn shim_sockets(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.task_dir()) {
            for e in rd.flatten() {
                if let Ok(s) = std::fs::read_to_string(e.path().join("address")) {
                    v.push(PathBuf::from(s.trim().trim_start_matches("unix://")));
                }
            }
        }
        v
    }
}

/// The processes started with `-namespace NS` (the shims of a namespace, whoever started
/// them: containerd-shim-runc-v2 1.6 writes no `shim.pid`).
pub fn pids_with_namespace_flag(namespace: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args
            .windows(2)
            .any(|w| w[0] == b"-namespace" && w[1] == namespace.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Runs a command, killing it after `limit`.
pub fn with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if d.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: signalling the child we spawned, not yet reaped (wait_with_output below).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    out
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn kill9(pid: i32) {
    // SAFETY: plain kill(2) of a pid we found for our own test's processes.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// SIGKILLs every process in `/sys/fs/cgroup/*/<group>/*` (thawing frozen ones first), and
/// waits briefly for the groups to empty.
fn kill_cgroup_members(group: &str) {
    let dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path().join(group)).ok())
        .flat_map(|rd| rd.flatten().map(|c| c.path()))
        .filter(|p| p.is_dir())
        .collect();
    for d in &dirs {
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut any = false;
        for d in &dirs {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                any = true;
                kill9(p);
            }
        }
        if !any || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a namespace's containers leave outside the daemon's directories: the shims'
/// runtime state (`/run/containerd/{ocibox,runc}/NS`) and the cgroups named after it, whose
/// remaining members (a shim killed before its container) are thawed and killed first.
pub fn remove_namespace_leftovers(namespace: &str) {
    for root in ["/run/containerd/ocibox", "/run/containerd/runc"] {
        let _ = std::fs::remove_dir_all(Path::new(root).join(namespace));
    }
    kill_cgroup_members(namespace);
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let cg = e.path().join(namespace);
            if let Ok(inner) = std::fs::read_dir(&cg) {
                for c in inner.flatten() {
                    if c.path().is_dir() {
                        let _ = std::fs::remove_dir(c.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&cg);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Containers first (runc's state knows their pids), then shims, then containerd.
        let out = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-a", "-s", "KILL", id.trim()]);
        }
        std::thread::sleep(Duration::from_millis(200));
        let sockets = self.shim_sockets();
        for p in self.shim_pids() {
            kill9(p);
        }
        self.kill_daemon();
        for s in sockets {
            let _ = std::fs::remove_file(s);
        }
        // Everything mounted under our directory (rootfs overlays), deepest first.
        let dir = self.dir.display().to_string();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        remove_namespace_leftovers(&self.namespace);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
