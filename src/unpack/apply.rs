//! Tar entries applied to a [`SafeDir`]: files, directories, symlinks, hardlinks, device
//! nodes and fifos with their owner, mode, mtime and xattrs; overlay whiteouts. The tar
//! crate only parses headers here; its own unpack (which follows symlinks in some cases)
//! is never used.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{
    fchmod, fchmodat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;

use super::file_writers::{
    create_file, FileData, FileJob, FileMeta, FileWriters, Pool, QUEUE, SMALL_FILE,
};
use super::limits::Limits;
use super::safe_dir::{clean_path, kind_at, remove_at, set_xattr, SafeDir};

/// The whiteout prefix of the OCI layer spec (AUFS' form in the tar).
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The opaque-directory marker.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// Block size sparse detection works in.
const SPARSE_BLOCK: usize = 4096;

/// Apply every entry of `archive` to `dir`. `budget` is what the tar stream reader may
/// still hand out; it is refilled for each entry (its data plus `max_header_bytes`).
pub fn apply_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    dir: &SafeDir,
    limits: &Limits,
    budget: &Rc<Cell<u64>>,
) -> Result<u64> {
    let pool = Pool::default();
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let rx = std::sync::Mutex::new(rx);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| pool.work(&rx));
        }
        let mut writers = FileWriters {
            pool: &pool,
            tx: Some(tx),
        };
        let applied = apply_all(archive, dir, limits, budget, &writers);
        // The workers end with the queue, also after an error.
        let finished = writers.finish();
        let (count, dir_times) = applied?;
        finished?;
        // Directory mtimes last: the entries below changed them.
        for (rel, t) in dir_times.iter().rev() {
            set_times_at(dir, rel, *t)?;
        }
        Ok(count)
    })
}

type DirTimes = Vec<(PathBuf, TimeSpec)>;

fn apply_all<R: Read>(
    archive: &mut tar::Archive<R>,
    dir: &SafeDir,
    limits: &Limits,
    budget: &Rc<Cell<u64>>,
    writers: &FileWriters,
) -> Result<(u64, DirTimes)> {
    let mut count = 0u64;
    let mut dir_times: DirTimes = Vec::new();
    for entry in archive.entries().context("read tar stream")? {
        let mut entry = entry.context("read tar header")?;
        count += 1;
        if count > limits.max_entries {
            bail!("layer has more than {} entries", limits.max_entries);
        }
        let data = entry.size().max(entry.header().entry_size().unwrap_or(0));
        budget.set(
            data.saturating_add(511)
                .saturating_add(limits.max_header_bytes),
        );
        let raw = entry.path_bytes().into_owned();
        if raw.len() > limits.max_path_bytes {
            bail!("tar entry path longer than {} bytes", limits.max_path_bytes);
        }
        let rel = clean_path(&raw)?;
        if writers.busy(&rel) {
            writers.barrier()?;
        }
        if let Some(t) = apply_one(&mut entry, dir, &rel, limits, writers)
            .with_context(|| format!("apply {:?}", String::from_utf8_lossy(&raw)))?
        {
            dir_times.push((rel, t));
        }
    }
    Ok((count, dir_times))
}

