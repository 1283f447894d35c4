//! `ctr images import|export`, client-side as ctr 1.6 runs them: the archive is read (or
//! written) here and its blobs go through the daemon's Content service (src/archive over
//! `ocibox::ctl::api_store`), under a lease; an import then unpacks each image through
//! Snapshots and Diff unless `--no-unpack`.

use std::io::Read;

use anyhow::{anyhow, bail, Context as _, Result};
use ocibox::archive::store::ArchiveStore;
use ocibox::archive::{export_from, import_to, ExportOptions, ImportOptions, Naming};
use ocibox::ctl::api_store::ApiStore;
use ocibox::ctl::cli::{Command, Flag, Parsed};
use ocibox::ctl::client::Client;
use ocibox::ctl::image::{self, Desc};
use ocibox::ctl::out;
use ocibox::ctl::pull_client::{self, Session};
use ocibox::image::{Descriptor, Matcher, Platform};

use super::flags::SNAPSHOTTER;

pub const IMPORT: Command = Command {
    args_usage: "[flags] <in>",
    description: "Import images from a tar stream.
Implemented formats:
- oci.v1
- docker.v1.1
- docker.v1.2


For OCI v1, you may need to specify --base-name because an OCI archive may
contain only partial image references (tags without the base image name).
If no base image name is provided, a name will be generated as \"import-%{yyyy-MM-dd}\".

e.g.
  $ ctr images import --base-name foo/bar foobar.tar

If foobar.tar contains an OCI ref named \"latest\" and anonymous ref \"sha256:deadbeef\", the command will create
\"foo/bar:latest\" and \"foo/bar@sha256:deadbeef\" images in the containerd store.
",
    flags: &[
        Flag::string(
            "base-name",
            "base image name for added images, when provided only images with this name prefix are imported",
        ),
        Flag::bool("digests", "whether to create digest images (default: false)"),
        Flag::bool(
            "skip-digest-for-named",
            "skip applying --digests option to images named in the importing tar (use it in conjunction with --digests)",
        ),
        Flag::string(
            "index-name",
            "image name to keep index as, by default index is discarded",
        ),
        Flag::bool("all-platforms", "imports content for all platforms, false by default"),
        Flag::string("platform", "imports content for specific platform"),
        Flag::bool("no-unpack", "skip unpacking the images, false by default"),
        Flag::bool(
            "compress-blobs",
            "compress uncompressed blobs when creating manifest (Docker format only)",
        ),
        SNAPSHOTTER,
    ],
    action: Some(import),
    ..Command::new("import", "import images")
};

pub const EXPORT: Command = Command {
    args_usage: "[flags] <out> <image> ...",
    description: "Export images to an OCI tar archive.

Tar output is formatted as an OCI archive, a Docker manifest is provided for the platform.
Use '--skip-manifest-json' to avoid including the Docker manifest.json file.
Use '--platform' to define the output platform.
When '--all-platforms' is given all images in a manifest list must be available.
",
    flags: &[
        Flag::bool(
            "skip-manifest-json",
            "do not add Docker compatible manifest.json to archive",
        ),
        Flag::bool(
            "skip-non-distributable",
            "do not add non-distributable blobs such as Windows layers to archive",
        ),
        Flag::strings("platform", "Pull content from a specific platform"),
        Flag::bool("all-platforms", "exports content from all platforms"),
    ],
    action: Some(export),
    ..Command::new("export", "export images")
};

/// The manifest `target` resolves to for `m`, as a descriptor the unpack takes.
fn manifest_for(c: &Client, target: &Descriptor, m: &Matcher) -> Result<Descriptor> {
    let t = Desc {
        media_type: target.media_type.clone(),
        digest: target.digest.to_string(),
        size: target.size as i64,
        platform: None,
    };
    let (d, _) = image::manifest_desc(c, &t, m)?;
    Ok(Descriptor::new(
        d.media_type,
        d.digest
            .parse()
            .with_context(|| format!("manifest digest {:?}", d.digest))?,
        d.size.max(0) as u64,
    ))
}

