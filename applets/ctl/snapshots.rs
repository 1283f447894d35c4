//! `ctr snapshots list|tree|info|mounts|prepare|view|commit|delete|usage` (`--snapshotter`
//! on the group, as ctr has it).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use ocibox::api::channel::{origin, UnixChannel};
use ocibox::api::services::snapshots::v1::snapshots_client::SnapshotsClient;
use ocibox::api::services::snapshots::v1::{
    CommitSnapshotRequest, Info, Kind, ListSnapshotsRequest, MountsRequest, PrepareSnapshotRequest,
    RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest, ViewSnapshotRequest,
};
use ocibox::api::types::Mount;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{grpc, Client};
use ocibox::ctl::fmt::{progress_bytes, time_of};
use ocibox::ctl::json;
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;
use serde::Serialize;

use super::flags::SNAPSHOTTER;
use super::stubs::stub;

pub const COMMAND: Command = Command {
    aliases: &["snapshot"],
    flags: &[SNAPSHOTTER],
    subcommands: &[
        COMMIT,
        stub(
            "diff",
            "get the diff of two snapshots. the default second snapshot is the first snapshot's parent.",
        ),
        INFO,
        LIST,
        MOUNTS,
        PREPARE,
        DELETE,
        stub("label", "add labels to content"),
        TREE,
        stub("unpack", "unpack applies layers from a manifest to a snapshot"),
        USAGE,
        VIEW,
    ],
    ..Command::new("snapshots", "manage snapshots")
};

const COMMIT: Command = Command {
    args_usage: "<key> <active>",
    action: Some(commit),
    ..Command::new("commit", "commit an active snapshot into the provided name")
};

const INFO: Command = Command {
    args_usage: "<key>",
    action: Some(info),
    ..Command::new("info", "get info about a snapshot")
};

const LIST: Command = Command {
    aliases: &["ls"],
    action: Some(list),
    ..Command::new("list", "list snapshots")
};

const MOUNTS: Command = Command {
    aliases: &["m", "mount"],
    args_usage: "<target> <key>",
    action: Some(mounts),
    ..Command::new("mounts", "mount gets mount commands for the snapshots")
};

const TARGET_FLAGS: &[Flag] = &[
    Flag::string(
        "target, t",
        "mount target path, will print mount, if provided",
    ),
    Flag::bool("mounts", "Print out snapshot mounts as JSON"),
];

const PREPARE: Command = Command {
    args_usage: "[flags] <key> [<parent>]",
    flags: TARGET_FLAGS,
    action: Some(prepare),
    ..Command::new("prepare", "prepare a snapshot from a committed snapshot")
};

const VIEW: Command = Command {
    args_usage: "[flags] <key> [<parent>]",
    flags: TARGET_FLAGS,
    action: Some(view),
    ..Command::new(
        "view",
        "create a read-only snapshot from a committed snapshot",
    )
};

const DELETE: Command = Command {
    aliases: &["del", "remove", "rm"],
    args_usage: "<key> [<key>, ...]",
    action: Some(delete),
    ..Command::new("delete", "remove snapshots")
};

const TREE: Command = Command {
    action: Some(tree),
    ..Command::new("tree", "display tree view of snapshot branches")
};

const USAGE: Command = Command {
    args_usage: "[flags] [<key>, ...]",
    flags: &[Flag::bool("b", "display size in bytes")],
    action: Some(usage),
    ..Command::new("usage", "usage snapshots")
};

/// containerd's default snapshotter, which ctr names when `--snapshotter` is empty.
const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
const GC_ROOT: &str = "containerd.io/gc.root";

fn snapshotter(p: &Parsed) -> String {
    let s = p.string("snapshotter");
    if s.is_empty() {
        DEFAULT_SNAPSHOTTER.to_string()
    } else {
        s
    }
}

fn client(ch: UnixChannel) -> SnapshotsClient<UnixChannel> {
    SnapshotsClient::with_origin(ch, origin())
        .max_decoding_message_size(ocibox::api::MAX_MESSAGE_SIZE)
}

