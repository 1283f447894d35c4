//! cgroup v1 on this host's real hierarchies: a uniquely named cgroup per test, a child
//! process moved into it, limits read back from the host's files, freezer, stats, the OOM
//! notifier, removal. A guard kills the children and removes the cgroup also when a test fails.

use super::*;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

struct TestCg {
    mgr: Manager,
    children: Vec<Child>,
}

impl TestCg {
    /// None when the host is not v1/hybrid or we are not root.
    fn new() -> Option<TestCg> {
        if !nix::unistd::geteuid().is_root() || detect_layout().ok()? == Layout::V2 {
            return None;
        }
        let name = format!(
            "/ocibox-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mgr = Manager::new(Some(&name), "unused", false, false).unwrap();
        Some(TestCg {
            mgr,
            children: Vec::new(),
        })
    }

    fn dir(&self, c: &str) -> PathBuf {
        self.mgr.paths()[c].clone()
    }

    fn read(&self, c: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir(c).join(file))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Spawn `sh -c "read x; SCRIPT"`, move it into the cgroup, then let it go on.
    fn spawn_in(&mut self, script: &str) -> i32 {
        let mut c = Command::new("sh")
            .arg("-c")
            .arg(format!("read x; {}", script))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        let r = self.mgr.apply(pid);
        let mut stdin = c.stdin.take();
        self.children.push(c);
        r.unwrap();
        if let Some(s) = stdin.as_mut() {
            s.write_all(b"go\n").unwrap();
        }
        pid
    }

    fn kill_children(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        self.kill_children();
        let _ = self.mgr.destroy();
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// The first real (non-loop, non-ram) block device, "MAJ:MIN".
fn a_block_device() -> Option<String> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    names.into_iter().find_map(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("loop") || n.starts_with("ram") {
            return None;
        }
        Some(
            std::fs::read_to_string(e.path().join("dev"))
                .ok()?
                .trim()
                .to_string(),
        )
    })
}

#[test]
fn paths_follow_runc_rules() {
    let Some(t) = TestCg::new() else { return };
    let under = |c: &str, prefix: &str| {
        let d = t.dir(c);
        assert!(
            d.to_string_lossy().starts_with(prefix),
            "{} cgroup at {}",
            c,
            d.display()
        );
    };
    under("memory", "/sys/fs/cgroup/memory/ocibox-test-");
    under("cpuacct", "/sys/fs/cgroup/cpuacct/ocibox-test-");
    under("name=systemd", "/sys/fs/cgroup/systemd/ocibox-test-");
    if detect_layout().unwrap() == Layout::Hybrid {
        under("", "/sys/fs/cgroup/unified/ocibox-test-");
    }
    // Relative and default paths go under our own cgroup in each hierarchy.
    let own = layout::own_cgroups().unwrap();
    let m = Manager::new(None, "ctr-x", false, false).unwrap();
    let want = layout::join_under(Path::new("/sys/fs/cgroup/memory"), &own["memory"]).join("ctr-x");
    assert_eq!(m.paths()["memory"], want);
    let m = Manager::new(Some("a/../../b"), "id", false, false).unwrap();
    let want = layout::join_under(Path::new("/sys/fs/cgroup/pids"), &own["pids"]).join("b");
    assert_eq!(m.paths()["pids"], want);
    // systemd driver where systemd is not running.
    if !Path::new("/run/systemd/system").exists() {
        let e = Manager::new(Some("system.slice:ocibox:x"), "x", true, false).unwrap_err();
        assert_eq!(
            format!("{:#}", e),
            "systemd cgroup driver: systemd is not running"
        );
    }
    // The manager lives in state.json.
    let j = serde_json::to_string(&t.mgr).unwrap();
    assert_eq!(serde_json::from_str::<Manager>(&j).unwrap(), t.mgr);
}

#[test]
fn apply_set_freeze_stats_destroy() {
    let Some(mut t) = TestCg::new() else { return };
    let pid = t.spawn_in("exec sleep 100");
    for c in [
        "memory",
        "cpu",
        "cpuacct",
        "cpuset",
        "pids",
        "devices",
        "freezer",
        "blkio",
        "name=systemd",
    ] {
        let procs = t.read(c, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{} has {:?}",
            c,
            procs
        );
    }
    if let Some(u) = t.mgr.paths().get("") {
        let procs = std::fs::read_to_string(u.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "unified has {:?}",
            procs
        );
    }
    // cpuset inherited from the parent so that joining worked.
    assert!(!t.read("cpuset", "cpuset.cpus").is_empty());
    assert!(!t.read("cpuset", "cpuset.mems").is_empty());

    let bdev = a_block_device();
    let mut json = String::from(
        r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "swappiness": 10, "disableOOMKiller": false, "kernel": 1000,
                   "useHierarchy": true},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 10000,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rw"}]"#,
    );
    if let Some(dev) = &bdev {
        let (maj, min) = dev.split_once(':').unwrap();
        json.push_str(&format!(
            r#", "blockIO": {{"throttleReadBpsDevice": [{{"major": {maj}, "minor": {min}, "rate": 1048576}}],
                            "throttleWriteIopsDevice": [{{"major": {maj}, "minor": {min}, "rate": 100}}]}}"#
        ));
    }
    json.push('}');
    t.mgr.set(&res(&json)).unwrap();

    assert_eq!(t.read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(t.read("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(t.read("memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(t.read("memory", "memory.swappiness"), "10");
    assert_eq!(t.read("cpu", "cpu.shares"), "512");
    assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(t.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(t.read("cpu", "cpu.cfs_burst_us"), "1000");
    assert_eq!(t.read("cpu", "cpu.rt_period_us"), "1000000");
    assert_eq!(t.read("cpu", "cpu.rt_runtime_us"), "10000");
    assert_eq!(t.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(t.read("pids", "pids.max"), "50");
    assert_eq!(t.read("devices", "devices.list"), "c 1:3 rwm\nc 136:* rw");
    if let Some(dev) = &bdev {
        assert_eq!(
            t.read("blkio", "blkio.throttle.read_bps_device"),
            format!("{} 1048576", dev)
        );
        assert_eq!(
            t.read("blkio", "blkio.throttle.write_iops_device"),
            format!("{} 100", dev)
        );
    }

    // update: lower memory and swap (memory first, then memsw), checkBeforeUpdate passes.
    t.mgr
        .update(&res(
            r#"{"memory": {"limit": 50331648, "swap": 50331648, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap();
    assert_eq!(t.read("memory", "memory.limit_in_bytes"), "50331648");
    assert_eq!(t.read("memory", "memory.memsw.limit_in_bytes"), "50331648");
    // raise both again (memsw first)
    t.mgr
        .update(&res(
            r#"{"memory": {"limit": 100663296, "swap": 201326592}}"#,
        ))
        .unwrap();
    assert_eq!(t.read("memory", "memory.memsw.limit_in_bytes"), "201326592");
    // -1: unlimited, swap follows
    t.mgr.update(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(
        t.read("memory", "memory.memsw.limit_in_bytes"),
        t.read("memory", "memory.limit_in_bytes")
    );
    // The child's pages are charged here once it has exec'd inside the cgroup: wait for
    // some usage, or the check below has nothing to reject.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while t
        .read("memory", "memory.usage_in_bytes")
        .parse::<u64>()
        .unwrap_or(0)
        <= 4096
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no memory charged to the cgroup"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let e = t
        .mgr
        .update(&res(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err();
    assert!(
        format!("{:#}", e).contains("rejecting memory limit 4096 below current usage"),
        "{:#}",
        e
    );
    let e = t
        .mgr
        .update(&res(r#"{"memory": {"swappiness": 101}}"#))
        .unwrap_err();
    assert!(format!("{:#}", e).contains("valid memory swappiness range is 0-100"));
    let e = t
        .mgr
        .set(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(format!("{:#}", e).contains("cannot use unified on cgroup v1"));
    if !t.mgr.paths().contains_key("hugetlb") {
        let e = t
            .mgr
            .set(&res(
                r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}"#,
            ))
            .unwrap_err();
        assert!(format!("{:#}", e)
            .contains("cannot set hugetlb limit: container could not join or create cgroup"));
    }

    assert_eq!(t.mgr.pids().unwrap(), vec![pid]);

    t.mgr.freeze().unwrap();
    assert_eq!(t.read("freezer", "freezer.state"), "FROZEN");
    assert!(t.mgr.is_frozen().unwrap());
    let state = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap();
    assert!(
        state.contains(") S ") || state.contains(") D "),
        "{}",
        state
    );
    t.mgr.thaw().unwrap();
    assert_eq!(t.read("freezer", "freezer.state"), "THAWED");
    assert!(!t.mgr.is_frozen().unwrap());

    let s = t.mgr.stats().unwrap();
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 50);
    assert!(s.memory.usage.usage > 0);
    assert!(s.memory.raw.contains_key("rss") || s.memory.raw.contains_key("cache"));
    assert!(s.cpu.usage.total > 0);
    assert!(!s.cpu.usage.percpu.is_empty());
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["pids"]["limit"], 50);

    t.kill_children();
    assert!(t.mgr.exists());
    let paths = t.mgr.paths();
    t.mgr.destroy().unwrap();
    for (c, p) in &paths {
        assert!(!p.exists(), "{} cgroup {} left behind", c, p.display());
    }
    assert!(!t.mgr.exists());
    t.mgr.destroy().unwrap(); // already gone is fine
}

#[test]
fn oom_notifier_sees_a_kill() {
    let Some(mut t) = TestCg::new() else { return };
    // Create the cgroup with a parked child first, then limit it.
    t.spawn_in("exec sleep 100");
    t.mgr
        .set(&res(r#"{"memory": {"limit": 16777216, "swap": 16777216}}"#))
        .unwrap();
    let mut n = t.mgr.oom_notifier().unwrap();
    // `tail` keeps a newline-free stream in memory until it is killed.
    t.spawn_in("head -c 1000000000 /dev/zero | tail");
    let mut fds = [nix::poll::PollFd::new(
        n.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)).unwrap();
    assert_eq!(ready, 1, "no OOM event within 30s");
    assert_eq!(n.wait().unwrap(), OomEvent::Oom);
    // The event is signalled when the cgroup hits OOM, the kill is counted just after.
    let mut control = String::new();
    for _ in 0..500 {
        control = t.read("memory", "memory.oom_control");
        if control.contains("oom_kill ") && !control.contains("oom_kill 0") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!control.contains("oom_kill 0"), "{}", control);
    let s = t.mgr.stats().unwrap();
    assert!(s.memory.usage.max >= 16 << 20, "{:?}", s.memory.usage);
    assert_eq!(s.memory.usage.limit, 16777216);
}

#[test]
fn destroy_removes_nested_cgroups_and_tolerates_absence() {
    let Some(mut t) = TestCg::new() else { return };
    t.spawn_in("exec sleep 100");
    let sub = t.dir("pids").join("nested");
    std::fs::create_dir(&sub).unwrap();
    t.kill_children();
    t.mgr.destroy().unwrap();
    assert!(!sub.exists());
    assert!(!t.dir("pids").exists());
    assert!(!t.mgr.exists());
}
