//! A hostile rootfs (the CVE-2025-31133 / CVE-2025-52565 / CVE-2025-52881 class): links and
//! fake files in the image where the runtime expects /dev/null, /dev/console and /proc.
//! Each case runs under ocibox (which must be safe) and under Debian's runc 1.1.5, whose
//! result is recorded on stderr but not required (1.1.5 predates the fixes).

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::net::UnixListener;
use std::path::Path;

const RUNC: &str = "/usr/sbin/runc";

fn runc_present() -> bool {
    Path::new(RUNC).exists()
}

/// A busybox bundle running `script`, without the tmpfs on /dev (so the image's /dev is
/// what the container sees) and with a known hostname.
fn bundle_without_dev_tmpfs(script: &str) -> Bundle {
    let b = Bundle::new(&["sh", "-c", script]);
    b.edit(|c| {
        c["hostname"] = json!("hostile");
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
    b
}

/// `run` the bundle under `rt`; (exit code, stdout, stderr).
fn run(rt: &Runtime, b: &Bundle) -> (i32, String, String) {
    let id = unique("hostile");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

const MASK_SCRIPT: &str = "cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; \
     stat -c %t:%T /proc/keys; echo pwned > /proc/keys 2>/dev/null; hostname";

fn dev_null_symlink_case(rt: &Runtime) -> (i32, String, String) {
    let b = bundle_without_dev_tmpfs(MASK_SCRIPT);
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", b.rootfs().join("dev/null")).unwrap();
    run(rt, &b)
}

/// maskedPaths with rootfs/dev/null a symlink to a proc file: the masks are the null device,
/// read empty, and writing to them changes nothing.
#[test]
fn masked_paths_are_the_real_dev_null_whatever_the_rootfs_has() {
    let (code, out, err) = dev_null_symlink_case(&Runtime::new());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "0\n0\n1:3\nhostile\n", "{err}");
}

/// The same in a user namespace (devices are binds of the host's there, and the clone of
/// the host's /dev/null is made by the namespace's root).
#[test]
fn masked_paths_are_the_real_dev_null_in_a_user_namespace() {
    let b = bundle_without_dev_tmpfs(MASK_SCRIPT);
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", b.rootfs().join("dev/null")).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", "-h", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(chown.success());
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup" && m["type"] != "sysfs");
    });
    let (code, out, err) = run(&Runtime::new(), &b);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "0\n0\n1:3\nhostile\n", "{err}");
}

/// runc 1.1.5 follows the link: the masks become binds of the container's hostname file,
/// and its stdio (reopened "on /dev/null") lands in that file too, so the results go to a
/// file of the rootfs here.
#[test]
fn masked_paths_dev_null_symlink_runc() {
    if !runc_present() {
        return;
    }
    let b = bundle_without_dev_tmpfs(&format!("( {MASK_SCRIPT} ) > /tmp/result 2>&1"));
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", b.rootfs().join("dev/null")).unwrap();
    let (code, out, err) = run(&Runtime::with_binary(Path::new(RUNC)), &b);
    let result = std::fs::read_to_string(b.rootfs().join("tmp/result")).unwrap_or_default();
    eprintln!(
        "runc 1.1.5, /dev/null -> /proc/sys/kernel/hostname: exit {code}, results {result:?} \
         (ocibox: \"0\\n0\\n1:3\\nhostile\\n\"), stdout {out:?}, stderr {err:?}"
    );
}

/// A unix socket for --console-socket; the runtime connects and sends without our accept.
struct ConsoleSocket {
    dir: TempDir,
    _listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = TempDir::new("hostile-console");
        let listener = UnixListener::bind(dir.path().join("s.sock")).unwrap();
        ConsoleSocket {
            dir,
            _listener: listener,
        }
    }
    fn path(&self) -> String {
        self.dir.path().join("s.sock").display().to_string()
    }
}

