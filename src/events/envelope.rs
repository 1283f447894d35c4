//! Events and their envelopes: a task event's topic and its `containerd.events.*` Any, and
//! the Envelope (timestamp, namespace, topic, event) that carries it over the wire.

use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;

use super::topics;

/// A task event.
#[derive(Debug, Clone)]
pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Delete(TaskDelete),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    Paused(TaskPaused),
    Resumed(TaskResumed),
    Oom(TaskOOM),
}

impl Event {
    /// The topic this event is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Create(_) => topics::TASK_CREATE,
            Event::Start(_) => topics::TASK_START,
            Event::Exit(_) => topics::TASK_EXIT,
            Event::Delete(_) => topics::TASK_DELETE,
            Event::ExecAdded(_) => topics::TASK_EXEC_ADDED,
            Event::ExecStarted(_) => topics::TASK_EXEC_STARTED,
            Event::Paused(_) => topics::TASK_PAUSED,
            Event::Resumed(_) => topics::TASK_RESUMED,
            Event::Oom(_) => topics::TASK_OOM,
        }
    }

    /// The event as containerd's Any (`containerd.events.TaskExit`, …).
    pub fn to_any(&self) -> Any {
        let (name, bytes) = match self {
            Event::Create(e) => ("TaskCreate", e.write_to_bytes()),
            Event::Start(e) => ("TaskStart", e.write_to_bytes()),
            Event::Exit(e) => ("TaskExit", e.write_to_bytes()),
            Event::Delete(e) => ("TaskDelete", e.write_to_bytes()),
            Event::ExecAdded(e) => ("TaskExecAdded", e.write_to_bytes()),
            Event::ExecStarted(e) => ("TaskExecStarted", e.write_to_bytes()),
            Event::Paused(e) => ("TaskPaused", e.write_to_bytes()),
            Event::Resumed(e) => ("TaskResumed", e.write_to_bytes()),
            Event::Oom(e) => ("TaskOOM", e.write_to_bytes()),
        };
        Any {
            type_url: format!("containerd.events.{name}"),
            value: bytes.unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// A protobuf timestamp for `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

/// The envelope of `event`, published in `namespace` at `when`.
pub fn envelope(namespace: &str, when: SystemTime, event: &Event) -> Envelope {
    Envelope {
        timestamp: MessageField::some(timestamp(when)),
        namespace: namespace.to_string(),
        topic: event.topic().to_string(),
        event: MessageField::some(event.to_any()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_envelope() {
        let e = Event::Exit(TaskExit {
            container_id: "c1".into(),
            exit_status: 5,
            ..Default::default()
        });
        let env = envelope(
            "default",
            UNIX_EPOCH + std::time::Duration::from_secs(7),
            &e,
        );
        assert_eq!(env.topic, "/tasks/exit");
        assert_eq!(env.namespace, "default");
        assert_eq!(env.timestamp.seconds, 7);
        assert_eq!(env.event.type_url, "containerd.events.TaskExit");
        let back = TaskExit::parse_from_bytes(&env.event.value).unwrap();
        assert_eq!((back.container_id.as_str(), back.exit_status), ("c1", 5));
    }
}
