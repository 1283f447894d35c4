//! A stand-in for `ctr image pull` until the ctl applet has one: pulls an image into an
//! image root in containerd's layout through the library (`ocibox::pull::pull`), the way
//! the daemon's pull will. Used by scripts/bench-pull.sh; the ctl's `ctr image pull`
//! replaces it.
//!
//! `pull [--root DIR] [--namespace NS] [--snapshotter overlayfs|native] [--plain-http]
//!       [--platform P]… [--all-platforms] [--max-concurrent-downloads N] [--progress] REF`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ocibox::image::{Matcher, Reference};
use ocibox::pull::{pull, FetchOptions, ImageRoot, ProgressEvent, PullOptions, PullTarget};
use ocibox::registry::download_limit::DownloadLimit;
use ocibox::registry::{ClientOptions, RegistryClient};

fn main() {
    if let Err(e) = run() {
        eprintln!("ctr: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut root = PathBuf::from("/var/lib/ocibox");
    let mut ns = "default".to_string();
    let mut snapshotter = "overlayfs".to_string();
    let mut client_opts = ClientOptions::default();
    let mut platforms: Vec<String> = Vec::new();
    let mut all = false;
    let mut downloads = ocibox::pull::fetch::DEFAULT_CONCURRENT_DOWNLOADS;
    let mut show_progress = false;
    let mut reference = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--root" => root = value("--root")?.into(),
            "--namespace" | "-n" => ns = value("--namespace")?,
            "--snapshotter" => snapshotter = value("--snapshotter")?,
            "--plain-http" => client_opts.hosts.plain_http = true,
            "--platform" => platforms.push(value("--platform")?),
            "--all-platforms" => all = true,
            "--max-concurrent-downloads" => {
                downloads = value("--max-concurrent-downloads")?
                    .parse()
                    .context("--max-concurrent-downloads")?
            }
            "--progress" => show_progress = true,
            s if s.starts_with('-') => bail!("unknown flag {s}"),
            s => reference = Some(s.to_string()),
        }
    }
    let Some(reference) = reference else {
        bail!("usage: pull [flags] REF");
    };
    let r = Reference::parse_docker_ref(&reference)?;
    let mut fetch = if all {
        FetchOptions::all_platforms()
    } else {
        FetchOptions::default()
    };
    if !platforms.is_empty() {
        let p: Vec<&str> = platforms.iter().map(String::as_str).collect();
        fetch.platforms = Matcher::from_specifiers(&p)?;
    }
    fetch.downloads = DownloadLimit::new(downloads);
    let opts = PullOptions {
        fetch,
        snapshotter: snapshotter.clone(),
        ..PullOptions::default()
    };
    let start = Instant::now();
    let image_root = ImageRoot::open(&root)?;
    let sn = image_root.snapshotter(&ns, &snapshotter)?;
    let target = PullTarget {
        db: &image_root.db,
        store: &image_root.store,
        ns: &ns,
        snapshotter: &sn,
    };
    let client = RegistryClient::new(client_opts);
    let progress = |e: &ProgressEvent| {
        if show_progress {
            eprintln!("{}: {} {}/{}", e.ref_, e.status, e.offset, e.total);
        }
    };
    let pulled = pull(&client, &target, &r, &opts, &progress)?;
    for img in &pulled.images {
        println!(
            "unpacked {} {}",
            img.manifest.digest,
            img.chain_id().map(|c| c.to_string()).unwrap_or_default()
        );
    }
    println!("done: {:?}", start.elapsed());
    Ok(())
}
