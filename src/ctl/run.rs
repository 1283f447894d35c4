//! `ctr run`, `ctr container create` and `ctr task start` as ctr 1.6 does them against
//! containerd's API (`cmd/ctr/commands/run`, `tasks/start.go`):
//!
//! - the image by name (`Images.Get`), its manifest for the platform, unpacked if its
//!   snapshot chain is missing ([`pull_client::unpack`]);
//! - the container's snapshot `Snapshots.Prepare(id, chainID)` (`WithNewSnapshot`);
//! - the spec from the image ([`spec_from_image`]), the image's /etc/passwd and /etc/group
//!   read from the new snapshot's layers (upper, then each lower; a whiteout hides), which
//!   is what containerd's temporary read-only mount of them shows;
//! - `Containers.Create` with ctr's labels (`--label` + the stop-signal label), runtime
//!   and options (`containerd.runc.v1.Options` for runc v2 with `--runc-binary`,
//!   `runtimeoptions.v1.Options` for `--runtime-config-path` otherwise);
//! - then, for run/start: fifos ([`task_io`]), `Tasks.Wait` armed before `Tasks.Start`,
//!   signals forwarded (no tty) or the window size followed (tty), stdin EOF → `CloseIO`,
//!   the exit status returned as ctr's exit code after `Tasks.Delete`; `--rm` removes the
//!   container and its snapshot; `-d` returns once started.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::api::channel::{origin, UnixChannel};
use crate::api::services::containers::v1 as containers_api;
use crate::api::services::containers::v1::containers_client::ContainersClient;
use crate::api::services::images::v1 as images_api;
use crate::api::services::snapshots::v1 as snapshots_api;
use crate::api::services::tasks::v1 as tasks_api;
use crate::api::services::tasks::v1::tasks_client::TasksClient;
use crate::api::types as api_types;
use crate::ctl::pull_client::{self, grpc, Session, DEFAULT_SNAPSHOTTER};
use crate::ctl::spec_from_image::{self, ImageConfig, SpecFlags, UserDb};
use crate::ctl::task_io::{FifoSet, RawTerminal, TaskIo};
use crate::ctl::{cni, remap_snapshot, spec_opts};
use crate::image::manifest::{parse_index, select_manifests};
use crate::image::media_types::{self, Kind};
use crate::image::{Descriptor, Matcher};

/// ctr's default runtime.
pub const DEFAULT_RUNTIME: &str = "io.containerd.runc.v2";

/// What `ctr run` / `ctr container create` were asked.
#[derive(Clone, Debug, Default)]
pub struct ContainerOptions {
    pub image: String,
    pub id: String,
    pub spec: SpecFlags,
    pub snapshotter: String,
    pub runtime: String,
    pub runtime_config_path: String,
    pub runc_binary: String,
    pub runc_root: String,
    pub runc_systemd_cgroup: bool,
    pub platform: String,
    /// `--rootfs`: `image` is a host directory, no image and no snapshot.
    pub rootfs: bool,
    /// `--config FILE`: the spec is the file's, no image and no snapshot.
    pub config: String,
    /// `--snapshotter-label` as `k=v`.
    pub snapshot_labels: Vec<String>,
    /// `--remap-labels`: with id maps, label the snapshot instead of copying it remapped.
    pub remap_labels: bool,
}

/// How `ctr run` / `ctr task start` attach.
#[derive(Clone, Debug, Default)]
pub struct TaskOptions {
    pub tty: bool,
    pub detach: bool,
    pub rm: bool,
    pub null_io: bool,
    pub fifo_dir: String,
    pub pid_file: String,
    /// `--log-uri`: the shim sends stdout and stderr there (no fifos).
    pub log_uri: String,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// The host ids `--uidmap` / `--gidmap` map root to (the shim's pipes' owner).
    pub io_uid: Option<u32>,
    pub io_gid: Option<u32>,
    /// `--cni`: the default CNI network joined between create and start.
    pub cni: bool,
}

pub fn containers(s: &Session) -> ContainersClient<UnixChannel> {
    ContainersClient::with_origin(s.channel.clone(), origin())
}

pub fn tasks(s: &Session) -> TasksClient<UnixChannel> {
    TasksClient::with_origin(s.channel.clone(), origin())
        .max_decoding_message_size(crate::api::MAX_MESSAGE_SIZE)
}

