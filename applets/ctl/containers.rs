//! `ctr containers list|info|delete|label` (create, checkpoint and restore listed).

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context as _, Result};
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::containers::v1::containers_client::ContainersClient;
use ocibox::api::services::containers::v1::{
    Container, DeleteContainerRequest, GetContainerRequest, ListContainersRequest,
    UpdateContainerRequest,
};
use ocibox::api::services::snapshots::v1::snapshots_client::SnapshotsClient;
use ocibox::api::services::snapshots::v1::RemoveSnapshotRequest;
use ocibox::api::services::tasks::v1::tasks_client::TasksClient;
use ocibox::api::services::tasks::v1::{DeleteTaskRequest, GetRequest as TaskGetRequest};
use ocibox::api::v1_types::Status as TaskStatus;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{go_time_string, label_args, label_pairs, log_error, time_of};
use ocibox::ctl::json;
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;
use ocibox::errdefs::{kind_of, ErrorKind};
use serde_json::{Map, Value};

use super::stubs::stub;

pub const COMMAND: Command = Command {
    aliases: &["c", "container"],
    subcommands: &[
        super::run::CREATE,
        DELETE,
        INFO,
        LIST,
        LABEL,
        stub("checkpoint", "checkpoint a container"),
        stub("restore", "restore a container from checkpoint"),
    ],
    ..Command::new("containers", "manage containers")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[flags] CONTAINER [CONTAINER, ...]",
    flags: &[Flag::bool(
        "keep-snapshot",
        "do not clean up snapshot with container",
    )],
    action: Some(delete),
    ..Command::new("delete", "delete one or more existing containers")
};

const INFO: Command = Command {
    args_usage: "CONTAINER",
    flags: &[Flag::bool("spec", "only display the spec")],
    action: Some(info),
    ..Command::new("info", "get info about a container")
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags] [<filter>, ...]",
    flags: &[Flag::bool("quiet, q", "print only the container id")],
    action: Some(list),
    ..Command::new("list", "list containers")
};

const LABEL: Command = Command {
    args_usage: "[flags] CONTAINER [<key>=<value>, ...]",
    description: "set and clear labels for a container",
    action: Some(label),
    ..Command::new("label", "set and clear labels for a container")
};

fn client(ch: UnixChannel) -> ContainersClient<UnixChannel> {
    ContainersClient::with_origin(ch, origin())
        .max_decoding_message_size(ocibox::api::MAX_MESSAGE_SIZE)
}