/// Go's `snapshots.Kind.String()`.
fn kind_name(k: i32) -> &'static str {
    match Kind::try_from(k) {
        Ok(Kind::View) => "View",
        Ok(Kind::Active) => "Active",
        Ok(Kind::Committed) => "Committed",
        _ => "Unknown",
    }
}

/// A label value holding the time now, as ctr writes gc.root (`time.RFC3339`, UTC).
fn now_label() -> String {
    ocibox::timefmt::format_seconds(std::time::SystemTime::now())
}

fn walk(c: &Client, ch: UnixChannel, sn: String) -> Result<Vec<Info>> {
    c.run(async {
        let mut s = client(ch)
            .list(c.req(ListSnapshotsRequest {
                snapshotter: sn,
                filters: vec![],
            }))
            .await
            .map_err(grpc)?
            .into_inner();
        let mut v = Vec::new();
        while let Some(r) = s.message().await.map_err(grpc)? {
            v.extend(r.info);
        }
        Ok(v)
    })
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let infos = walk(&c, ch, snapshotter(p))?;
    let mut t = TabWriter::table();
    t.write("KEY\tPARENT\tKIND\t\n");
    for i in &infos {
        t.write(&format!(
            "{}\t{}\t{}\t\n",
            i.name,
            i.parent,
            kind_name(i.kind)
        ));
    }
    out(&t.finish());
    Ok(())
}

fn tree(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let infos = walk(&c, ch, snapshotter(p))?;
    // ctr's snapshotTree: nodes in first-seen order (a parent not listed yet gets a
    // placeholder node), children in the order they were seen.
    let mut order: Vec<String> = Vec::new();
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for i in &infos {
        if !parent.contains_key(&i.name) {
            order.push(i.name.clone());
        }
        parent.insert(i.name.clone(), i.parent.clone());
        if !i.parent.is_empty() {
            if !parent.contains_key(&i.parent) {
                order.push(i.parent.clone());
                parent.insert(i.parent.clone(), String::new());
            }
            children
                .entry(i.parent.clone())
                .or_default()
                .push(i.name.clone());
        }
    }
    let mut s = String::new();
    for name in &order {
        if parent.get(name).is_some_and(|p| p.is_empty()) {
            print_node(name, &children, 0, &mut s);
        }
    }
    out(&s);
    Ok(())
}

fn print_node(name: &str, children: &HashMap<String, Vec<String>>, level: usize, s: &mut String) {
    let mut prefix = "  ".repeat(level);
    if level > 0 {
        prefix.push_str("\\_");
    }
    s.push_str(&format!("{prefix} {name}\n"));
    for c in children.get(name).into_iter().flatten() {
        print_node(c, children, level + 1, s);
    }
}

/// `snapshots.Info` as Go's JSON encoder writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InfoJson<'a> {
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    parent: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'a String, &'a String>,
    created: String,
    updated: String,
}

