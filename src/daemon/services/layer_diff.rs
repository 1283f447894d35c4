//! A layer of the changes from one tree to another (what `Diff.Diff` and `ctr snapshots
//! diff` make): both sides mounted read-only on private directories, walked together in
//! name order; what the upper tree adds or changes (type, mode, owner, size, mtime, link
//! target, device) is written as a tar entry, what it lacks as a `.wh.<name>` whiteout.
//! The tar is digested as it is written (the diffID), compressed by the requested media
//! type (gzip by default, as containerd's), and written into content through an ingest, the
//! blob labelled `containerd.io/uncompressed` with the diffID. Extended attributes are not
//! carried (the tar crate is built without them).

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::api::types::Descriptor;
use crate::content::{Digest, Digester, Writer};
use crate::daemon::services::diff::TempMount;
use crate::errdefs::{err, ErrorKind};
use crate::linux::mount::Mount;
use crate::metadata::namespaced_content::NamespacedContent;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const PLAIN: &str = "application/vnd.oci.image.layer.v1.tar";
/// The label containerd puts the diffID of a compressed layer under.
const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// Digests what passes through to the inner writer.
struct DigestingWriter<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> Write for DigestingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Compressor<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// Make the layer of `upper` over `lower` (mount lists; an empty list is an empty tree)
/// into content; its descriptor.
pub fn diff_into_content(
    root: &Path,
    nc: &NamespacedContent,
    lower: &[Mount],
    upper: &[Mount],
    media_type: &str,
    ref_: &str,
    mut labels: BTreeMap<String, String>,
) -> Result<Descriptor> {
    let media_type = if media_type.is_empty() {
        GZIP
    } else {
        media_type
    };
    if ![GZIP, ZSTD, PLAIN].contains(&media_type) {
        return Err(err(
            ErrorKind::NotImplemented,
            format!("unsupported diff media type: {media_type}"),
        ));
    }
    if upper.is_empty() {
        return Err(ErrorKind::InvalidArgument.err("upper mounts required"));
    }
    let empty;
    let lower_mount;
    let lower_dir: &Path = if lower.is_empty() {
        empty = EmptyDir::new(root)?;
        &empty.0
    } else {
        lower_mount = TempMount::new(root, lower)?;
        &lower_mount.path
    };
    let upper_mount = TempMount::new(root, upper)?;

    let ref_ = if ref_.is_empty() {
        format!(
            "diff-{}",
            crate::timefmt::to_unix_nanos(std::time::SystemTime::now())
        )
    } else {
        ref_.to_owned()
    };
    let writer = nc.writer(&ref_, 0, None)?;
    let (writer, diff_id) = match write_layer(writer, lower_dir, &upper_mount.path, media_type) {
        Ok(x) => x,
        Err(e) => {
            let _ = nc.abort(&ref_);
            return Err(e);
        }
    };
    let size = writer.status().offset;
    if media_type != PLAIN {
        labels.insert(UNCOMPRESSED_LABEL.into(), diff_id.to_string());
    }
    let written = writer.digest();
    let dgst = match nc.commit(writer, size, None, labels) {
        Ok(d) => d,
        // The namespace holds these very bytes already (containerd's differ takes it so).
        Err(e) if crate::errdefs::kind_of(&e) == ErrorKind::AlreadyExists => {
            let _ = nc.abort(&ref_);
            written
        }
        Err(e) => return Err(e),
    };
    Ok(Descriptor {
        media_type: media_type.into(),
        digest: dgst.to_string(),
        size: size as i64,
        annotations: HashMap::new(),
    })
}

/// An empty directory for a diff against nothing, removed when dropped.
struct EmptyDir(std::path::PathBuf);

