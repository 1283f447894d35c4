//! `runc`: the OCI runtime front end.
use std::ffi::OsString;
use std::process::ExitCode;

pub fn main(invoked: &str, args: Vec<OsString>) -> ExitCode {
    crate::not_built::front(invoked, &args, "runc")
}
