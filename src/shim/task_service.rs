//! The task v2 service (`containerd.task.v2.Task`): each request checked, handed to the
//! engine (the runtime through [`super::launch`] and [`super::runtime_client`]), answered.
//! The container and its processes are [`super::process_table`]; exits, from the reaper,
//! go through [`super::exit_routing`]; events to the publisher; errors leave as error
//! kinds through the one code mapping of [`crate::ttrpc::status`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
    PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
    StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest,
    WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskOOM, TaskPaused, TaskResumed,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::shim::shim::CheckpointTaskRequest;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::task::ProcessInfo;

use super::exit_routing::{self, TaskEvents};
use super::launch;
use super::options::RuntimeOptions;
use super::process::{Op, Process, Status};
use super::process_table::{Container, ProcessTable};
use super::publisher::{Event, Publisher};
use super::reaper::{lock, Reaper};
use super::rootfs_mounts::{mount_rootfs, undo_rootfs, unmount_rootfs};
use super::runtime_client::Runtime;
use super::stdio::StdioPaths;
use crate::errdefs::ErrorKind;
use crate::events::timestamp;
use crate::ttrpc::handler::Reply;
use crate::ttrpc::status::from_error as to_status;

/// How long Delete waits for a process's output to be copied out.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);
/// Process specs, resources and pid files are read with this limit.
const MAX_FILE: usize = 1 << 20;

/// Who this shim is.
pub struct ShimContext {
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
}

/// The task service.
pub struct TaskService {
    ctx: ShimContext,
    reaper: Arc<Reaper>,
    publisher: Publisher,
    table: ProcessTable,
    /// Ends the serving daemon.
    shutdown: fn(),
}

/// Errors leave through the one kind → code mapping ([`crate::ttrpc::status`]).
fn fail(kind: ErrorKind, msg: impl Into<String>) -> ttrpc::Error {
    crate::ttrpc::status::error(kind, msg)
}

impl TaskService {
    pub fn new(
        ctx: ShimContext,
        reaper: Arc<Reaper>,
        publisher: Publisher,
        shutdown: fn(),
    ) -> Arc<TaskService> {
        let svc = Arc::new(TaskService {
            ctx,
            reaper: reaper.clone(),
            publisher,
            table: ProcessTable::default(),
            shutdown,
        });
        let weak = Arc::downgrade(&svc);
        reaper.set_listener(Box::new(move |pid| {
            if let Some(s) = weak.upgrade() {
                s.on_exit(pid);
            }
        }));
        svc
    }

    fn container(&self, id: &str) -> ttrpc::Result<Arc<Container>> {
        self.table.container(id).map_err(to_status)
    }

    fn process(&self, id: &str, exec_id: &str) -> ttrpc::Result<(Arc<Container>, Arc<Process>)> {
        self.table.process(id, exec_id).map_err(to_status)
    }

    fn reports<'a>(&'a self, c: &'a Container) -> TaskEvents<'a> {
        TaskEvents {
            publisher: &self.publisher,
            container_id: &c.id,
        }
    }

    /// The reaper saw `pid` exit: if it is one of ours, take the exit and route it.
    fn on_exit(&self, pid: i32) {
        let Some(c) = self.table.current() else {
            return;
        };
        if let Some(p) = c.by_pid(pid) {
            if let Some(code) = self.reaper.take(pid) {
                exit_routing::exited(&p, code, &self.reports(&c));
            }
        }
    }

    /// Learned `pid` for `p`: take an exit that came before we knew it.
    fn claim_early_exit(&self, c: &Container, p: &Process, pid: u32) {
        if let Some(code) = self.reaper.take(pid as i32) {
            exit_routing::exited(p, code, &self.reports(c));
        }
    }

