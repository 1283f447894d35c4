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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::context::Context;
use containerd_shim_protos::{Client, EventsClient};

/// The metadata key containerd reads the namespace from on ttrpc.
pub const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";
/// How long one event is retried while containerd is away.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// Quiet this long after the last event or request and the shim counts as idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// A task event: its topic and its message.
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
    /// The topic and the Any the envelope carries.
    fn encode(&self) -> (&'static str, &'static str, Vec<u8>) {
        let (topic, name, bytes) = match self {
            Event::Create(e) => ("/tasks/create", "TaskCreate", e.write_to_bytes()),
            Event::Start(e) => ("/tasks/start", "TaskStart", e.write_to_bytes()),
            Event::Exit(e) => ("/tasks/exit", "TaskExit", e.write_to_bytes()),
            Event::Delete(e) => ("/tasks/delete", "TaskDelete", e.write_to_bytes()),
            Event::ExecAdded(e) => ("/tasks/exec-added", "TaskExecAdded", e.write_to_bytes()),
            Event::ExecStarted(e) => ("/tasks/exec-started", "TaskExecStarted", e.write_to_bytes()),
            Event::Paused(e) => ("/tasks/paused", "TaskPaused", e.write_to_bytes()),
            Event::Resumed(e) => ("/tasks/resumed", "TaskResumed", e.write_to_bytes()),
            Event::Oom(e) => ("/tasks/oom", "TaskOOM", e.write_to_bytes()),
        };
        (topic, name, bytes.unwrap_or_default())
    }
}

/// A timestamp for `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

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

fn connect(addr: &str) -> Option<EventsClient> {
    let path = addr.strip_prefix("unix://").unwrap_or(addr);
    Client::connect(&format!("unix://{path}"))
        .ok()
        .map(EventsClient::new)
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
    let mut client: Option<EventsClient> = None;
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
                phase = if client.take().is_some() {
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
        if let (Msg::Event(when, event), Some(addr)) = (msg, addr.as_deref()) {
            forward(&mut client, addr, &ns, when, event);
        }
    }
}

/// Sends one event, retrying for [`RETRY_FOR`] while containerd is away.
fn forward(
    client: &mut Option<EventsClient>,
    addr: &str,
    ns: &str,
    when: SystemTime,
    event: Event,
) {
    let (topic, name, bytes) = event.encode();
    let mut req = ForwardRequest::new();
    req.envelope = MessageField::some(Envelope {
        timestamp: MessageField::some(timestamp(when)),
        namespace: ns.to_string(),
        topic: topic.to_string(),
        event: MessageField::some(Any {
            type_url: format!("containerd.events.{name}"),
            value: bytes,
            ..Default::default()
        }),
        ..Default::default()
    });
    let started = SystemTime::now();
    let mut delay = Duration::from_millis(50);
    loop {
        if client.is_none() {
            *client = connect(addr);
        }
        if let Some(c) = client.as_ref() {
            let mut md = HashMap::new();
            md.insert(NAMESPACE_KEY.to_string(), vec![ns.to_string()]);
            let ctx = Context {
                metadata: md,
                timeout_nano: 5_000_000_000,
            };
            match c.forward(ctx, &req) {
                Ok(_) => return,
                // containerd answered: an error status will not change by retrying.
                Err(containerd_shim_protos::ttrpc::Error::RpcStatus(_)) => return,
                Err(_) => *client = None,
            }
        }
        if started.elapsed().unwrap_or_default() > RETRY_FOR {
            return;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
