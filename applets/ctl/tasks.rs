//! `ctr tasks start|attach|kill|ls|ps|metrics|exec|pause|resume|delete` (checkpoint listed).

use anyhow::{anyhow, bail, Result};
use ocibox::api::services::containers::v1 as containers_api;
use ocibox::api::services::tasks::v1 as tasks_api;
use ocibox::ctl::cli::{exit, Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::out;
use ocibox::ctl::pull_client::{grpc, Session};
use ocibox::ctl::run::{self, ExecOptions, TaskOptions};
use ocibox::ctl::spec_from_image::STOP_SIGNAL_LABEL;
use ocibox::ctl::task_tables;

use super::stubs::stub;

pub const COMMAND: Command = Command {
    aliases: &["t", "task"],
    subcommands: &[
        ATTACH,
        stub("checkpoint", "checkpoint a container"),
        DELETE,
        EXEC,
        LIST,
        KILL,
        PAUSE,
        PS,
        RESUME,
        START,
        METRICS,
    ],
    ..Command::new("tasks", "manage tasks")
};

const ATTACH: Command = Command {
    args_usage: "CONTAINER",
    action: Some(attach),
    ..Command::new("attach", "attach to the IO of a running container")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[flags] CONTAINER [CONTAINER, ...]",
    flags: &[
        Flag::bool("force, f", "force delete task process"),
        Flag::string("exec-id", "process ID to kill"),
    ],
    action: Some(delete),
    ..Command::new("delete", "delete one or more tasks")
};

const EXEC: Command = Command {
    args_usage: "[flags] CONTAINER CMD [ARG...]",
    flags: &[
        Flag::string("cwd", "working directory of the new process"),
        Flag::bool("tty, t", "allocate a TTY for the container"),
        Flag::bool(
            "detach, d",
            "detach from the task after it has started execution",
        ),
        Flag::string("exec-id", "exec specific id for the process"),
        Flag::string("fifo-dir", "directory used for storing IO FIFOs"),
        Flag::string("log-uri", "log uri for custom shim logging"),
        Flag::string("user", "user id or name"),
    ],
    action: Some(exec),
    skip_arg_reorder: true,
    ..Command::new(
        "exec",
        "execute additional processes in an existing container",
    )
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags]",
    flags: &[Flag::bool("quiet, q", "print only the task id")],
    action: Some(list),
    ..Command::new("list", "list tasks")
};

const KILL: Command = Command {
    args_usage: "[flags] CONTAINER",
    flags: &[
        Flag::string("signal, s", "signal to send to the container"),
        Flag::string("exec-id", "process ID to kill"),
        Flag::bool(
            "all, a",
            "send signal to all processes inside the container",
        ),
    ],
    action: Some(kill),
    ..Command::new("kill", "signal a container (default: SIGTERM)")
};

const PAUSE: Command = Command {
    args_usage: "CONTAINER",
    action: Some(pause),
    ..Command::new("pause", "pause an existing container")
};

const PS: Command = Command {
    args_usage: "CONTAINER",
    action: Some(ps),
    ..Command::new("ps", "list processes for container")
};

const RESUME: Command = Command {
    args_usage: "CONTAINER",
    action: Some(resume),
    ..Command::new("resume", "resume a paused container")
};

const START: Command = Command {
    args_usage: "[flags] CONTAINER",
    flags: &[
        Flag::bool("null-io", "send all IO to /dev/null"),
        Flag::string("log-uri", "log uri"),
        Flag::string("fifo-dir", "directory used for storing IO FIFOs"),
        Flag::string("pid-file", "file path to write the task's pid"),
        Flag::bool(
            "detach, d",
            "detach from the task after it has started execution",
        ),
    ],
    action: Some(start),
    ..Command::new("start", "start a container that has been created")
};

const METRICS: Command = Command {
    aliases: &["metric"],
    args_usage: "[flags] CONTAINER",
    flags: &[Flag::string("format", "\"table\" or \"json\"").default("table")],
    action: Some(metrics),
    ..Command::new(
        "metrics",
        "get a single data point of metrics for a task with the built-in Linux runtime",
    )
};