/// protobuf's string field `tag` (wire type 2).
fn put_string(out: &mut Vec<u8>, field: u32, s: &str) {
    if s.is_empty() {
        return;
    }
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bool(out: &mut Vec<u8>, field: u32, b: bool) {
    if b {
        put_varint(out, u64::from(field << 3));
        out.push(1);
    }
}

fn put_u32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_varint(out, u64::from(field << 3));
        put_varint(out, u64::from(v));
    }
}

/// The runtime options ctr 1.6 records (`getRuntimeOptions`).
pub fn runtime_options(o: &ContainerOptions) -> Result<Option<prost_types::Any>> {
    let runtime = if o.runtime.is_empty() {
        DEFAULT_RUNTIME
    } else {
        o.runtime.as_str()
    };
    if (!o.runc_binary.is_empty() || o.runc_systemd_cgroup) && runtime != DEFAULT_RUNTIME {
        bail!("specifying runc-binary and runc-systemd-cgroup is only supported for \"io.containerd.runc.v2\" runtime");
    }
    if runtime == DEFAULT_RUNTIME {
        if o.runc_systemd_cgroup && o.spec.cgroup.as_deref().unwrap_or("").is_empty() {
            bail!("option --runc-systemd-cgroup requires --cgroup to be set, e.g. \"machine.slice:foo:deadbeef\"");
        }
        // containerd.runc.v1.Options: binary_name = 6, root = 7, systemd_cgroup = 9.
        let mut value = Vec::new();
        put_string(&mut value, 6, &o.runc_binary);
        put_string(&mut value, 7, &o.runc_root);
        put_bool(&mut value, 9, o.runc_systemd_cgroup);
        return Ok(Some(prost_types::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value,
        }));
    }
    if !o.runtime_config_path.is_empty() {
        // runtimeoptions.v1.Options: config_path = 2.
        let mut value = Vec::new();
        put_string(&mut value, 2, &o.runtime_config_path);
        return Ok(Some(prost_types::Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value,
        }));
    }
    Ok(None)
}

/// containerd's `CheckRuntime(current, "io.containerd.runc")`: a runc shim of any version.
fn is_runc_runtime(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4 && parts[..3] == ["io", "containerd", "runc"]
}

/// The task options ctr 1.6 sends with Create (`WithNoPivotRoot`, `WithUIDOwner`,
/// `WithGIDOwner`): `containerd.runc.v1.Options` for a runc shim, the old
/// `containerd.linux.runc.CreateOptions` otherwise; none when no flag asks for one.
/// Like ctr 1.6 they replace (do not merge with) the container's runtime options.
pub fn task_options(runtime: &str, t: &TaskOptions) -> Option<prost_types::Any> {
    if !t.no_pivot && t.io_uid.is_none() && t.io_gid.is_none() {
        return None;
    }
    let mut value = Vec::new();
    let (uid, gid) = (t.io_uid.unwrap_or(0), t.io_gid.unwrap_or(0));
    if is_runc_runtime(runtime) {
        // no_pivot_root = 1, io_uid = 4, io_gid = 5.
        put_bool(&mut value, 1, t.no_pivot);
        put_u32(&mut value, 4, uid);
        put_u32(&mut value, 5, gid);
        return Some(prost_types::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value,
        });
    }
    // no_pivot_root = 1, io_uid = 10, io_gid = 11.
    put_bool(&mut value, 1, t.no_pivot);
    put_u32(&mut value, 10, uid);
    put_u32(&mut value, 11, gid);
    Some(prost_types::Any {
        type_url: "containerd.linux.runc.CreateOptions".into(),
        value,
    })
}

