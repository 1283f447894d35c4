//! `ocibox-gen-api VENDOR_DIR OUT_DIR`: compile containerd's API protos (found under
//! VENDOR_DIR, the `vendor/` directory of the containerd-client crate) with protox, a
//! protobuf compiler in Rust, and write prost messages plus tonic clients and servers into
//! OUT_DIR with a `mod.rs` that nests them by proto package.

use std::path::PathBuf;

/// The API ocibox serves and calls: containerd's v1 services, their message types and the
/// event payloads, with the files they import. Sandbox and streaming are left out (not
/// served); transfer's types are kept because Transfer is served.
const PROTOS: &[&str] = &[
    "types/descriptor.proto",
    "types/metrics.proto",
    "types/mount.proto",
    "types/platform.proto",
    "types/task/task.proto",
    "types/transfer/imagestore.proto",
    "types/transfer/importexport.proto",
    "types/transfer/progress.proto",
    "types/transfer/registry.proto",
    "types/transfer/streaming.proto",
    "services/containers/v1/containers.proto",
    "services/content/v1/content.proto",
    "services/diff/v1/diff.proto",
    "services/events/v1/events.proto",
    "services/images/v1/images.proto",
    "services/introspection/v1/introspection.proto",
    "services/leases/v1/leases.proto",
    "services/namespaces/v1/namespace.proto",
    "services/snapshots/v1/snapshots.proto",
    "services/streaming/v1/streaming.proto",
    "services/tasks/v1/tasks.proto",
    "services/transfer/v1/transfer.proto",
    "services/version/v1/version.proto",
    "events/container.proto",
    "events/content.proto",
    "events/image.proto",
    "events/namespace.proto",
    "events/snapshot.proto",
    "events/task.proto",
];

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (vendor, out) = match (args.next(), args.next()) {
        (Some(v), Some(o)) => (PathBuf::from(v), PathBuf::from(o)),
        _ => {
            eprintln!("usage: ocibox-gen-api VENDOR_DIR OUT_DIR");
            std::process::exit(2);
        }
    };
    let api = "github.com/containerd/containerd/api";
    let files: Vec<String> = PROTOS.iter().map(|p| format!("{api}/{p}")).collect();
    let fds = protox::compile(&files, [&vendor]).unwrap_or_else(|e| {
        eprintln!("compile protos under {}: {e:?}", vendor.display());
        std::process::exit(1);
    });
    std::fs::create_dir_all(&out).expect("create OUT_DIR");
    let mut config = tonic_prost_build::Config::new();
    // Type URLs are what an Any carries (events, transfer sources): generate Name impls.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(&out)
        .include_file("mod.rs")
        .compile_fds_with_config(fds, config)
        .unwrap_or_else(|e| {
            eprintln!("generate Rust into {}: {e}", out.display());
            std::process::exit(1);
        });
}
