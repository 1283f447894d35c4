//! What the store services share around their methods: running blocking store work off the
//! runtime thread, server streams fed from a channel, and the `containerd-lease` header.

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::{Request, Status};

/// The metadata key containerd's clients put the lease of a request under
/// (`leases.WithLease`).
pub const LEASE_HEADER: &str = "containerd-lease";

/// The lease a request names, if any.
pub fn lease_of<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub use super::blocking;

/// A server stream fed by a channel: the producer sends items (or one error) and drops its
/// sender to end the stream.
pub struct ChannelStream<T> {
    rx: tokio::sync::mpsc::Receiver<Result<T, Status>>,
}

impl<T> ChannelStream<T> {
    /// A stream with room for `depth` items in flight, and its sender.
    pub fn new(depth: usize) -> (tokio::sync::mpsc::Sender<Result<T, Status>>, Self) {
        let (tx, rx) = tokio::sync::mpsc::channel(depth);
        (tx, ChannelStream { rx })
    }

    /// A stream of the given items, already complete.
    pub fn of(items: Vec<T>) -> Self {
        let (tx, s) = Self::new(items.len().max(1));
        for i in items {
            // The channel has room for every item; nothing can fail here.
            let _ = tx.try_send(Ok(i));
        }
        s
    }
}

impl<T> tonic::codegen::tokio_stream::Stream for ChannelStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
