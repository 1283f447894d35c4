//! `ctr version`: the client's version, then the server's (Version and Introspection
//! Server), warning on stderr when they differ as ctr does.

use anyhow::Result;
use ocibox::api::channel::origin;
use ocibox::api::services::introspection::v1::introspection_client::IntrospectionClient;
use ocibox::api::services::version::v1::version_client::VersionClient;
use ocibox::ctl::cli::{Command, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::out;

/// ocibox's client is not a Go program: the line ctr gives its Go version keeps its shape.
const REVISION: &str = "ocibox";

pub const COMMAND: Command = Command {
    action: Some(version),
    ..Command::new("version", "print the client and server versions")
};

fn version(p: &Parsed) -> Result<()> {
    out(&format!(
        "Client:\n  Version:  {}\n  Revision: {REVISION}\n  Go version: n/a\n\n",
        ocibox::VERSION
    ));
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let (v, uuid) = c.run(async {
        let v = VersionClient::with_origin(ch.clone(), origin())
            .version(c.req(()))
            .await
            .map_err(grpc)?
            .into_inner();
        let s = IntrospectionClient::with_origin(ch, origin())
            .server(c.req(()))
            .await
            .map_err(grpc)?
            .into_inner();
        Ok((v, s.uuid))
    })?;
    out(&format!(
        "Server:\n  Version:  {}\n  Revision: {}\n  UUID: {uuid}\n",
        v.version, v.revision
    ));
    if v.version != ocibox::VERSION {
        eprintln!("WARNING: version mismatch");
    }
    if v.revision != REVISION {
        eprintln!("WARNING: revision mismatch");
    }
    Ok(())
}