/// The image's target and, for the platform, its manifest (`images.Manifest`).
pub async fn image_manifest(s: &Session, name: &str, platform: &str) -> Result<Descriptor> {
    let img = s
        .images()
        .get(s.req(images_api::GetImageRequest {
            name: name.to_string(),
        }))
        .await
        .map_err(grpc)?
        .into_inner()
        .image
        .ok_or_else(|| anyhow!("image {name:?}: not found"))?;
    let t = img
        .target
        .ok_or_else(|| anyhow!("image {name:?} has no target"))?;
    let mut d = Descriptor::new(t.media_type, t.digest.parse()?, t.size.max(0) as u64);
    let matcher = if platform.is_empty() {
        Matcher::default_for_host()
    } else {
        Matcher::from_specifiers(&[platform])?
    };
    for _ in 0..crate::image::manifest::MAX_INDEX_DEPTH {
        match media_types::kind(&d.media_type) {
            Kind::Manifest => return Ok(d),
            Kind::Index => {
                let data = pull_client::read_content(
                    s,
                    &d.digest.to_string(),
                    crate::registry::client::MAX_MANIFEST_SIZE,
                )
                .await?;
                let ix = parse_index(&data)?;
                let c = select_manifests(&ix, &matcher, Some(1))
                    .into_iter()
                    .next()
                    .ok_or_else(|| anyhow!("no match for platform in manifest: not found"))?;
                d = Descriptor::from_oci(&c)?;
            }
            _ => bail!("unexpected media type {} for {}", d.media_type, d.digest),
        }
    }
    bail!("{name}: indexes nested too deep")
}

/// /etc/passwd and /etc/group as the snapshot's mounts show them, without mounting:
/// overlay's upperdir then lowerdirs in order (a whiteout device hides the file), or a
/// bind mount's source.
pub fn user_db_from_mounts(mounts: &[api_types::Mount]) -> Result<UserDb> {
    let mut layers: Vec<PathBuf> = Vec::new();
    for m in mounts {
        match m.r#type.as_str() {
            "overlay" => {
                for o in &m.options {
                    if let Some(u) = o.strip_prefix("upperdir=") {
                        layers.insert(0, PathBuf::from(u));
                    }
                }
                for o in &m.options {
                    if let Some(l) = o.strip_prefix("lowerdir=") {
                        layers.extend(l.split(':').map(PathBuf::from));
                    }
                }
            }
            "bind" | "rbind" | "" => layers.push(PathBuf::from(&m.source)),
            other => bail!("cannot read the rootfs of a {other} mount"),
        }
    }
    let find = |rel: &str| -> Result<Option<String>> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        for l in &layers {
            let p = l.join(rel);
            match std::fs::symlink_metadata(&p) {
                Ok(md) if md.file_type().is_char_device() && md.rdev() == 0 => return Ok(None),
                Ok(md) if md.is_file() => {
                    let b = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
                    return Ok(Some(String::from_utf8_lossy(&b).into_owned()));
                }
                Ok(_) => return Ok(None),
                Err(_) => continue,
            }
        }
        Ok(None)
    };
    Ok(UserDb {
        passwd: find("etc/passwd")?,
        group: find("etc/group")?,
    })
}

/// Run `f` under a new lease, deleted when it returns, as ctr's commands do
/// (`client.WithLease`): the snapshot a create prepares must not be collected by a GC that
/// another client's delete starts before the container that refers to it exists.
pub async fn with_lease<T, F, Fut>(s: &Session, f: F) -> Result<T>
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut leased = s.clone();
    leased.lease = Some(pull_client::create_lease(s).await?);
    let result = f(leased.clone()).await;
    if let Some(id) = &leased.lease {
        let _ = pull_client::delete_lease(s, id).await;
    }
    result
}

/// The container record ctr writes for `o`: labels, runtime and the spec as JSON.
fn container_record(
    o: &ContainerOptions,
    labels: HashMap<String, String>,
    spec_json: Vec<u8>,
    runtime_opts: Option<prost_types::Any>,
) -> containers_api::Container {
    containers_api::Container {
        id: o.id.clone(),
        labels,
        runtime: Some(containers_api::container::Runtime {
            name: if o.runtime.is_empty() {
                DEFAULT_RUNTIME.into()
            } else {
                o.runtime.clone()
            },
            options: runtime_opts,
        }),
        spec: Some(prost_types::Any {
            type_url: spec_from_image::SPEC_TYPE_URL.into(),
            value: spec_json,
        }),
        ..Default::default()
    }
}

async fn store_container(s: &Session, c: containers_api::Container) -> Result<()> {
    containers(s)
        .create(s.req(containers_api::CreateContainerRequest { container: Some(c) }))
        .await
        .map_err(grpc)?;
    Ok(())
}

