//! `containerd-shim-ocibox-v2`: the containerd shim v2 front end (being built).

use std::ffi::OsString;
use std::process::ExitCode;

const HELP: &str = "Usage of containerd-shim-ocibox-v2:
  -address string   grpc address back to main containerd
  -bundle string    path to the bundle if not workdir
  -debug            enable debug output in logs
  -id string        id of the task
  -namespace string namespace that owns the shim
  -publish-binary string  path to publish binary (used for publishing events)
  start | delete    subcommands";

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    crate::not_built::front(invoked, &args, HELP)
}
