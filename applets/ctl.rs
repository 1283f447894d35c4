//! `ctr`: the client of ociboxd (not built yet).

use std::ffi::OsString;
use std::process::ExitCode;

const HELP: &str = "NAME:
   ctr - ocibox's client, speaking containerd's ctr command line

USAGE:
   ctr [global options] command [command options] [arguments...]

COMMANDS:
   images, image, i        manage images
   containers, c, container  manage containers
   tasks, t, task          manage tasks
   run                     run a container
   events, event           display containerd events
   namespaces, namespace, ns  manage namespaces
   shim                    interact with a shim directly";

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    crate::not_built::front(invoked, &args, HELP)
}