/// The mount points of the container's init, as the host sees them.
fn mount_points(pid: i64) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// Create (stopped before the user's process) a terminal container whose rootfs has
/// dev/console -> /proc/sys/kernel/domainname; the init's mount points.
fn console_symlink_case(rt: &Runtime) -> Result<(Vec<String>, Bundle), String> {
    let b = bundle_without_dev_tmpfs("true");
    b.edit(|c| c["process"]["terminal"] = Value::Bool(true));
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/domainname",
        b.rootfs().join("dev/console"),
    )
    .unwrap();
    let sock = ConsoleSocket::new();
    let id = unique("hostile-tty");
    rt.track(&id);
    let out = rt.run(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        &sock.path(),
        &id,
    ]);
    if !out.status.success() {
        return Err(stderr(&out));
    }
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let points = mount_points(pid);
    let _ = rt.run(&["delete", "--force", &id]);
    Ok((points, b))
}

/// /dev/console a symlink to a proc file: the pty goes onto /dev/console (now a file of
/// the container's /dev), never over the proc file.
#[test]
fn console_symlink_never_takes_the_pty_to_proc() {
    let (points, b) = console_symlink_case(&Runtime::new()).expect("create");
    assert!(
        !points.iter().any(|p| p == "/proc/sys/kernel/domainname"),
        "the pty was bound over a proc file: {points:?}"
    );
    assert!(points.iter().any(|p| p == "/dev/console"), "{points:?}");
    let meta = std::fs::symlink_metadata(b.rootfs().join("dev/console")).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
}

#[test]
fn console_symlink_runc() {
    if !runc_present() {
        return;
    }
    match console_symlink_case(&Runtime::with_binary(Path::new(RUNC))) {
        Ok((points, _)) => eprintln!(
            "runc 1.1.5, /dev/console -> /proc/sys/kernel/domainname: pty over the proc file: {}",
            points.iter().any(|p| p == "/proc/sys/kernel/domainname")
        ),
        Err(e) => eprintln!("runc 1.1.5 refused: {e}"),
    }
}

/// The container's value of kernel.msgmax (an IPC-namespace sysctl), read from the host in
/// the container's IPC namespace.
fn msgmax_in(pid: i64) -> String {
    let out = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-i",
            "cat",
            "/proc/sys/kernel/msgmax",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// No proc mount in the spec, and the image's proc/sys/kernel/msgmax a symlink into /tmp:
/// a sysctl written through the container's /proc lands in the image; through the real
/// procfs it sets the container's msgmax. (A `mounts` entry over /proc/sys is refused by
/// both runtimes, so the image is the way in.)
fn sysctl_redirect_case(rt: &Runtime) -> (String, bool, String) {
    let b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/proc");
        c["linux"]["sysctl"] = json!({"kernel.msgmax": "12345"});
        c["linux"]["readonlyPaths"] = json!([]);
        c["linux"]["maskedPaths"] = json!([]);
    });
    let kernel = b.rootfs().join("proc/sys/kernel");
    std::fs::create_dir_all(&kernel).unwrap();
    std::os::unix::fs::symlink("/tmp/landed", kernel.join("msgmax")).unwrap();
    let id = unique("hostile-sysctl");
    rt.track(&id);
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    if !out.status.success() {
        return (String::new(), false, stderr(&out));
    }
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let value = msgmax_in(pid);
    let _ = rt.run(&["delete", "--force", &id]);
    let landed = b.rootfs().join("tmp/landed").exists();
    (value, landed, String::new())
}

#[test]
fn sysctls_go_to_the_real_procfs_not_the_image() {
    let (value, landed, err) = sysctl_redirect_case(&Runtime::new());
    assert!(err.is_empty(), "{err}");
    assert_eq!(value, "12345", "the container's msgmax");
    assert!(!landed, "the sysctl was written into the image");
}

#[test]
fn sysctls_redirect_runc() {
    if !runc_present() {
        return;
    }
    let (value, landed, err) = sysctl_redirect_case(&Runtime::with_binary(Path::new(RUNC)));
    eprintln!("runc 1.1.5, proc/sys/kernel/msgmax -> /tmp/landed: msgmax {value:?}, written into the image: {landed}, error {err:?}");
}

