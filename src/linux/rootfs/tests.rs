//! Real tests: a busybox rootfs in a temp dir, set up by a child process (this test binary,
//! re-run with an environment variable) in a mount namespace of its own. The child runs
//! prepare_rootfs + finalize_rootfs, then reports what it sees from inside the container as
//! one JSON line; the parent checks the report and that the host kept no mount.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use nix::fcntl::OFlag;

use super::{finalize_rootfs, mount_console, prepare_rootfs, RootfsOptions};

const CHILD_ENV: &str = "OCIBOX_ROOTFS_TEST_DIR";
const REPORT: &str = "OCIBOX-REPORT ";

/// A bundle-like temp dir: `rootfs/` (busybox), `host/` (bind sources), config and probes.
struct Fixture {
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ocibox-rootfs-{tag}-{}-{nanos}",
            std::process::id()
        ));
        let f = Fixture { dir };
        let root = f.rootfs();
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in ["sh", "cat", "ls", "echo", "touch"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .unwrap();
        // The classic escape attempt: a link in the image to a host directory.
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../etc", root.join("uplink")).unwrap();
        let host = f.host();
        std::fs::create_dir_all(host.join("data/sub")).unwrap();
        std::fs::write(host.join("data/file"), "bound data\n").unwrap();
        std::fs::write(host.join("single"), "single file\n").unwrap();
        f
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    fn host(&self) -> PathBuf {
        self.dir.join("host")
    }

    /// Run the child with `spec`, `probes` and flags; returns its report.
    fn run(&self, spec: &Value, probes: &[Value], flags: &[&str]) -> Value {
        std::fs::write(self.dir.join("config.json"), spec.to_string()).unwrap();
        std::fs::write(
            self.dir.join("probes.json"),
            Value::from(probes.to_vec()).to_string(),
        )
        .unwrap();
        let mut ns = libc::CLONE_NEWNS;
        if flags.contains(&"cgroupns") {
            ns |= libc::CLONE_NEWCGROUP;
        }
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "linux::rootfs::tests::child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &self.dir)
        .env("OCIBOX_ROOTFS_TEST_FLAGS", flags.join(","));
        // SAFETY: only unshare(2), an async-signal-safe syscall, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(ns) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = stdout
            .lines()
            .find_map(|l| l.split_once(REPORT).map(|(_, r)| r))
            .unwrap_or_else(|| {
                panic!(
                    "child gave no report: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        self.assert_host_clean();
        serde_json::from_str(report).unwrap()
    }

    /// Nothing mounted in the child's namespace may show on the host.
    fn assert_host_clean(&self) {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.dir.to_string_lossy();
        assert!(!mi.contains(&*dir), "host sees a mount under {dir}:\n{mi}");
    }
}

fn spec(mounts: Value, linux_extra: Value, readonly: bool) -> Value {
    let mut linux = json!({
        "namespaces": [{"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/timer_list", "/proc/does-not-exist"],
        "readonlyPaths": ["/proc/sys", "/proc/no-such"],
    });
    if let (Some(l), Some(extra)) = (linux.as_object_mut(), linux_extra.as_object()) {
        for (k, v) in extra {
            l.insert(k.clone(), v.clone());
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": readonly},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": mounts,
        "linux": linux,
    })
}

/// The mounts of `runc spec`.
fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

fn probe(kind: &str, path: &str) -> Value {
    json!({"kind": kind, "path": path})
}

/// The child side: set up the rootfs and answer the probes. Does nothing in a normal run.
#[test]
fn child_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let report = child_run(&dir).unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
    println!("{REPORT}{report}");
    std::process::exit(0);
}

fn child_run(dir: &Path) -> anyhow::Result<Value> {
    let spec: Spec = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let probes: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("probes.json"))?)?;
    let flags = std::env::var("OCIBOX_ROOTFS_TEST_FLAGS").unwrap_or_default();
    let rootfs = dir.join("rootfs");
    let opts = RootfsOptions {
        rootfs: &rootfs,
        no_pivot: flags.contains("nopivot"),
        new_mount_ns: true,
        new_cgroup_ns: flags.contains("cgroupns"),
        in_user_ns: flags.contains("userns"),
        source_fds: &Default::default(),
    };
    let mut hook_cwd = None;
    let prepared = prepare_rootfs(&spec, &opts, &mut || {
        hook_cwd = Some(std::env::current_dir()?);
        Ok(())
    })?;
    finalize_rootfs(&spec, prepared)?;
    if flags.contains("console") {
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY)?;
        nix::pty::grantpt(&master)?;
        nix::pty::unlockpt(&master)?;
        let slave = nix::pty::ptsname_r(&master)?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave)?;
        mount_console(std::os::fd::AsFd::as_fd(&slave))?;
    }
    let mut results = BTreeMap::new();
    for p in &probes {
        let kind = p["kind"].as_str().unwrap_or("");
        let path = p["path"].as_str().unwrap_or("");
        results.insert(format!("{kind} {path}"), Value::from(run_probe(kind, path)));
    }
    Ok(json!({
        "hook_cwd": hook_cwd.map(|p| p.to_string_lossy().into_owned()),
        "cwd": std::env::current_dir()?.to_string_lossy(),
        "mountinfo": std::fs::read_to_string("/proc/self/mountinfo")?,
        "probes": results,
    }))
}

