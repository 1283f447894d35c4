//! The client side of the transport: one HTTP/2 connection on a unix socket, usable as the
//! inner service of every generated client (`VersionClient::with_origin(ch, origin())`).
//! No tonic transport (no tower balance or buffer): a ctl call is one connection.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tonic::codegen::http::{Request, Response, Uri};

/// A connected channel; clone it for several clients on the same connection.
#[derive(Clone)]
pub struct UnixChannel {
    sender: SendRequest<Body>,
}

/// The origin requests carry (`:authority`), as containerd's Go client sends for a unix
/// socket.
pub fn origin() -> Uri {
    Uri::from_static("http://localhost")
}

impl UnixChannel {
    /// Connect to `path` and run the HTTP/2 handshake; the connection is driven by a task
    /// on the current tokio runtime until every clone is dropped.
    pub async fn connect(path: &Path) -> Result<UnixChannel> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("connect to {}", path.display()))?;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP/2 handshake on {}", path.display()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(UnixChannel { sender })
    }
}

impl tower_service::Service<Request<Body>> for UnixChannel {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        Box::pin(self.sender.send_request(req))
    }
}
