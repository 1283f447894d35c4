//! Rootless Podman 4.3 drives ocibox as its OCI runtime (`podman --runtime <link named
//! runc>`), as a user with subordinate ids: run --rm, run -d, exec, stop, rm of a busybox
//! image imported locally. The same sequence runs with Debian's runc; both must answer
//! alike. The test user (and everything podman made for it) is removed afterwards.
//!
//! This machine lacks CAP_SYS_RESOURCE, so podman's default rlimits cannot be set: every
//! container gets `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`. No network
//! namespace plumbing (slirp4netns) is needed with `--network none`.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A user made for this test, with subordinate ids, a home and an XDG runtime dir; its
/// podman state, pause process, entries in /etc/sub[ug]id and the account go on drop.
struct TestUser {
    name: String,
    uid: u32,
    home: PathBuf,
    runtime_dir: PathBuf,
}

const SUBID_LINE_START: u32 = 520_000;

impl TestUser {
    fn create() -> TestUser {
        let base = 42_600 + std::process::id() % 300;
        // /etc/passwd is read directly: getpwuid in this static test binary would need NSS.
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let taken = |u: u32| {
            passwd
                .lines()
                .any(|l| l.split(':').nth(2) == Some(u.to_string().as_str()))
        };
        let uid = (base..base + 100).find(|u| !taken(*u)).expect("a free uid");
        let name = format!("ocbpod{uid}");
        let st = Command::new("useradd")
            .args(["-m", "-u", &uid.to_string(), "-s", "/bin/sh", &name])
            .status()
            .expect("useradd (passwd package)");
        assert!(st.success(), "useradd {name}");
        let user = TestUser {
            home: PathBuf::from(format!("/home/{name}")),
            runtime_dir: PathBuf::from(format!("/run/user/{uid}")),
            name,
            uid,
        };
        let line = format!("{}:{}:65536\n", user.name, SUBID_LINE_START);
        for f in ["/etc/subuid", "/etc/subgid"] {
            let mut text = std::fs::read_to_string(f).unwrap_or_default();
            text.push_str(&line);
            std::fs::write(f, text).unwrap();
        }
        std::fs::create_dir_all(&user.runtime_dir).unwrap();
        nix::unistd::chown(&user.runtime_dir, Some(uid.into()), Some(uid.into())).unwrap();
        std::fs::set_permissions(&user.runtime_dir, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        user
    }

    /// `args` run as the user, with a login-like environment and its home as cwd.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.uid),
            "--init-groups",
        ])
        .arg("env")
        .arg("-i")
        .arg(format!("HOME={}", self.home.display()))
        .arg(format!("USER={}", self.name))
        .arg(format!("LOGNAME={}", self.name))
        .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args)
        .current_dir(&self.home)
        .stdin(Stdio::null());
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Whether this user can make a user namespace with its subordinate ids.
    fn can_make_user_namespace(&self) -> Result<(), String> {
        let out = self.output(&["podman", "unshare", "cat", "/proc/self/uid_map"]);
        let map = stdout(&out);
        if out.status.success() && map.lines().count() >= 2 {
            Ok(())
        } else {
            Err(format!("{map}{}", stderr(&out)))
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = self.output(&["podman", "rm", "-af", "-t", "0"]);
        let _ = self.output(&["podman", "system", "reset", "-f"]);
        // Podman's rootless pause process keeps the user namespace alive: end it by pid.
        let pause = self.runtime_dir.join("libpod/tmp/pause.pid");
        if let Some(pid) = std::fs::read_to_string(&pause)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let prefix = format!("{}:", self.name);
        for f in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(text) = std::fs::read_to_string(f) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(f, kept);
            }
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// A busybox rootfs as a tarball the user can read, for `podman import`.
fn busybox_tarball(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    make_rootfs(&rootfs);
    let tar = dir.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).unwrap();
    tar
}