/// `ctr container create --config FILE` / `--rootfs DIR`: a container without image or
/// snapshot.
async fn create_without_image(s: &Session, o: &ContainerOptions) -> Result<()> {
    if o.config.is_empty() {
        spec_from_image::check_flags(&o.spec)?;
    }
    let labels: HashMap<String, String> = spec_from_image::label_args(&o.spec.labels)
        .into_iter()
        .collect();
    let spec_json = if o.config.is_empty() {
        let spec = spec_from_image::build(&s.namespace, &o.id, None, &UserDb::default(), &o.spec)?;
        spec_from_image::to_json(&spec)?
    } else {
        let annotations = spec_from_image::label_args(&o.spec.labels);
        let v = spec_opts::config_file::load(Path::new(&o.config), &annotations)?;
        serde_json::to_vec(&v).context("marshal spec")?
    };
    let runtime_opts = runtime_options(o)?;
    store_container(s, container_record(o, labels, spec_json, runtime_opts)).await
}

/// `ctr container create` (and the first half of `ctr run`).
pub async fn create_container(s: &Session, o: &ContainerOptions) -> Result<()> {
    if o.rootfs || !o.config.is_empty() {
        return create_without_image(s, o).await;
    }
    let snapshotter = if o.snapshotter.is_empty() {
        DEFAULT_SNAPSHOTTER.to_string()
    } else {
        o.snapshotter.clone()
    };
    let manifest = image_manifest(s, &o.image, &o.platform).await?;
    let chain = pull_client::unpack(s, &manifest, &snapshotter).await?;
    let (config_desc, _) = pull_client::manifest_parts(s, &manifest).await?;
    let config = ImageConfig::from_json(
        &pull_client::read_content(s, &config_desc.digest.to_string(), 16 << 20).await?,
    )?;
    spec_from_image::check_flags(&o.spec)?;
    let runtime_opts = runtime_options(o)?;
    match o.spec.id_maps {
        Some((uid, gid)) if !o.remap_labels => {
            remap_snapshot::prepare_remapped(
                s,
                &snapshotter,
                &o.id,
                &chain.to_string(),
                uid.host_id,
                gid.host_id,
            )
            .await?;
        }
        id_maps => {
            let labels: HashMap<String, String> = match id_maps {
                // containerd's WithRemapperLabels(0, uid host, 0, gid host, uid size).
                Some((uid, gid)) => HashMap::from([
                    (
                        "containerd.io/snapshot/uidmapping".to_string(),
                        format!("0:{}:{}", uid.host_id, uid.size),
                    ),
                    (
                        "containerd.io/snapshot/gidmapping".to_string(),
                        format!("0:{}:{}", gid.host_id, uid.size),
                    ),
                ]),
                None => spec_from_image::label_args(&o.snapshot_labels)
                    .into_iter()
                    .collect(),
            };
            s.snapshots()
                .prepare(s.req(snapshots_api::PrepareSnapshotRequest {
                    snapshotter: snapshotter.clone(),
                    key: o.id.clone(),
                    parent: chain.to_string(),
                    labels,
                }))
                .await
                .map_err(grpc)?;
        }
    }
    let built = async {
        let mounts = s
            .snapshots()
            .mounts(s.req(snapshots_api::MountsRequest {
                snapshotter: snapshotter.clone(),
                key: o.id.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .mounts;
        let db = user_db_from_mounts(&mounts)?;
        let spec = spec_from_image::build(&s.namespace, &o.id, Some(&config), &db, &o.spec)?;
        let mut labels: HashMap<String, String> = spec_from_image::label_args(&o.spec.labels)
            .into_iter()
            .collect();
        labels.insert(
            spec_from_image::STOP_SIGNAL_LABEL.to_string(),
            config.stop_signal_label(),
        );
        let mut c = container_record(o, labels, spec_from_image::to_json(&spec)?, runtime_opts);
        c.image = o.image.clone();
        c.snapshotter = snapshotter.clone();
        c.snapshot_key = o.id.clone();
        store_container(s, c).await
    }
    .await;
    if built.is_err() {
        let _ = s
            .snapshots()
            .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                snapshotter,
                key: o.id.clone(),
            }))
            .await;
    }
    built
}