    fn do_create(&self, req: &CreateTaskRequest) -> Result<u32> {
        let bundle = PathBuf::from(&req.bundle);
        let opts = match req.options.as_ref() {
            Some(any) if !any.type_url.is_empty() => RuntimeOptions::from_any(any)?,
            _ => RuntimeOptions::load_start_options(&bundle)?,
        };
        opts.save(&bundle)?;
        let runtime = Runtime::new(&opts, &self.ctx.namespace, &bundle, self.reaper.clone())?;
        let made_rootfs = mount_rootfs(&bundle, &req.rootfs)?;
        let paths = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let init = Arc::new(Process::new("", paths.clone(), None));
        let pid_file = bundle.join("init.pid");
        let r = launch::run_process(&runtime, &opts, &bundle, &pid_file, &init, &req.id, true);
        let pid = match r {
            Ok(pid) => pid,
            Err(e) => {
                // Everything this Create made goes again: a container the runtime may have
                // made before the failure (the pid file unreadable), every rootfs layer
                // however many, the rootfs directory if made here, the pid file.
                let _ = runtime.delete(&req.id, true);
                undo_rootfs(&bundle, made_rootfs);
                let _ = std::fs::remove_file(&pid_file);
                return Err(e);
            }
        };
        let c = Arc::new(Container {
            id: req.id.clone(),
            bundle: bundle.clone(),
            runtime,
            opts,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
        });
        lock(&init.state).pid = pid;
        self.table.set(c.clone());
        let publisher = self.publisher.clone();
        let id = req.id.clone();
        // No memory cgroup to watch is not an error worth failing Create for.
        let _ = super::oom_events::watch(pid, move || {
            publisher.publish(Event::Oom(TaskOOM {
                container_id: id.clone(),
                ..Default::default()
            }))
        });
        self.publisher.publish(Event::Create(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid,
            ..Default::default()
        }));
        self.claim_early_exit(&c, &init, pid);
        Ok(pid)
    }

    fn start_init(&self, c: &Container) -> Result<u32> {
        let p = &c.init;
        exit_routing::begin_start(p)?;
        let pid = p.pid();
        let r = c.runtime.start(&c.id).map(|_| pid);
        exit_routing::finish_start(p, r, &self.reports(c))
    }

    fn start_exec(&self, c: &Container, p: &Process) -> Result<u32> {
        exit_routing::begin_start(p)?;
        let pid_file = c.bundle.join(format!(".exec-{}.pid", p.exec_id));
        let r = launch::run_process(&c.runtime, &c.opts, &c.bundle, &pid_file, p, &c.id, false);
        let _ = std::fs::remove_file(&pid_file);
        let pid = exit_routing::finish_start(p, r, &self.reports(c))?;
        // The exit may have been reaped before the pid was known.
        self.claim_early_exit(c, p, pid);
        Ok(pid)
    }

    fn delete_init(&self, c: &Container) -> ttrpc::Result<DeleteResponse> {
        let p = &c.init;
        let st = p.status();
        if !matches!(st, Status::Created | Status::Stopped) {
            return Err(fail(
                ErrorKind::FailedPrecondition,
                format!("cannot delete container {} while it is {st:?}", c.id),
            ));
        }
        c.runtime
            .delete(&c.id, st == Status::Created)
            .map_err(to_status)?;
        if st == Status::Created {
            // A forced delete kills the init; its exit is reported by the reaper, but the
            // delete must answer now.
            let _ = p.set_exited(128 + libc::SIGKILL as u32);
        }
        if let Some(io) = lock(&p.io).as_ref() {
            io.wait_output(OUTPUT_DRAIN);
        }
        unmount_rootfs(&c.bundle);
        let _ = p.apply(Op::Delete);
        let s = lock(&p.state);
        let exited_at = timestamp(s.exited_at.unwrap_or_else(SystemTime::now));
        let resp = DeleteResponse {
            pid: s.pid,
            exit_status: s.exit_status,
            exited_at: MessageField::some(exited_at.clone()),
            ..Default::default()
        };
        self.publisher.publish(Event::Delete(TaskDelete {
            container_id: c.id.clone(),
            pid: s.pid,
            exit_status: s.exit_status,
            exited_at: MessageField::some(exited_at),
            id: c.id.clone(),
            ..Default::default()
        }));
        drop(s);
        self.table.clear();
        Ok(resp)
    }
}

fn spec_json(any: &Any) -> Vec<u8> {
    any.value.clone()
}

/// The task API's methods, each a request in and a reply out ([`super::task_methods`] puts
/// them on the wire).
impl TaskService {
    pub fn state(&self, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let s = lock(&p.state);
        Ok(StateResponse {
            id: if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: s.pid,
            status: s.status.to_task().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: s.exit_status,
            exited_at: match s.exited_at {
                Some(t) => MessageField::some(timestamp(t)),
                None => MessageField::none(),
            },
            exec_id: p.exec_id.clone(),
            ..Default::default()
        })
    }

