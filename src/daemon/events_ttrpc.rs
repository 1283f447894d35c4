//! The ttrpc events endpoint shims publish to: `<address>.ttrpc`, serving
//! `containerd.services.events.ttrpc.v1.Events/Forward` as containerd does. Each envelope
//! (task create, start, exit, delete, oom, exec added/started, paused, resumed …) goes into
//! the daemon's exchange as it came, the shim's timestamp kept, so Events.Subscribe and
//! `ctr events` see what the shims saw in the order they sent it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use containerd_shim_protos::api::Empty;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;

use crate::daemon::context::Daemon;
use crate::daemon::events;
use crate::ttrpc::handler::{unary, Methods};
use crate::ttrpc::server;

pub const FORWARD: &str = "/containerd.services.events.ttrpc.v1.Events/Forward";

/// Request threads of the endpoint: forwarding is a channel send.
const WORKERS: usize = 2;

/// The daemon's envelope of what a shim forwarded.
pub fn from_wire(e: &Envelope) -> events::Envelope {
    let timestamp = e
        .timestamp
        .as_ref()
        .map(|t| {
            UNIX_EPOCH
                + Duration::from_secs(t.seconds.max(0) as u64)
                + Duration::from_nanos(t.nanos.max(0) as u64)
        })
        .unwrap_or_else(SystemTime::now);
    let event = e
        .event
        .as_ref()
        .map(|a| prost_types::Any {
            type_url: a.type_url.clone(),
            value: a.value.clone(),
        })
        .unwrap_or_default();
    events::Envelope {
        timestamp,
        namespace: e.namespace.clone(),
        topic: e.topic.clone(),
        event,
    }
}

/// Binds `<address>.ttrpc` (replacing a stale socket, refusing one another daemon serves)
/// and serves Forward on the ttrpc server's own threads.
pub fn start(d: &Arc<Daemon>) -> Result<()> {
    let path = d.config.ttrpc_address();
    remove_stale(&path)?;
    let listener = server::bind_private(&path)
        .with_context(|| format!("failed to serve ttrpc events on {}", path.display()))?;
    let mut methods = Methods::new();
    let daemon = d.clone();
    methods.insert(
        FORWARD.to_string(),
        unary(move |req: ForwardRequest| {
            daemon.activity.mark();
            if let Some(env) = req.envelope.as_ref() {
                daemon.events.forward(from_wire(env));
            }
            Ok(Empty::new())
        }),
    );
    server::serve(methods, listener, server::Limits::with_workers(WORKERS))
}

fn remove_stale(path: &Path) -> Result<()> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "failed to serve ttrpc events on {}: address already in use",
            path.display()
        );
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove stale {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::well_known_types::any::Any;
    use containerd_shim_protos::protobuf::MessageField;

    #[test]
    fn forwarded_envelopes_keep_topic_namespace_time_and_event() {
        let mut ts =
            containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp::new();
        ts.seconds = 1_700_000_000;
        ts.nanos = 5;
        let mut any = Any::new();
        any.type_url = "containerd.events.TaskExit".into();
        any.value = vec![1, 2, 3];
        let e = Envelope {
            timestamp: MessageField::some(ts),
            namespace: "ns".into(),
            topic: "/tasks/exit".into(),
            event: MessageField::some(any),
            ..Default::default()
        };
        let d = from_wire(&e);
        assert_eq!(
            (d.namespace.as_str(), d.topic.as_str()),
            ("ns", "/tasks/exit")
        );
        assert_eq!(d.event.type_url, "containerd.events.TaskExit");
        assert_eq!(d.event.value, vec![1, 2, 3]);
        assert_eq!(
            d.timestamp,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_nanos(5)
        );
    }
}
