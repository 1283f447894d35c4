//! containerd.services.streaming.v1.Streaming: the streams a Transfer uses besides its own
//! request (progress, credentials, an archive's bytes), as containerd 1.7 serves them
//! (`services/streaming`, `plugins/streaming` manager).
//!
//! A client opens `Stream`, sends `StreamInit{id}` first; the stream is registered under
//! (namespace, id) and answered with an empty message, after which the client names the id
//! in a Transfer request. The Transfer takes the stream ([`Streams::take`]) and talks over
//! it: what it sends goes to the client, what the client sends it receives. The call ends
//! when the Transfer drops the stream (the server side closes, the client reads EOF) or the
//! client goes away. A stream never taken is forgotten when its client leaves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use prost_types::Any;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming as Inbound};

use crate::api::namespace;
use crate::api::services::streaming::v1::streaming_server::{Streaming, StreamingServer};
use crate::api::services::streaming::v1::StreamInit;
use crate::api::typeurl;
use crate::daemon::context::Daemon;
use crate::errdefs::{err, ErrorKind};

use super::plumbing::ChannelStream;

/// Messages buffered each way before a side waits for the other.
const DEPTH: usize = 64;

/// One registered stream, as the Transfer that takes it sees it.
pub struct Stream {
    pub id: String,
    to_client: mpsc::Sender<Result<Any, Status>>,
    from_client: mpsc::Receiver<Any>,
    /// Set when the client's side ended with an error (reset, connection lost) rather
    /// than closing.
    broken: Arc<AtomicBool>,
}

impl Stream {
    /// True once the client's side ended with an error instead of a close: what was
    /// received may be incomplete.
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    fn gone(&self) -> anyhow::Error {
        anyhow!("stream {}: the client went away", self.id)
    }

    /// Send `a` to the client (waits while the client is behind).
    pub async fn send(&self, a: Any) -> Result<()> {
        self.to_client.send(Ok(a)).await.map_err(|_| self.gone())
    }

    /// [`send`](Self::send) from a blocking thread.
    pub fn blocking_send(&self, a: Any) -> Result<()> {
        self.to_client.blocking_send(Ok(a)).map_err(|_| self.gone())
    }

    /// The client's next message; None once it closed its side or went away.
    pub async fn recv(&mut self) -> Option<Any> {
        self.from_client.recv().await
    }

    /// [`recv`](Self::recv) from a blocking thread.
    pub fn blocking_recv(&mut self) -> Option<Any> {
        self.from_client.blocking_recv()
    }
}

/// The registered streams by (namespace, id), as containerd's stream manager keeps them.
#[derive(Default)]
pub struct Streams {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    generation: u64,
    by_key: HashMap<(String, String), (u64, Stream)>,
}

impl Streams {
    pub fn new() -> Arc<Streams> {
        Arc::new(Streams::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, ns: &str, s: Stream) -> Result<u64> {
        let mut r = self.lock();
        let key = (ns.to_owned(), s.id.clone());
        if r.by_key.contains_key(&key) {
            return Err(err(
                ErrorKind::AlreadyExists,
                format!("stream {}: already exists", s.id),
            ));
        }
        r.generation += 1;
        let g = r.generation;
        r.by_key.insert(key, (g, s));
        Ok(g)
    }

    /// Take stream `id` of namespace `ns` for a Transfer (it is no longer registered).
    pub fn take(&self, ns: &str, id: &str) -> Result<Stream> {
        self.lock()
            .by_key
            .remove(&(ns.to_owned(), id.to_owned()))
            .map(|(_, s)| s)
            .ok_or_else(|| err(ErrorKind::NotFound, format!("stream {id}: not found")))
    }

    /// Forget a stream nobody took once its client left (only the registration `g` made).
    fn forget(&self, ns: &str, id: &str, g: u64) {
        let mut r = self.lock();
        let key = (ns.to_owned(), id.to_owned());
        if r.by_key.get(&key).is_some_and(|(gen, _)| *gen == g) {
            r.by_key.remove(&key);
        }
    }

    /// How many streams wait to be taken (for tests and debugging).
    pub fn waiting(&self) -> usize {
        self.lock().by_key.len()
    }
}

pub struct StreamingService {
    streams: Arc<Streams>,
}

pub fn server(d: &Arc<Daemon>, streams: &Arc<Streams>) -> StreamingServer<StreamingService> {
    super::limited!(
        StreamingServer::new(StreamingService {
            streams: streams.clone(),
        }),
        d
    )
}

#[tonic::async_trait]
impl Streaming for StreamingService {
    type StreamStream = ChannelStream<Any>;

    async fn stream(
        &self,
        req: Request<Inbound<Any>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let ns = namespace::of(&req)?;
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before its StreamInit"))?;
        let init: StreamInit =
            typeurl::unpack(&first).map_err(|e| Status::invalid_argument(format!("{e:#}")))?;
        if init.id.is_empty() {
            return Err(Status::invalid_argument("stream id must not be empty"));
        }
        let (to_client, out) = ChannelStream::new(DEPTH);
        let (in_tx, from_client) = mpsc::channel(DEPTH);
        // The answer goes first, before anything a Transfer sends.
        let _ = to_client.try_send(Ok(typeurl::empty()));
        let broken = Arc::new(AtomicBool::new(false));
        let stream = Stream {
            id: init.id.clone(),
            to_client,
            from_client,
            broken: broken.clone(),
        };
        let g = self
            .streams
            .register(&ns, stream)
            .map_err(|e| crate::api::status::to_status(&e))?;
        let streams = self.streams.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => {
                        if in_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        broken.store(true, Ordering::Release);
                        break;
                    }
                }
            }
            drop(in_tx);
            streams.forget(&ns, &init.id, g);
        });
        Ok(Response::new(out))
    }
}
