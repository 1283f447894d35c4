//! `ociboxd [--address A] publish --topic T --namespace N`: the publish binary shims are
//! given (`-publish-binary`). The event is a protobuf `Any` on stdin, as containerd's
//! `containerd publish` reads it; it is forwarded to the daemon's ttrpc events endpoint
//! (`<address>.ttrpc`, Events/Forward) — the endpoint every shim publishes to, which
//! containerd serves too — rather than over gRPC, so it needs nothing but the endpoint.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::EventsClient;
use prost::Message as _;

use crate::daemon::config::{Config, DEFAULT_ADDRESS};

/// The largest event read from stdin.
const MAX_EVENT: u64 = 4 << 20;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PublishArgs {
    pub address: Option<PathBuf>,
    pub topic: String,
    pub namespace: String,
}

/// The daemon's global flags that take a value (skipped when looking for the subcommand).
const VALUE_FLAGS: &[&str] = &[
    "-a",
    "--address",
    "-c",
    "--config",
    "--root",
    "--state",
    "-l",
    "--log-level",
];

fn flag_value<'a>(args: &'a [String], i: &mut usize, names: &[&str]) -> Option<&'a str> {
    let a = args[*i].as_str();
    for n in names {
        if a == *n {
            *i += 1;
            return args.get(*i).map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
    }
    None
}

/// `Some` when the command line is the `publish` subcommand (global flags before it).
pub fn parse(args: &[String]) -> Option<Result<PublishArgs>> {
    let mut out = PublishArgs::default();
    let mut i = 0;
    // Global flags up to the subcommand.
    loop {
        let a = args.get(i)?;
        if a == "publish" {
            break;
        }
        if !a.starts_with('-') {
            return None;
        }
        if let Some(v) = flag_value(args, &mut i, &["-a", "--address"]) {
            out.address = Some(v.into());
        } else if VALUE_FLAGS.contains(&a.as_str()) {
            i += 1;
        }
        i += 1;
    }
    i += 1;
    while i < args.len() {
        if let Some(v) = flag_value(args, &mut i, &["--topic", "-topic"]) {
            out.topic = v.to_string();
        } else if let Some(v) = flag_value(args, &mut i, &["--namespace", "-namespace", "-n"]) {
            out.namespace = v.to_string();
        } else if let Some(v) = flag_value(args, &mut i, &["-a", "--address"]) {
            out.address = Some(v.into());
        } else {
            return Some(Err(anyhow!("publish: unknown argument {:?}", args[i])));
        }
        i += 1;
    }
    Some(Ok(out))
}

/// Reads the event from `input` and forwards it.
pub fn run(a: &PublishArgs, mut input: impl Read) -> Result<()> {
    if a.topic.is_empty() {
        return Err(
            crate::errdefs::ErrorKind::InvalidArgument.err("topic required to publish event")
        );
    }
    if a.namespace.is_empty() {
        return Err(crate::errdefs::ErrorKind::InvalidArgument.err("namespace is required"));
    }
    let mut raw = Vec::new();
    (&mut input)
        .take(MAX_EVENT)
        .read_to_end(&mut raw)
        .context("read event from stdin")?;
    let ev = prost_types::Any::decode(raw.as_slice()).context("decode event payload")?;
    if ev.type_url.is_empty() {
        bail!("event payload has no type url");
    }
    let cfg = Config {
        address: a.address.clone().unwrap_or_else(|| DEFAULT_ADDRESS.into()),
        ..Config::default()
    };
    let endpoint = cfg.ttrpc_address();
    let client = ttrpc::Client::connect(&format!("unix://{}", endpoint.display()))
        .map_err(|e| anyhow!("connect to {}: {e}", endpoint.display()))?;
    let mut any = Any::new();
    any.type_url = ev.type_url;
    any.value = ev.value;
    let req = ForwardRequest {
        envelope: MessageField::some(Envelope {
            timestamp: MessageField::some(crate::events::timestamp(SystemTime::now())),
            namespace: a.namespace.clone(),
            topic: a.topic.clone(),
            event: MessageField::some(any),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut md = HashMap::new();
    md.insert(
        crate::events::NAMESPACE_KEY.to_string(),
        vec![a.namespace.clone()],
    );
    let mut ctx = ttrpc::context::with_metadata(md);
    ctx.timeout_nano = 10_000_000_000;
    EventsClient::new(client)
        .forward(ctx, &req)
        .map_err(|e| anyhow!("forward event: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn publish_is_found_after_global_flags() {
        let a = parse(&s(&[
            "--address",
            "/run/x.sock",
            "publish",
            "--topic",
            "/tasks/oom",
            "--namespace",
            "default",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            a.address.as_deref(),
            Some(std::path::Path::new("/run/x.sock"))
        );
        assert_eq!(
            (a.topic.as_str(), a.namespace.as_str()),
            ("/tasks/oom", "default")
        );
        assert!(parse(&s(&["--root", "/x"])).is_none());
        assert!(parse(&s(&["--log-level", "publish"])).is_none());
    }
}
