//! `ctr`: ocibox's containerd client. The command tree is here, one file per ctr command
//! group under applets/ctl/; the parser, help pages, connection and formats they share are
//! in `ocibox::ctl`.

#[macro_use]
mod flags;
mod archive;
mod containers;
mod content;
mod events;
mod fetch;
mod images;
mod leases;
mod mount;
mod namespaces;
mod plugins;
mod pull;
mod push;
mod run;
mod shim;
mod snapshots;
mod stubs;
mod tasks;
mod version;

use std::ffi::OsString;
use std::process::ExitCode;

use ocibox::ctl::cli::{App, Command, Flag};

const GLOBAL_FLAGS: &[Flag] = &[
    Flag::bool("debug", "enable debug output in logs"),
    Flag::string("address, a", "address for containerd's GRPC server")
        .default(ocibox::ctl::client::CONTAINERD_ADDRESS)
        .env("CONTAINERD_ADDRESS"),
    Flag::duration("timeout", "total timeout for ctr commands"),
    Flag::duration("connect-timeout", "timeout for connecting to containerd"),
    Flag::string("namespace, n", "namespace to use with commands")
        .default("default")
        .env("CONTAINERD_NAMESPACE"),
];

/// ctr 1.6's commands, in its order.
const COMMANDS: &[Command] = &[
    plugins::COMMAND,
    version::COMMAND,
    containers::COMMAND,
    content::COMMAND,
    events::COMMAND,
    images::COMMAND,
    leases::COMMAND,
    namespaces::COMMAND,
    stubs::PPROF,
    run::RUN,
    snapshots::COMMAND,
    tasks::COMMAND,
    stubs::INSTALL,
    stubs::OCI,
    shim::COMMAND,
];

static APP: App = App {
    name: "ctr",
    version: ocibox::VERSION,
    name_text: "\n        __\n  _____/ /______\n / ___/ __/ ___/\n/ /__/ /_/ /\n\\___/\\__/_/\n\ncontainerd CLI\n",
    description: "\nctr is an unsupported debug and administrative client for interacting\n\
with the containerd daemon. Because it is unsupported, the commands,\n\
options, and operations are not guaranteed to be backward compatible or\n\
stable from release to release of the containerd project.",
    flags: GLOBAL_FLAGS,
    commands: COMMANDS,
};

pub fn main(_invoked: &str, args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ocibox::ctl::main(&APP, &args)
}
