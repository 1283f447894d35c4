//! ocibox's ctr: the shared machinery the applet's command files (applets/ctl/) stand on.
//! [`cli`] is urfave/cli v1's parser and help pages, [`tabwriter`] Go's column writer,
//! [`client`] the connection, [`duration`] Go's durations, [`fmt`] the value formats ctr's
//! tables use (sizes, times, labels).
//! The commands' own behaviour: [`pull_client`] (client-side pull) and [`pull_transfer`]
//! (the pull in the daemon, through Transfer) with [`progress`] (their display), [`run`] with [`spec_from_image`] and [`task_io`], [`task_tables`] and
//! [`go_json`] (ctr's task outputs), [`shim_cmd`] (`ctr shim`).

pub mod api_store;
pub mod cli;
pub mod client;
pub mod cni;
pub mod duration;
pub mod fmt;
pub mod go_errors;
pub mod go_json;
pub mod image;
pub mod json;
pub mod progress;
pub mod progress_loop;
pub mod pull_client;
pub mod pull_transfer;
pub mod push_client;
pub mod remap_snapshot;
pub mod run;
pub mod shim_cmd;
pub mod spec_from_image;
pub mod spec_opts;
pub mod tabwriter;
pub mod task_io;
pub mod task_tables;

use std::io::Write as _;
use std::process::ExitCode;

use cli::{App, Exit, Resolved};

/// Write to stdout, ignoring a closed pipe (`ctr … | head` is fine).
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Run the command line `args` (without argv[0]) of `app`, as ctr's main does: help pages
/// and usage errors as urfave prints them, an action's error as `ctr: <error>`, exit 1.
pub fn main(app: &'static App, args: &[String]) -> ExitCode {
    match app.resolve(args) {
        Resolved::Print(s) => {
            out(&s);
            ExitCode::SUCCESS
        }
        Resolved::Usage { stdout, error } => {
            out(&stdout);
            eprintln!("{}: {error}", app.name);
            ExitCode::from(1)
        }
        Resolved::Fail { code, message } => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
        Resolved::Run(p) => {
            let Some(action) = p.command.action else {
                out(&p.help());
                return ExitCode::SUCCESS;
            };
            match action(&p) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    if let Some(x) = e.downcast_ref::<Exit>() {
                        if !x.message.is_empty() {
                            eprintln!("{}", x.message);
                        }
                        return ExitCode::from(x.code);
                    }
                    eprintln!("{}: {e:#}", app.name);
                    ExitCode::from(1)
                }
            }
        }
    }
}
