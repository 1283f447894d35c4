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
