//! One shim's ttrpc connection, as the daemon uses it: every call carries the namespace
//! (`containerd-namespace-ttrpc`, as containerd's client sends it), an error status the shim
//! answers becomes an error of the code's kind with the shim's message (containerd's
//! `errdefs.FromGRPC`), and a connection that broke is opened again once — a shim whose
//! socket no longer answers is [`ShimError::Gone`], so the manager can clean up after it.
//! The connection runs on the daemon's runtime ([`super::ttrpc_conn`]); [`ShimClient::closed`]
//! resolves when it ends, so a shim that dies is noticed at once, as containerd notices it
//! with its ttrpc client's on-close callback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::api as shim;
use containerd_shim_protos::ttrpc::{self, context::Context};

use super::ttrpc_conn::Connection;

use crate::errdefs::ErrorKind;

/// The ttrpc metadata key for the namespace.
const NAMESPACE_KEY: &str = crate::events::NAMESPACE_KEY;

/// How long a query (State, Pids, Stats, Connect) may take; the rest (Create, Start,
/// Delete, Wait…) take as long as they take, as containerd's do.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum ShimError {
    /// The shim answered with an error status (as an error of its code's kind).
    Answer(anyhow::Error),
    /// The shim is not there any more.
    Gone(String),
}

impl ShimError {
    /// As an error for an API caller.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            ShimError::Answer(e) => e,
            ShimError::Gone(m) => ErrorKind::NotFound.err(format!("ttrpc: closed: {m}")),
        }
    }
}

pub struct ShimClient {
    /// `unix:///run/containerd/s/…`.
    address: String,
    namespace: String,
    rt: tokio::runtime::Handle,
    client: Mutex<Option<Arc<ShimTask>>>,
}

/// The shim's task service (`containerd.task.v2.Task`) on one connection: the methods of
/// the ttrpc crate's generated `TaskClient`, the daemon uses.
pub struct ShimTask(Connection);

const TASK_SERVICE: &str = "containerd.task.v2.Task";

macro_rules! task_methods {
    ($($name:ident: $method:literal, $req:ty => $resp:ty;)*) => {
        impl ShimTask {
            $(
                pub fn $name(&self, ctx: Context, req: &$req) -> ttrpc::Result<$resp> {
                    self.0.unary(ctx, TASK_SERVICE, $method, req)
                }
            )*
        }
    };
}

task_methods! {
    state: "State", shim::StateRequest => shim::StateResponse;
    create: "Create", shim::CreateTaskRequest => shim::CreateTaskResponse;
    start: "Start", shim::StartRequest => shim::StartResponse;
    delete: "Delete", shim::DeleteRequest => shim::DeleteResponse;
    pids: "Pids", shim::PidsRequest => shim::PidsResponse;
    pause: "Pause", shim::PauseRequest => shim::Empty;
    resume: "Resume", shim::ResumeRequest => shim::Empty;
    kill: "Kill", shim::KillRequest => shim::Empty;
    exec: "Exec", shim::ExecProcessRequest => shim::Empty;
    resize_pty: "ResizePty", shim::ResizePtyRequest => shim::Empty;
    close_io: "CloseIO", shim::CloseIORequest => shim::Empty;
    update: "Update", shim::UpdateTaskRequest => shim::Empty;
    wait: "Wait", shim::WaitRequest => shim::WaitResponse;
    stats: "Stats", shim::StatsRequest => shim::StatsResponse;
    connect: "Connect", shim::ConnectRequest => shim::ConnectResponse;
    shutdown: "Shutdown", shim::ShutdownRequest => shim::Empty;
}

/// The error kind of a ttrpc (= gRPC) status code.
fn kind_of(code: ttrpc::Code) -> ErrorKind {
    let c = tonic::Code::from_i32(code as i32);
    crate::api::status::kind_of_code(c)
}

fn is_transport(e: &ttrpc::Error) -> bool {
    matches!(
        e,
        ttrpc::Error::Socket(_)
            | ttrpc::Error::LocalClosed
            | ttrpc::Error::RemoteClosed
            | ttrpc::Error::Nix(_)
    )
}

impl ShimClient {
    /// A client of the shim at `address` (with or without `unix://`); connects now, so a
    /// shim that is not there is `Gone` at once. Must be called with the daemon's runtime
    /// entered (a service or a blocking task of it): the connection runs there.
    pub fn connect(address: &str, namespace: &str) -> Result<ShimClient, ShimError> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| ShimError::Gone(format!("no runtime for the shim connection: {e}")))?;
        let c = ShimClient {
            address: format!("unix://{path}"),
            namespace: namespace.into(),
            rt,
            client: Mutex::new(None),
        };
        c.client()?;
        Ok(c)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn client(&self) -> Result<Arc<ShimTask>, ShimError> {
        let mut g = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.as_ref().filter(|c| !c.0.is_closed()) {
            return Ok(c.clone());
        }
        let path = self.address.trim_start_matches("unix://");
        let c = Connection::connect(&self.rt, path)
            .map(|c| Arc::new(ShimTask(c)))
            .map_err(|e| ShimError::Gone(format!("connect {}: {e}", self.address)))?;
        *g = Some(c.clone());
        Ok(c)
    }

    /// Resolves when the connection now open ends (at once when there is none): the shim
    /// exited, or closed it.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let c = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.0.closed());
        async move {
            if let Some(c) = c {
                c.await
            }
        }
    }

    /// Whether the shim's socket still takes connections (a shim that closed an idle
    /// connection is alive; a dead one's socket refuses).
    pub fn answers(&self) -> bool {
        std::os::unix::net::UnixStream::connect(self.address.trim_start_matches("unix://")).is_ok()
    }

    fn forget(&self) {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn context(&self, timeout: Option<Duration>) -> Context {
        let mut md = HashMap::new();
        md.insert(NAMESPACE_KEY.to_string(), vec![self.namespace.clone()]);
        let mut ctx = ttrpc::context::with_metadata(md);
        ctx.timeout_nano = timeout.map_or(0, |t| t.as_nanos() as i64);
        ctx
    }

    /// Calls `f` on the connection; a broken connection is opened again and the call made
    /// once more (the request never reached a shim whose connection was already closed).
    pub fn call<T>(
        &self,
        timeout: Option<Duration>,
        f: impl Fn(&ShimTask, Context) -> ttrpc::Result<T>,
    ) -> Result<T, ShimError> {
        let mut last = String::new();
        for _ in 0..2 {
            let c = self.client()?;
            match f(&c, self.context(timeout)) {
                Ok(v) => return Ok(v),
                Err(ttrpc::Error::RpcStatus(s)) => {
                    return Err(ShimError::Answer(kind_of(s.code()).err(s.message.clone())))
                }
                Err(e) if is_transport(&e) => {
                    self.forget();
                    last = e.to_string();
                }
                Err(e) => {
                    return Err(ShimError::Answer(
                        ErrorKind::DeadlineExceeded.err(format!("ttrpc: {e}")),
                    ))
                }
            }
        }
        Err(ShimError::Gone(last))
    }
}
