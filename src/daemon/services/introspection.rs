//! containerd.services.introspection.v1.Introspection: Plugins (the plugin list shaped as
//! containerd 1.6's for what ociboxd serves: one `io.containerd.grpc.v1` plugin per gRPC
//! service on the router, the `io.containerd.service.v1` plugin behind each, and the
//! stores below them; filters on `type`, `id`, `capabilities`), Server (the daemon's uuid,
//! pid and pid namespace inode, containerd 1.7's fields) and PluginInfo (1.7: one plugin by
//! type and id).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::services::introspection::v1::introspection_server::{
    Introspection, IntrospectionServer,
};
use crate::api::services::introspection::v1::*;
use crate::api::types::Platform;
use crate::daemon::context::Daemon;
use crate::metadata::filter::Filter;

/// The gRPC name of this service (it lists itself among the served ones).
pub const SERVICE_NAME: &str = "containerd.services.introspection.v1.Introspection";

pub struct IntrospectionService {
    d: Arc<Daemon>,
    plugins: Vec<Plugin>,
}

pub fn server(d: &Arc<Daemon>, served: &[&str]) -> IntrospectionServer<IntrospectionService> {
    let plugins = plugin_list(d, served);
    super::limited!(
        IntrospectionServer::new(IntrospectionService {
            d: d.clone(),
            plugins,
        }),
        d
    )
}

/// `containerd.services.containers.v1.Containers` → `containers`.
fn grpc_id(service: &str) -> Option<&str> {
    let mut parts = service.split('.');
    (parts.next() == Some("containerd") && parts.next() == Some("services"))
        .then(|| parts.next())
        .flatten()
}

fn plugin(kind: &str, id: &str, requires: &[&str]) -> Plugin {
    Plugin {
        r#type: kind.to_string(),
        id: id.to_string(),
        requires: requires.iter().map(|s| s.to_string()).collect(),
        platforms: Vec::new(),
        exports: Default::default(),
        capabilities: Vec::new(),
        init_err: None,
    }
}

fn host_platform() -> Platform {
    let p = crate::image::platform::Platform::host();
    Platform {
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
        os_version: String::new(),
    }
}

fn plugin_list(d: &Daemon, served: &[&str]) -> Vec<Plugin> {
    let ids: Vec<&str> = served.iter().filter_map(|s| grpc_id(s)).collect();
    let has = |id: &str| ids.contains(&id);
    let root = |p: &str| d.config.root.join(p).display().to_string();
    let mut out = Vec::new();

    let mut content = plugin("io.containerd.content.v1", "content", &[]);
    content
        .exports
        .insert("root".into(), root("io.containerd.content.v1.content"));
    out.push(content);
    if has("snapshots") {
        for id in ["native", "overlayfs"] {
            let mut s = plugin("io.containerd.snapshotter.v1", id, &[]);
            s.platforms.push(host_platform());
            s.exports.insert(
                "root".into(),
                root(&format!("io.containerd.snapshotter.v1.{id}")),
            );
            out.push(s);
        }
    }
    let mut meta = plugin(
        "io.containerd.metadata.v1",
        "redb",
        &["io.containerd.content.v1", "io.containerd.snapshotter.v1"],
    );
    meta.exports.insert(
        "path".into(),
        d.config.metadata_path().display().to_string(),
    );
    out.push(meta);
    out.push(plugin(
        "io.containerd.gc.v1",
        "scheduler",
        &["io.containerd.metadata.v1"],
    ));
    if has("diff") {
        let mut w = plugin(
            "io.containerd.differ.v1",
            "walking",
            &["io.containerd.metadata.v1"],
        );
        w.platforms.push(host_platform());
        out.push(w);
    }
    out.push(plugin("io.containerd.event.v1", "exchange", &[]));
    out.push(plugin(
        "io.containerd.lease.v1",
        "manager",
        &["io.containerd.metadata.v1"],
    ));
    if has("tasks") {
        let mut t = plugin(
            "io.containerd.runtime.v2",
            "task",
            &["io.containerd.event.v1", "io.containerd.metadata.v1"],
        );
        t.platforms.push(host_platform());
        out.push(t);
    }
    if has("streaming") {
        out.push(plugin(
            "io.containerd.streaming.v1",
            "manager",
            &["io.containerd.metadata.v1"],
        ));
    }
    if has("transfer") {
        // containerd 1.7's local transfer service: what ctr 1.7 looks for to pull in the
        // daemon.
        let mut t = plugin(
            "io.containerd.transfer.v1",
            "local",
            &["io.containerd.lease.v1", "io.containerd.metadata.v1"],
        );
        t.platforms.push(host_platform());
        out.push(t);
    }
    for id in [
        "containers",
        "content",
        "diff",
        "images",
        "introspection",
        "leases",
        "namespaces",
        "snapshots",
        "tasks",
    ] {
        if has(id) {
            out.push(plugin(
                "io.containerd.service.v1",
                &format!("{id}-service"),
                &["io.containerd.metadata.v1"],
            ));
        }
    }
    let mut grpc: Vec<&str> = ids.clone();
    grpc.sort_unstable();
    for id in grpc {
        out.push(plugin(
            "io.containerd.grpc.v1",
            id,
            &["io.containerd.service.v1"],
        ));
    }
    out
}

fn field(p: &Plugin, path: &[String]) -> Option<String> {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match path {
        [f] if f == "type" => nonempty(&p.r#type),
        [f] if f == "id" => nonempty(&p.id),
        // containerd: present when the plugin has capabilities; `==` matches any of them.
        [f, ..] if f == "capabilities" => p.capabilities.first().cloned(),
        _ => None,
    }
}

/// The pid namespace of this process (its inode, as containerd 1.7 reports it).
fn pidns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

#[tonic::async_trait]
impl Introspection for IntrospectionService {
    async fn plugins(
        &self,
        r: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filters = r.into_inner().filters;
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        let f = Filter::parse_all(&refs).map_err(|e| crate::api::status::to_status(&e))?;
        let plugins = self
            .plugins
            .iter()
            .filter(|p| f.matches(&|path: &[String]| field(p, path)))
            .cloned()
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _: Request<()>) -> Result<Response<ServerResponse>, Status> {
        Ok(Response::new(ServerResponse {
            uuid: self.d.uuid.clone(),
            pid: u64::from(std::process::id()),
            pidns: pidns(),
            deprecations: Vec::new(),
        }))
    }

    async fn plugin_info(
        &self,
        r: Request<PluginInfoRequest>,
    ) -> Result<Response<PluginInfoResponse>, Status> {
        let r = r.into_inner();
        let p = self
            .plugins
            .iter()
            .find(|p| p.r#type == r.r#type && (r.id.is_empty() || p.id == r.id))
            .cloned()
            .ok_or_else(|| Status::not_found(format!("plugin {}.{}: not found", r.r#type, r.id)))?;
        Ok(Response::new(PluginInfoResponse {
            plugin: Some(p),
            extra: None,
        }))
    }
}
