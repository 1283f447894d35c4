//! Shared fixtures of the integration tests: the built binary, busybox bundles, a private
//! runtime root, and guards that clean up whatever a test made, also when it fails.
#![allow(dead_code)]

pub mod containerd;
#[cfg(feature = "daemon")]
pub mod daemons;
#[cfg(feature = "images")]
pub mod hostile_registry;
#[cfg(feature = "daemon")]
pub mod ociboxd;
#[cfg(feature = "images")]
pub mod registry;
#[cfg(feature = "shim")]
pub mod ttrpc_by_hand;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ocibox"))
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A temporary directory removed on drop (after unmounting anything left under it).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// scripts/make-busybox-image.sh: the busybox fixture image (every applet, from Debian's
/// busybox-static) as an OCI archive at `archive`, named docker.io/library/busybox:latest.
pub fn make_busybox_image(archive: &Path) {
    let st =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-busybox-image.sh"))
            .arg(archive)
            .status()
            .expect("run scripts/make-busybox-image.sh");
    assert!(
        st.success(),
        "make-busybox-image.sh {} failed",
        archive.display()
    );
}

/// Make a busybox rootfs at `rootfs` from Debian's busybox-static.
pub fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::set_permissions(
        rootfs.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox (Debian busybox-static) is needed; run scripts/install-deps.sh");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            let _ = std::os::unix::fs::symlink("busybox", link);
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\ntester:x:1000:\nextra:x:2000:tester\n",
    )
    .unwrap();
}

/// A busybox bundle with ocibox's default spec (no terminal), in a temp dir.
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        Self::with_spec_from(&bin(), &["runc", "spec"], args)
    }

    /// A bundle whose config.json comes from Debian's runc (`runc spec`).
    pub fn from_real_runc(args: &[&str]) -> Bundle {
        Self::with_spec_from(Path::new("/usr/sbin/runc"), &["spec"], args)
    }

    fn with_spec_from(tool: &Path, spec_args: &[&str], args: &[&str]) -> Bundle {
        let dir = TempDir::new("ocibox-bundle");
        make_rootfs(&dir.path().join("rootfs"));
        let out = Command::new(tool)
            .args(spec_args)
            .arg("--bundle")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = Bundle { dir };
        // Tests write into their rootfs; the one about a read-only root sets it back.
        b.edit(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = serde_json::json!(args);
            c["root"]["readonly"] = Value::Bool(false);
        });
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("config.json")).unwrap()).unwrap()
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }
}

/// A private runtime root; every container made through it is force-deleted on drop.
pub struct Runtime {
    pub root: TempDir,
    pub exe: PathBuf,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            root: TempDir::new("ocibox-root"),
            exe: bin(),
            ids: Default::default(),
        }
    }

    /// Drive another runc-compatible binary with the same helpers (for comparisons).
    pub fn with_binary(exe: &Path) -> Runtime {
        Runtime {
            root: TempDir::new("ocibox-root"),
            exe: exe.to_path_buf(),
            ids: Default::default(),
        }
    }

    pub fn track(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        if self.exe == bin() {
            c.arg("runc");
        }
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Run a runtime command to completion with stdin from /dev/null. Its stdout and
    /// stderr go to files, not pipes: a detached container inherits them and would keep
    /// a pipe open long after the command returned.
    pub fn run(&self, args: &[&str]) -> Output {
        let name = unique("out");
        let out_path = self.root.path().join(format!("{name}.stdout"));
        let err_path = self.root.path().join(format!("{name}.stderr"));
        let status = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .expect("spawn the runtime");
        let output = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        output
    }

    /// Like `run` but the command must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{:?} failed ({}): {}{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// create (tracked for cleanup) from a bundle; stdio of the container to /dev/null
    /// unless the caller gives stdout.
    pub fn create(&self, id: &str, bundle: &Bundle) {
        self.track(id);
        self.ok(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self
                .command(&["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Mount points, cgroup dirs and processes that mention `needle`, to prove nothing leaked.
pub fn leftovers(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
        found.extend(
            m.lines()
                .filter(|l| l.contains(needle))
                .map(|l| format!("mount: {l}")),
        );
    }
    if let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") {
        for c in ctrls.flatten() {
            let p = c.path().join(needle);
            if p.exists() {
                found.push(format!("cgroup: {}", p.display()));
            }
        }
    }
    found
}

/// Remove the (empty) cgroup directory `rel` under every mounted hierarchy: the parents an
/// absolute cgroupsPath implied, which the runtime leaves as runc does.
pub fn remove_cgroup_everywhere(rel: &str) {
    if let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") {
        for c in ctrls.flatten() {
            let _ = std::fs::remove_dir(c.path().join(rel));
        }
    }
}

/// `s` with every sha256 digest replaced by `sha256:D`.
pub fn no_digests(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i + 7]);
        let after = &rest[i + 7..];
        let n = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push('D');
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}
