//! cgroup v2 against a fake cgroupfs tree in a temporary directory: the exact files and values
//! written, the conversions, the stats parsing. (This host has no v2 controllers.) The last
//! test attaches a real eBPF device program on the host's cgroup2 hierarchy when there is one.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

/// A fake hierarchy: root with cgroup.controllers, removed on drop.
struct Fake {
    root: PathBuf,
}

const CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma";

/// The files the kernel would create in a new v2 cgroup directory.
const LEAF_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.high",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "rdma.max",
];

impl Fake {
    fn new() -> Fake {
        let root = std::env::temp_dir().join(format!(
            "ocibox-cgfake-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cgroup.controllers"), CONTROLLERS).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        Fake { root }
    }

    /// Make a cgroup directory as the kernel would (every control file present, empty).
    fn mkcg(&self, rel: &str) -> PathBuf {
        let d = self.root.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cgroup.controllers"), CONTROLLERS).unwrap();
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        for f in LEAF_FILES {
            std::fs::write(d.join(f), "").unwrap();
        }
        d
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn v2(m: &Manager) -> &V2 {
    match &m.backend {
        Backend::V2(c) => c,
        Backend::V1(_) => panic!("expected v2"),
    }
}

#[test]
fn paths_absolute_relative_default() {
    let root = Path::new("/sys/fs/cgroup");
    assert_eq!(V2::new(root, "/", "/a/b").path, root.join("a/b"));
    // Relative: under the parent of our own cgroup.
    assert_eq!(
        V2::new(root, "/user.slice/session-1.scope", "c1").path,
        root.join("user.slice/c1")
    );
    assert_eq!(V2::new(root, "/", "../../etc").path, root.join("etc"));
    let m = Manager::v2_at(root, None, "myid").unwrap();
    assert_eq!(v2(&m).path, root.join("myid"));
    // The manager is stored in state.json: it must round-trip.
    let j = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manager>(&j).unwrap(), m);
    assert!(j.contains("\"driver\":\"v2\""));
}

#[test]
fn apply_enables_controllers_and_joins() {
    let f = Fake::new();
    f.mkcg("ocibox");
    f.mkcg("ocibox/c1");
    let m = Manager::v2_at(&f.root, Some("/ocibox/c1"), "c1").unwrap();
    m.apply(4242).unwrap();
    let all = "+cpuset +cpu +io +memory +hugetlb +pids +rdma";
    assert_eq!(f.read("cgroup.subtree_control"), all);
    assert_eq!(f.read("ocibox/cgroup.subtree_control"), all);
    assert_eq!(f.read("ocibox/c1/cgroup.subtree_control"), "");
    assert_eq!(f.read("ocibox/c1/cgroup.procs"), "4242");
    assert!(m.exists());
    assert_eq!(m.paths()[""], f.root.join("ocibox/c1"));
}

#[test]
fn set_writes_converted_values() {
    let f = Fake::new();
    f.mkcg("c");
    let m = Manager::v2_at(&f.root, Some("/c"), "c").unwrap();
    m.set(&res(r#"{
        "memory": {"limit": 104857600, "swap": 314572800, "reservation": 52428800,
                   "swappiness": 10, "disableOOMKiller": true, "kernel": 1000},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000,
                "cpus": "0-1", "mems": "0", "idle": 0},
        "pids": {"limit": 42},
        "blockIO": {"weight": 500, "leafWeight": 300,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}},
        "network": {"classID": 1048577},
        "unified": {"memory.high": "90000000"}
    }"#))
        .unwrap();
    let r = |n: &str| f.read(&format!("c/{}", n));
    assert_eq!(r("memory.max"), "104857600");
    assert_eq!(r("memory.swap.max"), "209715200"); // memsw - memory
    assert_eq!(r("memory.low"), "52428800");
    assert_eq!(r("memory.high"), "90000000");
    assert_eq!(r("cpu.weight"), "39"); // 1024 shares
    assert_eq!(r("cpu.max"), "50000 100000");
    assert_eq!(r("cpu.max.burst"), "1000");
    assert_eq!(r("cpu.idle"), "0");
    assert_eq!(r("cpuset.cpus"), "0-1");
    assert_eq!(r("cpuset.mems"), "0");
    assert_eq!(r("pids.max"), "42");
    assert_eq!(r("io.weight"), "4950"); // blkio 500
    assert_eq!(r("io.max"), "8:0 rbps=1048576");
    assert_eq!(r("hugetlb.2MB.max"), "4194304");
    assert_eq!(r("rdma.max"), "mlx4_0 hca_handle=2 hca_object=2000");
}