fn apply_one<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dir: &SafeDir,
    rel: &Path,
    limits: &Limits,
    writers: &FileWriters,
) -> Result<Option<TimeSpec>> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    if matches!(kind, EntryType::XGlobalHeader) {
        return Ok(None);
    }
    let mtime = mtime_of(entry, &header);
    let mode = header.mode().context("tar mode")? & 0o7777;
    let (uid, gid) = (
        header.uid().context("tar uid")?,
        header.gid().context("tar gid")?,
    );
    let xattrs = xattrs_of(entry, limits)?;

    if rel.as_os_str().is_empty() {
        // "./": the target directory itself.
        if !kind.is_dir() {
            bail!("the root of a layer must be a directory");
        }
        let d = dir.dir(rel, false)?;
        let here = OsStr::new(".");
        set_owner_mode(d.as_raw_fd(), here, uid, gid, Some(mode))?;
        for (k, v) in &xattrs {
            set_xattr(d.as_raw_fd(), here, k, v)?;
        }
        return Ok(Some(mtime));
    }

    let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        // It may remove what a worker is writing (or a directory it writes into).
        writers.barrier()?;
        let (parent, _) = dir.parent_of(rel, true)?;
        dir.forget_cached();
        if name == WHITEOUT_OPAQUE {
            set_xattr(
                parent.as_raw_fd(),
                OsStr::new("."),
                b"trusted.overlay.opaque",
                b"y",
            )?;
        } else if hidden.starts_with(WHITEOUT_PREFIX) {
            // Other `.wh..wh.` names are AUFS' own bookkeeping (plnk, aufs): skipped, as
            // containerd does.
        } else {
            let hidden = OsStr::from_bytes(hidden);
            remove_at(parent.as_raw_fd(), hidden)?;
            mknodat(
                Some(parent.as_raw_fd()),
                hidden,
                SFlag::S_IFCHR,
                Mode::empty(),
                0,
            )
            .context("make whiteout")?;
            set_owner_mode(parent.as_raw_fd(), hidden, uid, gid, None)?;
        }
        return Ok(None);
    }

    let (parent, name) = dir.parent_of(rel, true)?;
    let pfd = parent.as_raw_fd();
    let name = name.as_os_str();
    // A later entry replaces an earlier one, except a directory over a directory.
    let existing = kind_at(pfd, name)?;
    if existing.is_some() && !(kind.is_dir() && existing == Some(SFlag::S_IFDIR)) {
        if existing == Some(SFlag::S_IFDIR) {
            // Workers may be writing below it, and the cached parent may be in it.
            writers.barrier()?;
            dir.forget_cached();
        }
        remove_at(pfd, name)?;
    }
    let mut dir_time = None;
    match kind {
        EntryType::Directory => {
            match mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).context("mkdir"),
            }
            set_owner_mode(pfd, name, uid, gid, Some(mode))?;
            dir_time = Some(mtime);
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let size = entry.size();
            let meta = FileMeta {
                uid,
                gid,
                mode,
                mtime,
                xattrs,
            };
            if size <= SMALL_FILE {
                let mut data = Vec::with_capacity(size as usize);
                entry
                    .take(size)
                    .read_to_end(&mut data)
                    .context("read file data")?;
                if data.len() as u64 != size {
                    bail!("unexpected end of tar data");
                }
                writers.submit(FileJob {
                    parent,
                    name: name.to_os_string(),
                    rel: rel.to_path_buf(),
                    data,
                    meta,
                })?;
            } else {
                create_file(pfd, name, FileData::Stream(entry, size), &meta)?;
            }
            return Ok(None);
        }
        EntryType::Symlink => {
            let target = link_target(entry, limits)?;
            symlinkat(target.as_os_str(), Some(pfd), name).context("symlink")?;
            set_owner_mode(pfd, name, uid, gid, None)?;
        }
        EntryType::Link => {
            // Its target may be a file a worker is still writing.
            writers.barrier()?;
            let target = link_target(entry, limits)?;
            let rel_target = clean_path(target.as_os_str().as_bytes())?;
            let (tparent, tname) = dir
                .parent_of(&rel_target, false)
                .with_context(|| format!("hardlink target {}", target.display()))?;
            linkat(
                Some(tparent.as_raw_fd()),
                tname.as_os_str(),
                Some(pfd),
                name,
                AtFlags::empty(),
            )
            .with_context(|| format!("hardlink to {}", target.display()))?;
            // The link shares the target's inode: its metadata is the target's.
            return Ok(None);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let (sflag, dev) = match kind {
                EntryType::Char => (SFlag::S_IFCHR, device(&header)?),
                EntryType::Block => (SFlag::S_IFBLK, device(&header)?),
                _ => (SFlag::S_IFIFO, 0),
            };
            mknodat(Some(pfd), name, sflag, Mode::from_bits_truncate(mode), dev)
                .context("mknod")?;
            set_owner_mode(pfd, name, uid, gid, Some(mode))?;
        }
        other => bail!("unhandled tar header type {:?}", other.as_byte() as char),
    }
    for (k, v) in &xattrs {
        set_xattr(pfd, name, k, v)?;
    }
    if dir_time.is_none() {
        utimensat(
            Some(pfd),
            name,
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .context("set mtime")?;
    }
    Ok(dir_time)
}

fn device(h: &tar::Header) -> Result<libc::dev_t> {
    let major = h.device_major().context("device major")?.unwrap_or(0);
    let minor = h.device_minor().context("device minor")?.unwrap_or(0);
    Ok(libc::makedev(major, minor))
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, limits: &Limits) -> Result<PathBuf> {
    let Some(t) = entry.link_name_bytes() else {
        bail!("link without a target");
    };
    if t.len() > limits.max_path_bytes || t.is_empty() {
        bail!(
            "link target empty or longer than {} bytes",
            limits.max_path_bytes
        );
    }
    Ok(PathBuf::from(OsStr::from_bytes(&t)))
}

/// Owner first (chown clears set-id bits), then the mode (never on a symlink).
pub(crate) fn set_owner_mode(
    dir: RawFd,
    name: &OsStr,
    uid: u64,
    gid: u64,
    mode: Option<u32>,
) -> Result<()> {
    let uid = u32::try_from(uid).context("uid out of range")?;
    let gid = u32::try_from(gid).context("gid out of range")?;
    fchownat(
        Some(dir),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context("chown")?;
    if let Some(mode) = mode {
        fchmodat(
            Some(dir),
            name,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::FollowSymlink,
        )
        .context("chmod")?;
    }
    Ok(())
}

/// [`set_owner_mode`] on an open regular file.
pub(crate) fn set_owner_mode_fd(fd: RawFd, uid: u64, gid: u64, mode: u32) -> Result<()> {
    let uid = u32::try_from(uid).context("uid out of range")?;
    let gid = u32::try_from(gid).context("gid out of range")?;
    fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).context("chown")?;
    fchmod(fd, Mode::from_bits_truncate(mode)).context("chmod")
}

