//! The internal init applet: the runtime re-executes itself under a name no user types.

use std::process::ExitCode;

/// If this process is a container init, run it and return its exit code.
pub fn enter_if_init() -> Option<ExitCode> {
    if !ocibox::init::is_init_process() {
        return None;
    }
    Some(ExitCode::from(ocibox::init::main()))
}
