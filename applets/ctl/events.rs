//! `ctr events`: every event the daemon publishes, one line each (`TIME NAMESPACE TOPIC
//! JSON`), until interrupted. The JSON is what Go's encoder writes for containerd's event
//! types (proto field names, omitempty, times in RFC 3339).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use ocibox::api::channel::origin;
use ocibox::api::events as ev;
use ocibox::api::services::events::v1::events_client::EventsClient;
use ocibox::api::services::events::v1::SubscribeRequest;
use ocibox::api::services::images::v1 as img;
use ocibox::api::types::Mount;
use ocibox::ctl::cli::{Command, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{go_time_string, log_warn, time_of};
use ocibox::ctl::out;
use prost::Message;
use serde_json::{Map, Value};

pub const COMMAND: Command = Command {
    aliases: &["event"],
    action: Some(events),
    ..Command::new("events", "display containerd events")
};

/// A JSON object built as Go's encoder writes a struct with `omitempty` fields.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn s(mut self, k: &str, v: &str) -> Obj {
        if !v.is_empty() {
            self.0.insert(k.into(), Value::String(v.into()));
        }
        self
    }
    fn n(mut self, k: &str, v: u64) -> Obj {
        if v != 0 {
            self.0.insert(k.into(), Value::from(v));
        }
        self
    }
    fn b(mut self, k: &str, v: bool) -> Obj {
        if v {
            self.0.insert(k.into(), Value::Bool(true));
        }
        self
    }
    fn map(mut self, k: &str, m: &HashMap<String, String>) -> Obj {
        if !m.is_empty() {
            let sorted: BTreeMap<&String, &String> = m.iter().collect();
            self.0.insert(
                k.into(),
                serde_json::to_value(sorted).unwrap_or(Value::Null),
            );
        }
        self
    }
    /// A gogo stdtime field: never omitted (a struct), Go's zero time when unset.
    fn t(mut self, k: &str, v: &Option<prost_types::Timestamp>) -> Obj {
        let s = match v {
            Some(_) => ocibox::timefmt::format(time_of(v)),
            None => "0001-01-01T00:00:00Z".into(),
        };
        self.0.insert(k.into(), Value::String(s));
        self
    }
    fn o(mut self, k: &str, v: Option<Obj>) -> Obj {
        if let Some(o) = v {
            self.0.insert(k.into(), Value::Object(o.0));
        }
        self
    }
    fn list(mut self, k: &str, v: Vec<Obj>) -> Obj {
        if !v.is_empty() {
            self.0.insert(
                k.into(),
                Value::Array(v.into_iter().map(|o| Value::Object(o.0)).collect()),
            );
        }
        self
    }
}

fn any(a: &Option<prost_types::Any>) -> Option<Obj> {
    a.as_ref().map(|a| {
        let mut o = Obj::default().s("type_url", &a.type_url);
        if !a.value.is_empty() {
            o.0.insert(
                "value".into(),
                Value::String(ocibox::registry::base64::encode(&a.value)),
            );
        }
        o
    })
}

