//! The ctl's connection to containerd (or ociboxd): the address as ctr picks it, one
//! current-thread tokio runtime, one HTTP/2 channel dialed as containerd's Go client dials
//! (retrying until the connect timeout, 10s by default) and failing with ctr's words,
//! the namespace header on every request, `--timeout` over each call.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use std::cell::OnceCell;
use tonic::Status;

use super::cli::Parsed;
use crate::api::channel::UnixChannel;

/// containerd's own socket, ctr's default address.
pub const CONTAINERD_ADDRESS: &str = "/run/containerd/containerd.sock";
/// ociboxd's socket: the default address when it exists and nothing else names one.
pub const OCIBOXD_ADDRESS: &str = "/run/ocibox/ociboxd.sock";
/// containerd's client dials for this long when `--connect-timeout` is not given.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    rt: tokio::runtime::Runtime,
    pub address: String,
    pub namespace: String,
    timeout: Duration,
    connect_timeout: Duration,
    connect_timeout_given: bool,
    channel: OnceCell<UnixChannel>,
}

/// The address ctr would use: `-a`, else `$CONTAINERD_ADDRESS`, else ociboxd's socket if
/// it exists, else containerd's.
pub fn address(p: &Parsed) -> String {
    let a = p.string("address");
    if p.is_set("address") || std::env::var("CONTAINERD_ADDRESS").is_ok_and(|v| !v.is_empty()) {
        return a;
    }
    if Path::new(OCIBOXD_ADDRESS).exists() {
        return OCIBOXD_ADDRESS.to_string();
    }
    a
}

impl Client {
    /// The client the global flags describe (nothing is dialed yet).
    pub fn new(p: &Parsed) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the tokio runtime")?;
        let ct = p.duration("connect-timeout");
        Ok(Client {
            rt,
            address: address(p),
            namespace: p.string("namespace"),
            timeout: p.duration("timeout"),
            connect_timeout: if ct.is_zero() {
                DEFAULT_CONNECT_TIMEOUT
            } else {
                ct
            },
            connect_timeout_given: !ct.is_zero(),
            channel: OnceCell::new(),
        })
    }

    /// The channel, dialed on first use. A daemon that is not there yet is retried until
    /// the connect timeout, as grpc-go's blocking dial does; then ctr's message.
    pub fn channel(&self) -> Result<UnixChannel> {
        if let Some(c) = self.channel.get() {
            return Ok(c.clone());
        }
        let path = self
            .address
            .strip_prefix("unix://")
            .unwrap_or(&self.address)
            .to_string();
        let deadline = Instant::now() + self.connect_timeout;
        let ch = self.rt.block_on(async {
            let mut wait = Duration::from_millis(20);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                if let Ok(Ok(ch)) =
                    tokio::time::timeout(left, UnixChannel::connect(Path::new(&path))).await
                {
                    return Some(ch);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(left)).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        });
        let Some(ch) = ch else {
            // grpc-go's words: with ctr's own 10s dial the transport's last error is
            // appended; with --connect-timeout only the context's.
            let mut msg = format!(
                "failed to dial {:?}: context deadline exceeded",
                self.address
            );
            if !self.connect_timeout_given {
                msg.push_str(&format!(
                    ": connection error: desc = \"transport: error while dialing: dial unix://{path}: timeout\""
                ));
            }
            return Err(anyhow!(msg));
        };
        let _ = self.channel.set(ch.clone());
        Ok(ch)
    }

    /// Run one call (or several) to completion under `--timeout`.
    pub fn run<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        if self.timeout.is_zero() {
            return self.rt.block_on(f);
        }
        self.rt.block_on(async {
            match tokio::time::timeout(self.timeout, f).await {
                Ok(r) => r,
                Err(_) => Err(anyhow!("context deadline exceeded")),
            }
        })
    }

    /// The runtime, for callers that drive streams themselves.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    /// `m` as a request in our namespace.
    pub fn req<T>(&self, m: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(m);
        // A namespace no header can carry fails on the server's side as a missing one.
        let _ = crate::api::namespace::set(&mut r, &self.namespace);
        r
    }
}

/// A gRPC error as containerd's client reports it after `errdefs.FromGRPC`: the server's
/// message (`namespace "x": not found`).
pub fn grpc(s: Status) -> anyhow::Error {
    crate::api::status::from_status(&s)
}

/// A gRPC error as a raw grpc-go error prints (`rpc error: code = NotFound desc = …`),
/// for the ctr commands that print the call's error unconverted.
pub fn rpc(s: Status) -> anyhow::Error {
    anyhow!(
        "rpc error: code = {} desc = {}",
        go_code(s.code()),
        s.message()
    )
}

/// grpc-go's `codes.Code.String()`.
pub fn go_code(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}
