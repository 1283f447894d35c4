//! The live tasks, by namespace and id, each a shim the daemon holds a connection to —
//! containerd 1.6's ShimManager + TaskManager. Create makes the bundle, starts the shim,
//! connects and sends the task's Create; Delete sends the shim's Delete, shuts the shim down
//! and removes the bundle; a shim found dead is cleaned up with its binary's `delete` and
//! its task's exit published.
//!
//! Everything here blocks (processes, ttrpc): the services call it from
//! `spawn_blocking`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use containerd_shim_protos::api as shim;
use containerd_shim_protos::protobuf::MessageField;

use super::binary::{resolve, ShimBinary, ShimCall, SHIM_BINARY_FILE};
use super::bundle::Bundle;
use super::shim_client::{ShimClient, ShimError, ShimTask, QUERY_TIMEOUT};
use super::shim_log::{follow, ShimLog};
use crate::daemon::config::Config;
use crate::daemon::context::Daemon;
use crate::daemon::events::Exchange;
use crate::daemon::log;
use crate::errdefs::ErrorKind;

/// One live task: its shim and how to reach it.
pub struct Task {
    pub namespace: String,
    pub id: String,
    pub bundle: Bundle,
    pub binary: ShimBinary,
    pub client: ShimClient,
    _log: Option<ShimLog>,
}

/// What Create is asked for (containerd's `runtime.CreateOpts`).
#[derive(Default)]
pub struct CreateOpts {
    /// The container's OCI spec (JSON), written as config.json.
    pub spec: Vec<u8>,
    pub rootfs: Vec<shim::Mount>,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    /// The container's runtime name (or a path to a shim binary).
    pub runtime: String,
    pub runtime_options: Option<prost_types::Any>,
    pub task_options: Option<prost_types::Any>,
}

type Key = (String, String);

pub struct TaskManager {
    config: Config,
    ttrpc_address: PathBuf,
    publish_binary: PathBuf,
    tasks: Mutex<HashMap<Key, Arc<Task>>>,
    /// Ids being created: a second Create of one is AlreadyExists while the first runs.
    creating: Mutex<HashSet<Key>>,
    /// Tasks whose shim connection ended, for [`reap_closed`].
    closed_tx: tokio::sync::mpsc::UnboundedSender<Arc<Task>>,
    closed_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Arc<Task>>>>,
}

/// What the daemon names as `-publish-binary`: the binary it was started as (argv[0] when
/// it is a path or found on PATH — `ociboxd publish` must reach the daemon applet, which the
/// multi-call binary's own name would not), else its resolved executable.
fn publish_binary() -> PathBuf {
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "ociboxd".into());
    let Some(a0) = std::env::args_os().next().map(PathBuf::from) else {
        return exe;
    };
    if a0.components().count() > 1 {
        return std::fs::canonicalize(a0.parent().unwrap_or(Path::new(".")))
            .map(|d| d.join(a0.file_name().unwrap_or_default()))
            .unwrap_or(exe);
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&a0))
                .find(|c| c.exists())
        })
        .unwrap_or(exe)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// containerd's wording for a task that is not there.
pub fn not_found(id: &str) -> anyhow::Error {
    ErrorKind::NotFound.err(format!("task {id} not found"))
}

fn to_pb_any(a: &prost_types::Any) -> containerd_shim_protos::protobuf::well_known_types::any::Any {
    let mut o = containerd_shim_protos::protobuf::well_known_types::any::Any::new();
    o.type_url = a.type_url.clone();
    o.value = a.value.clone();
    o
}

/// Clears a set entry when Create ends, however it ends.
struct Reserved<'a>(&'a Mutex<HashSet<Key>>, Key);
impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

impl TaskManager {
    pub fn new(config: &Config) -> TaskManager {
        let (closed_tx, closed_rx) = tokio::sync::mpsc::unbounded_channel();
        TaskManager {
            config: config.clone(),
            ttrpc_address: config.ttrpc_address(),
            publish_binary: publish_binary(),
            tasks: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
            closed_tx,
            closed_rx: Mutex::new(Some(closed_rx)),
        }
    }

