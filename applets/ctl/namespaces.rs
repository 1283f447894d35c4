//! `ctr namespaces create|list|remove|label`.

use anyhow::{anyhow, bail, Result};
use ocibox::api::channel::origin;
use ocibox::api::channel::UnixChannel;
use ocibox::api::services::namespaces::v1::namespaces_client::NamespacesClient;
use ocibox::api::services::namespaces::v1::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, ListNamespacesRequest,
    Namespace, UpdateNamespaceRequest,
};
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{label_args, label_pairs, log_error};
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;
use ocibox::errdefs::{kind_of, ErrorKind};

pub const COMMAND: Command = Command {
    aliases: &["namespace", "ns"],
    subcommands: &[CREATE, LIST, REMOVE, LABEL],
    ..Command::new("namespaces", "manage namespaces")
};

const CREATE: Command = Command {
    aliases: &["c"],
    args_usage: "<name> [<key>=<value>]",
    description: "create a new namespace. it must be unique",
    action: Some(create),
    ..Command::new("create", "create a new namespace")
};

const LIST: Command = Command {
    aliases: &["ls"],
    args_usage: "[flags]",
    description: "list namespaces",
    flags: &[Flag::bool("quiet, q", "print only the namespace name")],
    action: Some(list),
    ..Command::new("list", "list namespaces")
};

const REMOVE: Command = Command {
    aliases: &["rm"],
    args_usage: "<name> [<name>, ...]",
    description: "remove one or more namespaces. for now, the namespace must be empty",
    flags: &[Flag::bool("cgroup, c", "delete the namespace's cgroup")],
    action: Some(remove),
    ..Command::new("remove", "remove one or more namespaces")
};

const LABEL: Command = Command {
    args_usage: "<name> [<key>=<value>, ...]",
    description: "set and clear labels for a namespace. empty value clears the label",
    action: Some(label),
    ..Command::new("label", "set and clear labels for a namespace")
};

fn client(ch: UnixChannel) -> NamespacesClient<UnixChannel> {
    NamespacesClient::with_origin(ch, origin())
}

fn create(p: &Parsed) -> Result<()> {
    let name = p.first().to_string();
    if name.is_empty() {
        bail!("please specify a namespace");
    }
    let labels = label_args(&p.args[1..]);
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        client(ch)
            .create(c.req(CreateNamespaceRequest {
                namespace: Some(Namespace { name, labels }),
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn label(p: &Parsed) -> Result<()> {
    let name = p.first().to_string();
    if name.is_empty() {
        bail!("please specify a namespace");
    }
    let labels = label_args(&p.args[1..]);
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        for (k, v) in labels {
            let mut ns = Namespace {
                name: name.clone(),
                ..Default::default()
            };
            ns.labels.insert(k.clone(), v);
            client(ch.clone())
                .update(c.req(UpdateNamespaceRequest {
                    namespace: Some(ns),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec![format!("labels.{k}")],
                    }),
                }))
                .await
                .map_err(grpc)?;
        }
        Ok(())
    })
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let names: Vec<String> = c.run(async {
        let r = client(ch.clone())
            .list(c.req(ListNamespacesRequest::default()))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect())
    })?;
    if p.bool("quiet") {
        out(&names.iter().map(|n| format!("{n}\n")).collect::<String>());
        return Ok(());
    }
    let mut t = TabWriter::table();
    t.write("NAME\tLABELS\t\n");
    for name in names {
        // ctr asks for each namespace's labels separately (Labels is a Get).
        let labels = c.run(async {
            let r = client(ch.clone())
                .get(c.req(GetNamespaceRequest { name: name.clone() }))
                .await
                .map_err(grpc)?;
            Ok(r.into_inner().namespace.unwrap_or_default().labels)
        })?;
        t.write(&format!("{name}\t{}\t\n", label_pairs(&labels).join(",")));
    }
    out(&t.finish());
    Ok(())
}

fn remove(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mut first_err = None;
    for target in &p.args {
        let r = c.run(async {
            client(ch.clone())
                .delete(c.req(DeleteNamespaceRequest {
                    name: target.clone(),
                }))
                .await
                .map_err(grpc)?;
            Ok(())
        });
        if let Err(e) = r {
            if kind_of(&e) != ErrorKind::NotFound {
                log_error(&format!("unable to delete {target}"), &e);
                if first_err.is_none() {
                    first_err = Some(anyhow!("unable to delete {target}: {e:#}"));
                }
                continue;
            }
        }
        if p.bool("cgroup") {
            remove_cgroup(target);
        }
        out(&format!("{target}\n"));
    }
    first_err.map_or(Ok(()), Err)
}

/// `--cgroup`: ctr removes the namespace's cgroup (`/<namespace>` in every v1 hierarchy,
/// or under cgroup2's root); a cgroup that is not there is no error.
fn remove_cgroup(ns: &str) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for e in rd.flatten() {
        let _ = std::fs::remove_dir(e.path().join(ns));
    }
    let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(ns));
}
