//! The `delete` subcommand: containerd's cleanup when it cannot reach the shim. Stops what
//! is left through the runtime the task was created with, unmounts the rootfs, removes the
//! dead shim's socket and prints a
//! `DeleteResponse` on stdout.

use std::time::SystemTime;

use anyhow::Result;
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::{Message, MessageField};

use super::options::RuntimeOptions;
use super::reaper::Reaper;
use super::rootfs_mounts::unmount_rootfs;
use super::runtime_client::Runtime;
use super::start::{remove_stale_socket, socket_path};
use super::ShimArgs;
use crate::events::timestamp;

/// Runs `delete`; returns the encoded DeleteResponse.
pub fn delete(args: &ShimArgs) -> Result<Vec<u8>> {
    let bundle = args.bundle_dir()?;
    let opts = RuntimeOptions::load(&bundle)?;
    let reaper = Reaper::start()?;
    let runtime = Runtime::new(&opts, &args.namespace, &bundle, reaper)?;
    // Already gone is fine: delete is idempotent.
    let _ = runtime.delete(&args.id, true);
    unmount_rootfs(&bundle);
    // A shim killed with -9 left its socket: nobody listens there any more.
    let _ = remove_stale_socket(&socket_path(&args.address, &args.namespace, &args.id));
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: MessageField::some(timestamp(SystemTime::now())),
        ..Default::default()
    };
    Ok(resp.write_to_bytes()?)
}
