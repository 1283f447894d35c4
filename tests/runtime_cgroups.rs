//! The container's cgroups as runc 1.1 treats them, each case run against ocibox (`_own`) and
//! Debian's runc (`_runc`) with the same busybox bundle from `runc spec`: pre-existing frozen
//! or busy cgroups, the device allow list, v1 controllers in a cgroup namespace, memory and
//! swap updates to unlimited, and `exec --cgroup`.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const V1: &str = "/sys/fs/cgroup";

fn runc() -> Runtime {
    Runtime::with_binary(Path::new("/usr/sbin/runc"))
}

/// A runtime command that must finish within `limit` (None: it hung and was killed).
fn run_limited(rt: &Runtime, args: &[&str], limit: Duration) -> Option<Output> {
    let dir = TempDir::new("ocibox-out");
    let (o, e) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = rt
        .command(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn the runtime");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(Output {
                status,
                stdout: std::fs::read(&o).unwrap_or_default(),
                stderr: std::fs::read(&e).unwrap_or_default(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A cgroup made by the test (as an orchestrator would, before the runtime runs), named the
/// same in every v1 hierarchy. Drop thaws it, kills what is in it and removes it (and any
/// directory below it) everywhere, also when the test failed.
struct HostCgroup {
    rel: String,
    children: Vec<Child>,
}

impl HostCgroup {
    fn new(prefix: &str) -> HostCgroup {
        HostCgroup {
            rel: unique(prefix),
            children: Vec::new(),
        }
    }

    fn cgroups_path(&self) -> String {
        format!("/{}", self.rel)
    }

    fn dir(&self, ctrl: &str) -> PathBuf {
        Path::new(V1).join(ctrl).join(&self.rel)
    }

    fn make(&self, ctrl: &str) -> PathBuf {
        let d = self.dir(ctrl);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Start a host process (not a container) inside this cgroup.
    fn add_sleeper(&mut self, ctrls: &[&str]) -> i32 {
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        for c in ctrls {
            std::fs::write(self.make(c).join("cgroup.procs"), pid.to_string()).unwrap();
        }
        pid
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for HostCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir("freezer").join("freezer.state"), "THAWED");
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(ctrls) = std::fs::read_dir(V1) {
            for c in ctrls.flatten() {
                let d = c.path().join(&self.rel);
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for p in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                remove_tree(&d);
            }
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

// ---- 4. pre-existing frozen or busy cgroups ---------------------------------------------

fn frozen_cgroup_is_refused(rt: Runtime) {
    let cg = HostCgroup::new("frozen");
    let freezer = cg.make("freezer").join("freezer.state");
    std::fs::write(&freezer, "FROZEN").unwrap();
    let b = Bundle::from_real_runc(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg.cgroups_path()));
    let bundle = b.path().to_str().unwrap();
    for cmd in [&["run", "-d"][..], &["create"][..]] {
        let id = unique("frz");
        rt.track(&id);
        let mut args = cmd.to_vec();
        args.extend(["--bundle", bundle, &id]);
        let out = run_limited(&rt, &args, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{cmd:?} into a frozen cgroup hung"));
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("container's cgroup unexpectedly frozen"),
            "{cmd:?}: {}",
            stderr(&out)
        );
        assert!(!rt.run(&["state", &id]).status.success(), "{id} left");
        // The caller's cgroup is left exactly as it was.
        assert_eq!(read(&freezer), "FROZEN");
    }
}

#[test]
fn frozen_cgroup_is_refused_own() {
    frozen_cgroup_is_refused(Runtime::new());
}

#[test]
fn frozen_cgroup_is_refused_runc() {
    frozen_cgroup_is_refused(runc());
}

fn busy_cgroup_is_used_with_a_warning(rt: Runtime) {
    let mut cg = HostCgroup::new("busy");
    cg.add_sleeper(&["freezer", "devices", "memory", "pids"]);
    let b = Bundle::from_real_runc(&["sh", "-c", "echo in-container"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg.cgroups_path()));
    let id = unique("busy");
    rt.track(&id);
    let out = run_limited(
        &rt,
        &["run", "--bundle", b.path().to_str().unwrap(), &id],
        Duration::from_secs(30),
    )
    .expect("run into a busy cgroup hung");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "in-container\n");
    let err = stderr(&out);
    assert!(
        err.contains("level=warning msg=\"container's cgroup is not empty: 1 process(es) found\""),
        "{err}"
    );
    assert!(
        err.contains("level=warning msg=\"DEPRECATED: running container in a non-empty cgroup"),
        "{err}"
    );
    // The process that was there before is not the runtime's to kill.
    assert!(
        cg.children[0].try_wait().unwrap().is_none(),
        "the host process was killed"
    );
}

#[test]
fn busy_cgroup_is_used_with_a_warning_own() {
    busy_cgroup_is_used_with_a_warning(Runtime::new());
}

#[test]
fn busy_cgroup_is_used_with_a_warning_runc() {
    busy_cgroup_is_used_with_a_warning(runc());
}

// ---- 5. devices --------------------------------------------------------------------------

fn device_allow_list_is_resources_only(rt: Runtime) {
    let b = Bundle::from_real_runc(&[
        "sh",
        "-c",
        "[ -p /dev/myfifo ] && echo fifo; \
         if echo ocibox-devices-test 2>/dev/null > /dev/kmsg; then echo kmsg-written; else echo kmsg-denied; fi; \
         if (: > /dev/full) 2>/dev/null; then echo full-opened; else echo full-denied; fi; \
         grep ' 1:11 ' /sys/fs/cgroup/devices/devices.list",
    ]);
    b.edit(|c| {
        // runc spec's resources deny every device; "ra" allows reading kmsg ("a" is ignored).
        // /dev/full named here is the spec's own: its default allow rule goes away.
        c["linux"]["devices"] = json!([
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 438},
            {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 438},
            {"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 438}
        ]);
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "ra"}
        ]);
    });
    let id = unique("dev");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "fifo\nkmsg-denied\nfull-denied\nc 1:11 r\n",
        "{}",
        stderr(&out)
    );

    // What runc refuses in linux.resources.devices, before anything runs.
    for (rule, msg) in [
        (
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": ""}),
            "device access at 1 field cannot be empty",
        ),
        (
            json!({"allow": true, "type": "p", "major": 0, "minor": 0, "access": "rw"}),
            // logrus quotes the message: \" in the text log.
            "invalid cgroup device type \\\"p\\\"",
        ),
    ] {
        b.edit(|c| c["linux"]["resources"]["devices"][1] = rule.clone());
        let id = unique("devbad");
        rt.track(&id);
        let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(!out.status.success(), "{rule}");
        assert!(stderr(&out).contains(msg), "{rule}: {}", stderr(&out));
        assert!(!rt.run(&["state", &id]).status.success(), "{id} left");
    }
}

