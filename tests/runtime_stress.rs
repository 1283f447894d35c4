//! Many lifecycles in a row and in parallel leave nothing behind: no mount, cgroup
//! directory, state directory, process or descriptor.

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

/// The tests of this file count the process's descriptors: they must not overlap.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(cmd);
            }
        }
    }
    found
}

/// No cgroup directory is left below /<tag> in any hierarchy; then remove /<tag> itself.
fn assert_no_cgroups_under(tag: &str) {
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let base = ctrl.path().join(tag);
        if base.exists() {
            let left: Vec<_> = std::fs::read_dir(&base)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "cgroups left: {left:?}");
            let _ = std::fs::remove_dir(&base);
        }
    }
}

#[test]
fn two_hundred_create_start_delete_cycles_leave_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let tag = unique("cyc");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{tag}")));
    let fds_before = fd_count();
    // Other tests mount and unmount concurrently: count only mounts of this bundle.
    let bundle = b.path().to_str().unwrap().to_string();
    let bundle_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&bundle))
            .count()
    };
    let mounts_before = bundle_mounts();
    for i in 0..200 {
        let id = format!("{tag}-{i}");
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{tag}/{i}")));
        rt.create(&id, &b);
        rt.ok(&["start", &id]);
        if i % 2 == 0 {
            rt.ok(&["delete", "--force", &id]);
        } else {
            rt.ok(&["kill", &id, "KILL"]);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while rt.status(&id) != "stopped" {
                assert!(std::time::Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(2));
            }
            rt.ok(&["delete", &id]);
        }
    }
    assert_eq!(
        std::fs::read_dir(rt.root.path()).unwrap().count(),
        0,
        "state dirs left"
    );
    assert_no_cgroups_under(&tag);
    let mounts_after = bundle_mounts();
    assert_eq!(mounts_before, mounts_after, "mounts leaked");
    assert_eq!(fds_before, fd_count(), "descriptors leaked");
    assert!(processes_mentioning(&tag).is_empty());
    assert!(leftovers(&tag).is_empty(), "{:?}", leftovers(&tag));
}

#[test]
fn a_hundred_limited_containers_four_at_a_time_leave_no_cgroup() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tag = unique("par");
    let rt = std::sync::Arc::new(Runtime::new());
    let b = std::sync::Arc::new(Bundle::new(&["sleep", "1000"]));
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432}, "pids": {"limit": 16}});
    });
    let mut workers = Vec::new();
    for w in 0..4 {
        let (rt, tag) = (rt.clone(), tag.clone());
        // Each worker has its own bundle copy of the config (cgroupsPath differs per id).
        let bundle = Bundle::new(&["sleep", "1000"]);
        bundle.edit(|c| c["linux"]["resources"] = b.config()["linux"]["resources"].clone());
        workers.push(std::thread::spawn(move || {
            for i in 0..25 {
                let id = format!("{tag}-{w}-{i}");
                bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{tag}/{id}")));
                rt.create(&id, &bundle);
                rt.ok(&["start", &id]);
                let mem = std::fs::read_to_string(format!(
                    "/sys/fs/cgroup/memory/{tag}/{id}/memory.limit_in_bytes"
                ))
                .unwrap();
                assert_eq!(mem.trim(), "33554432");
                rt.ok(&["delete", "--force", &id]);
            }
        }));
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_no_cgroups_under(&tag);
}
