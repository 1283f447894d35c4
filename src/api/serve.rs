//! The server side of the transport: HTTP/2 (gRPC) on a unix socket with hyper, each
//! request dispatched by its path (`/<package>.<Service>/<Method>`) to the generated tonic
//! server of that service; a service nobody registered answers UNIMPLEMENTED, as a gRPC
//! server does. No tonic router (it would bring axum).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;
use tower_service::Service;

type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
type Handler = Box<dyn Fn(Request<Incoming>) -> ResponseFuture + Send + Sync>;

/// Services by their full gRPC name.
#[derive(Default)]
pub struct Router {
    routes: HashMap<&'static str, Handler>,
    /// Called as each request comes in (the daemon's idle tracking).
    on_request: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Serve `svc` (a generated `…Server<T>`) under its gRPC name.
    pub fn service<S>(mut self, svc: S) -> Router
    where
        S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.insert(
            S::NAME,
            Box::new(move |req| {
                let mut svc = svc.clone();
                Box::pin(async move {
                    match svc.call(req).await {
                        Ok(resp) => too_large_as_grpc_go(resp),
                        Err(never) => match never {},
                    }
                })
            }),
        );
        self
    }

    /// Call `f` as each request comes in, before it is dispatched.
    pub fn on_request(mut self, f: impl Fn() + Send + Sync + 'static) -> Router {
        self.on_request = Some(Box::new(f));
        self
    }

    /// The names served, for introspection.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.routes.keys().copied().collect();
        v.sort_unstable();
        v
    }

    fn dispatch(&self, req: Request<Incoming>) -> ResponseFuture {
        if let Some(f) = &self.on_request {
            f();
        }
        let service = service_of(req.uri().path());
        match service.and_then(|s| self.routes.get(s)) {
            Some(h) => h(req),
            None => {
                let path = req.uri().path().to_string();
                Box::pin(async move {
                    tonic::Status::unimplemented(format!("unknown service for {path}")).into_http()
                })
            }
        }
    }
}

/// tonic refuses a request over the size limit with OUT_OF_RANGE; Go's gRPC (containerd,
/// and what its clients test for) with RESOURCE_EXHAUSTED. A refused unary request's answer
/// is headers only, so the code is rewritten there; the message stays tonic's.
fn too_large_as_grpc_go(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers();
    let out_of_range = h.get("grpc-status").is_some_and(|v| v.as_bytes() == b"11");
    let too_large = h.get("grpc-message").is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
    });
    if out_of_range && too_large {
        resp.headers_mut().insert(
            "grpc-status",
            tonic::codegen::http::HeaderValue::from_static("8"),
        );
    }
    resp
}

/// `/pkg.Service/Method` → `pkg.Service`.
fn service_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (svc, method) = rest.split_once('/')?;
    (!svc.is_empty() && !method.is_empty()).then_some(svc)
}

/// Serve HTTP/2 gRPC connections from `listener` with `router` until the listener fails.
/// Each connection runs on its own task; `on_accept` sees each new connection's peer
/// (pid, uid, gid) before it is served, for the log.
pub async fn serve(
    listener: tokio::net::UnixListener,
    router: Arc<Router>,
    max_message: usize,
    on_accept: impl Fn(Option<(Option<i32>, u32, u32)>) + Send + Sync + 'static,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of fds or a connection reset before accept: wait, then keep serving
            // (an accept error must not stop the daemon).
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        on_accept(stream.peer_cred().ok().map(|c| (c.pid(), c.uid(), c.gid())));
        let router = router.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let fut = router.dispatch(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .max_frame_size(Some(max_frame(max_message)))
                .max_header_list_size(1 << 20);
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// An HTTP/2 frame is at most 16 MiB - 1; gRPC messages span frames, so this only bounds
/// one frame's buffer.
fn max_frame(max_message: usize) -> u32 {
    (max_message.clamp(16 << 10, (1 << 24) - 1)) as u32
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
        )
    )
}

#[cfg(test)]
mod tests {
    use super::service_of;

    #[test]
    fn service_names_from_paths() {
        assert_eq!(
            service_of("/containerd.services.version.v1.Version/Version"),
            Some("containerd.services.version.v1.Version")
        );
        assert_eq!(service_of("/nomethod"), None);
        assert_eq!(service_of("//Version"), None);
        assert_eq!(service_of("/a.B/"), None);
    }
}