#[test]
fn device_allow_list_is_resources_only_own() {
    device_allow_list_is_resources_only(Runtime::new());
}

#[test]
fn device_allow_list_is_resources_only_runc() {
    device_allow_list_is_resources_only(runc());
}

// ---- 7. cgroup v1 edges --------------------------------------------------------------------

fn cgroup_namespace_sees_v1_controllers(rt: Runtime) {
    let b = Bundle::from_real_runc(&[
        "sh",
        "-c",
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep :memory: /proc/self/cgroup",
    ]);
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    });
    let id = unique("cgns");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for ctrl in ["cpu", "devices", "freezer", "memory", "pids", "systemd"] {
        assert!(lines.contains(&ctrl), "/sys/fs/cgroup lacks {ctrl}: {text}");
    }
    // The memory hierarchy is the container's own cgroup, at the namespace's root.
    assert!(lines.contains(&"67108864"), "{text}");
    assert!(
        lines.last().is_some_and(|l| l.ends_with(":memory:/")),
        "{text}"
    );
}

#[test]
fn cgroup_namespace_sees_v1_controllers_own() {
    cgroup_namespace_sees_v1_controllers(Runtime::new());
}

#[test]
fn cgroup_namespace_sees_v1_controllers_runc() {
    cgroup_namespace_sees_v1_controllers(runc());
}

fn memory_and_swap_updates(rt: Runtime) {
    let unlimited = read(&Path::new(V1).join("memory/memory.limit_in_bytes"));
    let cg = HostCgroup::new("mem");
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg.cgroups_path());
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 134217728});
    });
    let id = unique("mem");
    rt.create(&id, &b);
    rt.ok(&["start", &id]);
    let dir = cg.dir("memory");
    let limits = || {
        (
            read(&dir.join("memory.limit_in_bytes")),
            read(&dir.join("memory.memsw.limit_in_bytes")),
        )
    };
    assert_eq!(limits(), ("67108864".into(), "134217728".into()));
    // Unlimited memory without --memory-swap: both unlimited, memsw first.
    rt.ok(&["update", "--memory", "-1", &id]);
    assert_eq!(limits(), (unlimited.clone(), unlimited.clone()));
    rt.ok(&["update", "--memory", "32M", &id]);
    assert_eq!(limits(), ("33554432".into(), unlimited.clone()));
    rt.ok(&["update", "--memory", "64M", "--memory-swap", "96M", &id]);
    assert_eq!(limits(), ("67108864".into(), "100663296".into()));
    rt.ok(&["update", "--memory-swap", "-1", &id]);
    assert_eq!(limits(), ("67108864".into(), unlimited));
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn memory_and_swap_updates_own() {
    memory_and_swap_updates(Runtime::new());
}

