//! ociboxd's Tasks service and runtime v2 manager against real shims: ocibox's own
//! (`io.containerd.ocibox.v2`) and Debian's containerd-shim-runc-v2 (`io.containerd.runc.v2`),
//! driven over containerd's gRPC API (api::channel, as containerd's Go client sends it).
//! The container records are written into the daemon's metadata database directly while the
//! daemon is stopped (the Containers service is another part's); the rootfs comes as a bind
//! mount in Create, as a snapshotter's mounts would. Recovery: kill -9 of ociboxd leaves
//! the tasks running, a restarted daemon reconnects to their shims, and a shim killed
//! meanwhile is reaped with its exit published.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::ociboxd::Ociboxd;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::tasks::v1::{self as tasks, tasks_client::TasksClient};
use ocibox::api::types::Mount;
use ocibox::api::v1_types::Status as TaskStatus;
use ocibox::metadata::containers::{Any, Container, Runtime};
use tonic::{Code, Request};

const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const OWN: &str = "io.containerd.ocibox.v2";
const RUNC: &str = "io.containerd.runc.v2";

/// A gRPC client of the daemon on its own runtime.
struct Client {
    rt: tokio::runtime::Runtime,
    tasks: TasksClient<UnixChannel>,
    ns: String,
}

impl Client {
    fn new(d: &Ociboxd) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ch = rt.block_on(UnixChannel::connect(&d.address)).unwrap();
        Client {
            rt,
            tasks: TasksClient::with_origin(ch, origin()),
            ns: d.namespace.clone(),
        }
    }

    fn req<T>(&self, m: T) -> Request<T> {
        let mut r = Request::new(m);
        ocibox::api::namespace::set(&mut r, &self.ns).unwrap();
        r
    }

    fn create(&mut self, id: &str, rootfs: &Path) -> Result<u32, tonic::Status> {
        let r = self.req(tasks::CreateTaskRequest {
            container_id: id.into(),
            rootfs: vec![Mount {
                r#type: "bind".into(),
                source: rootfs.display().to_string(),
                target: String::new(),
                options: vec!["rbind".into(), "rw".into()],
            }],
            ..Default::default()
        });
        let mut t = self.tasks.clone();
        self.rt.block_on(t.create(r)).map(|r| r.into_inner().pid)
    }

    fn start(&mut self, id: &str, exec: &str) -> Result<u32, tonic::Status> {
        let r = self.req(tasks::StartRequest {
            container_id: id.into(),
            exec_id: exec.into(),
        });
        let mut t = self.tasks.clone();
        self.rt.block_on(t.start(r)).map(|r| r.into_inner().pid)
    }

    fn get(
        &mut self,
        id: &str,
        exec: &str,
    ) -> Result<ocibox::api::v1_types::Process, tonic::Status> {
        let r = self.req(tasks::GetRequest {
            container_id: id.into(),
            exec_id: exec.into(),
        });
        let mut t = self.tasks.clone();
        self.rt
            .block_on(t.get(r))
            .map(|r| r.into_inner().process.unwrap())
    }

    fn status(&mut self, id: &str) -> TaskStatus {
        TaskStatus::try_from(self.get(id, "").unwrap().status).unwrap()
    }

    fn list(&mut self) -> Vec<(String, TaskStatus)> {
        let r = self.req(tasks::ListTasksRequest::default());
        let mut t = self.tasks.clone();
        let mut v: Vec<(String, TaskStatus)> = self
            .rt
            .block_on(t.list(r))
            .unwrap()
            .into_inner()
            .tasks
            .into_iter()
            .map(|p| (p.id, TaskStatus::try_from(p.status).unwrap()))
            .collect();
        v.sort();
        v
    }

    fn kill(&mut self, id: &str, exec: &str, signal: u32) -> Result<(), tonic::Status> {
        let r = self.req(tasks::KillRequest {
            container_id: id.into(),
            exec_id: exec.into(),
            signal,
            all: false,
        });
        let mut t = self.tasks.clone();
        self.rt.block_on(t.kill(r)).map(|_| ())
    }

    fn wait(&mut self, id: &str, exec: &str) -> u32 {
        let r = self.req(tasks::WaitRequest {
            container_id: id.into(),
            exec_id: exec.into(),
        });
        let mut t = self.tasks.clone();
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), t.wait(r)).await })
            .unwrap_or_else(|_| panic!("wait for {id} {exec} timed out"))
            .unwrap()
            .into_inner()
            .exit_status
    }

    fn exec(
        &mut self,
        id: &str,
        exec: &str,
        process: &serde_json::Value,
    ) -> Result<(), tonic::Status> {
        let r = self.req(tasks::ExecProcessRequest {
            container_id: id.into(),
            exec_id: exec.into(),
            spec: Some(prost_types::Any {
                type_url: PROCESS_URL.into(),
                value: serde_json::to_vec(process).unwrap(),
            }),
            ..Default::default()
        });
        let mut t = self.tasks.clone();
        self.rt.block_on(t.exec(r)).map(|_| ())
    }

    fn delete(&mut self, id: &str) -> Result<tasks::DeleteResponse, tonic::Status> {
        let r = self.req(tasks::DeleteTaskRequest {
            container_id: id.into(),
        });
        let mut t = self.tasks.clone();
        self.rt.block_on(t.delete(r)).map(|r| r.into_inner())
    }
}