fn import(p: &Parsed) -> Result<()> {
    let input = p.first().to_string();
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let base = p.string("base-name");
    let mut naming = if base.is_empty() {
        Naming::default_for_today()
    } else {
        Naming::with_base_name(&base)
    };
    naming.digests = p.bool("digests");
    if p.bool("skip-digest-for-named") {
        if !naming.digests {
            bail!("--skip-digest-for-named must be specified with --digests option");
        }
        naming.skip_digest_for_named = true;
    }
    let index_name = Some(p.string("index-name")).filter(|s| !s.is_empty());
    let platform = p.string("platform");
    let only = if platform.is_empty() {
        None
    } else {
        Some(Matcher::only(&Platform::parse(&platform)?))
    };
    let platforms = if p.bool("all-platforms") {
        Matcher::All
    } else {
        only.clone().unwrap_or_else(Matcher::default_for_host)
    };
    let opts = ImportOptions {
        naming,
        index_name,
        platforms,
        image_labels: Default::default(),
        compress_blobs: p.bool("compress-blobs"),
    };
    let mut s = Session::new(ch, &c.namespace);
    let lease = c.run(pull_client::create_lease(&s))?;
    s.lease = Some(lease.clone());
    let result = import_leased(p, &c, &s, &input, opts, only);
    let _ = c.run(pull_client::delete_lease(&s, &lease));
    result
}

fn import_leased(
    p: &Parsed,
    c: &Client,
    s: &Session,
    input: &str,
    opts: ImportOptions,
    only: Option<Matcher>,
) -> Result<()> {
    let reader: Box<dyn Read + Send> = if input == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(input).map_err(|e| anyhow!("open {input}: {}", go_io(&e)))?)
    };
    let store_session = s.clone();
    let imported = c.run(async move {
        let store = ApiStore::current(store_session);
        tokio::task::spawn_blocking(move || import_to(&store, reader, &opts))
            .await
            .map_err(|e| anyhow!("import: {e}"))?
    })?;
    if p.bool("no-unpack") {
        return Ok(());
    }
    let matcher = only.unwrap_or_else(Matcher::default_for_host);
    let mut snapshotter = p.string("snapshotter");
    if snapshotter.is_empty() {
        snapshotter = pull_client::DEFAULT_SNAPSHOTTER.to_string();
    }
    for img in &imported.images {
        out(&format!(
            "unpacking {} ({})...",
            img.name, img.target.digest
        ));
        let target = Descriptor::new(
            img.target.media_type.clone(),
            img.target.digest,
            img.target.size,
        );
        let manifest = manifest_for(c, &target, &matcher)?;
        c.run(pull_client::unpack(s, &manifest, &snapshotter))?;
        out("done\n");
    }
    Ok(())
}

/// An I/O error as Go's `os` package words it (`no such file or directory`).
pub fn go_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

fn export(p: &Parsed) -> Result<()> {
    let output = p.first().to_string();
    let names: Vec<String> = p.args.get(1..).unwrap_or_default().to_vec();
    if output.is_empty() || names.is_empty() {
        bail!("please provide both an output filename and an image reference to export");
    }
    let pss = p.strings("platform");
    let mut opts = ExportOptions::default();
    if !pss.is_empty() {
        let mut all = Vec::new();
        for ps in &pss {
            let pl = Platform::parse(ps).map_err(|e| anyhow!("invalid platform {ps:?}: {e:#}"))?;
            all.push(pl.normalize());
        }
        opts.platforms = Matcher::Ordered(all);
    }
    opts.all_platforms = p.bool("all-platforms");
    // ctr 1.6.20 writes manifest.json even with this flag (only its RepoTags go); ocibox
    // does what the flag says, as the archive library does.
    opts.skip_manifest_json = p.bool("skip-manifest-json");
    opts.skip_non_distributable = p.bool("skip-non-distributable");
    let c = Client::new(p)?;
    let ch = c.channel()?;
    let w: Box<dyn std::io::Write + Send> = if output == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(&output).map_err(|e| anyhow!("open {output}: {}", go_io(&e)))?,
        )
    };
    let s = Session::new(ch, &c.namespace);
    c.run(async move {
        let store = ApiStore::current(s);
        tokio::task::spawn_blocking(move || -> Result<()> {
            // containerd's `WithImage`: a missing image fails with the Images service's words.
            for n in &names {
                store.image(n)?;
            }
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            export_from(&store, &refs, std::io::BufWriter::new(w), &opts)
        })
        .await
        .map_err(|e| anyhow!("export: {e}"))?
    })
}