#[test]
fn memory_and_swap_updates_runc() {
    memory_and_swap_updates(runc());
}

fn update_leaves_device_rules_alone(rt: Runtime) {
    let cg = HostCgroup::new("upddev");
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg.cgroups_path()));
    let id = unique("upddev");
    rt.create(&id, &b);
    rt.ok(&["start", &id]);
    let list = || read(&cg.dir("devices").join("devices.list"));
    let before = list();
    assert!(before.contains("c 1:3 rwm"), "{before}");
    rt.ok(&["update", "--pids-limit", "50", &id]);
    // Device rules in --resources are ignored, the rest is applied.
    let r = b.path().join("res.json");
    std::fs::write(
        &r,
        r#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 40}}"#,
    )
    .unwrap();
    rt.ok(&["update", "--resources", r.to_str().unwrap(), &id]);
    assert_eq!(read(&cg.dir("pids").join("pids.max")), "40");
    assert_eq!(list(), before);
    let out = rt.run(&["exec", &id, "sh", "-c", "(: > /dev/null) && echo null-ok"]);
    assert_eq!(stdout(&out), "null-ok\n", "{}", stderr(&out));
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn update_leaves_device_rules_alone_own() {
    update_leaves_device_rules_alone(Runtime::new());
}

#[test]
fn update_leaves_device_rules_alone_runc() {
    update_leaves_device_rules_alone(runc());
}

/// `ctrl:path` pairs from /proc/<pid>/cgroup text, v1 hierarchies only.
fn v1_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next()?;
            let ctrl = f.next()?;
            let path = f.next()?;
            (!ctrl.is_empty()).then(|| (ctrl.to_string(), path.to_string()))
        })
        .collect()
}

fn exec_into_sub_cgroups(rt: Runtime) {
    let cg = HostCgroup::new("exsub");
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg.cgroups_path()));
    let id = unique("exsub");
    rt.create(&id, &b);
    rt.ok(&["start", &id]);
    // The sub-cgroups an orchestrator made (exec never creates them): "sub" in every
    // hierarchy (the hybrid host's unified one too), "msub" in memory only.
    for e in std::fs::read_dir(V1).unwrap().flatten() {
        let base = e.path().join(&cg.rel);
        if !base.is_dir() {
            continue;
        }
        let sub = base.join("sub");
        std::fs::create_dir(&sub).unwrap();
        if e.file_name() == "cpuset" {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(sub.join(f), read(&base.join(f))).unwrap();
            }
        }
    }
    std::fs::create_dir(cg.dir("memory").join("msub")).unwrap();
    let own = format!("/{}", cg.rel);

    let out = rt.run(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = v1_lines(&stdout(&out));
    assert!(!lines.is_empty());
    for (ctrl, path) in &lines {
        assert_eq!(path, &format!("{own}/sub"), "{ctrl}: {}", stdout(&out));
    }

    let out = rt.run(&[
        "exec",
        "--cgroup",
        "memory:msub",
        "--cgroup",
        "pids,freezer:sub",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (ctrl, path) in v1_lines(&stdout(&out)) {
        let want = match ctrl.as_str() {
            "memory" => format!("{own}/msub"),
            "pids" | "freezer" => format!("{own}/sub"),
            _ => own.clone(),
        };
        assert_eq!(path, want, "{ctrl}: {}", stdout(&out));
    }

    // "/" is the container's own cgroup.
    let out = rt.run(&["exec", "--cgroup", "/", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (ctrl, path) in v1_lines(&stdout(&out)) {
        assert_eq!(path, own, "{ctrl}: {}", stdout(&out));
    }

    for (args, msg) in [
        (&["--cgroup", "../.."][..], "../.. is not a sub cgroup path"),
        (
            &["--cgroup", "cpu:nonexistent"][..],
            "/nonexistent/cgroup.procs: no such file or directory",
        ),
        (
            &["--cgroup", "a:b:c"][..],
            "invalid --cgroup argument: a:b:c",
        ),
        (
            &["--cgroup", "sub", "--cgroup", "memory:msub"][..],
            "invalid --cgroup argument: sub (missing <controller>: prefix)",
        ),
        (
            &["--cgroup", "bogus:sub"][..],
            "unknown controller bogus in SubCgroupPaths",
        ),
        (&["--cgroup", "nosuch"][..], "no such file or directory"),
    ] {
        let mut a = vec!["exec"];
        a.extend(args);
        a.extend([id.as_str(), "true"]);
        let out = rt.run(&a);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn exec_into_sub_cgroups_own() {
    exec_into_sub_cgroups(Runtime::new());
}

#[test]
fn exec_into_sub_cgroups_runc() {
    exec_into_sub_cgroups(runc());
}
