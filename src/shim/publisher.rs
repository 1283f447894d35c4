//! The event publisher: task lifecycle events sent to containerd with
//! `containerd.services.events.ttrpc.v1.Events/Forward` on `TTRPC_ADDRESS`, in order, from
//! one thread, reconnecting when containerd restarts.
//!
//! The same thread notices when the shim goes idle (no event and no request for
//! [`IDLE_AFTER`]): it then closes its connection (the ttrpc client's two threads end) and
//! runs the [`super::trim`] of memory touched while busy. It is the shim's one thread that
//! waits on a queue, so idleness costs no thread and no timer wake-ups of its own.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::context::Context;
use containerd_shim_protos::EventsClient;

pub use crate::events::Event;
use crate::events::{envelope, NAMESPACE_KEY};
use crate::ttrpc::client::ReconnectingClient;

/// How long one event is retried while containerd is away.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// Quiet this long after the last event or request and the shim counts as idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// What the publishing thread is handed.
enum Msg {
    Event(SystemTime, Event),
    /// A request was served: the shim is busy again.
    Activity,
}

/// Hands events to the publishing thread; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<Msg>,
}

impl Publisher {
    /// Starts the publishing thread for `namespace`, sending to `ttrpc_address` (a socket
    /// path, with or without `unix://`). With no address the events are dropped.
    pub fn start(ttrpc_address: Option<String>, namespace: String) -> anyhow::Result<Publisher> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(256 * 1024)
            .spawn(move || forward_loop(rx, ttrpc_address, namespace))?;
        Ok(Publisher { tx })
    }

    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(Msg::Event(SystemTime::now(), e));
    }

    /// Tells the thread a request was served, so the idle trim runs again afterwards.
    pub fn activity(&self) {
        let _ = self.tx.send(Msg::Activity);
    }
}

/// Where the publishing thread is on its way to idle.
#[derive(Clone, Copy)]
enum Phase {
    /// Something happened less than [`IDLE_AFTER`] ago.
    Busy,
    /// The connection was dropped; its two threads are exiting, and the code they run
    /// would be mapped again right after a trim, so the trim waits for [`SETTLE`].
    Closing,
    /// Trimmed; nothing to do until the next message.
    Idle,
}

/// How long the dropped client's threads get to finish exiting.
const SETTLE: Duration = Duration::from_millis(100);

fn forward_loop(rx: Receiver<Msg>, addr: Option<String>, ns: String) {
    let mut client = addr.as_deref().map(ReconnectingClient::new);
    // Startup itself touched memory worth trimming.
    let mut phase = Phase::Busy;
    loop {
        let got = match phase {
            Phase::Busy => rx.recv_timeout(IDLE_AFTER),
            Phase::Closing => rx.recv_timeout(SETTLE),
            Phase::Idle => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let msg = match (got, phase) {
            (Ok(m), _) => m,
            (Err(RecvTimeoutError::Timeout), Phase::Busy) => {
                phase = if client.as_mut().is_some_and(|c| c.disconnect()) {
                    Phase::Closing
                } else {
                    super::trim::trim_idle();
                    Phase::Idle
                };
                continue;
            }
            (Err(RecvTimeoutError::Timeout), _) => {
                super::trim::trim_idle();
                phase = Phase::Idle;
                continue;
            }
            (Err(RecvTimeoutError::Disconnected), _) => return,
        };
        phase = Phase::Busy;
        if let (Msg::Event(when, event), Some(client)) = (msg, client.as_mut()) {
            forward(client, &ns, when, &event);
        }
    }
}

/// Sends one event, retrying for [`RETRY_FOR`] while containerd is away. An error status
/// from containerd is final: retrying will not change it.
fn forward(client: &mut ReconnectingClient, ns: &str, when: SystemTime, event: &Event) {
    let mut req = ForwardRequest::new();
    req.envelope = MessageField::some(envelope(ns, when, event));
    let _ = client.call_with_retry(RETRY_FOR, |c| {
        let mut md = HashMap::new();
        md.insert(NAMESPACE_KEY.to_string(), vec![ns.to_string()]);
        let ctx = Context {
            metadata: md,
            timeout_nano: 5_000_000_000,
        };
        EventsClient::new(c.clone()).forward(ctx, &req)
    });
}