/// One connection and session for a command's calls.
fn session<T>(p: &Parsed, f: impl AsyncFnOnce(&Session) -> Result<T>) -> Result<T> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        let s = Session::new(ch, &c.namespace);
        f(&s).await
    })
}

fn need_id(p: &Parsed) -> Result<String> {
    let id = p.first();
    if id.is_empty() {
        bail!("container id must be provided");
    }
    Ok(id.to_string())
}

/// The container's exit status as ctr's exit code (no message).
fn exit_with(code: i32) -> Result<()> {
    if code != 0 {
        return Err(exit(code.clamp(0, 255) as u8, ""));
    }
    Ok(())
}

fn start(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let code = session(p, async |s| {
        let t = TaskOptions {
            tty: run::container_terminal(s, &id).await?,
            detach: p.bool("detach"),
            rm: false,
            null_io: p.bool("null-io"),
            fifo_dir: p.string("fifo-dir"),
            pid_file: p.string("pid-file"),
            log_uri: p.string("log-uri"),
            ..TaskOptions::default()
        };
        run::start_task(s, &id, &t).await
    })?;
    exit_with(code)
}

fn attach(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let code = session(p, async |s| run::attach(s, &id).await)?;
    exit_with(code)
}

fn exec(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let exec_id = p.string("exec-id");
    if exec_id.is_empty() {
        bail!("exec-id must be provided");
    }
    let e = ExecOptions {
        exec_id,
        args: p.args.iter().skip(1).cloned().collect(),
        cwd: p.string("cwd"),
        tty: p.bool("tty"),
        detach: p.bool("detach"),
        fifo_dir: p.string("fifo-dir"),
        user: p.string("user"),
        log_uri: p.string("log-uri"),
    };
    let code = session(p, async |s| run::exec(s, &id, &e).await)?;
    exit_with(code)
}