/// `container.Delete(ctx, WithSnapshotCleanup)`.
pub async fn delete_container(s: &Session, id: &str) -> Result<()> {
    let c = containers(s)
        .get(s.req(containers_api::GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(grpc)?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("container {id:?}: not found"))?;
    if !c.snapshot_key.is_empty() {
        let r = s
            .snapshots()
            .remove(s.req(snapshots_api::RemoveSnapshotRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.snapshot_key.clone(),
            }))
            .await;
        if let Err(e) = r {
            if e.code() != tonic::Code::NotFound {
                return Err(grpc(e));
            }
        }
    }
    containers(s)
        .delete(s.req(containers_api::DeleteContainerRequest { id: id.to_string() }))
        .await
        .map_err(grpc)?;
    Ok(())
}

/// The signals ctr's `ForwardAllSignals` passes on (those a terminal user sends).
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Create the task of container `id` and, unless detached, follow it to its end; the exit
/// code ctr would exit with.
pub async fn start_task(s: &Session, id: &str, t: &TaskOptions) -> Result<i32> {
    let c = containers(s)
        .get(s.req(containers_api::GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(grpc)?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("container {id:?}: not found"))?;
    let rootfs = if c.snapshot_key.is_empty() {
        Vec::new()
    } else {
        s.snapshots()
            .mounts(s.req(snapshots_api::MountsRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.snapshot_key.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .mounts
    };
    if t.tty && t.null_io {
        bail!("tty and null-io cannot be used together");
    }
    // ctr's choice of IO: a terminal's fifos, nothing (--null-io), the log URI for both
    // outputs (--log-uri), or the ctl's stdio through fifos.
    let log_uri = !t.tty && !t.null_io && !t.log_uri.is_empty();
    let fifos = if t.null_io || log_uri {
        None
    } else {
        Some(FifoSet::new(&t.fifo_dir, id, t.tty, true)?)
    };
    let (stdin, stdout, stderr) = if log_uri {
        (String::new(), t.log_uri.clone(), t.log_uri.clone())
    } else {
        fifos
            .as_ref()
            .map(|f| (f.stdin.clone(), f.stdout.clone(), f.stderr.clone()))
            .unwrap_or_default()
    };
    let runtime = c
        .runtime
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    // Read before the task exists: a bad network config fails the run as ctr's does,
    // before any process is made.
    let network = if t.cni {
        Some(cni::default_network(Path::new(cni::CONF_DIR))?)
    } else {
        None
    };
    // Also when detached: the shim opens the output fifos for writing and waits for a
    // reader, as containerd's own shim does; the copies end with the ctl.
    let io = fifos.clone().map(|f| TaskIo::attach_with(f, !t.detach));
    let created = tasks(s)
        .create(s.req(tasks_api::CreateTaskRequest {
            container_id: id.to_string(),
            rootfs,
            stdin,
            stdout,
            stderr,
            terminal: t.tty,
            options: task_options(&runtime, t),
            ..Default::default()
        }))
        .await;
    let created = match created {
        Ok(r) => r.into_inner(),
        Err(e) => {
            if let Some(f) = &fifos {
                f.remove();
            }
            return Err(grpc(e));
        }
    };
    if !t.pid_file.is_empty() {
        std::fs::write(&t.pid_file, created.pid.to_string())
            .with_context(|| format!("write {}", t.pid_file))?;
    }
    let wait = if t.detach {
        None
    } else {
        let (s2, id2) = (s.clone(), id.to_string());
        Some(tokio::spawn(async move {
            tasks(&s2)
                .wait(s2.req(tasks_api::WaitRequest {
                    container_id: id2,
                    exec_id: String::new(),
                }))
                .await
                .map(|r| r.into_inner().exit_status)
        }))
    };
    let cni_id = format!("{}-{id}", s.namespace);
    if let Some(net) = &network {
        let netns = format!("/proc/{}/ns/net", created.pid);
        let (net2, cni_id2) = (net.clone(), cni_id.clone());
        let added = tokio::task::spawn_blocking(move || cni::setup(&net2, &cni_id2, &netns))
            .await
            .map_err(|e| anyhow!("cni: {e}"))?;
        if let Err(e) = added {
            if !t.detach {
                remove_network(net, &cni_id).await;
                let _ = tasks(s)
                    .delete(s.req(tasks_api::DeleteTaskRequest {
                        container_id: id.to_string(),
                    }))
                    .await;
                if let Some(f) = &fifos {
                    f.remove();
                }
            }
            return Err(e);
        }
    }
    let raw = (t.tty && !t.detach).then(RawTerminal::enter);
    tasks(s)
        .start(s.req(tasks_api::StartRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
        .map_err(grpc)?;
    let Some(wait) = wait else {
        return Ok(0);
    };
    let followers = follow(s, id, "", t.tty);
    let mut io = io;
    let stdin_done = io.as_mut().and_then(|i| i.stdin_done.take());
    let closer = stdin_closer(s, id, "", stdin_done);
    let status = wait
        .await
        .map_err(|e| anyhow!("wait: {e}"))?
        .map_err(grpc)?;
    followers.abort();
    closer.abort();
    drop(raw);
    if let Some(io) = io {
        // The shim closes its fifo ends when the process's output ends.
        let _ = tokio::task::spawn_blocking(move || io.wait()).await;
    }
    if let Some(net) = &network {
        remove_network(net, &cni_id).await;
    }
    tasks(s)
        .delete(s.req(tasks_api::DeleteTaskRequest {
            container_id: id.to_string(),
        }))
        .await
        .map_err(grpc)?;
    if let Some(f) = &fifos {
        f.remove();
    }
    if t.rm {
        delete_container(s, id).await?;
    }
    Ok(status as i32)
}

/// CNI DEL at the end of a run; a failure is logged as ctr logs it ("network review").
async fn remove_network(net: &cni::Network, cni_id: &str) {
    let (net, cni_id) = (net.clone(), cni_id.to_string());
    let r = tokio::task::spawn_blocking(move || cni::remove(&net, &cni_id)).await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => crate::ctl::fmt::log_error("network review", &e),
        Err(e) => crate::ctl::fmt::log_error("network review", &anyhow!("{e}")),
    }
}

/// Signals forwarded to the process (no terminal) or the window size followed (terminal),
/// until aborted.
fn follow(s: &Session, id: &str, exec_id: &str, tty: bool) -> tokio::task::JoinHandle<()> {
    let (s, id, exec_id) = (s.clone(), id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        if tty {
            let resize = |s: Session, id: String, exec_id: String| async move {
                if let Some((w, h)) =
                    crate::ctl::task_io::terminal_size(std::os::fd::AsFd::as_fd(&std::io::stdin()))
                {
                    let _ = tasks(&s)
                        .resize_pty(s.req(tasks_api::ResizePtyRequest {
                            container_id: id,
                            exec_id,
                            width: w,
                            height: h,
                        }))
                        .await;
                }
            };
            resize(s.clone(), id.clone(), exec_id.clone()).await;
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                resize(s.clone(), id.clone(), exec_id.clone()).await;
            }
        } else {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for sig in FORWARDED {
                let Ok(mut st) = signal(SignalKind::from_raw(sig)) else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    while st.recv().await.is_some() {
                        if tx.send(sig).is_err() {
                            return;
                        }
                    }
                });
            }
            while let Some(sig) = rx.recv().await {
                let _ = tasks(&s)
                    .kill(s.req(tasks_api::KillRequest {
                        container_id: id.clone(),
                        exec_id: exec_id.clone(),
                        signal: sig as u32,
                        all: false,
                    }))
                    .await;
            }
        }
    })
}

