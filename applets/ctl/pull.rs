//! `ctr images pull`: in the daemon through Transfer when it serves it (ociboxd,
//! containerd 1.7), else client-side as ctr 1.6 pulls from a containerd 1.6 (fetch into
//! the daemon's content store, record the image, unpack per platform); ctr 1.6's progress
//! either way. The choice is `pull_transfer::use_transfer`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::out;
use ocibox::ctl::progress;
use ocibox::ctl::progress_loop::{run_with_progress, Display};
use ocibox::ctl::pull_client::{self, PullOptions, Session};
use ocibox::ctl::pull_transfer::{self, TransferPull, CLIENT_SIDE_FLAGS};
use ocibox::registry::client::ClientOptions;
use ocibox::registry::hosts::HostsOptions;
use ocibox::registry::{Credentials, RegistryClient};

use super::flags::SNAPSHOTTER;

pub const PULL: Command = Command {
    args_usage: "[flags] <ref>",
    description: "Fetch and prepare an image for use in containerd.\n\n\
After pulling an image, it should be ready to use the same reference in a run\n\
command. As part of this process, we do the following:\n\n\
1. Fetch all resources into containerd.\n\
2. Prepare the snapshot filesystem with the pulled resources.\n\
3. Register metadata for the image.\n",
    flags: registry_flags![
        SNAPSHOTTER,
        Flag::strings("label", "labels to attach to the image"),
        Flag::strings("platform", "Pull content from a specific platform"),
        Flag::bool(
            "all-platforms",
            "pull content and metadata from all platforms"
        ),
        Flag::bool("all-metadata", "Pull metadata for all platforms"),
        Flag::bool("print-chainid", "Print the resulting image's chain ID"),
        Flag::number(
            "max-concurrent-downloads",
            "Set the max concurrent downloads for each pull"
        ),
        Flag::bool(
            "local",
            "Fetch content from local client rather than using transfer service"
        ),
    ],
    action: Some(pull),
    ..Command::new("pull", "pull an image from a remote")
};

/// The registry client ctr's registry flags describe.
pub fn registry_client(p: &Parsed) -> Result<RegistryClient> {
    let mut opts = ClientOptions {
        hosts: HostsOptions {
            hosts_dir: Some(p.string("hosts-dir"))
                .filter(|s| !s.is_empty())
                .map(Into::into),
            plain_http: p.bool("plain-http"),
            skip_verify: p.bool("skip-verify"),
            ca_files: Some(p.string("tlscacert"))
                .filter(|s| !s.is_empty())
                .map(Into::into)
                .into_iter()
                .collect(),
        },
        ..ClientOptions::default()
    };
    let user = p.string("user");
    if !user.is_empty() {
        opts.credentials = Some(Credentials::parse_user_flag(&user)?);
    }
    Ok(RegistryClient::new(opts))
}

fn pull(p: &Parsed) -> Result<()> {
    let reference = p.first().to_string();
    if reference.is_empty() {
        anyhow::bail!("please provide an image reference to pull");
    }
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let labels: HashMap<String, String> =
        ocibox::ctl::spec_from_image::label_args(&p.strings("label"))
            .into_iter()
            .collect();
    let opts = PullOptions {
        reference,
        registry: registry_client(p)?,
        platforms: p.strings("platform"),
        all_platforms: p.bool("all-platforms"),
        snapshotter: Some(p.string("snapshotter"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| pull_client::DEFAULT_SNAPSHOTTER.to_string()),
        labels,
        max_concurrent_downloads: p.string("max-concurrent-downloads").parse().unwrap_or(0),
    };
    let tty = nix::unistd::isatty(libc::STDOUT_FILENO).unwrap_or(false);
    let print_chain = p.bool("print-chainid");
    let client_side = p.bool("local") || CLIENT_SIDE_FLAGS.iter().any(|f| p.is_set(f));
    let user = Some(p.string("user"))
        .filter(|u| !u.is_empty())
        .map(|u| Credentials::parse_user_flag(&u))
        .transpose()?;
    let transfer = TransferPull {
        reference: opts.reference.clone(),
        platforms: opts.platforms.clone(),
        all_platforms: opts.all_platforms,
        snapshotter: p.string("snapshotter"),
        labels: opts.labels.clone(),
        hosts_dir: p.string("hosts-dir"),
        plain_http: p.bool("plain-http"),
        user,
    };
    c.run(async {
        let mut s = Session::new(ch, &c.namespace);
        if pull_transfer::use_transfer(&s, client_side).await {
            return pull_through_transfer(&s, &transfer, tty).await;
        }
        let lease = pull_client::create_lease(&s).await?;
        s.lease = Some(lease.clone());
        let result = pull_in_lease(&s, &opts, tty, print_chain).await;
        let _ = pull_client::delete_lease(&s, &lease).await;
        result
    })
}

async fn pull_in_lease(
    s: &Session,
    opts: &PullOptions,
    tty: bool,
    print_chain: bool,
) -> Result<()> {
    let statuses: pull_client::Statuses = Arc::new(Mutex::new(Vec::new()));
    let display = Display { enabled: true, tty };
    let fetch = pull_client::fetch(s, opts, &statuses);
    // The last frame, as ctr's `done` pass draws it: whatever was still in flight is done.
    let (target, manifests) = run_with_progress(display, &statuses, fetch, |last, ok| {
        if ok {
            for l in last {
                if l.status != "done" && l.status != "exists" && l.status != "resolved" {
                    l.status = "done".into();
                }
            }
        }
        true
    })
    .await?;
    let unpack_start = Instant::now();
    let default_platform = opts
        .platforms
        .first()
        .cloned()
        .unwrap_or_else(|| "linux/amd64".to_string());
    for (m, plat) in &manifests {
        let name = plat
            .as_ref()
            .map(pull_client::platform_name)
            .unwrap_or_else(|| default_platform.clone());
        out(&format!("unpacking {name} {}...\n", target.digest));
        let chain = pull_client::unpack(s, m, &opts.snapshotter).await?;
        if print_chain {
            out(&format!("image chain ID: {chain}\n"));
        }
    }
    out(&format!(
        "done: {}\t\n",
        progress::go_duration(unpack_start.elapsed())
    ));
    Ok(())
}

/// The pull in the daemon (Transfer), drawn as ctr 1.6 draws its pull: the blob lines and
/// footer while it runs, then the `unpacking` and `done` lines (the daemon unpacked each
/// layer as it arrived; the lines name what was unpacked).
async fn pull_through_transfer(s: &Session, o: &TransferPull, tty: bool) -> Result<()> {
    let statuses: pull_client::Statuses = Arc::new(Mutex::new(Vec::new()));
    let display = Display { enabled: true, tty };
    let pull = pull_transfer::pull(s, o, &statuses);
    run_with_progress(display, &statuses, pull, |_, _| true).await?;
    let unpack_start = Instant::now();
    let digest = pull_transfer::image_digest(s, &o.reference).await?;
    let names: Vec<String> = match (o.all_platforms, o.platforms.is_empty()) {
        (false, false) => o.platforms.clone(),
        _ => vec![pull_client::platform_name(&ocibox::image::Platform::host())],
    };
    for name in names {
        out(&format!("unpacking {name} {digest}...\n"));
    }
    out(&format!(
        "done: {}\t\n",
        progress::go_duration(unpack_start.elapsed())
    ));
    Ok(())
}