fn list(p: &Parsed) -> Result<()> {
    let tasks = session(p, async |s| {
        Ok(run::tasks(s)
            .list(s.req(tasks_api::ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .tasks)
    })?;
    if p.bool("quiet") {
        let mut text = String::new();
        for t in &tasks {
            text += &format!("{}\n", t.id);
        }
        out(&text);
        return Ok(());
    }
    out(&task_tables::task_list(&tasks));
    Ok(())
}

/// containerd's `ParseSignal`: a number, `SIGKILL` or `KILL`.
fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn kill(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let exec_id = p.string("exec-id");
    let all = p.bool("all");
    if all && !exec_id.is_empty() {
        bail!("specify an exec-id or all; not both");
    }
    session(p, async |s| {
        let signal = if p.string("signal").is_empty() {
            // ctr: the container's stop signal, else SIGTERM.
            let c = run::containers(s)
                .get(s.req(containers_api::GetContainerRequest { id: id.clone() }))
                .await
                .map_err(grpc)?
                .into_inner()
                .container;
            let label = c
                .and_then(|c| c.labels.get(STOP_SIGNAL_LABEL).cloned())
                .unwrap_or_else(|| "SIGTERM".into());
            parse_signal(&label)?
        } else {
            parse_signal(&p.string("signal"))?
        };
        run::tasks(s)
            .kill(s.req(tasks_api::KillRequest {
                container_id: id.clone(),
                exec_id: exec_id.clone(),
                signal: signal as u32,
                all,
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn pause(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    session(p, async |s| {
        run::tasks(s)
            .pause(s.req(tasks_api::PauseTaskRequest {
                container_id: id.clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn resume(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    session(p, async |s| {
        run::tasks(s)
            .resume(s.req(tasks_api::ResumeTaskRequest {
                container_id: id.clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn ps(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let procs = session(p, async |s| {
        Ok(run::tasks(s)
            .list_pids(s.req(tasks_api::ListPidsRequest {
                container_id: id.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .processes)
    })?;
    out(&task_tables::task_ps(&procs));
    Ok(())
}

fn metrics(p: &Parsed) -> Result<()> {
    let id = need_id(p)?;
    let format = p.string("format");
    let metrics = session(p, async |s| {
        Ok(run::tasks(s)
            .metrics(s.req(tasks_api::MetricsRequest {
                filters: vec![format!("id=={id}")],
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .metrics)
    })?;
    let Some(m) = metrics.into_iter().next() else {
        bail!("cannot convert metric data to cgroups.Metrics or windows.Statistics");
    };
    let any = m.data.unwrap_or_default();
    let data = task_tables::decode(&any.type_url, &any.value)?;
    match format.as_str() {
        "table" => {
            let ts = m.timestamp.unwrap_or_default();
            let when = task_tables::go_time_string(ts.seconds, ts.nanos.max(0) as u32);
            out(&task_tables::metrics_table(&m.id, &when, &data));
        }
        "json" => out(&task_tables::metrics_json(&data)),
        _ => bail!("format must be table or json"),
    }
    Ok(())
}

/// ctr's `loadTask`: the container, then its task (`no running task found: …`).
async fn load_task(s: &Session, id: &str) -> Result<ocibox::api::v1_types::Process> {
    run::containers(s)
        .get(s.req(containers_api::GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(grpc)?;
    let got = run::tasks(s)
        .get(s.req(tasks_api::GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
        .map_err(|e| anyhow!("no running task found: {:#}", grpc(e)))?;
    got.into_inner()
        .process
        .ok_or_else(|| anyhow!("no running task found: task {id} not found: not found"))
}

/// `ctr task delete`: each task loaded, checked stopped (or killed with `--force`), deleted;
/// failures logged as ctr logs them, the first one returned.
fn delete(p: &Parsed) -> Result<()> {
    if p.args.is_empty() {
        bail!("container id must be provided");
    }
    let exec_id = p.string("exec-id");
    let force = p.bool("force");
    let mut first_err: Option<anyhow::Error> = None;
    session(p, async |s| {
        for id in &p.args {
            let task = match load_task(s, id).await {
                Ok(t) => t,
                Err(e) => {
                    ocibox::ctl::fmt::log_error(&format!("failed to load task from {id}"), &e);
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let r: Result<()> = async {
                if !exec_id.is_empty() {
                    run::tasks(s)
                        .delete_process(s.req(tasks_api::DeleteProcessRequest {
                            container_id: id.clone(),
                            exec_id: exec_id.clone(),
                        }))
                        .await
                        .map_err(grpc)?;
                    return Ok(());
                }
                let status = task_tables::status_name(task.status);
                if !matches!(status, "STOPPED" | "CREATED" | "UNKNOWN") {
                    if !force {
                        bail!(
                            "task must be stopped before deletion: {}: failed precondition",
                            status.to_lowercase()
                        );
                    }
                    let (s2, id2) = (s.clone(), id.clone());
                    let wait = tokio::spawn(async move {
                        run::tasks(&s2)
                            .wait(s2.req(tasks_api::WaitRequest {
                                container_id: id2,
                                exec_id: String::new(),
                            }))
                            .await
                    });
                    run::tasks(s)
                        .kill(s.req(tasks_api::KillRequest {
                            container_id: id.clone(),
                            exec_id: String::new(),
                            signal: libc::SIGKILL as u32,
                            all: true,
                        }))
                        .await
                        .map_err(grpc)?;
                    let _ = wait.await;
                }
                run::tasks(s)
                    .delete(s.req(tasks_api::DeleteTaskRequest {
                        container_id: id.clone(),
                    }))
                    .await
                    .map_err(grpc)?;
                Ok(())
            }
            .await;
            if let Err(e) = r {
                ocibox::ctl::fmt::log_error(&format!("unable to delete {id}"), &e);
                first_err.get_or_insert(e);
            }
        }
        Ok(())
    })?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