/// `CloseIO(stdin)` once the ctl's stdin has ended (ctr's `stdinCloser`).
fn stdin_closer(
    s: &Session,
    id: &str,
    exec_id: &str,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
) -> tokio::task::JoinHandle<()> {
    let (s, id, exec_id) = (s.clone(), id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        let Some(done) = done else { return };
        if done.await.is_ok() {
            let _ = tasks(&s)
                .close_io(s.req(tasks_api::CloseIoRequest {
                    container_id: id,
                    exec_id,
                    stdin: true,
                }))
                .await;
        }
    })
}

/// `ctr run`: create the container, then start and follow its task.
pub async fn run(s: &Session, o: &ContainerOptions, t: &TaskOptions) -> Result<i32> {
    if t.rm && t.detach {
        bail!("flags --detach and --rm cannot be specified together");
    }
    create_container(s, o).await?;
    match start_task(s, &o.id, t).await {
        Ok(code) => Ok(code),
        Err(e) => {
            if t.rm {
                let _ = delete_container(s, &o.id).await;
            }
            Err(e)
        }
    }
}

/// The container's spec as JSON (its `Spec` Any).
pub async fn container_spec(s: &Session, id: &str) -> Result<serde_json::Value> {
    let c = containers(s)
        .get(s.req(containers_api::GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(grpc)?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("container {id:?}: not found"))?;
    let spec = c.spec.map(|a| a.value).unwrap_or_default();
    serde_json::from_slice(&spec).context("failed to unmarshal container spec")
}

/// Whether the container's process has a terminal (`ctr task start` follows it).
pub async fn container_terminal(s: &Session, id: &str) -> Result<bool> {
    let spec = container_spec(s, id).await?;
    Ok(spec["process"]["terminal"].as_bool().unwrap_or(false))
}

/// What `ctr task exec` was asked.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub exec_id: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    pub detach: bool,
    pub fifo_dir: String,
    /// `--user`: resolved against the container's rootfs (`oci.WithUser`).
    pub user: String,
    /// `--log-uri`: the process's stdout and stderr go there (no fifos).
    pub log_uri: String,
}