fn run_probe(kind: &str, path: &str) -> String {
    let err = |e: std::io::Error| format!("error {}", e.raw_os_error().unwrap_or(0));
    match kind {
        "stat" => match std::fs::symlink_metadata(path) {
            Ok(m) => {
                let ft = m.file_type();
                let t = if ft.is_char_device() {
                    "chr"
                } else if ft.is_dir() {
                    "dir"
                } else if ft.is_symlink() {
                    "link"
                } else if ft.is_file() {
                    "file"
                } else {
                    "other"
                };
                let rdev = m.rdev();
                format!(
                    "{t} {:o} {}:{} {}:{}",
                    m.permissions().mode() & 0o7777,
                    libc::major(rdev),
                    libc::minor(rdev),
                    m.uid(),
                    m.gid()
                )
            }
            Err(e) => err(e),
        },
        "read" => std::fs::read_to_string(path).unwrap_or_else(err),
        "write" => std::fs::write(path, "x")
            .map(|_| "ok".into())
            .unwrap_or_else(err),
        "readlink" => std::fs::read_link(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(err),
        "list" => match std::fs::read_dir(path) {
            Ok(rd) => {
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names.join(",")
            }
            Err(e) => err(e),
        },
        "exec" => match Command::new("/bin/sh").args(["-c", path]).output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => err(e),
        },
        _ => format!("unknown probe {kind}"),
    }
}

fn p<'a>(report: &'a Value, kind: &str, path: &str) -> &'a str {
    report["probes"][format!("{kind} {path}")]
        .as_str()
        .unwrap_or_else(|| panic!("no probe {kind} {path} in {report:#}"))
}

/// (mount point, per-mount options, fs type, optional fields) of the child's mountinfo.
fn mounts(report: &Value) -> Vec<(String, String, String, String)> {
    crate::linux::mountinfo::parse(report["mountinfo"].as_str().unwrap_or(""))
        .into_iter()
        .map(|m| {
            let line_opts = report["mountinfo"]
                .as_str()
                .unwrap_or("")
                .lines()
                .find(|l| l.split(' ').nth(4) == Some(m.mount_point.as_str()))
                .and_then(|l| l.split(' ').nth(5))
                .unwrap_or("")
                .to_string();
            (m.mount_point, line_opts, m.fs_type, m.optional)
        })
        .collect()
}

fn mount_at(report: &Value, point: &str) -> (String, String, String, String) {
    mounts(report)
        .into_iter()
        .rev()
        .find(|m| m.0 == point)
        .unwrap_or_else(|| panic!("no mount at {point}: {}", report["mountinfo"]))
}