/// A busybox rootfs and the spec of a container on it running `args`, in a cgroup of its
/// own; dropped, whatever still runs in that cgroup is killed and the cgroup removed (a
/// failed test leaves no container behind).
struct Fixture {
    bundle: common::Bundle,
    cgroup: String,
}

impl Fixture {
    fn new(args: &[&str]) -> Fixture {
        let bundle = common::Bundle::new(args);
        let cgroup = common::unique("ociboxd-task");
        // The daemon's bundle has its own `rootfs` where the shim mounts the Create mounts.
        bundle.edit(|c| {
            c["root"]["path"] = "rootfs".into();
            c["linux"]["cgroupsPath"] = format!("/{cgroup}").into();
        });
        Fixture { bundle, cgroup }
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle.rootfs()
    }

    fn process(&self, args: &[&str]) -> serde_json::Value {
        let mut p = self.bundle.config()["process"].clone();
        p["args"] = serde_json::json!(args);
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        kill_cgroup(&self.cgroup);
    }
}

/// Kills whatever runs in cgroup `rel` (thawed first) and removes it everywhere.
fn kill_cgroup(rel: &str) {
    let rel = rel.trim_start_matches('/');
    {
        let freezer = Path::new("/sys/fs/cgroup/freezer").join(rel);
        let _ = std::fs::write(freezer.join("freezer.state"), "THAWED");
        let procs = Path::new("/sys/fs/cgroup/pids")
            .join(rel)
            .join("cgroup.procs");
        for _ in 0..50 {
            let pids: Vec<i32> = std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2) of a process in the test's own cgroup.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        common::remove_cgroup_everywhere(rel);
    }
}

