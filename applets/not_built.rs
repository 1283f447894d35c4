//! Shared front end for applets whose engine is not built yet: honest help, honest failure.

use std::ffi::OsString;
use std::process::ExitCode;

/// Answer `--help`/`-h` with `help` (exit 0); any real command says "not built yet" (exit 1).
pub fn front(invoked: &str, args: &[OsString], help: &str) -> ExitCode {
    let first = args.first().and_then(|a| a.to_str()).unwrap_or("");
    match first {
        "--help" | "-h" | "help" | "" if first != "" || args.is_empty() => {
            println!("{help}");
            println!("\nStatus: not built yet in this version of ocibox.");
            if args.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        "--version" | "-v" => {
            println!("{invoked} (ocibox) version {}", ocibox::VERSION);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{invoked}: {first}: not built yet");
            ExitCode::from(1)
        }
    }
}
