//! Rootless: an unprivileged user runs busybox from a `runc spec --rootless` bundle; its
//! root is mapped to the user, cgroups are skipped where not delegated.

mod common;
use common::*;
use std::process::Command;

const UID: u32 = 41000;

fn as_user(args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={UID}"),
        &format!("--regid={UID}"),
        "--clear-groups",
        "--reset-env",
    ])
    .arg(bin())
    .args(args);
    c
}

#[test]
fn unprivileged_user_runs_busybox() {
    let dir = TempDir::new("rootless");
    let bundle = dir.path().join("bundle");
    make_rootfs(&bundle.join("rootfs"));
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let st = Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let out = as_user(&[
        "runc",
        "spec",
        "--rootless",
        "--bundle",
        bundle.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    assert_eq!(cfg["linux"]["uidMappings"][0]["hostID"], UID);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["root"]["readonly"] = serde_json::json!(false);
    cfg["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; echo ok > /tmp/w; cat /tmp/w"
    ]);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = unique("rl");
    let out = as_user(&[
        "runc",
        "--root",
        state.to_str().unwrap(),
        "run",
        "-b",
        bundle.to_str().unwrap(),
        &id,
    ])
    .output()
    .unwrap();
    let _ = as_user(&[
        "runc",
        "--root",
        state.to_str().unwrap(),
        "delete",
        "-f",
        &id,
    ])
    .status();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0");
    assert!(
        lines[1].split_whitespace().eq(["0", &UID.to_string(), "1"]),
        "{text}"
    );
    assert_eq!(lines[2], "ok");
}

/// A `runc spec --rootless` busybox bundle owned by UID that prints its uid; its root maps
/// to `host_id` (UID for a plain user, 0 for root inside `unshare --map-root-user`).
/// Without a network namespace of its own no sysfs can be mounted, and runc 1.1.5 cannot
/// bind /sys as root in a user namespace (it fails to pass mount sources), so /sys goes.
fn rootless_bundle(dir: &std::path::Path, host_id: u32) -> std::path::PathBuf {
    let bundle = dir.join("bundle");
    make_rootfs(&bundle.join("rootfs"));
    let st = Command::new("/usr/sbin/runc")
        .args(["spec", "--rootless", "--bundle"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["root"]["readonly"] = serde_json::json!(false);
    cfg["process"]["args"] = serde_json::json!(["id", "-u"]);
    cfg["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": host_id, "size": 1}]);
    cfg["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": host_id, "size": 1}]);
    let mounts: Vec<serde_json::Value> = cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/sys")
        .cloned()
        .collect();
    cfg["mounts"] = serde_json::Value::Array(mounts);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    bundle
}

/// Run `line` as UID with XDG_RUNTIME_DIR set and nothing else of root's environment.
fn shell_as_user(xdg: &std::path::Path, line: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
        ])
        .arg("env")
        .arg("-i")
        .arg(format!("XDG_RUNTIME_DIR={}", xdg.display()))
        .args(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USER=tester"])
        .args(["sh", "-c", line])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// ocibox as a link named runc, reachable by UID (the build tree may not be).
fn ocibox_link(dir: &std::path::Path) -> std::path::PathBuf {
    let exe = dir.join("ocibox");
    std::fs::copy(bin(), &exe).unwrap();
    let link = dir.join("runc");
    std::os::unix::fs::symlink("ocibox", &link).unwrap();
    link
}

/// Each runtime runs the bundle with no --root, as `prefix` (empty, or `unshare …` to be
/// uid 0 in a user namespace); returns (output, mode of $XDG_RUNTIME_DIR/runc).
fn run_without_root_flag(prefix: &str, host_id: Option<u32>) -> Vec<(String, String, u32)> {
    let mut results = Vec::new();
    for runtime in ["ocibox", "/usr/sbin/runc"] {
        let dir = TempDir::new("rootless-xdg");
        let host = host_id.unwrap_or(UID);
        let bundle = rootless_bundle(dir.path(), host);
        let xdg = dir.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap();
        let exe = match runtime {
            "ocibox" => ocibox_link(dir.path()),
            other => std::path::PathBuf::from(other),
        };
        let st = Command::new("chown")
            .args(["-R", &format!("{UID}:{UID}")])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let id = unique("xdg");
        let line = format!(
            "cd {b} && {prefix} sh -c '{exe} run {id}; {exe} delete -f {id} 2>/dev/null; exit 0'",
            b = bundle.display(),
            exe = exe.display(),
        );
        let out = shell_as_user(&xdg, &line);
        let mode = std::fs::metadata(xdg.join("runc"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0);
        results.push((runtime.to_string(), stdout(&out) + &stderr(&out), mode));
    }
    results
}

#[test]
fn without_root_flag_a_user_keeps_state_in_xdg_runtime_dir_as_runc() {
    for (runtime, out, mode) in run_without_root_flag("", None) {
        assert_eq!(out, "0\n", "{runtime}");
        assert_eq!(mode, 0o1700, "{runtime}: $XDG_RUNTIME_DIR/runc");
    }
}

#[test]
fn uid_0_in_a_user_namespace_is_rootless_by_default() {
    // As rootless Podman runs its runtime: root of a user namespace of its own, no --root,
    // no delegated cgroups (the permission errors are ignored: no resources are asked).
    let results = run_without_root_flag("unshare --user --map-root-user", Some(0));
    for (runtime, out, mode) in results {
        assert_eq!(out, "0\n", "{runtime}");
        assert_eq!(mode, 0o1700, "{runtime}: $XDG_RUNTIME_DIR/runc");
    }
}
