//! `ociboxd`: the containerd-like daemon (not built yet).

use std::ffi::OsString;
use std::process::ExitCode;

const HELP: &str = "Usage: ociboxd [--root DIR] [--state DIR] [--address SOCKET]

ociboxd serves containerd's resource model (namespaces, content, images, snapshots,
containers, tasks, events) over ttrpc on /run/ocibox/ocibox.sock.";

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    crate::not_built::front(invoked, &args, HELP)
}
