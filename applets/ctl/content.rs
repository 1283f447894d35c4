//! `ctr content list|get|delete|active|label|fetch` (and the rest of the group, listed).

use std::io::Write as _;

use anyhow::Result;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::content::v1::content_client::ContentClient;
use ocibox::api::services::content::v1::{
    DeleteContentRequest, Info, InfoRequest, ListContentRequest, ListStatusesRequest,
    ReadContentRequest, UpdateRequest,
};
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{
    age, human_size, label_args, label_pairs, log_error, parse_digest, time_of,
};
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;
use ocibox::errdefs::{kind_of, ErrorKind};

use super::stubs::stub;

pub const COMMAND: Command = Command {
    subcommands: &[
        ACTIVE,
        DELETE,
        stub("edit", "edit a blob and return a new digest"),
        super::fetch::FETCH,
        stub("fetch-object", "retrieve objects from a remote"),
        GET,
        stub("ingest", "accept content into the store"),
        LIST,
        stub("push-object", "push an object to a remote"),
        LABEL,
        stub("prune", "prunes content from the content store"),
    ],
    ..Command::new("content", "manage content")
};

const ACTIVE: Command = Command {
    args_usage: "[flags] [<regexp>]",
    description: "display the ongoing transfers",
    flags: &[
        Flag::duration("timeout, t", "total timeout for fetch").env("CONTAINERD_FETCH_TIMEOUT"),
        Flag::string("root", "path to content store root").default("/tmp/content"),
    ],
    action: Some(active),
    ..Command::new("active", "display active transfers")
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "[<digest>, ...]",
    description:
        "Delete one or more blobs permanently. Successfully deleted\n  blobs are printed to stdout.",
    action: Some(delete),
    ..Command::new("delete", "permanently delete one or more blobs")
};

const GET: Command = Command {
    args_usage: "[<digest>, ...]",
    description: "display the image object",
    action: Some(get),
    ..Command::new("get", "get the data for an object")
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags]",
    description: "list blobs in the content store",
    flags: &[Flag::bool("quiet, q", "print only the blob digest")],
    action: Some(list),
    ..Command::new("list", "list all blobs in the store")
};

const LABEL: Command = Command {
    args_usage: "<digest> [<label>=<value> ...]",
    description: "labels blobs in the content store",
    action: Some(label),
    ..Command::new("label", "add labels to content")
};

fn client(ch: UnixChannel) -> ContentClient<UnixChannel> {
    ContentClient::with_origin(ch, origin())
        .max_decoding_message_size(ocibox::api::MAX_MESSAGE_SIZE)
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let infos = c.run(async {
        let mut s = client(ch)
            .list(c.req(ListContentRequest {
                filters: p.args.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner();
        let mut v = Vec::new();
        while let Some(r) = s.message().await.map_err(grpc)? {
            v.extend(r.info);
        }
        Ok(v)
    })?;
    if p.bool("quiet") {
        out(&infos
            .iter()
            .map(|i| format!("{}\n", i.digest))
            .collect::<String>());
        return Ok(());
    }
    let mut t = TabWriter::tabs();
    t.write("DIGEST\tSIZE\tAGE\tLABELS\n");
    for i in &infos {
        let mut labels = label_pairs(&i.labels).join(",");
        if labels.is_empty() {
            labels = "-".into();
        }
        t.write(&format!(
            "{}\t{}\t{}\t{labels}\n",
            i.digest,
            human_size(i.size.max(0) as u64),
            age(time_of(&i.created_at))
        ));
    }
    out(&t.finish());
    Ok(())
}

fn get(p: &Parsed) -> Result<()> {
    let digest = parse_digest(p.first())?;
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        // ctr's ReaderAt asks for the blob's Info first (its size, or NotFound).
        let info = client(ch.clone())
            .info(c.req(InfoRequest {
                digest: digest.clone(),
            }))
            .await
            .map_err(grpc)?
            .into_inner()
            .info
            .unwrap_or_default();
        let mut s = client(ch)
            .read(c.req(ReadContentRequest {
                digest,
                offset: 0,
                size: info.size,
            }))
            .await
            .map_err(grpc)?
            .into_inner();
        let mut stdout = std::io::stdout().lock();
        while let Some(r) = s.message().await.map_err(grpc)? {
            if stdout.write_all(&r.data).is_err() {
                break;
            }
        }
        let _ = stdout.flush();
        Ok(())
    })
}

fn delete(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mut first_err = None;
    for arg in &p.args {
        let digest = match parse_digest(arg) {
            Ok(d) => d,
            Err(e) => {
                log_error(&format!("could not delete {arg}"), &e);
                first_err.get_or_insert(e);
                continue;
            }
        };
        let r = c.run(async {
            client(ch.clone())
                .delete(c.req(DeleteContentRequest {
                    digest: digest.clone(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        match r {
            Ok(()) => out(&format!("{digest}\n")),
            Err(e) if kind_of(&e) == ErrorKind::NotFound => {}
            Err(e) => {
                log_error(&format!("could not delete {digest}"), &e);
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn label(p: &Parsed) -> Result<()> {
    let digest = parse_digest(p.first())?;
    let labels = label_args(p.args.get(1..).unwrap_or_default());
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let info = c.run(async {
        if labels.is_empty() {
            // Nothing to update: ctr prints the labels as they are.
            let r = client(ch)
                .info(c.req(InfoRequest { digest }))
                .await
                .map_err(grpc)?;
            return Ok(r.into_inner().info.unwrap_or_default());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let info = Info {
            digest,
            labels: labels.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            ..Default::default()
        };
        let r = client(ch)
            .update(c.req(UpdateRequest {
                info: Some(info),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().info.unwrap_or_default())
    })?;
    // ctr joins the labels in Go's map order (random); sorted here.
    out(&format!("{}\n", label_pairs(&info.labels).join(",")));
    Ok(())
}

fn active(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let filters = p.args.first().map(|m| vec![m.clone()]).unwrap_or_default();
    let statuses = c.run(async {
        let r = client(ch)
            .list_statuses(c.req(ListStatusesRequest { filters }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().statuses)
    })?;
    let mut t = TabWriter::tabs();
    t.write("REF\tSIZE\tAGE\t\n");
    for s in &statuses {
        t.write(&format!(
            "{}\t{}\t{}\t\n",
            s.r#ref,
            human_size(s.offset.max(0) as u64),
            age(time_of(&s.started_at))
        ));
    }
    out(&t.finish());
    Ok(())
}
