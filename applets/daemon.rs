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
    // The file first, then the flags over it (containerd's precedence).
    if let Some(p) = &a.config {
        match cfg.load_file(p) {
            Ok(unknown) => {
                for k in unknown {
                    log::warn(&format!(
                        "Ignoring unknown key in TOML: {k} (file {})",
                        p.display()
                    ));
                }
            }
            Err(e) => {
                eprintln!("{invoked}: {e:#}");
                return ExitCode::from(1);
            }
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
        cfg.log_level = v;
    }
    match log::Level::parse(&cfg.log_level) {
        Some(l) => log::set_level(l),
        None => {
            eprintln!("{invoked}: not a valid log level {:?}", cfg.log_level);
            return ExitCode::from(1);
        }
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
