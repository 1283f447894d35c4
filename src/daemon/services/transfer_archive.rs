//! Transfer with image archives and names, as containerd 1.7's `pkg/transfer/local`
//! (`import.go`, `export.go`, `tag.go`) does them:
//!
//! - `ImageImportStream` → `ImageStore`: the archive's bytes read from the stream
//!   ([`StreamReader`]) straight into [`crate::archive::import`]; the images named as the
//!   store's first prefix reference says (`WithNamedPrefix` / `WithDigestRef`: base name,
//!   overwrite, digests), `name` kept as the index's image (`--index-name`), `platforms`
//!   followed (none: all), `force_compress` is `--compress-blobs`; then each image is
//!   unpacked for each of `unpacks` ([`super::transfer_unpack`]). A `saved` event per
//!   image.
//! - `ImageStore` → `ImageExportStream`: [`crate::archive::export`] of the store's name
//!   (and its full extra references) written into the stream ([`StreamWriter`]).
//! - `ImageStore` → `ImageStore`: the destination name gets the source's target.
//!
//! The byte streams are containerd's (`pkg/transfer/streaming`): `Data` messages of at
//! most 32 KiB, sent only while the receiver's window (`WindowUpdate`s, 64 KiB at a time)
//! allows.

use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::api::services::images::v1::{ImageCreate, ImageUpdate};
use crate::api::types::transfer::{
    Data, ImageExportStream, ImageImportStream, ImageStore, Progress, WindowUpdate,
};
use crate::api::typeurl;
use crate::archive::{ExportOptions, ImportOptions, Naming};
use crate::daemon::context::Daemon;
use crate::errdefs::{err, ErrorKind};
use crate::image::platform::{Matcher, Platform};
use crate::image::Descriptor;
use crate::metadata::images;
use crate::metadata::namespaced_content::NamespacedContent;

use super::streaming::Stream;
use super::transfer::ProgressSink;
use super::transfer_unpack::unpack_image;

/// The most one `Data` message carries.
pub const MAX_READ: usize = 32 * 1024;
/// The window a receiver opens at a time.
pub const WINDOW: i32 = 2 * MAX_READ as i32;

fn content<'a>(d: &'a Daemon, ns: &str) -> NamespacedContent<'a> {
    NamespacedContent {
        db: &d.db,
        store: &d.content,
        ns: ns.to_owned(),
        lease: None,
    }
}

fn matcher(ps: &[crate::api::types::Platform]) -> Option<Matcher> {
    (!ps.is_empty()).then(|| {
        Matcher::Ordered(
            ps.iter()
                .map(|p| Platform::new(&p.os, &p.architecture, &p.variant).normalize())
                .collect(),
        )
    })
}

/// ctr's import naming from the store's first prefix reference.
fn naming(store: &ImageStore) -> Naming {
    match store.extra_references.iter().find(|r| r.is_prefix) {
        Some(r) => Naming {
            base: r.name.clone(),
            filter: !r.allow_overwrite,
            digests: r.add_digest,
            skip_digest_for_named: r.skip_named_digest,
        },
        None => Naming::default_for_today(),
    }
}

pub fn import(
    d: &Arc<Daemon>,
    ns: &str,
    from: &ImageImportStream,
    stream: Stream,
    store: &ImageStore,
    progress: &ProgressSink,
) -> Result<()> {
    let opts = ImportOptions {
        naming: naming(store),
        index_name: Some(store.name.clone()).filter(|s| !s.is_empty()),
        platforms: matcher(&store.platforms).unwrap_or(Matcher::All),
        image_labels: store.labels.clone().into_iter().collect(),
        compress_blobs: from.force_compress,
    };
    let reader = StreamReader::new(stream);
    let imported =
        crate::archive::import(&content(d, ns), reader, &opts).context("failed to import")?;
    for u in &store.unpacks {
        let sn = match u.snapshotter.as_str() {
            "" => d.config.snapshotter.clone(),
            s => s.to_owned(),
        };
        let platforms = match &u.platform {
            Some(p) => Matcher::only(&Platform::new(&p.os, &p.architecture, &p.variant)),
            None => Matcher::default_for_host(),
        };
        for i in &imported.images {
            let t = &i.target;
            let mut target = Descriptor::new(t.media_type.clone(), t.digest, t.size);
            target.annotations = t.annotations.clone();
            unpack_image(d, ns, &target, &platforms, &sn)
                .with_context(|| format!("unpack image {}", i.name))?;
        }
    }
    for i in &imported.images {
        d.events.publish(
            ns,
            "/images/create",
            &ImageCreate {
                name: i.name.clone(),
                labels: i.labels.clone().into_iter().collect(),
            },
        );
        progress.send(Progress {
            event: "saved".into(),
            name: i.name.clone(),
            ..Default::default()
        });
    }
    Ok(())
}

