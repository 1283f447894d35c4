//! `ctr plugins list`: the daemon's plugins (Introspection), as a table or `-d` detail.

use anyhow::Result;
use ocibox::api::channel::origin;
use ocibox::api::services::introspection::v1::introspection_client::IntrospectionClient;
use ocibox::api::services::introspection::v1::PluginsRequest;
use ocibox::api::types::Platform;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::{go_code, grpc, Client};
use ocibox::ctl::fmt::platform;
use ocibox::ctl::out;
use ocibox::ctl::tabwriter::TabWriter;

pub const COMMAND: Command = Command {
    aliases: &["plugin"],
    subcommands: &[LIST],
    ..Command::new("plugins", "provides information about containerd plugins")
};

const LIST: Command = Command {
    aliases: &["ls"],
    flags: &[
        Flag::bool("quiet, q", "print only the plugin ids"),
        Flag::bool(
            "detailed, d",
            "print detailed information about each plugin",
        ),
    ],
    action: Some(list),
    ..Command::new("list", "lists containerd plugins")
};

/// The distinct platforms, sorted, comma-joined.
fn platforms(ps: &[Platform]) -> String {
    let mut v: Vec<String> = ps
        .iter()
        .map(|p| platform(&p.os, &p.architecture, &p.variant))
        .collect();
    v.sort();
    v.dedup();
    v.join(",")
}

fn list(p: &Parsed) -> Result<()> {
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let plugins = c.run(async {
        let r = IntrospectionClient::with_origin(ch, origin())
            .plugins(c.req(PluginsRequest {
                filters: p.args.clone(),
            }))
            .await
            .map_err(grpc)?;
        Ok(r.into_inner().plugins)
    })?;
    if p.bool("quiet") {
        out(&plugins
            .iter()
            .map(|p| format!("{}\n", p.id))
            .collect::<String>());
        return Ok(());
    }
    // ctr: tabwriter.NewWriter(os.Stdout, 4, 8, 4, ' ', 0), and Println's spaces between
    // operands ("Type:\t", type → "Type:\t type").
    let mut t = TabWriter::new(4, 8, 4, ' ');
    if p.bool("detailed") {
        for (i, pl) in plugins.iter().enumerate() {
            if i > 0 {
                t.write("\t\t\t\n");
            }
            t.write(&format!("Type:\t {}\n", pl.r#type));
            t.write(&format!("ID:\t {}\n", pl.id));
            if !pl.requires.is_empty() {
                t.write("Requires:\t\n");
                for r in &pl.requires {
                    t.write(&format!("\t {r}\n"));
                }
            }
            if !pl.platforms.is_empty() {
                t.write(&format!("Platforms:\t {}\n", platforms(&pl.platforms)));
            }
            if !pl.exports.is_empty() {
                t.write("Exports:\t\n");
                // Go ranges over the map in random order; sorted here.
                let mut ex: Vec<_> = pl.exports.iter().collect();
                ex.sort();
                for (k, v) in ex {
                    t.write(&format!("\t {k} \t {v}\n"));
                }
            }
            if !pl.capabilities.is_empty() {
                t.write(&format!("Capabilities:\t {}\n", pl.capabilities.join(",")));
            }
            if let Some(e) = &pl.init_err {
                t.write("Error:\t\n");
                t.write(&format!(
                    "\t Code:\t {}\n",
                    go_code(tonic::Code::from_i32(e.code))
                ));
                t.write(&format!("\t Message:\t {}\n", e.message));
            }
        }
        out(&t.finish());
        return Ok(());
    }
    t.write("TYPE\tID\tPLATFORMS\tSTATUS\t\n");
    for pl in &plugins {
        let status = match &pl.init_err {
            None => "ok",
            Some(e) if e.message.contains("skip plugin") => "skip",
            Some(_) => "error",
        };
        let plats = if pl.platforms.is_empty() {
            "-".to_string()
        } else {
            platforms(&pl.platforms)
        };
        t.write(&format!("{}\t{}\t{plats}\t{status}\t\n", pl.r#type, pl.id));
    }
    out(&t.finish());
    Ok(())
}