    /// Hands `task` to [`reap_closed`] when its shim connection ends (containerd's ttrpc
    /// on-close callback). Must be called with the daemon's runtime entered.
    fn watch(&self, task: &Arc<Task>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let closed = task.client.closed();
        let task = Arc::downgrade(task);
        let tx = self.closed_tx.clone();
        rt.spawn(async move {
            closed.await;
            // Gone already: it was deleted (which closed the connection).
            if let Some(t) = task.upgrade() {
                let _ = tx.send(t);
            }
        });
    }

    /// Whether `task` is the one listed under its id (not deleted or replaced).
    fn is_listed(&self, task: &Arc<Task>) -> bool {
        lock(&self.tasks)
            .get(&(task.namespace.clone(), task.id.clone()))
            .is_some_and(|t| Arc::ptr_eq(t, task))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn shim_call<'a>(&'a self, binary: &'a ShimBinary, b: &'a Bundle) -> ShimCall<'a> {
        ShimCall {
            binary,
            bundle: &b.path,
            namespace: &b.namespace,
            id: &b.id,
            address: &self.config.address,
            ttrpc_address: self.ttrpc_address(),
            publish_binary: &self.publish_binary,
            debug: log::enabled(log::Level::Debug),
        }
    }

    fn ttrpc_address(&self) -> &Path {
        &self.ttrpc_address
    }

    /// The task `id` of `ns`; NotFound as containerd words it.
    pub fn get(&self, ns: &str, id: &str) -> Result<Arc<Task>> {
        lock(&self.tasks)
            .get(&(ns.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// The tasks of `ns`, by id.
    pub fn list(&self, ns: &str) -> Vec<Arc<Task>> {
        let mut v: Vec<Arc<Task>> = lock(&self.tasks)
            .values()
            .filter(|t| t.namespace == ns)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Adds a task found alive (recovery).
    pub(super) fn adopt(&self, bundle: Bundle, binary: ShimBinary, client: ShimClient) {
        let log = follow(&bundle.path, &bundle.id).ok();
        let t = Arc::new(Task {
            namespace: bundle.namespace.clone(),
            id: bundle.id.clone(),
            bundle,
            binary,
            client,
            _log: log,
        });
        lock(&self.tasks).insert((t.namespace.clone(), t.id.clone()), t.clone());
        self.watch(&t);
    }

    /// Starts the shim of a new task and creates the task in it; the init's pid.
    pub fn create(&self, ns: &str, id: &str, opts: CreateOpts) -> Result<(Arc<Task>, u32)> {
        let key = (ns.to_string(), id.to_string());
        {
            let mut creating = lock(&self.creating);
            if creating.contains(&key) || lock(&self.tasks).contains_key(&key) {
                return Err(ErrorKind::AlreadyExists.err(format!("task {id}: already exists")));
            }
            creating.insert(key.clone());
        }
        let _reserved = Reserved(&self.creating, key.clone());
        let task = self
            .start_shim(ns, id, &opts)
            .context("failed to start shim")?;
        lock(&self.tasks).insert(key.clone(), task.clone());

        let topts = opts.task_options.as_ref().or(opts.runtime_options.as_ref());
        let req = shim::CreateTaskRequest {
            id: id.to_string(),
            bundle: task.bundle.path.display().to_string(),
            rootfs: opts.rootfs,
            terminal: opts.terminal,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            options: topts.map(to_pb_any).into(),
            ..Default::default()
        };
        match task.client.call(None, |c, ctx| c.create(ctx, &req)) {
            Ok(r) => {
                self.watch(&task);
                Ok((task, r.pid))
            }
            Err(e) => {
                lock(&self.tasks).remove(&key);
                self.stop_shim(&task);
                let _ = task.bundle.delete();
                Err(e.into_error().context("failed to create shim task"))
            }
        }
    }

    fn start_shim(&self, ns: &str, id: &str, opts: &CreateOpts) -> Result<Arc<Task>> {
        let binary = resolve(&opts.runtime).context("failed to resolve runtime path")?;
        let bundle = Bundle::create(&self.config, ns, id, &opts.spec)?;
        let started = || -> Result<Arc<Task>> {
            let log = follow(&bundle.path, id)?;
            let topts = opts.task_options.as_ref().or(opts.runtime_options.as_ref());
            let address = self
                .shim_call(&binary, &bundle)
                .start(topts)
                .context("start failed")?;
            let saved = bundle.path.join(SHIM_BINARY_FILE);
            std::fs::write(&saved, binary.path.as_os_str().as_encoded_bytes())
                .with_context(|| format!("write {}", saved.display()))?;
            let client = ShimClient::connect(&address, ns).map_err(ShimError::into_error)?;
            Ok(Arc::new(Task {
                namespace: ns.into(),
                id: id.into(),
                bundle: bundle.clone(),
                binary: binary.clone(),
                client,
                _log: Some(log),
            }))
        };
        started().inspect_err(|_| {
            // A shim that started but could not be reached is told to clean up.
            if bundle.path.join("address").exists() {
                let _ = self.shim_call(&binary, &bundle).delete();
            }
            let _ = bundle.delete();
        })
    }

    /// Shuts a shim down (it exits once it serves no task), as containerd after Delete.
    fn stop_shim(&self, task: &Task) {
        let req = shim::ShutdownRequest {
            id: task.id.clone(),
            ..Default::default()
        };
        let _ = task
            .client
            .call(Some(QUERY_TIMEOUT), |c, ctx| c.shutdown(ctx, &req));
    }

    /// Deletes the task: the shim's Delete (its exit), Shutdown, the bundle. A running task
    /// stays (the shim's FailedPrecondition).
    pub fn delete(&self, events: &Exchange, ns: &str, id: &str) -> Result<shim::DeleteResponse> {
        let task = self.get(ns, id)?;
        let req = shim::DeleteRequest {
            id: id.to_string(),
            ..Default::default()
        };
        let resp = match task.client.call(None, |c, ctx| c.delete(ctx, &req)) {
            Ok(r) => Some(r),
            Err(ShimError::Gone(_)) => None,
            Err(ShimError::Answer(e)) if crate::errdefs::kind_of(&e) == ErrorKind::NotFound => None,
            Err(ShimError::Answer(e)) => return Err(e.context("failed to delete task")),
        };
        // Unlisted before the shim goes, so its connection closing is not taken for a
        // death.
        lock(&self.tasks).remove(&(ns.to_string(), id.to_string()));
        self.stop_shim(&task);
        let resp = match resp {
            Some(r) => r,
            // The shim was gone: its binary's delete says how the task ended.
            None => self.reap(events, &task).context("failed to delete task")?,
        };
        task.bundle
            .delete()
            .with_context(|| format!("failed to delete bundle of task {id}"))?;
        Ok(resp)
    }

    /// A call to `task`'s shim; a shim found gone is cleaned up (its exit published) and the
    /// call answers NotFound.
    pub fn call<T>(
        &self,
        events: &Exchange,
        task: &Arc<Task>,
        timeout: Option<Duration>,
        f: impl Fn(
            &ShimTask,
            containerd_shim_protos::ttrpc::context::Context,
        ) -> containerd_shim_protos::ttrpc::Result<T>,
    ) -> Result<T> {
        match task.client.call(timeout, f) {
            Ok(v) => Ok(v),
            Err(ShimError::Answer(e)) => Err(e),
            Err(ShimError::Gone(m)) => {
                self.cleanup_dead(events, task);
                Err(ShimError::Gone(m).into_error())
            }
        }
    }

    /// containerd's `cleanupAfterDeadShim`: the shim binary's `delete` (it stops what is
    /// left of the container and unmounts the rootfs), the task's exit and delete events,
    /// the task and its bundle removed.
    pub fn cleanup_dead(&self, events: &Exchange, task: &Arc<Task>) {
        let key = (task.namespace.clone(), task.id.clone());
        let was_listed = {
            let mut tasks = lock(&self.tasks);
            match tasks.get(&key) {
                Some(t) if Arc::ptr_eq(t, task) => tasks.remove(&key).is_some(),
                _ => false,
            }
        };
        if !was_listed {
            // Someone else cleaned it up (or deleted it) already.
            return;
        }
        log::warn(&format!(
            "cleaning up after shim disconnected id={} namespace={}",
            task.id, task.namespace
        ));
        let _ = self.reap(events, task);
        if let Err(e) = task.bundle.delete() {
            log::warn(&format!("remove bundle of dead shim {}: {e:#}", task.id));
        }
    }

    /// Runs the shim binary's `delete` for a dead shim and publishes the task's exit (and,
    /// as the task is gone with it, its delete), in that order.
    pub(super) fn reap(&self, events: &Exchange, task: &Task) -> Result<shim::DeleteResponse> {
        reap_bundle(self, events, &task.bundle, &task.binary)
    }
}

/// Cleans up after every task whose shim connection ended while it was listed (the shim
/// died: its exit is published now, not on the next call), as containerd's
/// `cleanupAfterDeadShim` on its ttrpc client's close. A shim whose socket still answers
/// only closed the connection: it is connected to again and watched on. Runs on the
/// daemon's runtime until the daemon stops.
pub async fn reap_closed(d: Arc<Daemon>) {
    let Some(mut rx) = lock(&d.tasks.closed_rx).take() else {
        return;
    };
    while let Some(task) = rx.recv().await {
        let d = d.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let m = &d.tasks;
            if !m.is_listed(&task) {
                return;
            }
            let req = shim::ConnectRequest {
                id: task.id.clone(),
                ..Default::default()
            };
            let reconnected = task.client.answers()
                && task
                    .client
                    .call(Some(QUERY_TIMEOUT), |c, ctx| c.connect(ctx, &req))
                    .is_ok();
            if reconnected {
                m.watch(&task);
            } else {
                m.cleanup_dead(&d.events, &task);
            }
        })
        .await;
    }
}

/// The dead shim's cleanup on `bundle`: its `delete`, then `/tasks/exit` and
/// `/tasks/delete`. A failed `delete` still publishes the exit (status 255, as containerd).
pub(super) fn reap_bundle(
    m: &TaskManager,
    events: &Exchange,
    bundle: &Bundle,
    binary: &ShimBinary,
) -> Result<shim::DeleteResponse> {
    let res = m.shim_call(binary, bundle).delete();
    let (pid, status, at) = match &res {
        Ok(r) => (
            r.pid,
            r.exit_status,
            r.exited_at
                .as_ref()
                .map(|t| prost_types::Timestamp {
                    seconds: t.seconds,
                    nanos: t.nanos,
                })
                .unwrap_or_else(|| SystemTime::now().into()),
        ),
        Err(e) => {
            log::warn(&format!(
                "failed to clean up after shim disconnected id={}: {e:#}",
                bundle.id
            ));
            (0, 255, SystemTime::now().into())
        }
    };
    log::info(&format!(
        "publish exit of dead shim's task id={} namespace={} exit_status={status}",
        bundle.id, bundle.namespace
    ));
    events.publish(
        &bundle.namespace,
        crate::events::topics::TASK_EXIT,
        &crate::api::events::TaskExit {
            container_id: bundle.id.clone(),
            id: bundle.id.clone(),
            pid,
            exit_status: status,
            exited_at: Some(at),
        },
    );
    events.publish(
        &bundle.namespace,
        crate::events::topics::TASK_DELETE,
        &crate::api::events::TaskDelete {
            container_id: bundle.id.clone(),
            pid,
            exit_status: status,
            exited_at: Some(at),
            id: String::new(),
        },
    );
    res.map(|mut r| {
        if r.exited_at.is_none() {
            r.exited_at = MessageField::some(crate::events::timestamp(SystemTime::now()));
        }
        r
    })
}