pub fn export(
    d: &Arc<Daemon>,
    ns: &str,
    store: &ImageStore,
    to: &ImageExportStream,
    stream: Stream,
    _progress: &ProgressSink,
) -> Result<()> {
    let mut names: Vec<&str> = Vec::new();
    if !store.name.is_empty() {
        names.push(&store.name);
    }
    names.extend(
        store
            .extra_references
            .iter()
            .filter(|r| !r.is_prefix && !r.name.is_empty())
            .map(|r| r.name.as_str()),
    );
    if names.is_empty() {
        return Err(err(ErrorKind::InvalidArgument, "no image name to export"));
    }
    let mut opts = ExportOptions {
        all_platforms: to.all_platforms,
        skip_manifest_json: to.skip_compatibility_manifest,
        skip_non_distributable: to.skip_non_distributable,
        ..ExportOptions::default()
    };
    if let Some(m) = matcher(&to.platforms) {
        opts.platforms = m;
    }
    let mut w = io::BufWriter::with_capacity(MAX_READ, StreamWriter::new(stream));
    crate::archive::export(&content(d, ns), &names, &mut w, &opts)?;
    w.flush()
        .context("write the archive to the export stream")?;
    Ok(())
}

pub fn tag(
    d: &Arc<Daemon>,
    ns: &str,
    from: &ImageStore,
    to: &ImageStore,
    progress: &ProgressSink,
) -> Result<()> {
    if from.name.is_empty() || to.name.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            "a tag needs a source and a destination name",
        ));
    }
    let src = d.db.view(|v| images::get(v, ns, &from.name))?;
    let mut image = src.clone();
    image.name = to.name.clone();
    if !to.labels.is_empty() {
        image.labels = to.labels.clone().into_iter().collect();
    }
    let created = d.db.update(|tx| match images::get(tx, ns, &to.name) {
        Ok(_) => images::update(tx, ns, image.clone(), &[]).map(|_| false),
        Err(_) => images::create(tx, ns, image.clone()).map(|_| true),
    })?;
    let labels = image.labels.clone().into_iter().collect();
    if created {
        let e = ImageCreate {
            name: image.name.clone(),
            labels,
        };
        d.events.publish(ns, "/images/create", &e);
    } else {
        let e = ImageUpdate {
            name: image.name.clone(),
            labels,
        };
        d.events.publish(ns, "/images/update", &e);
    }
    progress.send(Progress {
        event: "saved".into(),
        name: to.name.clone(),
        ..Default::default()
    });
    Ok(())
}

/// The bytes a client sends over a stream, as a reader (containerd's `ReceiveStream`):
/// the window is reopened before each receive; the client's close is the end; a client
/// that went away is an error, not an end.
pub struct StreamReader {
    s: Stream,
    window: i32,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl StreamReader {
    pub fn new(s: Stream) -> StreamReader {
        StreamReader {
            s,
            window: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            if self.window < WINDOW
                && self
                    .s
                    .blocking_send(typeurl::pack(&WindowUpdate { update: WINDOW }))
                    .is_ok()
            {
                self.window += WINDOW;
            }
            let Some(a) = self.s.blocking_recv() else {
                self.done = true;
                if self.s.broken() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("stream {}: the client went away mid-stream", self.s.id),
                    ));
                }
                return Ok(0);
            };
            if let Ok(d) = typeurl::unpack::<Data>(&a) {
                self.window -= i32::try_from(d.data.len()).unwrap_or(i32::MAX);
                self.buf = d.data;
                self.pos = 0;
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Bytes written to a client over a stream (containerd's `WriteByteStream`): sent in
/// `Data` messages while the client's window allows, waiting for its `WindowUpdate`s.
/// Dropping it closes the stream (the client reads the end).
pub struct StreamWriter {
    s: Stream,
    remaining: i64,
}

impl StreamWriter {
    pub fn new(s: Stream) -> StreamWriter {
        StreamWriter { s, remaining: 0 }
    }

    fn closed(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("stream {}: the client went away", self.s.id),
        )
    }
}

impl Write for StreamWriter {
    fn write(&mut self, p: &[u8]) -> io::Result<usize> {
        if p.is_empty() {
            return Ok(0);
        }
        while self.remaining <= 0 {
            let a = self.s.blocking_recv().ok_or_else(|| self.closed())?;
            if let Ok(u) = typeurl::unpack::<WindowUpdate>(&a) {
                self.remaining += i64::from(u.update);
            }
        }
        let n = p
            .len()
            .min(MAX_READ)
            .min(usize::try_from(self.remaining).unwrap_or(MAX_READ));
        let data = Data {
            data: p[..n].to_vec(),
        };
        self.s
            .blocking_send(typeurl::pack(&data))
            .map_err(|_| self.closed())?;
        self.remaining -= n as i64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
