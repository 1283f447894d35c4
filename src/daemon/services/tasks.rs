//! containerd.services.tasks.v1.Tasks: a container's running task, through its shim (the
//! runtime v2 manager, [`crate::daemon::runtime_v2`]). As containerd 1.6's `services/tasks`:
//! the container record is looked up first (`container "x": not found`), a container
//! without a task is NotFound `task x not found` (ctr prints "no running task found"), a
//! second Create is AlreadyExists, and everything else is the shim's answer with the shim's
//! code and message. The shims publish the task events (create, start, exit, delete, oom,
//! exec added/started, paused, resumed) over the ttrpc events endpoint. Checkpoint (and
//! Create from a checkpoint) answers Unimplemented.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use containerd_shim_protos::api as shim;
use containerd_shim_protos::protobuf::well_known_types::any::Any as PbAny;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp as PbTimestamp;
use containerd_shim_protos::protobuf::MessageField;
use tonic::{Request, Response, Status};

use crate::api::namespace;
use crate::api::services::tasks::v1::tasks_server::{Tasks, TasksServer};
use crate::api::services::tasks::v1::*;
use crate::api::status::IntoStatus;
use crate::api::types::Metric;
use crate::api::v1_types::{Process, ProcessInfo};
use crate::daemon::context::Daemon;
use crate::daemon::runtime_v2::binary::OWN_RUNTIME;
use crate::daemon::runtime_v2::manager::{CreateOpts, Task};
use crate::daemon::runtime_v2::shim_client::QUERY_TIMEOUT;
use crate::errdefs::{kind_of, ErrorKind};
use crate::metadata::containers::{self, Container};

pub struct TasksService {
    d: Arc<Daemon>,
}

pub fn server(d: &Arc<Daemon>) -> TasksServer<TasksService> {
    TasksServer::new(TasksService { d: d.clone() })
}

fn pb_any(a: &prost_types::Any) -> PbAny {
    let mut o = PbAny::new();
    o.type_url = a.type_url.clone();
    o.value = a.value.clone();
    o
}

fn prost_any(a: &PbAny) -> prost_types::Any {
    prost_types::Any {
        type_url: a.type_url.clone(),
        value: a.value.clone(),
    }
}