/// Stops the daemon, writes the container records, starts it again (the metadata database
/// is the daemon's while it runs).
fn put_containers(d: &mut Ociboxd, recs: &[(&str, &str, &Fixture)]) {
    // Serving means the database is made: a stop before that could cut its creation short
    // (the socket is bound first, the signal handlers come last).
    assert!(Client::new(d).list().is_empty());
    d.stop_daemon();
    {
        // The daemon may have been stopped before it made the database.
        let dir = d.root().join("io.containerd.metadata.v1.redb");
        std::fs::create_dir_all(&dir).unwrap();
        let db = ocibox::metadata::db::Database::open(&dir.join("meta.db")).unwrap();
        db.update(|tx| {
            for (id, runtime, fx) in recs {
                let spec = std::fs::read(fx.bundle.path().join("config.json")).unwrap();
                ocibox::metadata::containers::create(
                    tx,
                    &d.namespace,
                    Container {
                        id: id.to_string(),
                        runtime: Runtime {
                            name: runtime.to_string(),
                            options: None,
                        },
                        spec: Some(Any {
                            type_url: SPEC_URL.into(),
                            value: spec,
                        }),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
    }
    d.spawn_daemon();
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: look at the state in /proc.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .is_some_and(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn bundle_dir(d: &Ociboxd, id: &str) -> PathBuf {
    d.state()
        .join("io.containerd.runtime.v2.task")
        .join(&d.namespace)
        .join(id)
}

fn lifecycle(runtime: &str) {
    let mut d = Ociboxd::start();
    let fx = Fixture::new(&["sleep", "1000"]);
    put_containers(&mut d, &[("c1", runtime, &fx)]);
    let mut c = Client::new(&d);

    // A task for a container that does not exist; no task yet.
    let e = c.create("nope", &fx.rootfs()).unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c.get("c1", "").unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), "task c1 not found");

    let pid = c.create("c1", &fx.rootfs()).unwrap_or_else(|e| {
        panic!("create: {e:?}\n{}", d.log());
    });
    assert!(pid > 0);
    let b = bundle_dir(&d, "c1");
    assert!(b.join("config.json").exists() && b.join("address").exists());
    assert_eq!(c.status("c1"), TaskStatus::Created);
    let e = c.create("c1", &fx.rootfs()).unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");

    assert_eq!(c.start("c1", "").unwrap(), pid);
    assert_eq!(c.status("c1"), TaskStatus::Running);
    assert!(alive(pid));
    assert_eq!(c.list(), vec![("c1".to_string(), TaskStatus::Running)]);

    // Exec writes through the bind-mounted rootfs: the file lands in the fixture's rootfs.
    c.exec(
        "c1",
        "e1",
        &fx.process(&["sh", "-c", "echo hi > /tmp/from-exec"]),
    )
    .unwrap();
    c.start("c1", "e1").unwrap();
    assert_eq!(c.wait("c1", "e1"), 0);
    assert_eq!(
        std::fs::read_to_string(fx.rootfs().join("tmp/from-exec")).unwrap(),
        "hi\n"
    );
    let e = c.exec("c1", "", &fx.process(&["true"])).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Pids, pause/resume, metrics.
    let r = c.req(tasks::ListPidsRequest {
        container_id: "c1".into(),
    });
    let mut t = c.tasks.clone();
    let pids =
        c.rt.block_on(t.list_pids(r))
            .unwrap()
            .into_inner()
            .processes;
    assert!(pids.iter().any(|p| p.pid == pid), "{pids:?}");
    let r = c.req(tasks::PauseTaskRequest {
        container_id: "c1".into(),
    });
    c.rt.block_on(t.pause(r)).unwrap();
    assert_eq!(c.status("c1"), TaskStatus::Paused);
    let r = c.req(tasks::ResumeTaskRequest {
        container_id: "c1".into(),
    });
    c.rt.block_on(t.resume(r)).unwrap();
    assert_eq!(c.status("c1"), TaskStatus::Running);
    let r = c.req(tasks::MetricsRequest {
        filters: vec!["id==c1".into()],
    });
    let m = c.rt.block_on(t.metrics(r)).unwrap().into_inner().metrics;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].id, "c1");
    assert!(
        m[0].data
            .as_ref()
            .unwrap()
            .type_url
            .contains("io.containerd.cgroups.v1.Metrics"),
        "{:?}",
        m[0].data
    );
    let r = c.req(tasks::CheckpointTaskRequest {
        container_id: "c1".into(),
        ..Default::default()
    });
    assert_eq!(
        c.rt.block_on(t.checkpoint(r)).unwrap_err().code(),
        Code::Unimplemented
    );

    // A running task is not deleted.
    // (ocibox's shim says FailedPrecondition, containerd-shim-runc-v2 Unknown; both say why.)
    let e = c.delete("c1").unwrap_err();
    assert!(e.message().to_lowercase().contains("running"), "{e:?}");
    assert_eq!(c.status("c1"), TaskStatus::Running);

    c.kill("c1", "", 9).unwrap();
    assert_eq!(c.wait("c1", ""), 137);
    assert_eq!(c.status("c1"), TaskStatus::Stopped);
    let exit = c.delete("c1").unwrap();
    assert_eq!(exit.exit_status, 137);
    assert_eq!(exit.pid, pid);
    assert_eq!(c.get("c1", "").unwrap_err().code(), Code::NotFound);
    assert!(!b.exists(), "bundle left behind");
    // The rootfs was unmounted, not removed: the image's files are all still there.
    assert!(fx.rootfs().join("bin/busybox").exists());
    assert!(c.list().is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&b.display().to_string()));
}

#[test]
fn task_lifecycle_own_shim() {
    lifecycle(OWN);
}

#[test]
fn task_lifecycle_runc_shim() {
    lifecycle(RUNC);
}

#[test]
fn unknown_runtime_fails_create_and_leaves_no_bundle() {
    let mut d = Ociboxd::start();
    let fx = Fixture::new(&["true"]);
    put_containers(&mut d, &[("bad", "io.containerd.nosuch.v9", &fx)]);
    let mut c = Client::new(&d);
    let e = c.create("bad", &fx.rootfs()).unwrap_err();
    assert!(e.message().starts_with("failed to start shim"), "{e:?}");
    assert!(e.message().contains("containerd-shim-nosuch-v9"), "{e:?}");
    assert!(!bundle_dir(&d, "bad").exists());
    assert!(c.list().is_empty());
}

/// kill -9 of ociboxd with three running tasks (both shims): they go on; the restarted
/// daemon lists them RUNNING, exec and kill work, the exit is reported. A shim killed while
/// the daemon was away is reaped on restart: its task is gone, its container stopped, its
/// exit published.
#[test]
fn tasks_survive_a_daemon_kill() {
    let mut d = Ociboxd::start();
    let fx: Vec<Fixture> = (0..4).map(|_| Fixture::new(&["sleep", "1000"])).collect();
    put_containers(
        &mut d,
        &[
            ("r1", OWN, &fx[0]),
            ("r2", RUNC, &fx[1]),
            ("r3", OWN, &fx[2]),
            ("dead", OWN, &fx[3]),
        ],
    );
    let mut pids = Vec::new();
    {
        let mut c = Client::new(&d);
        for (i, id) in ["r1", "r2", "r3", "dead"].iter().enumerate() {
            c.create(id, &fx[i].rootfs()).unwrap();
            pids.push(c.start(id, "").unwrap());
        }
        assert_eq!(c.list().len(), 4);
    }
    d.kill_daemon();
    for p in &pids {
        assert!(alive(*p), "task {p} died with the daemon");
    }
    // The 'dead' task's shim dies while the daemon is away.
    let shim_pid: i32 = std::fs::read_to_string(bundle_dir(&d, "dead").join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the shim this test started, by its recorded pid.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    eventually("the shim to die", || !alive(shim_pid as u32));

    d.spawn_daemon();
    let mut c = Client::new(&d);
    assert_eq!(
        c.list(),
        vec![
            ("r1".to_string(), TaskStatus::Running),
            ("r2".to_string(), TaskStatus::Running),
            ("r3".to_string(), TaskStatus::Running),
        ],
        "{}",
        d.log()
    );
    // The dead shim's task: reaped, its container stopped, its exit published.
    assert_eq!(c.get("dead", "").unwrap_err().code(), Code::NotFound);
    eventually("the dead shim's container to be stopped", || {
        !alive(pids[3])
    });
    assert!(!bundle_dir(&d, "dead").exists());
    assert!(
        d.log().contains("publish exit of dead shim's task id=dead"),
        "{}",
        d.log()
    );

    // Every task command works again.
    for (i, id) in ["r1", "r2"].iter().enumerate() {
        c.exec(
            id,
            "after",
            &fx[i].process(&["sh", "-c", "echo again > /tmp/after"]),
        )
        .unwrap();
        c.start(id, "after").unwrap();
        assert_eq!(c.wait(id, "after"), 0);
        assert_eq!(
            std::fs::read_to_string(fx[i].rootfs().join("tmp/after")).unwrap(),
            "again\n"
        );
    }
    for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
        // (sleep as pid 1 of its namespace ignores SIGTERM.)
        c.kill(id, "", 9).unwrap();
        assert_eq!(c.wait(id, ""), 137);
        assert!(!alive(pids[i]));
        assert_eq!(c.delete(id).unwrap().exit_status, 137);
    }
    assert!(c.list().is_empty());
}

/// A shim killed -9 while the daemon runs: the next task call finds it gone, and the
/// daemon cleans up after it (its container stopped, its bundle removed, its exit
/// published) as containerd does when its shim connection closes.
#[test]
fn a_shim_killed_under_a_running_daemon_is_reaped() {
    let mut d = Ociboxd::start();
    let fx = Fixture::new(&["sleep", "1000"]);
    put_containers(&mut d, &[("k1", OWN, &fx)]);
    let mut c = Client::new(&d);
    c.create("k1", &fx.rootfs()).unwrap();
    let pid = c.start("k1", "").unwrap();
    let shim_pid: i32 = std::fs::read_to_string(bundle_dir(&d, "k1").join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the shim this test started, by its recorded pid.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    eventually("the shim to die", || !alive(shim_pid as u32));
    let e = c.get("k1", "").unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(c.list().is_empty());
    eventually("its container to be stopped", || !alive(pid));
    // The cleanup may be the one the closed connection started, still finishing.
    eventually("its bundle to be removed", || {
        !bundle_dir(&d, "k1").exists()
    });
    assert!(
        d.log().contains("publish exit of dead shim's task id=k1"),
        "{}",
        d.log()
    );
}

/// The pid of the serving shim of task `id` (the one whose command line names the
/// daemon's socket, the namespace and the id).
fn shim_pid_of(d: &Ociboxd, id: &str) -> Option<i32> {
    let want = [
        "-namespace",
        d.namespace.as_str(),
        "-id",
        id,
        "-address",
        &d.address.display().to_string(),
    ]
    .join("\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.contains(&want) && !cmd.contains("\0start") && !cmd.contains("\0delete"))
            .then_some(pid)
    })
}

/// A shim killed -9 is cleaned up as soon as its connection closes, with no task call to
/// find it (containerd's on-close `cleanupAfterDeadShim`): its container stopped, its
/// bundle removed, `/tasks/exit` and `/tasks/delete` published to a `ctr events` watching,
/// and the task gone from `ctr task ls`. Both shims.
fn dead_shim_cleaned_at_once(runtime: &str) {
    let mut d = Ociboxd::start();
    let fx = ctr_fixture(&["sleep", "1000"]);
    put_containers(&mut d, &[("k2", runtime, &fx)]);
    let mut events = ctr_events(&d);
    ctr_ok(&d, &["task", "start", "-d", "k2"]);
    ctr_wait_status(&d, "k2", "RUNNING");
    let pid: u32 = ctr_ok(&d, &["task", "ls"])
        .lines()
        .find(|l| l.starts_with("k2 "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("k2's pid in ctr task ls");
    let bundle = bundle_dir(&d, "k2");
    let shim_pid = shim_pid_of(&d, "k2").expect("k2's shim process");
    // SAFETY: kill(2) of the shim this test started, by its recorded pid.
    unsafe { libc::kill(shim_pid, libc::SIGKILL) };
    // No task call from here on until the cleanup is seen: the daemon must notice alone.
    eventually("the dead shim's bundle to be removed", || !bundle.exists());
    eventually("its container to be stopped", || !alive(pid));
    assert!(
        d.log().contains("publish exit of dead shim's task id=k2"),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let out = events.wait_with_output().expect("ctr events output");
    assert_eq!(
        ctr_topics(&common::stdout(&out)),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "events:\n{}",
        common::stdout(&out)
    );
    assert_eq!(ctr_status(&d, "k2"), None);
}

#[test]
fn a_dead_own_shim_is_cleaned_up_at_once() {
    dead_shim_cleaned_at_once(OWN);
}

#[test]
fn a_dead_runc_shim_is_cleaned_up_at_once() {
    dead_shim_cleaned_at_once(RUNC);
}

/// `ociboxd publish`, the publish binary shims are given: the event (a protobuf Any on
/// stdin) goes to the daemon's ttrpc events endpoint; without a daemon it fails.
#[test]
fn publish_binary_forwards_to_the_events_endpoint() {
    use prost::Message;
    use std::io::Write;
    let d = Ociboxd::start();
    // Serving: the events endpoint is up (it comes after the gRPC socket is bound).
    assert!(Client::new(&d).list().is_empty());
    let ev = prost_types::Any {
        type_url: "containerd.events.TaskOOM".into(),
        value: ocibox::api::events::TaskOom {
            container_id: "x".into(),
        }
        .encode_to_vec(),
    };
    let run = |address: &Path| {
        let mut child = std::process::Command::new(d.dir.join("bin/ociboxd"))
            .arg("--address")
            .arg(address)
            .args([
                "publish",
                "--topic",
                "/tasks/oom",
                "--namespace",
                &d.namespace,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&ev.encode_to_vec())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&d.address);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = run(&d.dir.join("nobody.sock"));
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("connect"),
        "{}",
        common::stderr(&out)
    );
}

// ---- Debian's real ctr against ociboxd ------------------------------------------------
// These need the Containers service (ctr looks the container up first) and the Events
// service (ctr events); the records are still written directly, with the spec's root an
// absolute path (no snapshot key, so ctr sends no rootfs mounts).

fn ctr_ok(d: &Ociboxd, args: &[&str]) -> String {
    let o = d.ctr(args);
    assert!(
        o.status.success(),
        "ctr {args:?}: {}\n{}",
        text(&o),
        d.log()
    );
    common::stdout(&o)
}

fn text(o: &std::process::Output) -> String {
    common::containerd::text(o)
}

fn ctr_status(d: &Ociboxd, id: &str) -> Option<String> {
    let o = d.ctr(&["task", "ls"]);
    common::stdout(&o)
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
}

fn ctr_wait_status(d: &Ociboxd, id: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ctr_status(d, id).as_deref() == Some(status) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("task {id} never became {status}: {:?}", ctr_status(d, id));
}

/// A fixture whose spec names its rootfs by absolute path.
fn ctr_fixture(args: &[&str]) -> Fixture {
    let fx = Fixture::new(args);
    let root = fx.rootfs();
    fx.bundle
        .edit(|c| c["root"]["path"] = root.display().to_string().into());
    fx
}

/// Debian's `ctr events` on `d`, subscribed (given 300 ms to be) before it returns.
fn ctr_events(d: &Ociboxd) -> std::process::Child {
    let events = d
        .ctr_cmd(&["events"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ctr events");
    std::thread::sleep(Duration::from_millis(300));
    events
}

fn ctr_topics(events: &str) -> Vec<String> {
    events
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
        .map(str::to_string)
        .collect()
}

fn ctr_walkthrough(runtime: &str) {
    let mut d = Ociboxd::start();
    let fx = ctr_fixture(&["sleep", "1000"]);
    put_containers(&mut d, &[("w1", runtime, &fx)]);
    let mut events = ctr_events(&d);

    ctr_ok(&d, &["task", "start", "-d", "w1"]);
    ctr_wait_status(&d, "w1", "RUNNING");
    let ps = ctr_ok(&d, &["task", "ps", "w1"]);
    assert!(ps.lines().count() >= 2, "{ps}");
    let m = ctr_ok(&d, &["task", "metrics", "w1"]);
    assert!(m.contains("memory.usage_in_bytes"), "{m}");
    let st = ctr_ok(&d, &["shim", "--id", "w1", "state"]);
    assert!(st.contains("\"id\": \"w1\""), "{st}");

    let fifo = d.dir.join("fifo").display().to_string();
    let e = common::containerd::with_timeout(
        &mut d.ctr_cmd(&[
            "task",
            "exec",
            "--fifo-dir",
            &fifo,
            "--exec-id",
            "e1",
            "w1",
            "sh",
            "-c",
            "echo fromexec; exit 5",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(e.status.code(), Some(5), "{}", text(&e));
    assert_eq!(common::stdout(&e), "fromexec\n");

    ctr_ok(&d, &["task", "pause", "w1"]);
    ctr_wait_status(&d, "w1", "PAUSED");
    ctr_ok(&d, &["task", "resume", "w1"]);
    ctr_wait_status(&d, "w1", "RUNNING");
    ctr_ok(&d, &["task", "kill", "-s", "KILL", "w1"]);
    ctr_wait_status(&d, "w1", "STOPPED");
    ctr_ok(&d, &["task", "delete", "w1"]);
    let o = d.ctr(&["task", "kill", "w1"]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("no running task found"),
        "{}",
        text(&o)
    );

    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("ctr events output");
    let got = ctr_topics(&common::stdout(&out));
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    assert_eq!(got, want, "events:\n{}", common::stdout(&out));
}

#[test]
fn ctr_task_walkthrough_own_shim() {
    ctr_walkthrough(OWN);
}

#[test]
fn ctr_task_walkthrough_runc_shim() {
    ctr_walkthrough(RUNC);
}

/// The recovery check with Debian's ctr: kill -9 ociboxd with 3 running tasks,
/// restart, `ctr task ls` shows them RUNNING, exec and kill work, the exits are reported.
#[test]
fn ctr_recovery_with_three_running_tasks() {
    let mut d = Ociboxd::start();
    let fx: Vec<Fixture> = (0..3).map(|_| ctr_fixture(&["sleep", "1000"])).collect();
    put_containers(
        &mut d,
        &[
            ("t1", OWN, &fx[0]),
            ("t2", RUNC, &fx[1]),
            ("t3", OWN, &fx[2]),
        ],
    );
    for id in ["t1", "t2", "t3"] {
        ctr_ok(&d, &["task", "start", "-d", id]);
        ctr_wait_status(&d, id, "RUNNING");
    }
    d.kill_daemon();
    d.spawn_daemon();
    for id in ["t1", "t2", "t3"] {
        ctr_wait_status(&d, id, "RUNNING");
    }
    let mut events = ctr_events(&d);
    let fifo = d.dir.join("fifo").display().to_string();
    for id in ["t1", "t2"] {
        let e = common::containerd::with_timeout(
            &mut d.ctr_cmd(&[
                "task",
                "exec",
                "--fifo-dir",
                &fifo,
                "--exec-id",
                "again",
                id,
                "echo",
                "back",
            ]),
            Duration::from_secs(30),
        );
        assert_eq!(e.status.code(), Some(0), "{}", text(&e));
        assert_eq!(common::stdout(&e), "back\n");
    }
    for id in ["t1", "t2", "t3"] {
        ctr_ok(&d, &["task", "kill", "-s", "KILL", id]);
        ctr_wait_status(&d, id, "STOPPED");
        ctr_ok(&d, &["task", "delete", id]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("ctr events output");
    let ev = common::stdout(&out);
    for id in ["t1", "t2", "t3"] {
        assert!(
            ev.lines()
                .any(|l| l.contains("/tasks/exit") && l.contains(&format!("\"{id}\""))),
            "no exit of {id}:\n{ev}"
        );
    }
}

/// Containers ctr made from an image (cgroup `/<ns>/<id>`, ctr's default): killed on drop.
struct CtrContainers<'a>(&'a Ociboxd, Vec<&'a str>);

impl Drop for CtrContainers<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            kill_cgroup(&format!("{}/{id}", self.0.namespace));
        }
        common::remove_cgroup_everywhere(&self.0.namespace);
    }
}

/// `ctr run` of an imported image on both shims: the rootfs comes from the snapshotter's
/// mounts in Create; `ctr run --rm` prints the container's output and its exit status.
#[test]
fn ctr_run_from_an_image_on_both_shims() {
    let d = Ociboxd::start();
    let _guard = CtrContainers(&d, vec!["i1", "i2", "i3"]);
    let work = common::TempDir::new("tasks-import");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    ctr_ok(&d, &["image", "import", archive.to_str().unwrap()]);
    let image = "docker.io/library/busybox:latest";
    ctr_ok(
        &d,
        &["run", "-d", "--runtime", OWN, image, "i1", "sleep", "1000"],
    );
    ctr_ok(
        &d,
        &["run", "-d", "--runtime", RUNC, image, "i2", "sleep", "1000"],
    );
    for id in ["i1", "i2"] {
        ctr_wait_status(&d, id, "RUNNING");
        let fifo = d.dir.join("fifo").display().to_string();
        let e = common::containerd::with_timeout(
            &mut d.ctr_cmd(&[
                "task",
                "exec",
                "--fifo-dir",
                &fifo,
                "--exec-id",
                "x",
                id,
                "ls",
                "/bin/busybox",
            ]),
            Duration::from_secs(30),
        );
        assert!(e.status.success(), "{}", text(&e));
        ctr_ok(&d, &["task", "kill", "-s", "KILL", id]);
        ctr_wait_status(&d, id, "STOPPED");
        ctr_ok(&d, &["task", "delete", id]);
        ctr_ok(&d, &["container", "rm", id]);
    }
    let o = common::containerd::with_timeout(
        &mut d.ctr_cmd(&[
            "run",
            "--rm",
            "--runtime",
            OWN,
            image,
            "i3",
            "sh",
            "-c",
            "echo hi; exit 3",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(common::stdout(&o), "hi\n");
    assert!(ctr_ok(&d, &["task", "ls"]).lines().count() <= 1);
    assert!(ctr_ok(&d, &["container", "ls", "-q"]).trim().is_empty());
}

/// What ctr prints for task commands on a container without a task (and for a second
/// `task start`), compared with a real containerd 1.6 driven the same way.
#[test]
fn task_errors_read_as_containerds() {
    let d = Ociboxd::start();
    let _guard = CtrContainers(&d, vec!["e1"]);
    let c = common::containerd::Containerd::start(common::containerd::Runtime::Own);
    let work = common::TempDir::new("tasks-errors");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    ctr_ok(&d, &["image", "import", archive.to_str().unwrap()]);
    let image = "docker.io/library/busybox:latest";
    let mut seen: Vec<Vec<String>> = Vec::new();
    // Exit code and stderr, log times normalised.
    let run = |cmd: &mut std::process::Command| {
        let o = cmd.output().unwrap();
        let mut e = common::stderr(&o).trim().to_string();
        while let Some(i) = e.find("time=\"") {
            let rest = &e[i + 6..];
            let end = rest.find('"').map_or(e.len(), |j| i + 6 + j + 1);
            e.replace_range(i..end, "<time>");
        }
        format!("{:?} {e}", o.status.code())
    };
    let cmds: [&[&str]; 4] = [
        &["task", "kill", "e1"],
        &["task", "delete", "e1"],
        &["task", "ps", "e1"],
        &["task", "pause", "e1"],
    ];
    // ociboxd
    ctr_ok(
        &d,
        &[
            "container",
            "create",
            "--runtime",
            OWN,
            image,
            "e1",
            "sleep",
            "1000",
        ],
    );
    let mut v = Vec::new();
    for a in cmds {
        v.push(run(&mut d.ctr_cmd(a)));
    }
    ctr_ok(&d, &["task", "start", "-d", "e1"]);
    v.push(run(&mut d.ctr_cmd(&["task", "start", "-d", "e1"])));
    ctr_ok(&d, &["task", "kill", "-s", "KILL", "e1"]);
    ctr_wait_status(&d, "e1", "STOPPED");
    ctr_ok(&d, &["task", "delete", "e1"]);
    seen.push(v);
    // containerd 1.6
    let o = c.ctr(&[
        "container",
        "create",
        "--runtime",
        OWN,
        image,
        "e1",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut v = Vec::new();
    for a in cmds {
        v.push(run(&mut c.ctr_cmd(a)));
    }
    let o = c.ctr(&["task", "start", "-d", "e1"]);
    assert!(o.status.success(), "{}", text(&o));
    v.push(run(&mut c.ctr_cmd(&["task", "start", "-d", "e1"])));
    let _ = c.ctr(&["task", "kill", "-s", "KILL", "e1"]);
    c.wait_status("e1", "STOPPED");
    let _ = c.ctr(&["task", "delete", "e1"]);
    let _ = c.ctr(&["container", "rm", "e1"]);
    seen.push(v);
    assert_eq!(seen[0], seen[1]);
}

/// `ctr run --rm IMAGE id true` with the same id again and again, as scripts do: each run
/// starts a shim on the socket the previous one (just shut down) served. Its name must be
/// gone by the time Delete returns, or the new shim finds it live ("shim already exists").
#[test]
fn run_rm_with_the_same_id_back_to_back() {
    let d = Ociboxd::start();
    let _guard = CtrContainers(&d, vec!["again"]);
    let work = common::TempDir::new("tasks-again");
    let archive = work.path().join("busybox.tar");
    common::make_busybox_image(&archive);
    ctr_ok(&d, &["image", "import", archive.to_str().unwrap()]);
    let image = "docker.io/library/busybox:latest";
    let args = ["run", "--rm", "--runtime", OWN, image, "again", "true"];
    for i in 0..10 {
        let o = if i % 2 == 0 {
            d.ctr(&args)
        } else {
            d.own_ctr(&args)
        };
        assert!(o.status.success(), "run {i}: {}", text(&o));
    }
}
