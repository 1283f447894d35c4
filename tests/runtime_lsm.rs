//! process.apparmorProfile and process.selinuxLabel on a host without either LSM (this
//! one: no securityfs AppArmor entry, no selinuxfs): refused before anything is made,
//! with a message that says why; an empty profile means none, as in runc.

mod common;
use common::*;
use ocibox::linux::lsm;
use serde_json::json;

/// The tests below are about a host without the LSM; on another host they say so and pass.
fn host_without_lsms() -> bool {
    if lsm::apparmor_enabled() || lsm::selinux_enabled() {
        eprintln!("skipped: this host has AppArmor or SELinux enabled");
        return false;
    }
    true
}

fn assert_nothing_left(rt: &Runtime, id: &str) {
    assert!(!rt.root.path().join(id).exists(), "state dir of {id} left");
    assert!(leftovers(id).is_empty(), "{:?}", leftovers(id));
    assert_eq!(rt.ok(&["list", "-q"]).trim(), "", "containers left");
}

#[test]
fn apparmor_profile_on_a_host_without_apparmor_is_a_clear_error() {
    if !host_without_lsms() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["apparmorProfile"] = json!("ocibox-test-profile"));
    let id = unique("lsm-aa");
    rt.track(&id);
    for cmd in ["create", "run"] {
        let out = rt.run(&[cmd, "--bundle", b.path().to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&out).contains(
                "apparmor profile ocibox-test-profile requested but AppArmor is not enabled on this host"
            ),
            "{cmd}: {}",
            stderr(&out)
        );
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn selinux_label_on_a_host_without_selinux_is_refused_as_runc_does() {
    if !host_without_lsms() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
    let id = unique("lsm-se");
    rt.track(&id);
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "selinux label is specified in config, but selinux is disabled or not supported"
        ),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn empty_labels_mean_none() {
    let rt = Runtime::new();
    let b = Bundle::new(&["echo", "unconfined"]);
    b.edit(|c| {
        c["process"]["apparmorProfile"] = json!("");
        c["process"]["selinuxLabel"] = json!("");
    });
    let id = unique("lsm-empty");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unconfined\n");
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_with_a_profile_the_host_cannot_apply_starts_nothing() {
    if !host_without_lsms() {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("lsm-exec");
    rt.track(&id);
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = rt.run(&["exec", "--apparmor", "ocibox-test-profile", &id, "true"]);
    // runc exits 255 when exec fails.
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("AppArmor is not enabled on this host"),
        "{}",
        stderr(&out)
    );
    let out = rt.run(&[
        "exec",
        "--process-label",
        "system_u:system_r:container_t:s0",
        &id,
        "true",
    ]);
    assert!(
        stderr(&out).contains("selinux is disabled"),
        "{}",
        stderr(&out)
    );
    // Only the container's own process is in it.
    let ps: serde_json::Value =
        serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps.as_array().map(|a| a.len()), Some(1), "{ps}");
    rt.ok(&["delete", "--force", &id]);
    assert_nothing_left(&rt, &id);
}