fn set_times_at(dir: &SafeDir, rel: &Path, t: TimeSpec) -> Result<()> {
    let (fd, name) = if rel.as_os_str().is_empty() {
        (std::sync::Arc::new(dir.dir(rel, false)?), ".".into())
    } else {
        dir.parent_of(rel, false)?
    };
    utimensat(
        Some(fd.as_raw_fd()),
        name.as_os_str(),
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("set mtime of {}", rel.display()))
}

/// The mtime, with the PAX record's fraction when there is one.
fn mtime_of<R: Read>(entry: &mut tar::Entry<'_, R>, h: &tar::Header) -> TimeSpec {
    let secs = h.mtime().unwrap_or(0) as i64;
    if let Ok(Some(pax)) = entry.pax_extensions() {
        for ext in pax.flatten() {
            if ext.key_bytes() == b"mtime" {
                if let Ok(v) = std::str::from_utf8(ext.value_bytes()) {
                    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
                    if let Ok(s) = s.parse::<i64>() {
                        let digits: String = frac.chars().take(9).collect();
                        let ns = format!("{digits:0<9}").parse::<i64>().unwrap_or(0);
                        return TimeSpec::new(s, if s < 0 { 0 } else { ns });
                    }
                }
            }
        }
    }
    TimeSpec::new(secs, 0)
}

/// `SCHILY.xattr.*` PAX records (what GNU tar, Docker and containerd write).
fn xattrs_of<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    limits: &Limits,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let Some(pax) = entry.pax_extensions().context("read PAX records")? else {
        return Ok(out);
    };
    for ext in pax {
        let ext = ext.context("bad PAX record")?;
        if ext.key_bytes().starts_with(b"GNU.sparse.") {
            // PAX sparse (GNU tar --sparse in posix format) keeps the map in the data: the
            // tar crate reads only GNU-format sparse entries, so refuse rather than write
            // the map into the file. Image builders do not produce either form.
            bail!("PAX-format sparse files are not supported");
        }
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if name.is_empty() || name.len() > 255 {
            bail!("xattr name empty or longer than 255 bytes");
        }
        if ext.value_bytes().len() > limits.max_xattr_bytes {
            bail!("xattr value longer than {} bytes", limits.max_xattr_bytes);
        }
        out.push((name.to_vec(), ext.value_bytes().to_vec()));
        if out.len() > limits.max_xattrs {
            bail!("more than {} xattrs on one entry", limits.max_xattrs);
        }
    }
    Ok(out)
}

/// Copy `size` bytes into `file`, leaving holes where whole blocks are zero (so sparse
/// files stay sparse, and a run of zeros costs no disk), then set the length. Runs of
/// non-zero blocks go out in one write each.
pub(crate) fn write_sparse(src: &mut impl Read, file: &std::fs::File, size: u64) -> Result<()> {
    let mut buf = vec![0u8; usize::try_from(size.min(64 * 1024)).unwrap_or(64 * 1024)];
    let mut off = 0u64;
    // Where the bytes written so far end: the length needs setting only after a hole.
    let mut written_to = 0u64;
    while off < size {
        let want = usize::try_from((size - off).min(buf.len() as u64)).unwrap_or(buf.len());
        let mut got = 0;
        while got < want {
            let n = src.read(&mut buf[got..want]).context("read file data")?;
            if n == 0 {
                bail!("unexpected end of tar data");
            }
            got += n;
        }
        if let Some(end) = write_runs(file, &buf[..got], off)? {
            written_to = end;
        }
        off += got as u64;
    }
    if written_to != size {
        file.set_len(size).context("set file length")?;
    }
    Ok(())
}

/// [`write_sparse`] of bytes in memory (a small file read whole): written from where they
/// are, not copied through a buffer again.
pub(crate) fn write_sparse_from(data: &[u8], file: &std::fs::File) -> Result<()> {
    let written_to = write_runs(file, data, 0)?.unwrap_or(0);
    if written_to != data.len() as u64 {
        file.set_len(data.len() as u64).context("set file length")?;
    }
    Ok(())
}

/// Write the runs of non-zero [`SPARSE_BLOCK`]s of `buf` at `off` onwards; where the last
/// write ended, if any.
fn write_runs(file: &std::fs::File, buf: &[u8], off: u64) -> Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut written_to = None;
    let mut run: Option<usize> = None;
    let nblocks = buf.len().div_ceil(SPARSE_BLOCK);
    for (i, block) in buf.chunks(SPARSE_BLOCK).enumerate() {
        let zero = block.iter().all(|&b| b == 0);
        if !zero && run.is_none() {
            run = Some(i * SPARSE_BLOCK);
        }
        if let Some(start) = run {
            let end = if zero {
                i * SPARSE_BLOCK
            } else {
                i * SPARSE_BLOCK + block.len()
            };
            if zero || i + 1 == nblocks {
                file.write_all_at(&buf[start..end], off + start as u64)
                    .context("write file data")?;
                written_to = Some(off + end as u64);
                run = None;
            }
        }
    }
    Ok(written_to)
}