#[test]
fn memory_special_values() {
    let f = Fake::new();
    f.mkcg("u");
    f.mkcg("s");
    let m = Manager::v2_at(&f.root, Some("/u"), "u").unwrap();
    m.set(&res(
        r#"{"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("u/memory.max"), "max");
    assert_eq!(f.read("u/memory.swap.max"), "max");
    assert_eq!(f.read("u/pids.max"), "max");
    assert_eq!(f.read("u/cpu.max"), "max");
    let m = Manager::v2_at(&f.root, Some("/s"), "s").unwrap();
    m.set(&res(
        r#"{"memory": {"limit": 1000000, "swap": 1000000}, "cpu": {"period": 20000}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("s/memory.swap.max"), "0"); // swap == memory: no swap
    assert_eq!(f.read("s/cpu.max"), "max 20000");
    let e = m.set(&res(r#"{"memory": {"swap": 1000000}}"#)).unwrap_err();
    assert!(format!("{:#}", e).contains("unable to set swap limit without memory limit"));
    let e = m
        .set(&res(r#"{"memory": {"limit": 2000, "swap": 1000}}"#))
        .unwrap_err();
    assert!(format!("{:#}", e).contains("memory+swap limit should be >= memory limit"));
}

#[test]
fn bfq_idle_realtime_unified_errors() {
    let f = Fake::new();
    let d = f.mkcg("b");
    std::fs::write(d.join("io.bfq.weight"), "").unwrap();
    let m = Manager::v2_at(&f.root, Some("/b"), "b").unwrap();
    m.set(&res(
        r#"{"blockIO": {"weight": 500}, "cpu": {"shares": 2048, "idle": 1}}"#,
    ))
    .unwrap();
    assert_eq!(f.read("b/io.bfq.weight"), "500");
    assert_eq!(f.read("b/io.weight"), "");
    assert_eq!(f.read("b/cpu.idle"), "1");
    assert_eq!(f.read("b/cpu.weight"), ""); // not writable while idle
    let e = m
        .set(&res(
            r#"{"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 10000}}"#,
        ))
        .unwrap_err();
    assert!(format!("{:#}", e).contains("realtime"));
    let e = m.set(&res(r#"{"unified": {"foo.bar": "1"}}"#)).unwrap_err();
    assert!(
        format!("{:#}", e).contains("controller \"foo\" not available"),
        "{:#}",
        e
    );
    let e = m.set(&res(r#"{"unified": {"../x.y": "1"}}"#)).unwrap_err();
    assert!(format!("{:#}", e).contains("not a controller file name"));
}

#[test]
fn check_before_update() {
    let f = Fake::new();
    let d = f.mkcg("k");
    std::fs::write(d.join("memory.current"), "200000000\n").unwrap();
    let m = Manager::v2_at(&f.root, Some("/k"), "k").unwrap();
    let r = res(r#"{"memory": {"limit": 100000000, "checkBeforeUpdate": true}}"#);
    let e = m.update(&r).unwrap_err();
    assert!(format!("{:#}", e)
        .contains("rejecting memory limit 100000000 below current usage 200000000"));
    assert_eq!(f.read("k/memory.max"), "");
    m.set(&r).unwrap(); // only `update` checks
    assert_eq!(f.read("k/memory.max"), "100000000");
}

#[test]
fn freeze_thaw_and_pids() {
    let f = Fake::new();
    let d = f.mkcg("z");
    let m = Manager::v2_at(&f.root, Some("/z"), "z").unwrap();
    // The kernel reports the frozen state in cgroup.events; the fake does it up front.
    std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(f.read("z/cgroup.freeze"), "1");
    assert!(m.is_frozen().unwrap());
    std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    m.thaw().unwrap();
    assert_eq!(f.read("z/cgroup.freeze"), "0");
    assert!(!m.is_frozen().unwrap());

    std::fs::write(d.join("cgroup.procs"), "10\n11\n").unwrap();
    let sub = f.mkcg("z/sub");
    std::fs::write(sub.join("cgroup.procs"), "12\n").unwrap();
    let mut p = m.pids().unwrap();
    p.sort();
    assert_eq!(p, vec![10, 11, 12]);
}

#[test]
fn stats_parsing() {
    let f = Fake::new();
    let d = f.mkcg("st");
    let w = |n: &str, v: &str| std::fs::write(d.join(n), v).unwrap();
    w("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n");
    w("memory.current", "1000\n");
    w("memory.max", "4000\n");
    w("memory.stat", "anon 700\nfile 200\n");
    w("memory.swap.current", "10\n");
    w("memory.swap.max", "max\n");
    w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    w("pids.current", "3\n");
    w("pids.max", "max\n");
    w(
        "io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    w("hugetlb.2MB.current", "2097152\n");
    w("hugetlb.2MB.events", "max 2\n");
    let m = Manager::v2_at(&f.root, Some("/st"), "st").unwrap();
    let s = m.stats().unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["cpu"]["usage"]["total"], 100_000);
    assert_eq!(v["cpu"]["usage"]["user"], 60_000);
    assert_eq!(v["cpu"]["usage"]["kernel"], 40_000);
    assert_eq!(v["cpu"]["throttling"]["periods"], 5);
    assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
    assert_eq!(v["cpu"]["throttling"]["throttledTime"], 7000);
    assert_eq!(v["memory"]["usage"]["usage"], 1000);
    assert_eq!(v["memory"]["usage"]["limit"], 4000);
    assert_eq!(v["memory"]["usage"]["failcnt"], 3);
    assert_eq!(v["memory"]["cache"], 200);
    assert_eq!(v["memory"]["raw"]["anon"], 700);
    // v1-compatible swap: memory + swap, limit stays "max".
    assert_eq!(v["memory"]["swap"]["usage"], 1010);
    assert_eq!(v["memory"]["swap"]["limit"], u64::MAX);
    assert_eq!(v["pids"]["current"], 3);
    assert!(v["pids"].get("limit").is_none());
    let bytes = &v["blkio"]["ioServiceBytesRecursive"];
    assert_eq!(
        bytes[0],
        serde_json::json!({"major": 8, "op": "Read", "value": 4096})
    );
    assert_eq!(bytes[1]["value"], 8192);
    assert_eq!(v["blkio"]["ioServicedRecursive"][1]["value"], 2);
    assert_eq!(v["hugetlb"]["2MB"]["usage"], 2_097_152);
    assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 2);
}

#[test]
fn oom_notifier_reads_oom_kill_counter() {
    let f = Fake::new();
    let d = f.mkcg("o");
    std::fs::write(d.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
    let m = Manager::v2_at(&f.root, Some("/o"), "o").unwrap();
    let mut n = m.oom_notifier().unwrap();
    let d2 = d.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        // A change that is not an OOM kill must not wake the waiter with Oom...
        std::fs::write(d2.join("memory.events"), "oom 1\noom_kill 0\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(d2.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
    });
    assert_eq!(n.wait().unwrap(), OomEvent::Oom);
    t.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("memory.events")).unwrap(),
        "oom 1\noom_kill 1\n"
    );
}

/// A real eBPF device program on the host's cgroup2 hierarchy (hybrid: /sys/fs/cgroup/unified,
/// pure v2: /sys/fs/cgroup). Device filtering works on any cgroup2 directory, controllers or not.
#[test]
fn ebpf_device_program_denies_on_real_cgroup2() {
    let root = match detect_layout().unwrap() {
        Layout::Hybrid => PathBuf::from(layout::UNIFIED_MOUNTPOINT),
        Layout::V2 => PathBuf::from(layout::CGROUP_ROOT),
        Layout::V1 => return,
    };
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = root.join(format!(
        "ocibox-test-bpf-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    struct Guard(PathBuf, Vec<std::process::Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            for c in &mut self.1 {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = fsutil::remove_cgroup_dir(&self.0);
        }
    }
    std::fs::create_dir(&dir).unwrap();
    let mut g = Guard(dir.clone(), Vec::new());
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#,
    )
    .unwrap();
    v2_resources::set_devices(&dir, &rules).unwrap();
    // Replacing the program (runc update) must leave exactly one attached.
    v2_resources::set_devices(&dir, &rules).unwrap();
    assert_eq!(bpf::attached_device_programs(&dir).unwrap(), 1);

    // Each child waits on stdin until it has been moved into the cgroup.
    let run = |g: &mut Guard, script: &str| -> bool {
        use std::io::Write;
        let mut c = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("read x; {}", script))
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), c.id().to_string()).unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let ok = c.wait().unwrap().success();
        g.1.push(c);
        ok
    };
    assert!(
        run(&mut g, "exec 3</dev/zero"),
        "reading /dev/zero is allowed"
    );
    assert!(
        !run(&mut g, "exec 3>/dev/zero"),
        "writing /dev/zero is denied"
    );
    assert!(
        !run(&mut g, "exec 3</dev/full"),
        "/dev/full is not in the list"
    );
    assert!(
        run(&mut g, "exec 3</dev/null"),
        "reading /dev/null is allowed"
    );
    assert!(
        !run(&mut g, "exec 3>/dev/null"),
        "writing /dev/null is denied by the last rule"
    );
    drop(g);
    assert!(!dir.exists());
}
