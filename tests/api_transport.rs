//! The gRPC transport both the daemon and the ctl stand on (src/api/{serve,channel}),
//! checked against Go's gRPC: Debian's real `ctr` (containerd 1.6) calls a Version and a
//! Namespaces service served by `api::serve`, and `api::channel` calls the same server.
//! Unregistered services answer UNIMPLEMENTED, a missing namespace header
//! FailedPrecondition.

mod common;

use std::process::Command;
use std::sync::Arc;

use ocibox::api::services::namespaces::v1 as ns;
use ocibox::api::services::version::v1 as ver;
use tonic::{Request, Response, Status};

struct FixedVersion;

#[tonic::async_trait]
impl ver::version_server::Version for FixedVersion {
    async fn version(&self, _: Request<()>) -> Result<Response<ver::VersionResponse>, Status> {
        Ok(Response::new(ver::VersionResponse {
            version: "9.8.7-test".into(),
            revision: "abc123".into(),
        }))
    }
}

/// Lists one namespace named after the caller's header, so a test sees the header arrive.
struct EchoNamespaces;

#[tonic::async_trait]
impl ns::namespaces_server::Namespaces for EchoNamespaces {
    async fn get(
        &self,
        r: Request<ns::GetNamespaceRequest>,
    ) -> Result<Response<ns::GetNamespaceResponse>, Status> {
        Err(Status::not_found(format!(
            "namespace {}: not found",
            r.into_inner().name
        )))
    }
    async fn list(
        &self,
        r: Request<ns::ListNamespacesRequest>,
    ) -> Result<Response<ns::ListNamespacesResponse>, Status> {
        let caller = ocibox::api::namespace::of(&r)?;
        Ok(Response::new(ns::ListNamespacesResponse {
            namespaces: vec![ns::Namespace {
                name: format!("seen-{caller}"),
                labels: Default::default(),
            }],
        }))
    }
    async fn create(
        &self,
        _: Request<ns::CreateNamespaceRequest>,
    ) -> Result<Response<ns::CreateNamespaceResponse>, Status> {
        Err(Status::unimplemented("create"))
    }
    async fn update(
        &self,
        _: Request<ns::UpdateNamespaceRequest>,
    ) -> Result<Response<ns::UpdateNamespaceResponse>, Status> {
        Err(Status::unimplemented("update"))
    }
    async fn delete(&self, _: Request<ns::DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("delete"))
    }
}

/// A server on its own thread and runtime; dropped with the test's temp dir.
fn start_server(sock: &std::path::Path) {
    let router = ocibox::api::serve::Router::new()
        .service(ver::version_server::VersionServer::new(FixedVersion))
        .service(ns::namespaces_server::NamespacesServer::new(EchoNamespaces));
    let sock = sock.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::UnixListener::bind(&sock).unwrap();
            tx.send(()).unwrap();
            let _ = ocibox::api::serve::serve(
                l,
                Arc::new(router),
                ocibox::api::MAX_MESSAGE_SIZE,
                |_| {},
            )
            .await;
        });
    });
    rx.recv().unwrap();
}

fn ctr(sock: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("ctr")
        .arg("-a")
        .arg(sock)
        .args(args)
        .output()
        .expect("run Debian's ctr")
}

#[test]
fn real_ctr_talks_to_the_served_api() {
    let dir = common::TempDir::new("api-transport");
    let sock = dir.path().join("api.sock");
    start_server(&sock);

    // ctr version asks Version, then Introspection.Server (the daemon's UUID), which
    // this server lacks: the first answer is printed, the second is gRPC's UNIMPLEMENTED.
    let out = ctr(&sock, &["version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Server:") && text.contains("9.8.7-test") && text.contains("abc123"),
        "{out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Introspection/Server: not implemented"),
        "{err}"
    );

    // The namespace header arrives as ctr sends it (-n).
    let out = ctr(&sock, &["-n", "probe", "namespaces", "ls", "-q"]);
    assert!(out.status.success(), "ctr namespaces ls: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seen-probe");

    // A service nobody serves: ctr reports gRPC's Unimplemented.
    let out = ctr(&sock, &["leases", "ls"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown service") && err.contains("not implemented"),
        "{err}"
    );
}

#[test]
fn own_channel_calls_the_served_api() {
    let dir = common::TempDir::new("api-channel");
    let sock = dir.path().join("api.sock");
    start_server(&sock);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ocibox::api::channel::UnixChannel::connect(&sock)
            .await
            .unwrap();
        let mut v = ver::version_client::VersionClient::with_origin(
            ch.clone(),
            ocibox::api::channel::origin(),
        );
        let got = v.version(()).await.unwrap().into_inner();
        assert_eq!(got.version, "9.8.7-test");

        let mut n = ns::namespaces_client::NamespacesClient::with_origin(
            ch,
            ocibox::api::channel::origin(),
        );
        // No header: containerd's FailedPrecondition.
        let e = n
            .list(ns::ListNamespacesRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        let mut req = Request::new(ns::ListNamespacesRequest::default());
        ocibox::api::namespace::set(&mut req, "k8s.io").unwrap();
        let got = n.list(req).await.unwrap().into_inner();
        assert_eq!(got.namespaces[0].name, "seen-k8s.io");
    });
}
