//! The daemon's event exchange: every service publishes what it changed (containerd's
//! `/images/create`, `/tasks/exit`, …) and Events.Subscribe streams it to clients. One
//! broadcast channel; a subscriber too slow to keep up loses the oldest events rather than
//! stalling publishers (containerd drops for a slow subscriber too).

use std::sync::Arc;
use std::time::SystemTime;

use prost::{Message, Name};

/// One published event as containerd's Envelope carries it.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub timestamp: SystemTime,
    pub namespace: String,
    pub topic: String,
    pub event: prost_types::Any,
}

pub struct Exchange {
    tx: tokio::sync::broadcast::Sender<Arc<Envelope>>,
}

/// Events a subscriber may lag behind before it loses the oldest.
const BACKLOG: usize = 1024;

impl Default for Exchange {
    fn default() -> Self {
        Exchange::new()
    }
}

impl Exchange {
    pub fn new() -> Exchange {
        Exchange {
            tx: tokio::sync::broadcast::channel(BACKLOG).0,
        }
    }

    /// Publish `event` on `topic` in `namespace` (no subscriber is fine).
    pub fn publish<M: Message + Name>(&self, namespace: &str, topic: &str, event: &M) {
        self.publish_any(namespace, topic, to_any(event));
    }

    /// Publish an event already packed (Events.Publish and Forward, shims' events).
    pub fn publish_any(&self, namespace: &str, topic: &str, event: prost_types::Any) {
        let _ = self.tx.send(Arc::new(Envelope {
            timestamp: SystemTime::now(),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event,
        }));
    }

    /// Publish an envelope as it came (Forward keeps the sender's timestamp).
    pub fn forward(&self, env: Envelope) {
        let _ = self.tx.send(Arc::new(env));
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Envelope>> {
        self.tx.subscribe()
    }
}

/// Pack `m` as containerd's typeurl does for a proto message: the type URL is the message's
/// full proto name with no prefix (`containerd.events.TaskExit`), which is what ctr's
/// `events` and the Go client look up to decode it.
pub fn to_any<M: Message + Name>(m: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::full_name(),
        value: m.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::events::NamespaceCreate;

    #[test]
    fn type_urls_are_bare_proto_names() {
        let a = to_any(&NamespaceCreate {
            name: "x".into(),
            labels: Default::default(),
        });
        assert_eq!(a.type_url, "containerd.events.NamespaceCreate");
    }

    #[test]
    fn subscribers_see_what_is_published() {
        let ex = Exchange::new();
        let mut rx = ex.subscribe();
        ex.publish("default", "/namespaces/create", &NamespaceCreate::default());
        let e = rx.try_recv().unwrap();
        assert_eq!(
            (e.namespace.as_str(), e.topic.as_str()),
            ("default", "/namespaces/create")
        );
    }
}
