//! One ttrpc client connection driven by the daemon's tokio runtime: a task per connection
//! writes the requests and reads the responses (matched by stream id), so a shim costs the
//! daemon no thread. (The ttrpc crate's sync client runs two threads per connection, one
//! waking every 10 ms to poll: with a hundred tasks that was two hundred threads and ten
//! thousand wake-ups a second.)
//!
//! Calls are made from blocking code (the manager runs in `spawn_blocking`): the request is
//! handed to the connection's task and the caller waits on a channel for the answer. The
//! connection ends when the peer closes it; [`Connection::closed`] resolves then, which is
//! how the manager learns at once that a shim died (containerd's ttrpc on-close callback).

use std::collections::HashMap;
use std::time::Duration;

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::context::Context;
use containerd_shim_protos::ttrpc::proto::{Code, KeyValue, Request, Response};
use containerd_shim_protos::ttrpc::{self, Error};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

use crate::ttrpc::frames::{Header, Piece, Splitter, TYPE_REQUEST, TYPE_RESPONSE};

type Reply = std::sync::mpsc::SyncSender<Vec<u8>>;

/// A request on its way to the connection's task: the encoded `Request` and where its
/// response body goes.
struct Outgoing {
    body: Vec<u8>,
    reply: Reply,
}

/// A connection; dropping the last handle closes it.
pub struct Connection {
    tx: mpsc::UnboundedSender<Outgoing>,
    closed: watch::Receiver<bool>,
}

impl Connection {
    /// Connects to `path` (a socket path) and starts the connection's task on `rt`.
    pub fn connect(rt: &tokio::runtime::Handle, path: &str) -> std::io::Result<Connection> {
        let std = std::os::unix::net::UnixStream::connect(path)?;
        std.set_nonblocking(true)?;
        let _entered = rt.enter();
        let stream = UnixStream::from_std(std)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(false);
        rt.spawn(drive(stream, rx, closed_tx));
        Ok(Connection { tx, closed })
    }

    /// Resolves once the connection has ended (the peer closed it or it broke).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.clone();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow() || self.tx.is_closed()
    }

    /// Sends `req` as `service`/`method` and waits for the answer (blocking). Errors as the
    /// ttrpc crate's client gives them: `RpcStatus` for an error status, `RemoteClosed`
    /// when the connection ended first, `Others` for a timeout.
    pub fn unary<Req: Message, Resp: Message>(
        &self,
        ctx: Context,
        service: &str,
        method: &str,
        req: &Req,
    ) -> ttrpc::Result<Resp> {
        let mut r = Request::new();
        r.service = service.to_string();
        r.method = method.to_string();
        r.timeout_nano = ctx.timeout_nano;
        r.metadata = ctx
            .metadata
            .into_iter()
            .flat_map(|(key, values)| {
                values.into_iter().map(move |value| {
                    let mut kv = KeyValue::new();
                    kv.key = key.clone();
                    kv.value = value;
                    kv
                })
            })
            .collect();
        r.payload = req
            .write_to_bytes()
            .map_err(|e| Error::Others(format!("encode request: {e}")))?;
        let body = r
            .write_to_bytes()
            .map_err(|e| Error::Others(format!("encode request: {e}")))?;
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Outgoing { body, reply })
            .map_err(|_| Error::LocalClosed)?;
        let got = if ctx.timeout_nano > 0 {
            answer
                .recv_timeout(Duration::from_nanos(ctx.timeout_nano as u64))
                .map_err(|e| match e {
                    std::sync::mpsc::RecvTimeoutError::Timeout => {
                        Error::Others("Receive packet timeout".into())
                    }
                    std::sync::mpsc::RecvTimeoutError::Disconnected => Error::RemoteClosed,
                })?
        } else {
            answer.recv().map_err(|_| Error::RemoteClosed)?
        };
        let res = Response::parse_from_bytes(&got)
            .map_err(|e| Error::Others(format!("decode response: {e}")))?;
        if let Some(s) = res.status.as_ref() {
            if s.code.value() != Code::OK as i32 {
                return Err(Error::RpcStatus(s.clone()));
            }
        }
        Resp::parse_from_bytes(&res.payload)
            .map_err(|e| Error::Others(format!("decode response payload: {e}")))
    }
}

/// The connection's task: writes what comes from `rx`, reads responses and hands each to
/// the caller waiting for its stream id, until the peer closes the connection or every
/// handle is dropped. Waiting callers see their channel closed when it ends.
async fn drive(
    stream: UnixStream,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    closed: watch::Sender<bool>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut waiting: HashMap<u32, Reply> = HashMap::new();
    let mut split = Splitter::default();
    let mut next_stream: u32 = 1;
    'conn: loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                let id = next_stream;
                // Client streams are odd, as Go's ttrpc numbers them.
                next_stream = next_stream.wrapping_add(2);
                let h = Header {
                    length: out.body.len() as u32,
                    stream_id: id,
                    kind: TYPE_REQUEST,
                    flags: 0,
                };
                waiting.insert(id, out.reply);
                let frame = [&h.encode()[..], &out.body].concat();
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
            }
            ready = rd.readable() => {
                if ready.is_err() {
                    break;
                }
                // Not held across an await: lives on the stack, not in the task.
                let mut buf = [0u8; 4096];
                match rd.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => split.feed(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
                while let Some(piece) = split.next_piece() {
                    match piece {
                        Piece::Frame(h, body) if h.kind == TYPE_RESPONSE => {
                            if let Some(reply) = waiting.remove(&h.stream_id) {
                                let _ = reply.try_send(body);
                            }
                        }
                        // A response too long to hold: its caller would wait forever.
                        Piece::Oversized(_) => break 'conn,
                        Piece::Frame(..) => {}
                    }
                }
            }
        }
    }
    drop(waiting);
    let _ = closed.send(true);
}
