//! `ociboxd`: containerd's gRPC API on a unix socket (see src/daemon). Flags as
//! containerd's: `--root`, `--state`, `--address/-a`, `--config/-c`, `--log-level/-l`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use ocibox::daemon::config::Config;
use ocibox::daemon::log;

/// ociboxd: containerd's API (namespaces, content, images, snapshots, containers, leases,
/// tasks, events) on a unix socket, for ctr, Docker and ocibox's ctl.
#[derive(FromArgs)]
struct Args {
    /// the gRPC socket (default /run/ocibox/ociboxd.sock)
    #[argh(option, short = 'a')]
    address: Option<PathBuf>,
    /// containerd-format TOML config file
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// persistent state (default /var/lib/ocibox)
    #[argh(option)]
    root: Option<PathBuf>,
    /// runtime state (default /run/ocibox)
    #[argh(option)]
    state: Option<PathBuf>,
    /// log level: debug, info, warn, error
    #[argh(option, short = 'l')]
    log_level: Option<String>,
}

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    let strs: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // `ociboxd [--address A] publish --topic T --namespace N`: the shims' publish binary.
    if let Some(p) = ocibox::daemon::publish::parse(&strs) {
        return match p.and_then(|p| ocibox::daemon::publish::run(&p, std::io::stdin())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{invoked}: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
    let a = match Args::from_args(&[invoked], &refs) {
        Ok(a) => a,
        Err(e) => {
            let ok = e.status.is_ok();
            if ok {
                println!("{}", e.output);
                return ExitCode::SUCCESS;
            }
            eprintln!("{}", e.output);
            return ExitCode::from(1);
        }
    };
    let mut cfg = Config::default();
    if let Some(p) = &a.config {
        // The config file reader comes with the daemon's config work; until then a named
        // file must at least exist, so a typo is not silently ignored.
        if let Err(e) = std::fs::metadata(p) {
            eprintln!("{invoked}: failed to load config {}: {e}", p.display());
            return ExitCode::from(1);
        }
    }
    if let Some(v) = a.address {
        cfg.address = v;
    }
    if let Some(v) = a.root {
        cfg.root = v;
    }
    if let Some(v) = a.state {
        cfg.state = v;
    }
    if let Some(v) = a.log_level {
        match log::Level::parse(&v) {
            Some(l) => log::set_level(l),
            None => {
                eprintln!("{invoked}: not a valid log level {v:?}");
                return ExitCode::from(1);
            }
        }
        cfg.log_level = v;
    }
    match ocibox::daemon::server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // containerd reports a failed start as one log line on stderr.
            log::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