impl EmptyDir {
    fn new(root: &Path) -> Result<EmptyDir> {
        let base = root.join("tmpmounts");
        std::fs::create_dir_all(&base)?;
        let p = base.join(format!(
            "empty-{}-{}",
            std::process::id(),
            crate::timefmt::to_unix_nanos(std::time::SystemTime::now())
        ));
        std::fs::create_dir(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(EmptyDir(p))
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn write_layer(
    writer: Writer,
    lower: &Path,
    upper: &Path,
    media_type: &str,
) -> Result<(Writer, Digest)> {
    let comp = match media_type {
        GZIP => Compressor::Gzip(flate2::write::GzEncoder::new(
            writer,
            flate2::Compression::default(),
        )),
        ZSTD => Compressor::Zstd(zstd::stream::write::Encoder::new(writer, 3)?),
        _ => Compressor::Plain(writer),
    };
    let tar_out = DigestingWriter {
        inner: comp,
        digester: Digester::new(),
        count: 0,
    };
    let mut b = tar::Builder::new(tar_out);
    b.follow_symlinks(false);
    let mut links = HashMap::new();
    walk(&mut b, lower, upper, Path::new(""), true, &mut links)?;
    let tar_out = b.into_inner().context("finish layer tar")?;
    let diff_id = tar_out.digester.digest();
    let writer = tar_out.inner.finish().context("finish layer compression")?;
    Ok((writer, diff_id))
}

/// Whether an entry changed between the trees (directories compare their own metadata).
fn changed(l: &Metadata, u: &Metadata, lp: &Path, up: &Path) -> bool {
    if (l.mode() & libc::S_IFMT) != (u.mode() & libc::S_IFMT)
        || l.mode() != u.mode()
        || l.uid() != u.uid()
        || l.gid() != u.gid()
        || l.mtime() != u.mtime()
        || l.mtime_nsec() != u.mtime_nsec()
    {
        return true;
    }
    if u.file_type().is_symlink() {
        return std::fs::read_link(lp).ok() != std::fs::read_link(up).ok();
    }
    if u.is_file() {
        return l.size() != u.size();
    }
    u.rdev() != l.rdev()
}

fn names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_context(|| format!("read {}", dir.display()))?;
    v.sort();
    Ok(v)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    lower: &Path,
    upper: &Path,
    rel: &Path,
    lower_exists: bool,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    let udir = upper.join(rel);
    let ldir = lower.join(rel);
    let unames = names(&udir)?;
    let lnames = if lower_exists {
        match ldir.symlink_metadata() {
            Ok(m) if m.is_dir() => names(&ldir)?,
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    for gone in lnames.iter().filter(|n| unames.binary_search(n).is_err()) {
        let mut name = std::ffi::OsString::from(".wh.");
        name.push(gone);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, rel.join(name), io::empty())?;
    }
    for n in &unames {
        let r = rel.join(n);
        let up = upper.join(&r);
        let lp = lower.join(&r);
        let um = up
            .symlink_metadata()
            .with_context(|| format!("stat {}", up.display()))?;
        let lm = if lower_exists && lnames.binary_search(n).is_ok() {
            lp.symlink_metadata().ok()
        } else {
            None
        };
        let emit = match &lm {
            Some(l) => changed(l, &um, &lp, &up),
            None => true,
        };
        if emit {
            append(b, &r, &up, &um, links)?;
        }
        if um.is_dir() {
            let both_dirs = lm.as_ref().is_some_and(|l| l.is_dir());
            walk(b, lower, upper, &r, both_dirs, links)?;
        }
    }
    Ok(())
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    rel: &Path,
    path: &Path,
    m: &Metadata,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata(m);
    h.set_mode(m.mode() & 0o7777);
    let ft = m.file_type();
    if ft.is_symlink() {
        h.set_size(0);
        let target = std::fs::read_link(path)?;
        b.append_link(&mut h, rel, target)?;
    } else if ft.is_file() {
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, rel, first)?;
                return Ok(());
            }
            links.insert((m.dev(), m.ino()), rel.to_path_buf());
        }
        let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        h.set_size(m.size());
        b.append_data(&mut h, rel, f)?;
    } else if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, rel, io::empty())?;
    } else {
        use std::os::unix::fs::FileTypeExt;
        h.set_size(0);
        if ft.is_char_device() || ft.is_block_device() {
            let dev = m.rdev();
            h.set_device_major(libc::major(dev))?;
            h.set_device_minor(libc::minor(dev))?;
        }
        b.append_data(&mut h, rel, io::empty())?;
    }
    Ok(())
}