/// `client.LoadContainer`: the container record (Containers Get).
pub fn load(c: &Client, id: &str) -> Result<Container> {
    let ch = c.channel()?;
    // containerd's client refuses an empty id before asking.
    if id.is_empty() {
        return Err(
            ErrorKind::InvalidArgument.err("container id must be provided: invalid argument")
        );
    }
    c.run(async {
        let r = client(ch)
            .get(c.req(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().container.unwrap_or_default())
    })
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let containers = c.run(async {
        let r = client(ch)
            .list(c.req(ListContainersRequest {
                filters: p.args.clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().containers)
    })?;
    if p.bool("quiet") {
        out(&containers
            .iter()
            .map(|c| format!("{}\n", c.id))
            .collect::<String>());
        return Ok(());
    }
    let mut t = TabWriter::new(4, 8, 4, ' ');
    t.write("CONTAINER\tIMAGE\tRUNTIME\t\n");
    for ct in &containers {
        let image = if ct.image.is_empty() { "-" } else { &ct.image };
        let runtime = ct.runtime.as_ref().map(|r| r.name.as_str()).unwrap_or("");
        t.write(&format!("{}\t{image}\t{runtime}\t\n", ct.id));
    }
    out(&t.finish());
    Ok(())
}

/// A protobuf Any as Go's JSON encoder writes gogo's `types.Any` (`type_url`, `value` in
/// base64, both omitempty).
fn any_json(a: &Option<prost_types::Any>) -> Value {
    let Some(a) = a else {
        return Value::Null;
    };
    let mut m = Map::new();
    if !a.type_url.is_empty() {
        m.insert("type_url".into(), Value::String(a.type_url.clone()));
    }
    if !a.value.is_empty() {
        m.insert(
            "value".into(),
            Value::String(ocibox::registry::base64::encode(&a.value)),
        );
    }
    Value::Object(m)
}

/// A Go map[string]string: null when empty (a nil map after protobuf decoding), else its
/// keys sorted.
fn string_map(m: &HashMap<String, String>) -> Value {
    if m.is_empty() {
        return Value::Null;
    }
    let sorted: BTreeMap<&String, &String> = m.iter().collect();
    serde_json::to_value(sorted).unwrap_or(Value::Null)
}

/// The spec an Any carries, as Go decodes it into `specs.Spec` and encodes it again: the
/// stored JSON in its order, the spec's map fields with their keys sorted (Go writes maps
/// sorted).
fn spec_json(a: &prost_types::Any) -> Result<Value> {
    let mut v: Value = serde_json::from_slice(&a.value).context("decode the container's spec")?;
    for ptr in ["/annotations", "/linux/sysctl", "/linux/resources/unified"] {
        if let Some(Value::Object(m)) = v.pointer_mut(ptr) {
            let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            m.extend(entries);
        }
    }
    Ok(v)
}

fn info(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ct = load(&c, p.first())?;
    let spec = match &ct.spec {
        Some(a) if !a.value.is_empty() => Some(spec_json(a)?),
        _ => None,
    };
    if p.bool("spec") {
        out(&format!(
            "{}\n",
            json::indent(&spec.unwrap_or(Value::Null))?
        ));
        return Ok(());
    }
    // containers.Container's fields in Go's order; the decoded Spec (an outer field of
    // ctr's wrapper struct) goes last, the raw Any when there is no spec to decode.
    let mut m = Map::new();
    m.insert("ID".into(), Value::String(ct.id.clone()));
    m.insert("Labels".into(), string_map(&ct.labels));
    m.insert("Image".into(), Value::String(ct.image.clone()));
    let rt = ct.runtime.clone().unwrap_or_default();
    let mut r = Map::new();
    r.insert("Name".into(), Value::String(rt.name));
    r.insert("Options".into(), any_json(&rt.options));
    m.insert("Runtime".into(), Value::Object(r));
    if spec.is_none() {
        m.insert("Spec".into(), any_json(&ct.spec));
    }
    m.insert("SnapshotKey".into(), Value::String(ct.snapshot_key.clone()));
    m.insert("Snapshotter".into(), Value::String(ct.snapshotter.clone()));
    m.insert("CreatedAt".into(), Value::String(go_time(&ct.created_at)));
    m.insert("UpdatedAt".into(), Value::String(go_time(&ct.updated_at)));
    let ext = if ct.extensions.is_empty() {
        Value::Null
    } else {
        let sorted: BTreeMap<&String, Value> = ct
            .extensions
            .iter()
            .map(|(k, v)| (k, any_json(&Some(v.clone()))))
            .collect();
        serde_json::to_value(sorted)?
    };
    m.insert("Extensions".into(), ext);
    if let Some(s) = spec {
        m.insert("Spec".into(), s);
    }
    out(&format!("{}\n", json::indent(&Value::Object(m))?));
    Ok(())
}

/// A protobuf time as Go's `time.Time` JSON (RFC 3339 with nanoseconds, UTC); Go's zero
/// time when absent.
fn go_time(t: &Option<prost_types::Timestamp>) -> String {
    match t {
        Some(_) => ocibox::timefmt::format(time_of(t)),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Go's `containerd.ProcessStatus` words.
fn status_word(s: i32) -> &'static str {
    match TaskStatus::try_from(s) {
        Ok(TaskStatus::Created) => "created",
        Ok(TaskStatus::Running) => "running",
        Ok(TaskStatus::Stopped) => "stopped",
        Ok(TaskStatus::Paused) => "paused",
        Ok(TaskStatus::Pausing) => "pausing",
        _ => "unknown",
    }
}

/// Go's `%v` of a `time.Time` (`2006-01-02 15:04:05.999999999 -0700 MST`, UTC here).
fn go_time_v(t: &Option<prost_types::Timestamp>) -> String {
    match t {
        None => "0001-01-01 00:00:00 +0000 UTC".into(),
        Some(_) => go_time_string(time_of(t)),
    }
}

/// ctr's `deleteContainer`: a stopped or created task goes first, a running one refuses.
fn delete_one(c: &Client, id: &str, keep_snapshot: bool) -> Result<()> {
    let ct = load(c, id)?;
    let ch = c.channel()?;
    let task = c.run(async {
        Ok(TasksClient::with_origin(ch.clone(), origin())
            .get(c.req(TaskGetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .ok()
            .and_then(|r| r.into_inner().process))
    })?;
    if let Some(t) = task {
        let st = TaskStatus::try_from(t.status).unwrap_or(TaskStatus::Unknown);
        if st != TaskStatus::Stopped && st != TaskStatus::Created {
            bail!(
                "cannot delete a non stopped container: {{{} {} {}}}",
                status_word(t.status),
                t.exit_status,
                go_time_v(&t.exited_at)
            );
        }
        c.run(async {
            TasksClient::with_origin(ch.clone(), origin())
                .delete(c.req(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        })?;
    }
    if !keep_snapshot && !ct.snapshot_key.is_empty() {
        if ct.snapshotter.is_empty() {
            return Err(ErrorKind::InvalidArgument.err(
                "container.Snapshotter must be set to cleanup rootfs snapshot: invalid argument",
            ));
        }
        let r = c.run(async {
            SnapshotsClient::with_origin(ch.clone(), origin())
                .remove(c.req(RemoveSnapshotRequest {
                    snapshotter: ct.snapshotter.clone(),
                    key: ct.snapshot_key.clone(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        if let Err(e) = r {
            if kind_of(&e) != ErrorKind::NotFound {
                return Err(e);
            }
        }
    }
    c.run(async {
        client(ch)
            .delete(c.req(DeleteContainerRequest { id: id.to_string() }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn delete(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    c.channel()?;
    if p.args.is_empty() {
        return Err(ErrorKind::InvalidArgument
            .err("must specify at least one container to delete: invalid argument"));
    }
    let mut first_err = None;
    for id in &p.args {
        if let Err(e) = delete_one(&c, id, p.bool("keep-snapshot")) {
            log_error(&format!("failed to delete container {id:?}"), &e);
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn label(p: &Parsed) -> Result<()> {
    let id = p.first().to_string();
    let labels = label_args(p.args.get(1..).unwrap_or_default());
    let c = Client::new(p)?;
    load(&c, &id)?;
    let ch = c.channel()?;
    let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
    let updated = c.run(async {
        let r = client(ch)
            .update(c.req(UpdateContainerRequest {
                container: Some(Container {
                    id,
                    labels,
                    ..Default::default()
                }),
                update_mask: (!paths.is_empty()).then_some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().container.unwrap_or_default())
    })?;
    // ctr joins them in Go's map order (random); sorted here.
    out(&format!("{}\n", label_pairs(&updated.labels).join(",")));
    Ok(())
}
