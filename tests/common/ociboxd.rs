//! A private ociboxd for one test: its own root, state and socket under a temp directory,
//! `containerd-shim-ocibox-v2` linked on its PATH, started from the built binary. Dropping
//! it stops the daemon (SIGTERM, then SIGKILL), and removes the directory after unmounting
//! whatever is still mounted under it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Ociboxd {
    pub dir: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// The namespace tests use with ctr (`-n`).
    pub namespace: String,
    /// Extra daemon flags (e.g. `--config`), kept for restarts.
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl Ociboxd {
    pub fn start() -> Ociboxd {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Ociboxd {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ociboxd-test-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_ocibox"),
            dir.join("bin/containerd-shim-ocibox-v2"),
        )
        .unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ocibox"), dir.join("bin/ociboxd")).unwrap();
        let mut d = Ociboxd {
            address: dir.join("ociboxd.sock"),
            namespace: format!("ociboxd-test-{tag}"),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            dir,
            child: None,
        };
        d.spawn_daemon();
        d
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Start (or restart) the daemon and wait until Version answers.
    pub fn spawn_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("ociboxd.log"))
            .unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(self.dir.join("bin/ociboxd"))
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.state())
            .arg("--address")
            .arg(&self.address)
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra_args)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ociboxd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.address).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("ociboxd exited with {st}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ociboxd did not come up; log:\n{}", self.log());
    }

    /// kill -9 the daemon (shims and containers go on).
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the daemon and wait for it to exit; its exit status.
    pub fn stop_daemon(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ociboxd.log")).unwrap_or_default()
    }

    /// Debian's real `ctr -a SOCK -n NS ARGS…`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().expect("run ctr")
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a")
            .arg(&self.address)
            .args(["-n", &self.namespace])
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// ocibox's own ctl against this daemon: `ocibox ctr -a SOCK -n NS ARGS…`.
    pub fn own_ctr(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocibox"));
        c.arg("ctr")
            .arg("-a")
            .arg(&self.address)
            .args(["-n", &self.namespace])
            .args(args);
        c.stdin(Stdio::null());
        c.output().expect("run ocibox ctr")
    }
}

/// Unmount everything mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

impl Drop for Ociboxd {
    fn drop(&mut self) {
        self.stop_daemon();
        // Shims and containers the test left: kill what still runs from our state dir.
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(self.dir.display().to_string())
            .status();
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        // What the shims keep outside our directory: the runtime state of the namespace
        // (containerd-shim-runc-v2's runc root, ocibox's shim's root) and the sockets of
        // shims killed above.
        for root in ["/run/containerd/runc", "/run/containerd/ocibox"] {
            let _ = std::fs::remove_dir_all(Path::new(root).join(&self.namespace));
        }
        remove_dead_shim_sockets();
    }
}

/// Remove the sockets in /run/containerd/s that nothing answers on any more (a shim killed
/// with SIGKILL leaves its socket); live shims' sockets, also other tests', are kept.
pub fn remove_dead_shim_sockets() {
    let Ok(rd) = std::fs::read_dir("/run/containerd/s") else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if std::os::unix::net::UnixStream::connect(&p).is_err() {
            let _ = std::fs::remove_file(&p);
        }
    }
}
