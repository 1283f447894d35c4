//! `ctr image pull` through the daemon's Transfer service, as ctr 1.7 pulls
//! (`cmd/ctr/commands/images/pull.go` without `--local`): the download and unpack run in
//! the daemon; the ctl opens two streams (Streaming.Stream) first, one the daemon sends
//! progress on and one it asks for credentials on, then makes one Transfer call
//! `OCIRegistry` → `ImageStore` and draws ctr 1.6's progress lines from the events.
//!
//! [`use_transfer`] is the one place the ctl decides between this and the client-side pull
//! ([`super::pull_client`], what ctr 1.6 does and what containerd 1.6 needs): Transfer
//! when the daemon's Introspection lists it and nothing asks for the client side
//! (`--local`, or a flag only the client-side pull has: `--max-concurrent-downloads`,
//! `--print-chainid`, `--skip-verify`, `--tlscacert`, `--tlscert`, `--tlskey`).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Result};
use prost_types::Any;
use tokio::sync::mpsc;

use crate::api::channel::origin;
use crate::api::services::images::v1::GetImageRequest;
use crate::api::services::introspection::v1::introspection_client::IntrospectionClient;
use crate::api::services::introspection::v1::PluginsRequest;
use crate::api::services::streaming::v1::streaming_client::StreamingClient;
use crate::api::services::streaming::v1::StreamInit;
use crate::api::services::transfer::v1::transfer_client::TransferClient;
use crate::api::services::transfer::v1::{TransferOptions, TransferRequest};
use crate::api::types::transfer::{
    AuthRequest, AuthResponse, AuthType, ImageStore, OciRegistry, Progress, RegistryResolver,
    UnpackConfiguration,
};
use crate::api::types::Platform as ApiPlatform;
use crate::api::typeurl;
use crate::image::platform::Platform;
use crate::registry::Credentials;

use super::progress::StatusLine;
use super::pull_client::{grpc, unique_part, Session, Statuses};

