//! `ctr content fetch`: the first half of `ctr image pull` (ctr 1.6's `content.Fetch`):
//! resolve, fetch every blob of the platforms asked for into the daemon's content store
//! under a lease, record the image, with the pull's progress; nothing is unpacked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::go_errors::go_request_errors;
use ocibox::ctl::progress_loop::{run_with_progress, Display};
use ocibox::ctl::pull_client::{self, PullOptions, Session, Statuses};

pub const FETCH: Command = Command {
    args_usage: "[flags] <remote> <object>",
    description: "Fetch an image into containerd.
  
This command ensures that containerd has all the necessary resources to build
an image's rootfs and convert the configuration to a runtime format supported
by containerd.

This command uses the same syntax, of remote and object, as 'ctr fetch-object'.
We may want to make this nicer, but agnostism is preferred for the moment.

Right now, the responsibility of the daemon and the cli aren't quite clear. Do
not use this implementation as a guide. The end goal should be having metadata,
content and snapshots ready for a direct use via the 'ctr run'.

Most of this is experimental and there are few leaps to make this work.",
    flags: registry_flags![
        Flag::strings("label", "labels to attach to the image"),
        Flag::strings("platform", "Pull content from a specific platform"),
        Flag::bool("all-platforms", "pull content from all platforms"),
        Flag::bool("all-metadata", "Pull metadata for all platforms"),
        Flag::bool(
            "metadata-only",
            "Pull all metadata including manifests and configs"
        ),
    ],
    action: Some(fetch),
    ..Command::new("fetch", "fetch all content for an image into containerd")
};

fn fetch(p: &Parsed) -> Result<()> {
    let reference = p.first().to_string();
    let c = Client::new(p)?;
    let ch = c.channel()?;
    if reference.is_empty() {
        // containerd's resolver on an empty reference.
        anyhow::bail!("failed to resolve reference \"\": hostname required");
    }
    let labels: HashMap<String, String> =
        ocibox::ctl::spec_from_image::label_args(&p.strings("label"))
            .into_iter()
            .collect();
    let opts = PullOptions {
        reference,
        registry: super::pull::registry_client(p)?,
        platforms: p.strings("platform"),
        all_platforms: p.bool("all-platforms"),
        snapshotter: pull_client::DEFAULT_SNAPSHOTTER.to_string(),
        labels,
        max_concurrent_downloads: 0,
    };
    let display = Display::stdout(true);
    c.run(async {
        let mut s = Session::new(ch, &c.namespace);
        let lease = pull_client::create_lease(&s).await?;
        s.lease = Some(lease.clone());
        let statuses: Statuses = Arc::new(Mutex::new(Vec::new()));
        let fetched = run_with_progress(
            display,
            &statuses,
            pull_client::fetch(&s, &opts, &statuses),
            |lines, ok| {
                // ctr draws a last frame only after a fetch that worked, every blob done.
                for l in lines.iter_mut() {
                    if l.status != "done" && l.status != "exists" && l.status != "resolved" {
                        l.status = "done".into();
                    }
                }
                ok
            },
        )
        .await;
        let _ = pull_client::delete_lease(&s, &lease).await;
        fetched.map(|_| ())
    })
    .map_err(|e| anyhow::anyhow!(go_request_errors(&format!("{e:#}"))))
}