/// ocibox as a link named runc in a directory every user can reach (the build tree
/// may not be).
fn ocibox_as_runc(dir: &Path) -> PathBuf {
    let exe = dir.join("ocibox");
    std::fs::copy(bin(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.join("runc");
    std::os::unix::fs::symlink("ocibox", &link).unwrap();
    link
}

const LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// What the user sees from run --rm, run -d, exec, stop and rm through `runtime`.
fn podman_sequence(user: &TestUser, runtime: &Path, name: &str) -> Vec<String> {
    let rt = runtime.to_str().unwrap();
    let podman = |args: &[&str]| -> (bool, String, String) {
        let mut all = vec!["podman", "--runtime", rt];
        all.extend_from_slice(args);
        let out = user.output(&all);
        (out.status.success(), stdout(&out), stderr(&out))
    };
    let mut seen = Vec::new();
    let mut run_rm = vec!["run", "--rm", "--network", "none"];
    run_rm.extend_from_slice(&LIMITS);
    run_rm.extend_from_slice(&["localhost/ocibox-busybox", "sh", "-c", "echo hello; id -u"]);
    let (ok, out, err) = podman(&run_rm);
    assert!(ok, "{rt}: podman run --rm: {err}");
    seen.push(out);

    let mut run_d = vec!["run", "-d", "--name", name, "--network", "none"];
    run_d.extend_from_slice(&LIMITS);
    run_d.extend_from_slice(&["localhost/ocibox-busybox", "sleep", "1000"]);
    let (ok, _, err) = podman(&run_d);
    assert!(ok, "{rt}: podman run -d: {err}");
    let (ok, out, err) = podman(&["inspect", "-f", "{{.State.Status}}", name]);
    assert!(ok, "{rt}: inspect: {err}");
    seen.push(out);

    let (ok, out, err) = podman(&[
        "exec",
        name,
        "sh",
        "-c",
        "echo in-exec; id -u; cat /proc/1/cmdline",
    ]);
    assert!(ok, "{rt}: podman exec: {err}");
    seen.push(out);

    let (ok, _, err) = podman(&["stop", "-t", "1", name]);
    assert!(ok, "{rt}: podman stop: {err}");
    let (ok, out, err) = podman(&["inspect", "-f", "{{.State.Status}}", name]);
    assert!(ok, "{rt}: inspect after stop: {err}");
    seen.push(out);

    let (ok, _, err) = podman(&["rm", name]);
    assert!(ok, "{rt}: podman rm: {err}");
    let (ok, out, err) = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(ok, "{rt}: podman ps: {err}");
    seen.push(out);
    seen
}

#[test]
fn rootless_podman_runs_execs_stops_and_removes_with_ocibox_as_its_runtime() {
    assert!(
        Path::new("/usr/bin/podman").exists() && Path::new("/usr/bin/newuidmap").exists(),
        "podman and uidmap are needed; run scripts/install-deps.sh"
    );
    let user = TestUser::create();
    if let Err(why) = user.can_make_user_namespace() {
        eprintln!(
            "SKIPPED: user {} cannot make a user namespace with its subordinate ids: {why}",
            user.name
        );
        return;
    }
    let dir = TempDir::new("ocibox-podman");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tar = busybox_tarball(dir.path());
    let out = user.output(&[
        "podman",
        "import",
        tar.to_str().unwrap(),
        "localhost/ocibox-busybox:latest",
    ]);
    assert!(out.status.success(), "podman import: {}", stderr(&out));

    let ours = podman_sequence(&user, &ocibox_as_runc(dir.path()), "ocibox-c");
    let theirs = podman_sequence(&user, Path::new("/usr/sbin/runc"), "runc-c");
    assert_eq!(ours[0], "hello\n0\n");
    assert_eq!(ours[1].trim(), "running");
    assert_eq!(ours[2], "in-exec\n0\nsleep\u{0}1000\u{0}");
    assert_eq!(ours[3].trim(), "exited");
    assert_eq!(ours[4].trim(), "");
    assert_eq!(ours, theirs, "ocibox and runc under podman differ");
}