/// The user databases of container `id`'s rootfs, read through its snapshot's mounts.
async fn container_user_db(s: &Session, c: &containers_api::Container) -> Result<UserDb> {
    if c.snapshot_key.is_empty() {
        return Ok(UserDb::default());
    }
    let mounts = s
        .snapshots()
        .mounts(s.req(snapshots_api::MountsRequest {
            snapshotter: c.snapshotter.clone(),
            key: c.snapshot_key.clone(),
        }))
        .await
        .map_err(grpc)?
        .into_inner()
        .mounts;
    user_db_from_mounts(&mounts)
}

/// `ctr task exec`: the container's process spec with the new args (and tty, cwd),
/// `Tasks.Exec`, Wait before Start, followed like run; the process's exit status.
pub async fn exec(s: &Session, id: &str, e: &ExecOptions) -> Result<i32> {
    if e.exec_id.is_empty() {
        bail!("exec-id must be provided");
    }
    let spec = container_spec(s, id).await?;
    let mut process = spec
        .get("process")
        .cloned()
        .ok_or_else(|| anyhow!("container {id} has no process spec"))?;
    process["terminal"] = serde_json::Value::Bool(e.tty);
    process["args"] = serde_json::json!(e.args);
    if !e.cwd.is_empty() {
        process["cwd"] = serde_json::Value::String(e.cwd.clone());
    }
    if !e.user.is_empty() {
        let c = containers(s)
            .get(s.req(containers_api::GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(grpc)?
            .into_inner()
            .container
            .ok_or_else(|| anyhow!("container {id:?}: not found"))?;
        let db = container_user_db(s, &c).await?;
        let (uid, gid, gids) = spec_from_image::exec_user(&e.user, &db)?;
        process["user"]["uid"] = uid.into();
        process["user"]["gid"] = gid.into();
        process["user"]["additionalGids"] = serde_json::json!(gids);
    }
    let log_uri = !e.tty && !e.log_uri.is_empty();
    let fifos = if log_uri {
        None
    } else {
        Some(FifoSet::new(&e.fifo_dir, &e.exec_id, e.tty, true)?)
    };
    let io = fifos.clone().map(|f| TaskIo::attach_with(f, !e.detach));
    let (stdin, stdout, stderr) = match &fifos {
        Some(f) => (f.stdin.clone(), f.stdout.clone(), f.stderr.clone()),
        None => (String::new(), e.log_uri.clone(), e.log_uri.clone()),
    };
    let r = tasks(s)
        .exec(s.req(tasks_api::ExecProcessRequest {
            container_id: id.to_string(),
            stdin,
            stdout,
            stderr,
            terminal: e.tty,
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: serde_json::to_vec(&process)?,
            }),
            exec_id: e.exec_id.clone(),
        }))
        .await;
    if let Err(err) = r {
        if let Some(f) = &fifos {
            f.remove();
        }
        return Err(grpc(err));
    }
    let wait = (!e.detach).then(|| {
        let (s2, id2, ex) = (s.clone(), id.to_string(), e.exec_id.clone());
        tokio::spawn(async move {
            tasks(&s2)
                .wait(s2.req(tasks_api::WaitRequest {
                    container_id: id2,
                    exec_id: ex,
                }))
                .await
                .map(|r| r.into_inner().exit_status)
        })
    });
    let raw = (e.tty && !e.detach).then(RawTerminal::enter);
    tasks(s)
        .start(s.req(tasks_api::StartRequest {
            container_id: id.to_string(),
            exec_id: e.exec_id.clone(),
        }))
        .await
        .map_err(grpc)?;
    let Some(wait) = wait else {
        return Ok(0);
    };
    let followers = follow(s, id, &e.exec_id, e.tty);
    let mut io = io;
    let closer = stdin_closer(
        s,
        id,
        &e.exec_id,
        io.as_mut().and_then(|i| i.stdin_done.take()),
    );
    let status = wait
        .await
        .map_err(|x| anyhow!("wait: {x}"))?
        .map_err(grpc)?;
    followers.abort();
    closer.abort();
    drop(raw);
    if let Some(io) = io {
        let _ = tokio::task::spawn_blocking(move || io.wait()).await;
    }
    tasks(s)
        .delete_process(s.req(tasks_api::DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: e.exec_id.clone(),
        }))
        .await
        .map_err(grpc)?;
    if let Some(f) = &fifos {
        f.remove();
    }
    Ok(status as i32)
}

