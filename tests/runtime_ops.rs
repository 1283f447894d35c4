//! Part 2 commands on running containers: exec, ps, pause/resume, events, update, and
//! the cgroup resources read back from the host.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn running(rt: &Runtime, b: &Bundle) -> String {
    let id = unique("ops");
    rt.create(&id, b);
    rt.ok(&["start", &id]);
    id
}

fn cgroup_file(id_path: &str, ctrl: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{id_path}/{file}"))
        .unwrap_or_else(|e| panic!("{ctrl}{id_path}/{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn exec_joins_the_container_and_returns_the_status() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| c["hostname"] = json!("exec-host"));
    let id = running(&rt, &b);
    let out = rt.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "exec-host");
    // In the container's pid namespace: not pid 1, and pid 1 is the container's sleep.
    assert_ne!(lines[1], "1");
    assert_eq!(lines[2].trim(), "sleep 1000", "{text}");
    // Overrides: env, cwd, user, additional gids.
    let out = rt.run(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "-g",
        "2000",
        &id,
        "sh",
        "-c",
        "echo $X; pwd; id -u; id -G",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "42\n/tmp\n1000\n1000 2000\n");
    // --process with a JSON file.
    let p = b.path().join("process.json");
    std::fs::write(&p, serde_json::to_vec(&json!({"args": ["sh", "-c", "echo from-json"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})).unwrap()).unwrap();
    let out = rt.run(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(stdout(&out), "from-json\n", "{}", stderr(&out));
    // --detach with a pid file.
    let pf = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ]);
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.contains(&id),
        "exec'd process joins the container cgroup: {cg}"
    );
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid) && pids.len() == 2, "{pids:?}");
    let table = rt.ok(&["ps", &id]);
    assert!(
        table.starts_with("UID") && table.contains("sleep 100"),
        "{table}"
    );
    let table = rt.ok(&["ps", &id, "-o", "pid,comm"]);
    assert!(table.lines().count() == 3, "{table}");
    let bad = rt.run(&["exec", &id, "no-such-cmd"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("executable file not found"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn pause_and_resume_freeze_the_container() {
    let rt = Runtime::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        // Renamed into place, so a read never meets the file truncated by `>` and not yet
        // written (the freeze can land between the two).
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/tick.new; mv /tmp/tick.new /tmp/tick; sleep 0.02; done",
    ]);
    let id = running(&rt, &b);
    let tick = b.rootfs().join("tmp/tick");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !tick.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let before = std::fs::read_to_string(&tick).unwrap();
    assert!(!before.is_empty(), "the loop ran before the pause");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        before,
        std::fs::read_to_string(&tick).unwrap(),
        "frozen processes do not run"
    );
    let ex = rt.run(&["exec", &id, "true"]);
    assert!(stderr(&ex).contains("paused"), "{}", stderr(&ex));
    assert!(!rt.run(&["pause", &id]).status.success());
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    // Running again: the counter moves (within seconds, however loaded the machine is).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while before == std::fs::read_to_string(&tick).unwrap() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(before, std::fs::read_to_string(&tick).unwrap());
    assert!(!rt.run(&["resume", &id]).status.success());
}

#[test]
fn resources_are_written_and_updated() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("res");
    let path = format!("/{id}-parent/{id}");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 10},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 300},
            "devices": [{"allow": false, "access": "rwm"}]
        });
    });
    rt.create(&id, &b);
    assert_eq!(
        cgroup_file(&path, "memory", "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(
        cgroup_file(&path, "memory", "memory.soft_limit_in_bytes"),
        "33554432"
    );
    assert_eq!(cgroup_file(&path, "memory", "memory.swappiness"), "10");
    assert_eq!(cgroup_file(&path, "cpu", "cpu.shares"), "512");
    assert_eq!(cgroup_file(&path, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file(&path, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cgroup_file(&path, "pids", "pids.max"), "42");
    let devices = cgroup_file(&path, "devices", "devices.list");
    assert!(
        devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"),
        "{devices}"
    );
    rt.ok(&["start", &id]);
    rt.ok(&[
        "update",
        "--memory",
        "128M",
        "--pids-limit",
        "100",
        "--cpu-quota",
        "20000",
        &id,
    ]);
    assert_eq!(
        cgroup_file(&path, "memory", "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cgroup_file(&path, "pids", "pids.max"), "100");
    assert_eq!(cgroup_file(&path, "cpu", "cpu.cfs_quota_us"), "20000");
    let r = b.path().join("res.json");
    std::fs::write(&r, r#"{"pids": {"limit": 7}}"#).unwrap();
    rt.ok(&["update", "--resources", r.to_str().unwrap(), &id]);
    assert_eq!(cgroup_file(&path, "pids", "pids.max"), "7");
    // The pids limit is enforced.
    let out = rt.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait",
    ]);
    assert!(
        stderr(&out).contains("fork") || !out.status.success(),
        "{}",
        stderr(&out)
    );
    let stats: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], id.as_str());
    assert!(
        stats["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["data"]["pids"]["current"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{stats}"
    );
    rt.ok(&["delete", "-f", &id]);
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{path}")).exists());
    remove_cgroup_everywhere(&format!("{id}-parent"));
}

#[test]
fn events_stream_reports_stats_and_oom() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "sleep 1; tail /dev/zero"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    });
    let id = running(&rt, &b);
    let child = rt
        .command(&["events", "--interval", "200ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = child.wait_with_output().unwrap();
    assert!(Instant::now() < deadline);
    let text = stdout(&out);
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.iter().any(|k| k == "stats"), "{text}");
    assert!(kinds.iter().any(|k| k == "oom"), "{text}");
    assert_eq!(rt.status(&id), "stopped");
}

#[test]
fn features_are_truthful_json() {
    let rt = Runtime::new();
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
}

#[test]
fn systemd_cgroup_driver_is_a_clear_error_here() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let id = unique("sysd");
    let out = rt
        .command(&[
            "--systemd-cgroup",
            "create",
            "-b",
            b.path().to_str().unwrap(),
            &id,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("systemd"), "{}", stderr(&out));
    assert!(!rt.root.path().join(&id).exists());
}