/// Flags only the client-side pull has: given, the ctl pulls client-side (ctr 1.7 refuses
/// them without `--local`; falling back keeps ctr 1.6's commands working).
pub const CLIENT_SIDE_FLAGS: [&str; 6] = [
    "max-concurrent-downloads",
    "print-chainid",
    "skip-verify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

/// The plugin containerd 1.7 registers for the Transfer service.
pub const TRANSFER_PLUGIN: (&str, &str) = ("io.containerd.grpc.v1", "transfer");

/// Pull through Transfer? `client_side` says whether the command line asks for the
/// client-side pull; otherwise the daemon decides by serving Transfer or not.
pub async fn use_transfer(s: &Session, client_side: bool) -> bool {
    !client_side && serves_transfer(s).await
}

/// True when the daemon's Introspection lists the Transfer gRPC plugin.
pub async fn serves_transfer(s: &Session) -> bool {
    let mut c = IntrospectionClient::with_origin(s.channel.clone(), origin());
    let filter = format!("type=={},id=={}", TRANSFER_PLUGIN.0, TRANSFER_PLUGIN.1);
    match c
        .plugins(s.req(PluginsRequest {
            filters: vec![filter],
        }))
        .await
    {
        Ok(r) => r
            .into_inner()
            .plugins
            .iter()
            .any(|p| p.r#type == TRANSFER_PLUGIN.0 && p.id == TRANSFER_PLUGIN.1),
        Err(_) => false,
    }
}

/// What the pull asks for (ctr's flags).
#[derive(Clone, Debug, Default)]
pub struct TransferPull {
    pub reference: String,
    /// `--platform`; none: the host's (`platforms.DefaultSpec`).
    pub platforms: Vec<String>,
    pub all_platforms: bool,
    /// Empty: the daemon's default snapshotter.
    pub snapshotter: String,
    pub labels: HashMap<String, String>,
    pub hosts_dir: String,
    pub plain_http: bool,
    /// `--user`: answered to the daemon's credential requests for this reference.
    pub user: Option<Credentials>,
}

fn api_platform(p: &Platform) -> ApiPlatform {
    ApiPlatform {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: p.variant.clone(),
        os_version: String::new(),
    }
}

impl TransferPull {
    /// The Transfer request's source and destination, as ctr 1.7 fills them.
    pub fn objects(&self, auth_stream: &str) -> Result<(OciRegistry, ImageStore)> {
        let registry = OciRegistry {
            reference: self.reference.clone(),
            resolver: Some(RegistryResolver {
                auth_stream: auth_stream.to_owned(),
                host_dir: self.hosts_dir.clone(),
                default_scheme: if self.plain_http {
                    "http".into()
                } else {
                    String::new()
                },
                ..RegistryResolver::default()
            }),
        };
        if self.all_platforms && !self.platforms.is_empty() {
            return Err(anyhow!(
                "cannot specify both --platform and --all-platforms"
            ));
        }
        let platforms: Vec<Platform> = if self.all_platforms {
            Vec::new()
        } else if self.platforms.is_empty() {
            vec![Platform::host()]
        } else {
            self.platforms
                .iter()
                .map(|s| Platform::parse(s))
                .collect::<Result<_>>()?
        };
        // One unpack per platform (ctr 1.7's `WithUnpack`); with every platform, one
        // without a platform: ocibox's daemon then unpacks all it fetched, as ctr 1.6's
        // `--all-platforms` pull unpacks every platform.
        let unpacks = if platforms.is_empty() {
            vec![UnpackConfiguration {
                platform: None,
                snapshotter: self.snapshotter.clone(),
            }]
        } else {
            platforms
                .iter()
                .map(|p| UnpackConfiguration {
                    platform: Some(api_platform(p)),
                    snapshotter: self.snapshotter.clone(),
                })
                .collect()
        };
        let store = ImageStore {
            name: self.reference.clone(),
            labels: self.labels.clone(),
            platforms: platforms.iter().map(api_platform).collect(),
            unpacks,
            ..ImageStore::default()
        };
        Ok((registry, store))
    }

    /// The answer to a credential request (ctr 1.7's static credentials: the user for
    /// this reference, nothing for another).
    pub fn answer(&self, req: &AuthRequest) -> AuthResponse {
        match &self.user {
            Some(c) if req.reference == self.reference => AuthResponse {
                auth_type: AuthType::Credentials as i32,
                username: c.username.clone(),
                secret: c.password.clone().unwrap_or_default(),
                ..AuthResponse::default()
            },
            _ => AuthResponse {
                auth_type: AuthType::Refresh as i32,
                ..AuthResponse::default()
            },
        }
    }
}

/// A request stream fed by a channel.
struct Outgoing(mpsc::Receiver<Any>);

impl tonic::codegen::tokio_stream::Stream for Outgoing {
    type Item = Any;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Any>> {
        self.0.poll_recv(cx)
    }
}

/// One open stream: what the client sends, what it receives.
pub struct OpenStream {
    pub tx: mpsc::Sender<Any>,
    pub rx: tonic::Streaming<Any>,
}

/// Open stream `id` (containerd's `streamCreator.Create`): `StreamInit{id}` first, then
/// the daemon's empty answer once it is registered.
pub async fn open_stream(s: &Session, id: &str) -> Result<OpenStream> {
    let (tx, out) = mpsc::channel(16);
    tx.send(typeurl::pack(&StreamInit { id: id.to_owned() }))
        .await
        .map_err(|_| anyhow!("stream {id}: closed before it opened"))?;
    let mut c = StreamingClient::with_origin(s.channel.clone(), origin());
    let mut rx = c
        .stream(s.req(Outgoing(out)))
        .await
        .map_err(grpc)?
        .into_inner();
    match rx.message().await.map_err(grpc)? {
        Some(_) => Ok(OpenStream { tx, rx }),
        None => Err(anyhow!(
            "stream {id}: the daemon closed it before answering"
        )),
    }
}

/// Apply one transfer event to ctr 1.6's lines: the reference resolving/resolved, then
/// one line per blob (`waiting`, `downloading`, `done`, `exists`).
pub fn apply(st: &Statuses, reference: &str, p: &Progress) {
    if p.name.is_empty() {
        return;
    }
    let total = u64::try_from(p.total).unwrap_or(0);
    let progress = u64::try_from(p.progress).unwrap_or(0);
    let (status, offset, total) = if p.name == reference {
        ("resolved", 0, 0)
    } else {
        match p.event.as_str() {
            "waiting" => ("waiting", 0, total),
            "downloading" => ("downloading", progress, total),
            "complete" => ("done", total, total),
            "already exists" => ("exists", total, total),
            // Unpack events: the line stays `done`.
            _ => return,
        }
    };
    let Ok(mut v) = st.lock() else { return };
    let line = StatusLine {
        ref_: p.name.clone(),
        status: status.to_owned(),
        offset,
        total,
    };
    match v.iter_mut().find(|l| l.ref_ == p.name) {
        // A late `downloading` never takes a finished line back.
        Some(l) if (l.status == "done" || l.status == "exists") && status == "downloading" => {}
        Some(l) => *l = line,
        None => v.push(line),
    }
}

/// Pull through Transfer, updating `st` as events arrive; returns when the daemon's pull
/// is done (the image recorded and unpacked).
pub async fn pull(s: &Session, o: &TransferPull, st: &Statuses) -> Result<()> {
    if let Ok(mut v) = st.lock() {
        v.push(StatusLine {
            ref_: o.reference.clone(),
            status: "resolving".into(),
            offset: 0,
            total: 0,
        });
    }
    let progress_id = format!("progress-{}", unique_part());
    let mut progress = open_stream(s, &progress_id).await?;
    let creds_id = format!("creds-{}", unique_part());
    let mut creds = open_stream(s, &creds_id).await?;
    let (registry, store) = o.objects(&creds_id)?;

    let answers = {
        let o = o.clone();
        tokio::spawn(async move {
            while let Ok(Some(a)) = creds.rx.message().await {
                let Ok(req) = typeurl::unpack::<AuthRequest>(&a) else {
                    continue;
                };
                if creds.tx.send(typeurl::pack(&o.answer(&req))).await.is_err() {
                    break;
                }
            }
        })
    };
    let events = {
        let (st, reference) = (st.clone(), o.reference.clone());
        tokio::spawn(async move {
            while let Ok(Some(a)) = progress.rx.message().await {
                if let Ok(p) = typeurl::unpack::<Progress>(&a) {
                    apply(&st, &reference, &p);
                }
            }
            drop(progress.tx);
        })
    };
    let req = TransferRequest {
        source: Some(typeurl::pack(&registry)),
        destination: Some(typeurl::pack(&store)),
        options: Some(TransferOptions {
            progress_stream: progress_id,
        }),
    };
    let mut c = TransferClient::with_origin(s.channel.clone(), origin());
    let result = c.transfer(s.req(req)).await;
    // The daemon closes the progress stream when the transfer ends; the events it sent
    // before are still arriving.
    let _ = tokio::time::timeout(Duration::from_secs(5), events).await;
    answers.abort();
    result.map_err(grpc)?;
    Ok(())
}

/// The digest image `name` points at (Images.Get), for the lines printed after the pull.
pub async fn image_digest(s: &Session, name: &str) -> Result<String> {
    let r = s
        .images()
        .get(s.req(GetImageRequest {
            name: name.to_owned(),
        }))
        .await
        .map_err(grpc)?;
    r.into_inner()
        .image
        .and_then(|i| i.target)
        .map(|t| t.digest)
        .ok_or_else(|| anyhow!("image {name:?} has no target"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn ev(event: &str, name: &str, progress: i64, total: i64) -> Progress {
        Progress {
            event: event.into(),
            name: name.into(),
            progress,
            total,
            ..Progress::default()
        }
    }

    #[test]
    fn events_become_ctr_1_6_lines() {
        let st: Statuses = Arc::new(Mutex::new(Vec::new()));
        let r = "docker.io/library/busybox:latest";
        apply(&st, r, &ev("Resolving from OCI Registry (x)", "", 0, 0));
        apply(&st, r, &ev("fetching image content", r, 0, 0));
        apply(&st, r, &ev("waiting", "layer-sha256:aa", 0, 10));
        apply(&st, r, &ev("downloading", "layer-sha256:aa", 4, 10));
        apply(&st, r, &ev("complete", "layer-sha256:aa", 10, 10));
        apply(&st, r, &ev("downloading", "layer-sha256:aa", 8, 10));
        apply(&st, r, &ev("extracted", "layer-sha256:aa", 10, 10));
        apply(&st, r, &ev("already exists", "config-sha256:bb", 3, 3));
        let v = st.lock().unwrap().clone();
        let got: Vec<(&str, &str, u64)> = v
            .iter()
            .map(|l| (l.ref_.as_str(), l.status.as_str(), l.offset))
            .collect();
        assert_eq!(
            got,
            [
                (r, "resolved", 0),
                ("layer-sha256:aa", "done", 10),
                ("config-sha256:bb", "exists", 3)
            ]
        );
    }

    #[test]
    fn objects_as_ctr_1_7_fills_them() {
        let o = TransferPull {
            reference: "h:5000/a/b:1".into(),
            plain_http: true,
            snapshotter: "native".into(),
            user: Some(Credentials {
                username: "u".into(),
                password: Some("p".into()),
            }),
            ..TransferPull::default()
        };
        let (reg, store) = o.objects("creds-1").unwrap();
        let res = reg.resolver.unwrap();
        assert_eq!(
            (res.auth_stream.as_str(), res.default_scheme.as_str()),
            ("creds-1", "http")
        );
        assert_eq!(store.name, "h:5000/a/b:1");
        assert_eq!(store.platforms.len(), 1);
        assert_eq!(store.unpacks[0].snapshotter, "native");
        let mine = o.answer(&AuthRequest {
            host: "h:5000".into(),
            reference: "h:5000/a/b:1".into(),
            wwwauthenticate: vec![],
        });
        assert_eq!((mine.username.as_str(), mine.secret.as_str()), ("u", "p"));
        let other = o.answer(&AuthRequest {
            host: "h:5000".into(),
            reference: "h:5000/other:1".into(),
            wwwauthenticate: vec![],
        });
        assert!(other.username.is_empty() && other.secret.is_empty());
        let both = TransferPull {
            all_platforms: true,
            platforms: vec!["linux/amd64".into()],
            ..o
        };
        assert!(both.objects("c").is_err());
    }
}