fn info(p: &Parsed) -> Result<()> {
    if p.args.len() != 1 {
        out(&p.help());
        return Ok(());
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let i = c.run(async {
        let r = client(ch)
            .stat(c.req(StatSnapshotRequest {
                snapshotter: snapshotter(p),
                key: p.args[0].clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().info.unwrap_or_default())
    })?;
    let j = InfoJson {
        kind: kind_name(i.kind),
        name: &i.name,
        parent: &i.parent,
        labels: i.labels.iter().collect(),
        created: ocibox::timefmt::format(time_of(&i.created_at)),
        updated: ocibox::timefmt::format(time_of(&i.updated_at)),
    };
    out(&format!("{}\n", json::indent(&j)?));
    Ok(())
}

/// `mount.Mount` as Go's JSON encoder writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MountJson<'a> {
    r#type: &'a str,
    source: &'a str,
    options: &'a [String],
}

fn print_mounts(target: &str, mounts: &[Mount]) {
    let mut s = String::new();
    for m in mounts {
        s.push_str(&format!(
            "mount -t {} {} {target} -o {}\n",
            m.r#type,
            m.source,
            m.options.join(",")
        ));
    }
    out(&s);
}

fn show_mounts(p: &Parsed, mounts: &[Mount]) -> Result<()> {
    let target = p.string("target");
    if !target.is_empty() {
        print_mounts(&target, mounts);
    }
    if p.bool("mounts") {
        let v: Vec<MountJson> = mounts
            .iter()
            .map(|m| MountJson {
                r#type: &m.r#type,
                source: &m.source,
                options: &m.options,
            })
            .collect();
        out(&format!("{}\n", json::indent(&v)?));
    }
    Ok(())
}

fn prepare(p: &Parsed) -> Result<()> {
    if p.args.is_empty() || p.args.len() > 2 {
        out(&p.help());
        return Ok(());
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mounts = c.run(async {
        let r = client(ch)
            .prepare(c.req(PrepareSnapshotRequest {
                snapshotter: snapshotter(p),
                key: p.args[0].clone(),
                parent: p.args.get(1).cloned().unwrap_or_default(),
                labels: HashMap::from([(GC_ROOT.to_string(), now_label())]),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().mounts)
    })?;
    show_mounts(p, &mounts)
}

fn view(p: &Parsed) -> Result<()> {
    if p.args.is_empty() || p.args.len() > 2 {
        out(&p.help());
        return Ok(());
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mounts = c.run(async {
        let r = client(ch)
            .view(c.req(ViewSnapshotRequest {
                snapshotter: snapshotter(p),
                key: p.args[0].clone(),
                parent: p.args.get(1).cloned().unwrap_or_default(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().mounts)
    })?;
    show_mounts(p, &mounts)
}

fn mounts(p: &Parsed) -> Result<()> {
    if p.args.len() != 2 {
        out(&p.help());
        return Ok(());
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let mounts = c.run(async {
        let r = client(ch)
            .mounts(c.req(MountsRequest {
                snapshotter: snapshotter(p),
                key: p.args[1].clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().mounts)
    })?;
    print_mounts(&p.args[0], &mounts);
    Ok(())
}

fn commit(p: &Parsed) -> Result<()> {
    if p.args.len() != 2 {
        out(&p.help());
        return Ok(());
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    c.run(async {
        client(ch)
            .commit(c.req(CommitSnapshotRequest {
                snapshotter: snapshotter(p),
                name: p.args[0].clone(),
                key: p.args[1].clone(),
                labels: HashMap::from([(GC_ROOT.to_string(), now_label())]),
            }))
            .await
            .map_err(grpc)?;
        Ok(())
    })
}

fn delete(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    for key in &p.args {
        c.run(async {
            client(ch.clone())
                .remove(c.req(RemoveSnapshotRequest {
                    snapshotter: snapshotter(p),
                    key: key.clone(),
                }))
                .await
                .map_err(|e| grpc(e).context(format!("failed to remove {key:?}")))?;
            Ok(())
        })?;
    }
    Ok(())
}

fn usage(p: &Parsed) -> Result<()> {
    let bytes = p.bool("b");
    let size = |s: i64| {
        if bytes {
            s.to_string()
        } else {
            progress_bytes(s)
        }
    };
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let keys: Vec<String> = if p.args.is_empty() {
        walk(&c, ch.clone(), snapshotter(p))?
            .into_iter()
            .map(|i| i.name)
            .collect()
    } else {
        p.args.clone()
    };
    let mut t = TabWriter::table();
    t.write("KEY\tSIZE\tINODES\t\n");
    for key in keys {
        let u = c.run(async {
            let r = client(ch.clone())
                .usage(c.req(UsageRequest {
                    snapshotter: snapshotter(p),
                    key: key.clone(),
                }))
                .await
                .map_err(grpc)?;
            Ok(r.into_inner())
        });
        match u {
            Ok(u) => t.write(&format!("{key}\t{}\t{}\t\n", size(u.size), u.inodes)),
            Err(e) => {
                // ctr's table is flushed only at the end: an error prints no rows.
                return Err(e);
            }
        }
    }
    out(&t.finish());
    Ok(())
}