/// A mount with a relative destination: runc 1.1.5 warns (its words) and mounts it under
/// the container's "/"; so does ocibox.
fn relative_destination_case(rt: &Runtime) -> (i32, String, String) {
    let b = Bundle::new(&["sh", "-c", "grep -c ' /tmp/rel ' /proc/mounts"]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "tmp/rel", "type": "tmpfs", "source": "tmpfs"}));
    });
    run(rt, &b)
}

const RELATIVE_WARNING: &str = "mount destination tmp/rel is not absolute. Support for non-absolute mount destinations will be removed in a future release.";

#[test]
fn relative_mount_destination_warns_and_mounts() {
    let (code, out, err) = relative_destination_case(&Runtime::new());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n", "{err}");
    assert!(err.contains("level=warning"), "{err}");
    assert!(err.contains(RELATIVE_WARNING), "{err}");
}

#[test]
fn relative_mount_destination_warns_and_mounts_runc() {
    if !runc_present() {
        return;
    }
    let (code, out, err) = relative_destination_case(&Runtime::with_binary(Path::new(RUNC)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n", "{err}");
    assert!(err.contains(RELATIVE_WARNING), "{err}");
}

/// `exec` into a container whose root (with CAP_SYS_ADMIN) put a tmpfs over /proc with a
/// fake self/oom_score_adj: the exec's oomScoreAdj must reach the real procfs (the exec
/// process's own value), not the file the container planted.
fn exec_oom_case(rt: &Runtime) -> Result<(String, String), String> {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "mount -t tmpfs t /proc && mkdir /proc/self && echo 0 > /proc/self/oom_score_adj \
         && touch /tmp/ready && sleep 60",
    ]);
    b.edit(|c| {
        let caps = &mut c["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            if let Some(list) = caps[set].as_array_mut() {
                list.push(json!("CAP_SYS_ADMIN"));
            }
        }
    });
    let id = unique("hostile-exec");
    rt.track(&id);
    let out = rt.run(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    if !out.status.success() {
        return Err(stderr(&out));
    }
    let ready = b.rootfs().join("tmp/ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready.exists() {
        if std::time::Instant::now() > deadline {
            return Err("the container never got ready".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let init_pid = rt.state(&id)["pid"].as_i64().unwrap();
    let mut process = b.config()["process"].clone();
    process["args"] = json!(["sleep", "30"]);
    process["oomScoreAdj"] = json!(500);
    let pfile = b.path().join("process.json");
    std::fs::write(&pfile, serde_json::to_vec(&process).unwrap()).unwrap();
    let pidfile = b.path().join("exec.pid");
    let out = rt.run(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--process",
        pfile.to_str().unwrap(),
        &id,
    ]);
    let result = if out.status.success() {
        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        let real = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", pid.trim()))
            .unwrap_or_default();
        let planted =
            std::fs::read_to_string(format!("/proc/{init_pid}/root/proc/self/oom_score_adj"))
                .unwrap_or_default();
        Ok((real.trim().to_string(), planted.trim().to_string()))
    } else {
        Err(stderr(&out))
    };
    let _ = rt.run(&["delete", "--force", &id]);
    result
}

#[test]
fn exec_oom_score_adj_goes_to_the_real_procfs() {
    let (real, planted) = exec_oom_case(&Runtime::new()).expect("exec");
    assert_eq!(real, "500", "the exec process's oom_score_adj");
    assert_eq!(planted, "0", "the container's planted file was written");
}

#[test]
fn exec_oom_score_adj_runc() {
    if !runc_present() {
        return;
    }
    let r = exec_oom_case(&Runtime::with_binary(Path::new(RUNC)));
    eprintln!("runc 1.1.5, exec with a tmpfs over the container's /proc: (real, planted) {r:?}");
}