/// `ctr task attach`: the task's own fifos copied again, followed to its exit.
pub async fn attach(s: &Session, id: &str) -> Result<i32> {
    let p = tasks(s)
        .get(s.req(tasks_api::GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
        .map_err(grpc)?
        .into_inner()
        .process
        .ok_or_else(|| anyhow!("task {id}: not found"))?;
    let fifos = FifoSet {
        dir: PathBuf::new(),
        stdin: p.stdin.clone(),
        stdout: p.stdout.clone(),
        stderr: p.stderr.clone(),
        terminal: p.terminal,
    };
    let (s2, id2) = (s.clone(), id.to_string());
    let wait = tokio::spawn(async move {
        tasks(&s2)
            .wait(s2.req(tasks_api::WaitRequest {
                container_id: id2,
                exec_id: String::new(),
            }))
            .await
            .map(|r| r.into_inner().exit_status)
    });
    let raw = p.terminal.then(RawTerminal::enter);
    let mut io = TaskIo::attach(fifos);
    let followers = follow(s, id, "", p.terminal);
    let closer = stdin_closer(s, id, "", io.stdin_done.take());
    let status = wait
        .await
        .map_err(|x| anyhow!("wait: {x}"))?
        .map_err(grpc)?;
    followers.abort();
    closer.abort();
    drop(raw);
    // The fifos belong to whoever started the task: not removed here.
    let _ = tokio::task::spawn_blocking(move || io.wait_keep()).await;
    Ok(status as i32)
}

/// Whether `p` exists (for flags naming files).
pub fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_encode_binary_name() {
        let o = ContainerOptions {
            runc_binary: "/usr/sbin/runc".into(),
            ..ContainerOptions::default()
        };
        let a = runtime_options(&o).unwrap().unwrap();
        assert_eq!(a.type_url, "containerd.runc.v1.Options");
        assert_eq!(a.value[0], 0x32);
        assert_eq!(&a.value[2..], b"/usr/sbin/runc");
        let empty = runtime_options(&ContainerOptions::default())
            .unwrap()
            .unwrap();
        assert!(empty.value.is_empty());
        let bad = ContainerOptions {
            runtime: "io.containerd.ocibox.v2".into(),
            runc_binary: "x".into(),
            ..ContainerOptions::default()
        };
        assert!(runtime_options(&bad).is_err());
    }

    #[test]
    fn user_db_prefers_upper_and_honours_whiteouts() {
        let d = std::env::temp_dir().join(format!("ocibox-userdb-{}", std::process::id()));
        let (up, lo) = (d.join("up"), d.join("lo"));
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(lo.join("etc")).unwrap();
        std::fs::write(lo.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::write(lo.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::write(up.join("etc/passwd"), "app:x:7:7::/:/bin/sh\n").unwrap();
        let m = api_types::Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("workdir={}", d.join("w").display()),
                format!("upperdir={}", up.display()),
                format!("lowerdir={}", lo.display()),
            ],
            ..Default::default()
        };
        let db = user_db_from_mounts(&[m]).unwrap();
        assert_eq!(db.passwd.as_deref(), Some("app:x:7:7::/:/bin/sh\n"));
        assert_eq!(db.group.as_deref(), Some("root:x:0:\n"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
