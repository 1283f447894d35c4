//! `ctr shim --id X state|delete|start|exec`: the task v2 API straight to a shim over ttrpc,
//! as ctr 1.6's `cmd/ctr/commands/shim` does. The socket is the one containerd gives a shim
//! of container X in the namespace (`/run/containerd/s/<sha256(address/ns/id)>`), else the
//! abstract `\0/containerd-shim/<ns>/<id>/shim.sock` of v1-era shims; `state` prints the
//! StateResponse as Go's `json.MarshalIndent(r, "", "    ")` of ctr's gogo struct.

use std::collections::HashMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};

use anyhow::{anyhow, Context, Result};
use containerd_shim_protos::api as shim_api;
use containerd_shim_protos::ttrpc::context::Context as TtrpcContext;
use containerd_shim_protos::TaskClient;

/// The metadata key the namespace travels under on ttrpc.
const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";

/// A connected shim.
pub struct Shim {
    client: TaskClient,
    namespace: String,
    pub id: String,
}

impl Shim {
    /// Connect as ctr's `getTaskService` does.
    pub fn connect(address: &str, namespace: &str, id: &str) -> Result<Shim> {
        let address = address.strip_prefix("unix://").unwrap_or(address);
        let v2 = crate::shim::start::socket_path(address, namespace, id);
        let stream = UnixStream::connect(&v2).or_else(|_| {
            let name = format!("/containerd-shim/{namespace}/{id}/shim.sock");
            let a = SocketAddr::from_abstract_name(name.as_bytes())?;
            UnixStream::connect_addr(&a)
        });
        let stream = stream.map_err(|_| anyhow!("fail to connect to container {id}'s shim"))?;
        let fd: std::os::fd::OwnedFd = stream.into();
        let client =
            containerd_shim_protos::ttrpc::Client::new(std::os::fd::IntoRawFd::into_raw_fd(fd))
                .context("ttrpc client")?;
        Ok(Shim {
            client: TaskClient::new(client),
            namespace: namespace.to_string(),
            id: id.to_string(),
        })
    }

    fn ctx(&self) -> TtrpcContext {
        let mut md = HashMap::new();
        md.insert(NAMESPACE_KEY.to_string(), vec![self.namespace.clone()]);
        TtrpcContext {
            metadata: md,
            timeout_nano: 0,
        }
    }

    /// `ctr shim state`: the JSON ctr prints (with its newline).
    pub fn state(&self) -> Result<String> {
        let mut req = shim_api::StateRequest::new();
        req.id = self.id.clone();
        let r = self.client.state(self.ctx(), &req).map_err(ttrpc_err)?;
        Ok(super::go_json::to_string_indent(&r, "    ") + "\n")
    }

    /// `ctr shim delete ID`: ctr's line. As ctr 1.6 does, the request names the argument
    /// (not `--id`, which only finds the shim's socket): none names no task.
    pub fn delete(&self, id: &str) -> Result<String> {
        let mut req = shim_api::DeleteRequest::new();
        req.id = id.to_string();
        let r = self.client.delete(self.ctx(), &req).map_err(ttrpc_err)?;
        Ok(format!(
            "container deleted and returned exit status {}\n",
            r.exit_status
        ))
    }

    /// `ctr shim start ID` (the argument names the task, as for delete).
    pub fn start(&self, id: &str) -> Result<()> {
        let mut req = shim_api::StartRequest::new();
        req.id = id.to_string();
        self.client.start(self.ctx(), &req).map_err(ttrpc_err)?;
        Ok(())
    }

    /// `ctr shim exec`: a process from a runtime-spec Process JSON (`--spec`) with the
    /// given stdio paths, as exec `exec_id` of the task, then started; its pid. (ctr 1.6
    /// panics before it sends anything: its TypeURL of the Process is refused; ctr 1.6's
    /// code would name the exec id as the task, which no shim has.)
    pub fn exec(
        &self,
        exec_id: &str,
        process_json: &[u8],
        stdio: (&str, &str, &str),
        terminal: bool,
    ) -> Result<u32> {
        let mut req = shim_api::ExecProcessRequest::new();
        req.id = self.id.clone();
        req.exec_id = exec_id.to_string();
        req.stdin = stdio.0.to_string();
        req.stdout = stdio.1.to_string();
        req.stderr = stdio.2.to_string();
        req.terminal = terminal;
        let mut any = containerd_shim_protos::protobuf::well_known_types::any::Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = process_json.to_vec();
        req.spec = containerd_shim_protos::protobuf::MessageField::some(any);
        self.client.exec(self.ctx(), &req).map_err(ttrpc_err)?;
        let mut start = shim_api::StartRequest::new();
        start.id = self.id.clone();
        start.exec_id = exec_id.to_string();
        let r = self.client.start(self.ctx(), &start).map_err(ttrpc_err)?;
        Ok(r.pid)
    }
}

/// A ttrpc error as ctr prints it: a status as Go's gRPC status error reads
/// (`rpc error: code = NotFound desc = …`), anything else as it is.
fn ttrpc_err(e: containerd_shim_protos::ttrpc::Error) -> anyhow::Error {
    match e {
        containerd_shim_protos::ttrpc::Error::RpcStatus(s) => {
            let code = format!("{:?}", s.code());
            anyhow!(
                "rpc error: code = {} desc = {}",
                go_code_name(&code),
                s.message
            )
        }
        other => anyhow!("{other}"),
    }
}

/// gRPC's code name as Go's `codes.Code.String()` spells it, from the protobuf enum's
/// (`NOT_FOUND` → `NotFound`; `CANCELLED` → `Canceled`).
fn go_code_name(proto: &str) -> String {
    match proto {
        "OK" => "OK".into(),
        "CANCELLED" => "Canceled".into(),
        _ => proto
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_string() + &c.as_str().to_lowercase())
                    .unwrap_or_default()
            })
            .collect(),
    }
}