#[test]
fn full_default_spec_with_binds_devices_and_finalize() {
    let f = Fixture::new("full");
    let host = f.host();
    let mut mounts_v = default_mounts();
    mounts_v.extend([
        // Through a link to the host's /etc: must land in the rootfs's /etc.
        json!({"destination": "/etclink/ocibox-data", "type": "bind",
               "source": host.join("data"), "options": ["rbind", "ro", "nosuid"]}),
        json!({"destination": "/uplink/single", "type": "none",
               "source": host.join("single"), "options": ["bind"]}),
        json!({"destination": "/rro", "type": "bind",
               "source": host.join("data"), "options": ["rbind", "rro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777"]}),
        json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
               "options": ["shared"]}),
        json!({"destination": "/copyup", "type": "tmpfs", "source": "tmpfs",
               "options": ["tmpcopyup", "nodev"]}),
    ]);
    let up = f.rootfs().join("copyup");
    std::fs::create_dir_all(up.join("sub")).unwrap();
    std::fs::write(up.join("a.txt"), "covered\n").unwrap();
    std::fs::set_permissions(up.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(up.join("sub/b.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("a.txt", up.join("link")).unwrap();
    std::fs::set_permissions(&up, std::fs::Permissions::from_mode(0o751)).unwrap();
    let spec = spec(
        Value::from(mounts_v),
        json!({"devices": [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                             "fileMode": 0o600, "uid": 1000, "gid": 1001}]}),
        true,
    );
    let probes = [
        probe("stat", "/dev/null"),
        probe("stat", "/dev/urandom"),
        probe("stat", "/dev/tty"),
        probe("stat", "/dev/mynull"),
        probe("readlink", "/dev/ptmx"),
        probe("readlink", "/dev/fd"),
        probe("readlink", "/dev/stderr"),
        probe("stat", "/dev/pts/ptmx"),
        probe("stat", "/dev/shm"),
        probe("read", "/etc/ocibox-data/file"),
        probe("write", "/etc/ocibox-data/new"),
        probe("read", "/etc/single"),
        probe("write", "/rro/sub/x"),
        probe("write", "/tmp/x"),
        probe("stat", "/tmp"),
        probe("write", "/newfile"),
        probe("read", "/proc/timer_list"),
        probe("list", "/proc/acpi"),
        probe("write", "/proc/sys/kernel/hostname"),
        probe("list", "/sys/fs/cgroup"),
        probe("write", "/sys/fs/cgroup/x"),
        probe("list", "/sys/fs/cgroup/memory"),
        probe("exec", "cat /etc/passwd; echo hi"),
        probe("read", "/copyup/link"),
        probe("read", "/copyup/sub/b.txt"),
        probe("stat", "/copyup/a.txt"),
        probe("stat", "/copyup"),
        probe("write", "/copyup/new"),
        probe("stat", "/dev/console"),
    ];
    let r = f.run(&spec, &probes, &["console"]);
    assert!(r.get("error").is_none(), "child failed: {}", r["error"]);

    assert_eq!(r["cwd"], "/");
    assert_eq!(
        r["hook_cwd"],
        f.rootfs().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(p(&r, "stat", "/dev/null"), "chr 666 1:3 0:0");
    assert_eq!(p(&r, "stat", "/dev/urandom"), "chr 666 1:9 0:0");
    assert_eq!(p(&r, "stat", "/dev/tty"), "chr 666 5:0 0:0");
    assert_eq!(p(&r, "stat", "/dev/mynull"), "chr 600 1:3 1000:1001");
    assert_eq!(p(&r, "readlink", "/dev/ptmx"), "pts/ptmx");
    assert_eq!(p(&r, "readlink", "/dev/fd"), "/proc/self/fd");
    assert_eq!(p(&r, "readlink", "/dev/stderr"), "/proc/self/fd/2");
    assert!(p(&r, "stat", "/dev/pts/ptmx").starts_with("chr 666 5:2"));
    assert!(p(&r, "stat", "/dev/shm").starts_with("dir 1777"));

    // The binds went through the image's links into the rootfs, not onto the host.
    assert_eq!(p(&r, "read", "/etc/ocibox-data/file"), "bound data\n");
    assert_eq!(
        p(&r, "write", "/etc/ocibox-data/new"),
        format!("error {}", libc::EROFS)
    );
    assert_eq!(p(&r, "read", "/etc/single"), "single file\n");
    assert!(!Path::new("/etc/ocibox-data").exists());
    assert!(!Path::new("/etc/single").exists());
    assert!(f.rootfs().join("etc/ocibox-data").is_dir());
    assert!(f.rootfs().join("etc/single").is_file());
    let (_, opts, _, _) = mount_at(&r, "/etc/ocibox-data");
    assert!(opts.contains("ro") && opts.contains("nosuid"), "{opts}");

    // rro through mount_setattr reaches the submount-free tree too.
    assert_eq!(
        p(&r, "write", "/rro/sub/x"),
        format!("error {}", libc::EROFS)
    );
    assert_eq!(p(&r, "write", "/tmp/x"), "ok");
    assert!(p(&r, "stat", "/tmp").starts_with("dir 1777"));
    assert!(mount_at(&r, "/shared").3.contains("shared:"));

    // root.readonly, maskedPaths, readonlyPaths.
    assert_eq!(p(&r, "write", "/newfile"), format!("error {}", libc::EROFS));
    assert!(mount_at(&r, "/").1.starts_with("ro"));
    assert_eq!(p(&r, "read", "/proc/timer_list"), "");
    assert_eq!(p(&r, "list", "/proc/acpi"), "");
    assert_eq!(
        p(&r, "write", "/proc/sys/kernel/hostname"),
        format!("error {}", libc::EROFS)
    );

    // cgroup v1 (this host is hybrid): a read-only tmpfs with one bind per hierarchy.
    if host_is_v1() {
        check_cgroup_v1(&r);
    }
    // Busybox runs in the result.
    let out = p(&r, "exec", "cat /etc/passwd; echo hi");
    assert!(
        out.starts_with("root:x:0:0") && out.ends_with("hi\n"),
        "{out}"
    );

    // tmpcopyup: the tmpfs starts as a copy of what it covers; writes stay in the tmpfs.
    assert_eq!(p(&r, "read", "/copyup/link"), "covered\n");
    assert_eq!(p(&r, "read", "/copyup/sub/b.txt"), "deep\n");
    assert_eq!(p(&r, "stat", "/copyup/a.txt"), "file 640 0:0 0:0");
    assert!(p(&r, "stat", "/copyup").starts_with("dir 751"));
    assert_eq!(p(&r, "write", "/copyup/new"), "ok");
    assert!(!up.join("new").exists());
    assert_eq!(mount_at(&r, "/copyup").2, "tmpfs");

    // The console is the pty slave bound onto /dev/console.
    assert!(
        p(&r, "stat", "/dev/console").starts_with("chr 620 136:"),
        "{}",
        p(&r, "stat", "/dev/console")
    );

    // The old root is gone: one "/" and none of the host's other mounts.
    let all = mounts(&r);
    assert_eq!(
        all.iter().filter(|m| m.0 == "/").count(),
        1,
        "{}",
        r["mountinfo"]
    );
    let host_root_fs = crate::linux::mountinfo::read()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_point == "/")
        .map(|m| m.fs_type)
        .unwrap();
    let host_fs = all
        .iter()
        .filter(|m| m.2 == host_root_fs)
        .map(|m| m.0.as_str());
    assert_eq!(
        host_fs.collect::<Vec<_>>(),
        ["/", "/etc/ocibox-data", "/etc/single", "/rro"],
        "{}",
        r["mountinfo"]
    );
    assert!(!all.iter().any(|m| m.0 == "/sys/fs/cgroup/unified"));
}

fn host_is_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists()
}

