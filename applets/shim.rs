//! `containerd-shim-ocibox-v2`: the containerd shim v2 front end. Parses containerd's
//! Go-style flags (`-flag value`, `-flag=value`, `--flag`), then calls `ocibox::shim`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use ocibox::shim::{run, Action, ShimArgs};

const HELP: &str = "Usage of containerd-shim-ocibox-v2:
  -address string   grpc address back to main containerd
  -bundle string    path to the bundle if not workdir
  -debug            enable debug output in logs
  -id string        id of the task
  -namespace string namespace that owns the shim
  -publish-binary string  path to publish binary (used for publishing events)
  start | delete    subcommands (none: serve on the socket passed as fd 3)";

fn parse(args: Vec<OsString>) -> Result<(ShimArgs, Action), String> {
    let mut a = ShimArgs::default();
    let mut action = Action::Serve;
    let mut it = args.into_iter().map(|s| s.to_string_lossy().into_owned());
    while let Some(arg) = it.next() {
        if !arg.starts_with('-') {
            action = match arg.as_str() {
                "start" => Action::Start,
                "delete" => Action::Delete,
                other => return Err(format!("unknown subcommand {other:?}")),
            };
            continue;
        }
        let flag = arg.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        if name == "debug" || name == "v" {
            a.debug = inline.map(|v| v != "false").unwrap_or(true);
            if name == "v" {
                return Err("version".into());
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
        };
        match name.as_str() {
            "namespace" => a.namespace = value,
            "address" => a.address = value,
            "publish-binary" => a.publish_binary = value,
            "id" => a.id = value,
            "bundle" => a.bundle = Some(PathBuf::from(value)),
            // Flags of newer containerd versions that need nothing from us.
            "socket" | "shim-debug" => {}
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    Ok((a, action))
}

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    if matches!(
        args.first().and_then(|a| a.to_str()),
        Some("-h" | "--help" | "help")
    ) {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let (shim_args, action) = match parse(args) {
        Ok(p) => p,
        Err(v) if v == "version" => {
            println!("{invoked} (ocibox) version {}", ocibox::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{invoked}: {e}\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match run(&shim_args, action) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{invoked}: {e:#}");
            ExitCode::from(1)
        }
    }
}