fn mount(m: &Mount) -> Obj {
    let o = Obj::default()
        .s("type", &m.r#type)
        .s("source", &m.source)
        .s("target", &m.target);
    let mut o = o;
    if !m.options.is_empty() {
        o.0.insert(
            "options".into(),
            serde_json::to_value(&m.options).unwrap_or(Value::Null),
        );
    }
    o
}

/// The event an Any carries, as Go's `json.Marshal` of its containerd type; None for a
/// type this build does not know (ctr warns and skips those).
fn event_json(a: &prost_types::Any) -> Option<Obj> {
    let name = a.type_url.rsplit('/').next().unwrap_or("");
    let v = &a.value[..];
    macro_rules! dec {
        ($t:ty) => {
            <$t>::decode(v).ok()?
        };
    }
    Some(match name {
        "containerd.events.ContainerCreate" => {
            let e = dec!(ev::ContainerCreate);
            Obj::default().s("id", &e.id).s("image", &e.image).o(
                "runtime",
                e.runtime.map(|r| {
                    Obj::default()
                        .s("name", &r.name)
                        .o("options", any(&r.options))
                }),
            )
        }
        "containerd.events.ContainerUpdate" => {
            let e = dec!(ev::ContainerUpdate);
            Obj::default()
                .s("id", &e.id)
                .s("image", &e.image)
                .map("labels", &e.labels)
                .s("snapshot_key", &e.snapshot_key)
        }
        "containerd.events.ContainerDelete" => {
            Obj::default().s("id", &dec!(ev::ContainerDelete).id)
        }
        "containerd.events.ContentCreate" => {
            let e = dec!(ev::ContentCreate);
            Obj::default()
                .s("digest", &e.digest)
                .n("size", e.size.max(0) as u64)
        }
        "containerd.events.ContentDelete" => {
            Obj::default().s("digest", &dec!(ev::ContentDelete).digest)
        }
        "containerd.services.images.v1.ImageCreate" | "containerd.events.ImageCreate" => {
            let e = dec!(img::ImageCreate);
            Obj::default().s("name", &e.name).map("labels", &e.labels)
        }
        "containerd.services.images.v1.ImageUpdate" | "containerd.events.ImageUpdate" => {
            let e = dec!(img::ImageUpdate);
            Obj::default().s("name", &e.name).map("labels", &e.labels)
        }
        "containerd.services.images.v1.ImageDelete" | "containerd.events.ImageDelete" => {
            Obj::default().s("name", &dec!(img::ImageDelete).name)
        }
        "containerd.events.NamespaceCreate" => {
            let e = dec!(ev::NamespaceCreate);
            Obj::default().s("name", &e.name).map("labels", &e.labels)
        }
        "containerd.events.NamespaceUpdate" => {
            let e = dec!(ev::NamespaceUpdate);
            Obj::default().s("name", &e.name).map("labels", &e.labels)
        }
        "containerd.events.NamespaceDelete" => {
            Obj::default().s("name", &dec!(ev::NamespaceDelete).name)
        }
        // ctr 1.6's snapshot events have no `snapshotter` field (1.7 added it, and
        // ociboxd sends it): ctr 1.6 drops it when it decodes them, and so does this.
        "containerd.events.SnapshotPrepare" => {
            let e = dec!(ev::SnapshotPrepare);
            Obj::default().s("key", &e.key).s("parent", &e.parent)
        }
        "containerd.events.SnapshotCommit" => {
            let e = dec!(ev::SnapshotCommit);
            Obj::default().s("key", &e.key).s("name", &e.name)
        }
        "containerd.events.SnapshotRemove" => {
            Obj::default().s("key", &dec!(ev::SnapshotRemove).key)
        }
        "containerd.events.TaskCreate" => {
            let e = dec!(ev::TaskCreate);
            Obj::default()
                .s("container_id", &e.container_id)
                .s("bundle", &e.bundle)
                .list("rootfs", e.rootfs.iter().map(mount).collect())
                .o(
                    "io",
                    e.io.map(|io| {
                        Obj::default()
                            .s("stdin", &io.stdin)
                            .s("stdout", &io.stdout)
                            .s("stderr", &io.stderr)
                            .b("terminal", io.terminal)
                    }),
                )
                .s("checkpoint", &e.checkpoint)
                .n("pid", e.pid.into())
        }
        "containerd.events.TaskStart" => {
            let e = dec!(ev::TaskStart);
            Obj::default()
                .s("container_id", &e.container_id)
                .n("pid", e.pid.into())
        }
        "containerd.events.TaskDelete" => {
            let e = dec!(ev::TaskDelete);
            Obj::default()
                .s("container_id", &e.container_id)
                .n("pid", e.pid.into())
                .n("exit_status", e.exit_status.into())
                .t("exited_at", &e.exited_at)
                .s("id", &e.id)
        }
        "containerd.events.TaskExit" => {
            let e = dec!(ev::TaskExit);
            Obj::default()
                .s("container_id", &e.container_id)
                .s("id", &e.id)
                .n("pid", e.pid.into())
                .n("exit_status", e.exit_status.into())
                .t("exited_at", &e.exited_at)
        }
        "containerd.events.TaskOOM" => {
            Obj::default().s("container_id", &dec!(ev::TaskOom).container_id)
        }
        "containerd.events.TaskExecAdded" => {
            let e = dec!(ev::TaskExecAdded);
            Obj::default()
                .s("container_id", &e.container_id)
                .s("exec_id", &e.exec_id)
        }
        "containerd.events.TaskExecStarted" => {
            let e = dec!(ev::TaskExecStarted);
            Obj::default()
                .s("container_id", &e.container_id)
                .s("exec_id", &e.exec_id)
                .n("pid", e.pid.into())
        }
        "containerd.events.TaskPaused" => {
            Obj::default().s("container_id", &dec!(ev::TaskPaused).container_id)
        }
        "containerd.events.TaskResumed" => {
            Obj::default().s("container_id", &dec!(ev::TaskResumed).container_id)
        }
        "containerd.events.TaskCheckpointed" => {
            let e = dec!(ev::TaskCheckpointed);
            Obj::default()
                .s("container_id", &e.container_id)
                .s("checkpoint", &e.checkpoint)
        }
        _ => return None,
    })
}

/// Go's `json.Marshal` (compact, HTML-safe).
fn compact(o: Obj) -> String {
    serde_json::to_string(&Value::Object(o.0))
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn events(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        let mut s = EventsClient::with_origin(ch, origin())
            .subscribe(c.req(SubscribeRequest {
                filters: p.args.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner();
        while let Some(e) = s.message().await.map_err(grpc)? {
            let json = match &e.event {
                None => String::new(),
                Some(a) => match event_json(a) {
                    Some(o) => compact(o),
                    None => {
                        log_warn("cannot unmarshal an event from Any");
                        continue;
                    }
                },
            };
            out(&format!(
                "{} {} {} {json}\n",
                go_time_string(time_of(&e.timestamp)),
                e.namespace,
                e.topic
            ));
        }
        Ok(())
    })
}