fn check_cgroup_v1(r: &Value) {
    let cg = p(r, "list", "/sys/fs/cgroup");
    for c in ["cpu", "cpuacct", "memory", "pids", "systemd"] {
        assert!(cg.split(',').any(|x| x == c), "{c} missing in {cg}");
    }
    assert_eq!(
        p(r, "write", "/sys/fs/cgroup/x"),
        format!("error {}", libc::EROFS)
    );
    assert!(p(r, "list", "/sys/fs/cgroup/memory").contains("cgroup.procs"));
    assert_eq!(mount_at(r, "/sys/fs/cgroup/memory").2, "cgroup");
    assert_eq!(mount_at(r, "/sys/fs/cgroup").2, "tmpfs");
    assert!(mount_at(r, "/sys").1.starts_with("ro"));
}

#[test]
fn proc_over_a_symlink_is_refused() {
    let f = Fixture::new("procsym");
    std::os::unix::fs::symlink("/etc", f.rootfs().join("proc")).unwrap();
    let spec = spec(Value::from(default_mounts()), json!({}), false);
    let r = f.run(&spec, &[], &[]);
    let err = r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {r}"));
    assert!(err.starts_with("mount proc on /proc in rootfs "), "{err}");
    assert!(
        err.contains("filesystem \"proc\" must be mounted on ordinary directory"),
        "{err}"
    );
}

