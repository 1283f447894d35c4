//! Shared front end for applets whose engine is not built yet: honest help, honest failure.

use std::ffi::OsString;
use std::process::ExitCode;

/// `--help` prints `help` (exit 0); no arguments prints it too (exit 1, as a usage error);
/// any real command says "not built yet" (exit 1).
pub fn front(invoked: &str, args: &[OsString], help: &str) -> ExitCode {
    let first = args.first().and_then(|a| a.to_str());
    match first {
        None | Some("--help" | "-h" | "help") => {
            println!("{help}");
            println!("\nStatus: not built yet in this version of ocibox.");
            if first.is_none() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("--version" | "-v") => {
            println!("{invoked} (ocibox) version {}", ocibox::VERSION);
            ExitCode::SUCCESS
        }
        Some(cmd) => {
            eprintln!("{invoked}: {cmd}: not built yet");
            ExitCode::from(1)
        }
    }
}
