//! The `event.*` fields a subscription filter can look into (`ctr events
//! 'event.container_id==web'`): containerd's events carry field accessors generated for
//! their string fields and label maps; here the known containerd event types are decoded
//! from the envelope's `Any` and answer the same names. Numbers (pids, exit codes) are not
//! fields in containerd either. An event of another type has no fields.

use prost::{Message, Name};

use crate::api::events::*;
use crate::api::services::images::v1::{ImageCreate, ImageDelete, ImageUpdate};

type Labels = std::collections::HashMap<String, String>;

/// The value at `path` (below `event.`) of the event `any`, if it has one.
pub fn field(any: &prost_types::Any, path: &[String]) -> Option<String> {
    let [first, rest @ ..] = path else {
        return None;
    };
    let f = first.as_str();
    macro_rules! try_types {
        ($($t:ty => |$e:ident| { $($name:literal => $val:expr),* $(,)? } $(labels $l:ident)?;)*) => {
            $(
                if any.type_url == <$t>::full_name() {
                    let $e = <$t>::decode(any.value.as_slice()).ok()?;
                    $(
                        if f == $name && rest.is_empty() {
                            return Some($val.clone()).filter(|v: &String| !v.is_empty());
                        }
                    )*
                    $(
                        if f == "labels" && !rest.is_empty() {
                            return labels(&$e.$l, rest);
                        }
                    )?
                    return None;
                }
            )*
        };
    }
    try_types! {
        ContainerCreate => |e| { "id" => e.id, "image" => e.image };
        ContainerUpdate => |e| { "id" => e.id, "image" => e.image, "snapshot_key" => e.snapshot_key } labels labels;
        ContainerDelete => |e| { "id" => e.id };
        ContentCreate => |e| { "digest" => e.digest };
        ContentDelete => |e| { "digest" => e.digest };
        NamespaceCreate => |e| { "name" => e.name } labels labels;
        NamespaceUpdate => |e| { "name" => e.name } labels labels;
        NamespaceDelete => |e| { "name" => e.name };
        SnapshotPrepare => |e| { "key" => e.key, "parent" => e.parent, "snapshotter" => e.snapshotter };
        SnapshotCommit => |e| { "key" => e.key, "name" => e.name, "snapshotter" => e.snapshotter };
        SnapshotRemove => |e| { "key" => e.key, "snapshotter" => e.snapshotter };
        TaskCreate => |e| { "container_id" => e.container_id, "bundle" => e.bundle, "checkpoint" => e.checkpoint };
        TaskStart => |e| { "container_id" => e.container_id };
        TaskDelete => |e| { "container_id" => e.container_id, "id" => e.id };
        TaskExit => |e| { "container_id" => e.container_id, "id" => e.id };
        TaskOom => |e| { "container_id" => e.container_id };
        TaskExecAdded => |e| { "container_id" => e.container_id, "exec_id" => e.exec_id };
        TaskExecStarted => |e| { "container_id" => e.container_id, "exec_id" => e.exec_id };
        TaskPaused => |e| { "container_id" => e.container_id };
        TaskResumed => |e| { "container_id" => e.container_id };
        TaskCheckpointed => |e| { "container_id" => e.container_id, "checkpoint" => e.checkpoint };
        ImageCreate => |e| { "name" => e.name } labels labels;
        ImageUpdate => |e| { "name" => e.name } labels labels;
        ImageDelete => |e| { "name" => e.name };
    }
    None
}

fn labels(l: &Labels, rest: &[String]) -> Option<String> {
    l.get(&rest.join(".")).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::events::to_any;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn known_events_answer_their_string_fields() {
        let exit = to_any(&TaskExit {
            container_id: "web".into(),
            id: "web".into(),
            pid: 7,
            exit_status: 1,
            exited_at: None,
        });
        assert_eq!(field(&exit, &p("container_id")).as_deref(), Some("web"));
        assert_eq!(field(&exit, &p("pid")), None);
        let ns = to_any(&NamespaceUpdate {
            name: "n".into(),
            labels: [("a.b".to_string(), "1".to_string())].into(),
        });
        assert_eq!(field(&ns, &p("labels.a.b")).as_deref(), Some("1"));
        assert_eq!(field(&ns, &p("name")).as_deref(), Some("n"));
        let other = prost_types::Any {
            type_url: "example.com/X".into(),
            value: vec![1, 2, 3],
        };
        assert_eq!(field(&other, &p("name")), None);
        let corrupt = prost_types::Any {
            type_url: TaskExit::full_name(),
            value: vec![0xff; 3],
        };
        assert_eq!(field(&corrupt, &p("container_id")), None);
    }
}