fn prost_ts(t: &MessageField<PbTimestamp>) -> Option<prost_types::Timestamp> {
    t.as_ref().map(|t| prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

/// Runs blocking work (redb, shim calls) off the runtime thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("task worker: {e}")))?
        .status()
}

fn container(d: &Daemon, ns: &str, id: &str) -> Result<Container> {
    d.db.view(|v| containers::get(v, ns, id))
}

/// containerd's `getTask`: the container, then its task.
fn task(d: &Daemon, ns: &str, id: &str) -> Result<Arc<Task>> {
    container(d, ns, id)?;
    d.tasks.get(ns, id)
}

/// containerd's `getProcessState`: the shim's State as the API's Process.
fn process_state(d: &Daemon, t: &Arc<Task>, exec_id: &str) -> Result<Process> {
    let req = shim::StateRequest {
        id: t.id.clone(),
        exec_id: exec_id.to_string(),
        ..Default::default()
    };
    let s = d.tasks.call(&d.events, t, Some(QUERY_TIMEOUT), |c, ctx| {
        c.state(ctx, &req)
    })?;
    Ok(Process {
        container_id: t.id.clone(),
        id: if exec_id.is_empty() {
            t.id.clone()
        } else {
            exec_id.to_string()
        },
        pid: s.pid,
        status: s.status.value(),
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
        terminal: s.terminal,
        exit_status: s.exit_status,
        exited_at: prost_ts(&s.exited_at),
    })
}

fn empty_exec(exec_id: &str) -> Result<()> {
    if exec_id.is_empty() {
        return Err(ErrorKind::InvalidArgument.err("exec id cannot be empty"));
    }
    Ok(())
}

impl TasksService {
    /// The request's namespace and a clone of the daemon, for a blocking closure.
    fn ctx<T>(&self, r: &Request<T>) -> Result<(Arc<Daemon>, String), Status> {
        Ok((self.d.clone(), namespace::of(r)?))
    }
}

#[tonic::async_trait]
impl Tasks for TasksService {
    async fn create(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        if r.checkpoint.is_some() {
            return Err(Status::unimplemented(
                "creating a task from a checkpoint is not supported",
            ));
        }
        let id = r.container_id.clone();
        // The new init's cgroup join comes a few ms from now, after the shim and the runtime
        // have started: begin the kernel's wait for its migration lock now (warmup.rs).
        crate::linux::cgroups::warmup::start();
        let pid = blocking(move || {
            let c = container(&d, &ns, &r.container_id)?;
            let Some(spec) = c.spec.as_ref() else {
                return Err(ErrorKind::InvalidArgument.err("spec must not be nil"));
            };
            let runtime = if !r.runtime_path.is_empty() {
                r.runtime_path.clone()
            } else if c.runtime.name.is_empty() {
                OWN_RUNTIME.to_string()
            } else {
                c.runtime.name.clone()
            };
            let opts = CreateOpts {
                spec: spec.value.clone(),
                rootfs: r
                    .rootfs
                    .iter()
                    .map(|m| shim::Mount {
                        type_: m.r#type.clone(),
                        source: m.source.clone(),
                        target: m.target.clone(),
                        options: m.options.clone(),
                        ..Default::default()
                    })
                    .collect(),
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
                runtime,
                runtime_options: c.runtime.options.as_ref().map(|a| prost_types::Any {
                    type_url: a.type_url.clone(),
                    value: a.value.clone(),
                }),
                task_options: r.options,
            };
            let (_, pid) = d.tasks.create(&ns, &r.container_id, opts)?;
            Ok(pid)
        })
        .await?;
        Ok(Response::new(CreateTaskResponse {
            container_id: id,
            pid,
        }))
    }

    async fn start(
        &self,
        request: Request<StartRequest>,
    ) -> Result<Response<StartResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let pid = blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::StartRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                ..Default::default()
            };
            Ok(d.tasks
                .call(&d.events, &t, None, |c, ctx| c.start(ctx, &req))?
                .pid)
        })
        .await?;
        Ok(Response::new(StartResponse { pid }))
    }

    async fn delete(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let resp = blocking(move || {
            container(&d, &ns, &r.container_id)?;
            let exit = d.tasks.delete(&d.events, &ns, &r.container_id)?;
            Ok(DeleteResponse {
                id: r.container_id.clone(),
                pid: exit.pid,
                exit_status: exit.exit_status,
                exited_at: prost_ts(&exit.exited_at),
            })
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn delete_process(
        &self,
        request: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let resp = blocking(move || {
            // An empty exec id would name the init process: that is Delete's job.
            empty_exec(&r.exec_id)?;
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::DeleteRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                ..Default::default()
            };
            let exit = d
                .tasks
                .call(&d.events, &t, None, |c, ctx| c.delete(ctx, &req))?;
            Ok(DeleteResponse {
                id: r.exec_id.clone(),
                pid: exit.pid,
                exit_status: exit.exit_status,
                exited_at: prost_ts(&exit.exited_at),
            })
        })
        .await?;
        Ok(Response::new(resp))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let p = blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            process_state(&d, &t, &r.exec_id)
        })
        .await?;
        Ok(Response::new(GetResponse { process: Some(p) }))
    }

    async fn list(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        // containerd 1.6 ignores the filter here too.
        let tasks = blocking(move || {
            let mut out = Vec::new();
            for t in d.tasks.list(&ns) {
                match process_state(&d, &t, "") {
                    Ok(p) => out.push(p),
                    // Deleted meanwhile (or its shim died): not listed.
                    Err(e) if kind_of(&e) == ErrorKind::NotFound => {}
                    Err(e) => crate::daemon::log::warn(&format!("state of task {}: {e:#}", t.id)),
                }
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(ListTasksResponse { tasks }))
    }

    async fn kill(&self, request: Request<KillRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::KillRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                signal: r.signal,
                all: r.all,
                ..Default::default()
            };
            d.tasks
                .call(&d.events, &t, None, |c, ctx| c.kill(ctx, &req))?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn exec(&self, request: Request<ExecProcessRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            empty_exec(&r.exec_id)?;
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::ExecProcessRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                terminal: r.terminal,
                stdin: r.stdin.clone(),
                stdout: r.stdout.clone(),
                stderr: r.stderr.clone(),
                spec: r.spec.as_ref().map(pb_any).into(),
                ..Default::default()
            };
            d.tasks
                .call(&d.events, &t, None, |c, ctx| c.exec(ctx, &req))?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, request: Request<ResizePtyRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::ResizePtyRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                width: r.width,
                height: r.height,
                ..Default::default()
            };
            d.tasks.call(&d.events, &t, Some(QUERY_TIMEOUT), |c, ctx| {
                c.resize_pty(ctx, &req)
            })?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn close_io(&self, request: Request<CloseIoRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            if r.stdin {
                let req = shim::CloseIORequest {
                    id: r.container_id.clone(),
                    exec_id: r.exec_id.clone(),
                    stdin: true,
                    ..Default::default()
                };
                d.tasks.call(&d.events, &t, Some(QUERY_TIMEOUT), |c, ctx| {
                    c.close_io(ctx, &req)
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn pause(&self, request: Request<PauseTaskRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::PauseRequest {
                id: r.container_id.clone(),
                ..Default::default()
            };
            d.tasks
                .call(&d.events, &t, None, |c, ctx| c.pause(ctx, &req))?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn resume(&self, request: Request<ResumeTaskRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::ResumeRequest {
                id: r.container_id.clone(),
                ..Default::default()
            };
            d.tasks
                .call(&d.events, &t, None, |c, ctx| c.resume(ctx, &req))?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn list_pids(
        &self,
        request: Request<ListPidsRequest>,
    ) -> Result<Response<ListPidsResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let processes = blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::PidsRequest {
                id: r.container_id.clone(),
                ..Default::default()
            };
            let resp = d.tasks.call(&d.events, &t, Some(QUERY_TIMEOUT), |c, ctx| {
                c.pids(ctx, &req)
            })?;
            Ok(resp
                .processes
                .iter()
                .map(|p| ProcessInfo {
                    pid: p.pid,
                    info: p.info.as_ref().map(prost_any),
                })
                .collect())
        })
        .await?;
        Ok(Response::new(ListPidsResponse { processes }))
    }

    async fn checkpoint(
        &self,
        _request: Request<CheckpointTaskRequest>,
    ) -> Result<Response<CheckpointTaskResponse>, Status> {
        Err(Status::unimplemented("checkpoint is not supported"))
    }

    async fn update(&self, request: Request<UpdateTaskRequest>) -> Result<Response<()>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::UpdateTaskRequest {
                id: r.container_id.clone(),
                resources: r.resources.as_ref().map(pb_any).into(),
                annotations: r.annotations.clone(),
                ..Default::default()
            };
            d.tasks
                .call(&d.events, &t, None, |c, ctx| c.update(ctx, &req))?;
            Ok(())
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn metrics(
        &self,
        request: Request<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let metrics = blocking(move || {
            let filters: Vec<&str> = r.filters.iter().map(String::as_str).collect();
            let f = crate::metadata::filter::Filter::parse_all(&filters)?;
            let mut out = Vec::new();
            for t in d.tasks.list(&ns) {
                let field = |p: &[String]| -> Option<String> {
                    match p.first().map(String::as_str) {
                        Some("id") => Some(t.id.clone()),
                        Some("namespace") => Some(t.namespace.clone()),
                        _ => None,
                    }
                };
                if !f.matches(&field) {
                    continue;
                }
                let collected = SystemTime::now();
                let req = shim::StatsRequest {
                    id: t.id.clone(),
                    ..Default::default()
                };
                match d.tasks.call(&d.events, &t, Some(QUERY_TIMEOUT), |c, ctx| {
                    c.stats(ctx, &req)
                }) {
                    Ok(s) => out.push(Metric {
                        timestamp: Some(collected.into()),
                        id: t.id.clone(),
                        data: s.stats.as_ref().map(prost_any),
                    }),
                    Err(e) if kind_of(&e) == ErrorKind::NotFound => {}
                    Err(e) => {
                        crate::daemon::log::warn(&format!("collecting metrics for {}: {e:#}", t.id))
                    }
                }
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(MetricsResponse { metrics }))
    }

    async fn wait(&self, request: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let (d, ns) = self.ctx(&request)?;
        let r = request.into_inner();
        let resp = blocking(move || {
            let t = task(&d, &ns, &r.container_id)?;
            let req = shim::WaitRequest {
                id: r.container_id.clone(),
                exec_id: r.exec_id.clone(),
                ..Default::default()
            };
            let w = d
                .tasks
                .call(&d.events, &t, None, |c, ctx| c.wait(ctx, &req))?;
            Ok(WaitResponse {
                exit_status: w.exit_status,
                exited_at: prost_ts(&w.exited_at),
            })
        })
        .await?;
        Ok(Response::new(resp))
    }
}