    pub fn create(&self, req: CreateTaskRequest) -> ttrpc::Result<CreateTaskResponse> {
        if self.table.has_container() {
            return Err(fail(
                ErrorKind::AlreadyExists,
                format!("container {}: already exists", req.id),
            ));
        }
        if !req.checkpoint.is_empty() {
            return Err(fail(
                ErrorKind::NotImplemented,
                "restore from a checkpoint is not supported",
            ));
        }
        // The init joins its cgroups once the runtime has started: warm the kernel's
        // migration lock meanwhile (warmup.rs; the daemon may have begun this already).
        crate::linux::cgroups::warmup::start();
        let pid = self.do_create(&req).map_err(to_status)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    pub fn start(&self, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let pid = if req.exec_id.is_empty() {
            self.start_init(&c)
        } else {
            self.start_exec(&c, &p)
        }
        .map_err(to_status)?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    pub fn delete(&self, req: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if req.exec_id.is_empty() {
            return self.delete_init(&c);
        }
        let st = p.status();
        if !matches!(st, Status::Created | Status::Stopped) {
            return Err(fail(
                ErrorKind::FailedPrecondition,
                format!("cannot delete process {} while it is {st:?}", p.exec_id),
            ));
        }
        if let Some(io) = lock(&p.io).as_ref() {
            io.wait_output(OUTPUT_DRAIN);
        }
        lock(&c.execs).remove(&req.exec_id);
        let s = lock(&p.state);
        Ok(DeleteResponse {
            pid: s.pid,
            exit_status: s.exit_status,
            exited_at: MessageField::some(timestamp(s.exited_at.unwrap_or_else(SystemTime::now))),
            ..Default::default()
        })
    }

    pub fn pids(&self, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let c = self.container(&req.id)?;
        let out = c
            .runtime
            .run("ps", &["ps", "--format", "json", &c.id])
            .map_err(to_status)?;
        let pids: Vec<u32> = serde_json::from_slice::<Option<Vec<u32>>>(&out)
            .map_err(|e| to_status(anyhow::anyhow!("parse runtime ps output: {e}")))?
            .unwrap_or_default();
        let execs: Vec<(u32, String)> = lock(&c.execs)
            .values()
            .map(|p| (p.pid(), p.exec_id.clone()))
            .collect();
        let processes = pids
            .into_iter()
            .map(|pid| {
                let mut info = ProcessInfo {
                    pid,
                    ..Default::default()
                };
                if let Some((_, exec_id)) = execs.iter().find(|(p, _)| *p == pid) {
                    let d = ProcessDetails {
                        exec_id: exec_id.clone(),
                        ..Default::default()
                    };
                    info.info = MessageField::some(Any {
                        type_url: "containerd.runc.v1.ProcessDetails".into(),
                        value: d.write_to_bytes().unwrap_or_default(),
                        ..Default::default()
                    });
                }
                info
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    pub fn pause(&self, req: PauseRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        super::process::transition(c.init.status(), Op::Pause).map_err(to_status)?;
        c.runtime
            .run("pause", &["pause", &c.id])
            .map_err(to_status)?;
        let _ = c.init.apply(Op::Pause);
        self.publisher.publish(Event::Paused(TaskPaused {
            container_id: c.id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    pub fn resume(&self, req: ResumeRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        super::process::transition(c.init.status(), Op::Resume).map_err(to_status)?;
        c.runtime
            .run("resume", &["resume", &c.id])
            .map_err(to_status)?;
        let _ = c.init.apply(Op::Resume);
        self.publisher.publish(Event::Resumed(TaskResumed {
            container_id: c.id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    pub fn checkpoint(&self, _: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        Err(fail(
            ErrorKind::NotImplemented,
            "checkpoint is not supported yet",
        ))
    }

    pub fn kill(&self, req: KillRequest) -> ttrpc::Result<Empty> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let st = p.status();
        if matches!(st, Status::Stopped | Status::Deleted) {
            return Err(fail(ErrorKind::NotFound, "process already finished"));
        }
        if req.exec_id.is_empty() {
            let sig = req.signal.to_string();
            let mut args = vec!["kill"];
            if req.all {
                args.push("--all");
            }
            args.push(&c.id);
            args.push(&sig);
            c.runtime.run("kill", &args).map_err(|e| {
                if p.status() == Status::Stopped {
                    fail(ErrorKind::NotFound, "process already finished")
                } else {
                    to_status(e)
                }
            })?;
        } else {
            let pid = p.pid();
            if pid == 0 {
                return Err(fail(ErrorKind::FailedPrecondition, "process not started"));
            }
            let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                fail(
                    ErrorKind::InvalidArgument,
                    format!("bad signal {}", req.signal),
                )
            })?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
                .map_err(|e| fail(ErrorKind::NotFound, format!("kill process {pid}: {e}")))?;
        }
        Ok(Empty::new())
    }

    pub fn exec(&self, req: ExecProcessRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        if matches!(c.init.status(), Status::Stopped | Status::Deleted) {
            return Err(fail(
                ErrorKind::FailedPrecondition,
                "container is not running",
            ));
        }
        let spec = req.spec.as_ref().map(spec_json).unwrap_or_default();
        if spec.len() > MAX_FILE {
            return Err(fail(ErrorKind::InvalidArgument, "process spec too large"));
        }
        let mut execs = lock(&c.execs);
        if execs.contains_key(&req.exec_id) || req.exec_id.is_empty() {
            return Err(fail(
                ErrorKind::AlreadyExists,
                format!("exec process {:?}: already exists", req.exec_id),
            ));
        }
        let paths = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        execs.insert(
            req.exec_id.clone(),
            Arc::new(Process::new(&req.exec_id, paths, Some(spec))),
        );
        self.publisher.publish(Event::ExecAdded(TaskExecAdded {
            container_id: c.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    pub fn resize_pty(&self, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let io = lock(&p.io);
        let io = io
            .as_ref()
            .ok_or_else(|| fail(ErrorKind::FailedPrecondition, "process has no stdio yet"))?;
        io.resize(req.width, req.height)
            .map_err(|e| fail(ErrorKind::FailedPrecondition, format!("{e:#}")))?;
        Ok(Empty::new())
    }

    pub fn close_io(&self, req: CloseIORequest) -> ttrpc::Result<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            // Also when Start has not installed the stdio yet: ctr sends CloseIO as soon as
            // its stdin ends, which with piped input is while Start still runs.
            p.close_stdin();
        }
        Ok(Empty::new())
    }

    pub fn update(&self, req: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        let c = self.container(&req.id)?;
        let Some(res) = req.resources.as_ref() else {
            return Ok(Empty::new());
        };
        if res.value.len() > MAX_FILE {
            return Err(fail(ErrorKind::InvalidArgument, "resources too large"));
        }
        let path = c.bundle.join(".update-resources.json");
        std::fs::write(&path, &res.value)
            .with_context(|| format!("write resources {}", path.display()))
            .map_err(to_status)?;
        let p = path.to_string_lossy().into_owned();
        let r = c
            .runtime
            .run("update", &["update", "--resources", &p, &c.id]);
        let _ = std::fs::remove_file(&path);
        r.map_err(to_status)?;
        Ok(Empty::new())
    }

    /// Answers once the process has exited; holds no thread meanwhile.
    pub fn wait(&self, req: WaitRequest, reply: Reply<WaitResponse>) {
        let p = match self.process(&req.id, &req.exec_id) {
            Ok((_, p)) => p,
            Err(e) => return reply.send(Err(e)),
        };
        let reply = Arc::new(Mutex::new(Some(reply)));
        let r = reply.clone();
        let wanted = Box::new(move || lock(&r).as_ref().is_some_and(|r| r.is_wanted()));
        p.when_exited(
            Box::new(move |code, at| {
                if let Some(reply) = lock(&reply).take() {
                    reply.send(Ok(WaitResponse {
                        exit_status: code,
                        exited_at: MessageField::some(timestamp(at)),
                        ..Default::default()
                    }))
                }
            }),
            wanted,
        );
    }

    pub fn stats(&self, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        let c = self.container(&req.id)?;
        let pid = c.init.pid();
        if matches!(c.init.status(), Status::Stopped | Status::Deleted) {
            return Err(fail(ErrorKind::NotFound, "container is not running"));
        }
        let any = super::metrics::metrics(pid).map_err(to_status)?;
        Ok(StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    pub fn connect(&self, req: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self.table.container(&req.id).map_or(0, |c| c.init.pid());
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: crate::VERSION.to_string(),
            ..Default::default()
        })
    }

    pub fn shutdown(&self, _: ShutdownRequest) -> ttrpc::Result<Empty> {
        if self.table.has_container() {
            return Ok(Empty::new());
        }
        (self.shutdown)();
        Ok(Empty::new())
    }
}
