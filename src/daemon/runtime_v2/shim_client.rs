//! One shim's ttrpc connection, as the daemon uses it: every call carries the namespace
//! (`containerd-namespace-ttrpc`, as containerd's client sends it), an error status the shim
//! answers becomes an error of the code's kind with the shim's message (containerd's
//! `errdefs.FromGRPC`), and a connection that broke is opened again once — a shim whose
//! socket no longer answers is [`ShimError::Gone`], so the manager can clean up after it
//! (containerd notices that with its ttrpc client's on-close callback; the sync ttrpc
//! client has none, so it is noticed on the next call instead).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use containerd_shim_protos::ttrpc::{self, context::Context};
use containerd_shim_protos::TaskClient;

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
    client: Mutex<Option<TaskClient>>,
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
    /// shim that is not there is `Gone` at once.
    pub fn connect(address: &str, namespace: &str) -> Result<ShimClient, ShimError> {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        let c = ShimClient {
            address: format!("unix://{path}"),
            namespace: namespace.into(),
            client: Mutex::new(None),
        };
        c.client()?;
        Ok(c)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn client(&self) -> Result<TaskClient, ShimError> {
        let mut g = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let c = ttrpc::Client::connect(&self.address)
            .map(TaskClient::new)
            .map_err(|e| ShimError::Gone(format!("connect {}: {e}", self.address)))?;
        *g = Some(c.clone());
        Ok(c)
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
        f: impl Fn(&TaskClient, Context) -> ttrpc::Result<T>,
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