#[test]
fn mounts_inside_proc_and_unknown_options_are_refused() {
    let f = Fixture::new("refuse");
    let mut m = default_mounts();
    m.push(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
    let r = f.run(&spec(Value::from(m), json!({}), false), &[], &[]);
    let err = r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {r}"));
    assert!(err.contains("mount tmpfs on /proc/sys"), "{err}");
    assert!(err.contains("inside /proc"), "{err}");

    let mut m = default_mounts();
    m.push(json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "nosiud"]}));
    let r = f.run(&spec(Value::from(m), json!({}), false), &[], &[]);
    let err = r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {r}"));
    assert!(
        err.contains("/x") && err.contains("unknown mount option \"nosiud\" on a bind mount"),
        "{err}"
    );
    // Refused before anything was mounted: the rootfs is untouched.
    assert!(!f.rootfs().join("x").exists());
}

#[test]
fn no_pivot_with_bound_devices_and_cgroup_namespace() {
    let f = Fixture::new("nopivot");
    let spec = spec(
        Value::from(default_mounts()),
        json!({"rootfsPropagation": "rprivate"}),
        false,
    );
    let probes = [
        probe("stat", "/dev/null"),
        probe("stat", "/dev/zero"),
        probe("write", "/dev/null"),
        probe("read", "/etc/passwd"),
        probe("list", "/sys/fs/cgroup/cpu"),
        probe("write", "/newfile"),
    ];
    let r = f.run(&spec, &probes, &["nopivot", "userns", "cgroupns"]);
    assert!(r.get("error").is_none(), "child failed: {}", r["error"]);
    assert_eq!(r["cwd"], "/");
    assert!(p(&r, "read", "/etc/passwd").starts_with("root:x:0:0"));
    assert_eq!(p(&r, "write", "/newfile"), "ok");
    // In a user namespace devices are binds of the host's nodes.
    assert!(p(&r, "stat", "/dev/null").starts_with("chr 666 1:3"));
    assert!(p(&r, "stat", "/dev/zero").starts_with("chr 666 1:5"));
    assert_eq!(p(&r, "write", "/dev/null"), "ok");
    assert_eq!(mount_at(&r, "/dev/null").2, "devtmpfs");
    // In a cgroup namespace the hierarchies are fresh cgroup mounts, read-only.
    if !host_is_v1() {
        return;
    }
    let (_, opts, fstype, _) = mount_at(&r, "/sys/fs/cgroup/cpu");
    assert_eq!(fstype, "cgroup");
    assert!(opts.starts_with("ro"), "{opts}");
    assert!(p(&r, "list", "/sys/fs/cgroup/cpu").contains("cgroup.procs"));
}
