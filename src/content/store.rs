//! The local content store: verified blobs under `blobs/sha256/<hex>` and resumable ingests
//! under `ingest/`, containerd's `content/local` layout and semantics. Labels are not kept
//! here but in the metadata database (`metadata::content`), per namespace, as containerd's
//! metadata layer does; this store is what that layer wraps.

use crate::content::digest::{Digest, Digester};
use crate::content::ingest::IngestPaths;
use crate::content::locks;
use crate::content::reader::Reader;
use crate::content::writer::Writer;
use crate::errdefs::{err, ErrorKind};
use crate::metadata::filter::{Adaptor, Filter};
use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A blob's facts as the store knows them (labels come from the metadata layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Commit time (the file's mtime).
    pub created_at: SystemTime,
    /// Last update (the file's atime, as containerd's local store reports it).
    pub updated_at: SystemTime,
}

/// An ingest in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The ref it was opened with.
    pub ref_: String,
    /// Bytes in the ingest so far.
    pub offset: u64,
    /// Expected total (0 when unknown).
    pub total: u64,
    /// When it began.
    pub started_at: SystemTime,
    /// When it was last written.
    pub updated_at: SystemTime,
}

struct StatusFields<'a>(&'a Status);

impl Adaptor for StatusFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [f] if f == "ref" => Some(self.0.ref_.clone()),
            _ => None,
        }
    }
}

/// A content store rooted at a directory (the daemon passes
/// `<root>/io.containerd.content.v1.content`).
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open (creating `blobs/sha256` and `ingest`) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Store> {
        let root = root.into();
        for d in [
            root.join("ingest"),
            root.join("blobs").join(Digest::ALGORITHM),
        ] {
            std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        }
        Ok(Store { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join(Digest::ALGORITHM)
    }

    /// Where the blob `dgst` lives.
    pub fn blob_path(&self, dgst: &Digest) -> PathBuf {
        self.blob_dir().join(dgst.encoded())
    }

    fn ingest(&self, ref_: &str) -> IngestPaths {
        IngestPaths::new(&self.root.join("ingest"), ref_)
    }

    /// Facts about a committed blob; NotFound when it is absent.
    pub fn info(&self, dgst: &Digest) -> anyhow::Result<Info> {
        match std::fs::metadata(self.blob_path(dgst)) {
            Ok(m) => Ok(info_of(*dgst, &m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(err(ErrorKind::NotFound, format!("content {dgst}")))
            }
            Err(e) => Err(e).with_context(|| format!("stat content {dgst}")),
        }
    }

    /// A reader of a committed blob.
    pub fn reader(&self, dgst: &Digest) -> anyhow::Result<Reader> {
        let p = self.blob_path(dgst);
        Reader::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                err(
                    ErrorKind::NotFound,
                    format!("blob {dgst} expected at {}", p.display()),
                )
            } else {
                anyhow::Error::new(e).context(format!("blob {dgst} expected at {}", p.display()))
            }
        })
    }

    /// Remove a blob; NotFound when it is absent.
    pub fn delete(&self, dgst: &Digest) -> anyhow::Result<()> {
        match std::fs::remove_file(self.blob_path(dgst)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(err(ErrorKind::NotFound, format!("content {dgst}")))
            }
            Err(e) => Err(e).with_context(|| format!("delete content {dgst}")),
        }
    }

    /// Call `f` for every committed blob. Files whose names are not digests are skipped
    /// (containerd logs and skips them too).
    pub fn walk(&self, mut f: impl FnMut(Info) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let dir = self.blob_dir();
        let rd = std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))?;
        for ent in rd {
            let ent = ent.with_context(|| format!("read {}", dir.display()))?;
            let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(dgst) = Digest::from_encoded(&name) else {
                continue;
            };
            let m = match ent.metadata() {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                // Deleted while walking.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("stat {}", ent.path().display())),
            };
            f(info_of(dgst, &m))?;
        }
        Ok(())
    }

    /// The status of the ingest `ref_`; NotFound when there is none.
    pub fn status(&self, ref_: &str) -> anyhow::Result<Status> {
        status_at(&self.ingest(ref_))
    }

    /// Every ingest whose status matches one of `filters` (all when empty; the field is `ref`).
    pub fn list_statuses(&self, filters: &[&str]) -> anyhow::Result<Vec<Status>> {
        let filter = Filter::parse_all(filters)?;
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for ent in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let ent = ent.with_context(|| format!("read {}", dir.display()))?;
            let paths = IngestPaths { dir: ent.path() };
            match status_at(&paths) {
                Ok(s) if filter.matches(&StatusFields(&s)) => out.push(s),
                Ok(_) => {}
                // Committed or aborted while listing, or a half-made ingest: not active.
                Err(_) => {}
            }
        }
        out.sort_by(|a, b| a.ref_.cmp(&b.ref_));
        Ok(out)
    }

    /// Remove the ingest `ref_`; NotFound when there is none.
    pub fn abort(&self, ref_: &str) -> anyhow::Result<()> {
        let p = self.ingest(ref_);
        match std::fs::remove_dir_all(&p.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(err(ErrorKind::NotFound, format!("ingest ref {ref_:?}")))
            }
            Err(e) => Err(e).with_context(|| format!("abort ingest {ref_:?}")),
        }
    }

    /// Begin or resume the ingest `ref_`. `total` is the expected size (0 unknown); when
    /// `expected` is given and that blob exists, AlreadyExists. A resumed ingest continues at
    /// the size of its data, whose bytes are hashed again; an ingest that cannot be resumed
    /// (different ref or total, missing files) starts over.
    pub fn writer(
        &self,
        ref_: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> anyhow::Result<Writer> {
        if ref_.is_empty() {
            return Err(err(ErrorKind::InvalidArgument, "ref must not be empty"));
        }
        let paths = self.ingest(ref_);
        let lock = locks::lock_with_retry(&paths.dir, ref_)?;
        if let Some(exp) = expected {
            if self.blob_path(&exp).exists() {
                return Err(err(ErrorKind::AlreadyExists, format!("content {exp}")));
            }
        }
        let existed = match std::fs::create_dir(&paths.dir) {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
            Err(e) => return Err(e).with_context(|| format!("create {}", paths.dir.display())),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(paths.data())
            .context("failed to open data file")?;
        let mut file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            if e == nix::errno::Errno::EWOULDBLOCK {
                locks::locked_error(ref_, SystemTime::now())
            } else {
                anyhow::Error::new(e).context("lock ingest data")
            }
        })?;

        let resumed = if existed {
            resume(&paths, ref_, total, &mut file).ok()
        } else {
            None
        };
        let (offset, total, digester, started_at, updated_at) = match resumed {
            Some(r) => r,
            None => {
                file.set_len(0).context("reset ingest data")?;
                let now = SystemTime::now();
                paths.write_meta(ref_, now, total)?;
                (0, total, Digester::new(), now, now)
            }
        };
        file.seek(SeekFrom::Start(offset))
            .context("could not seek to current write offset")?;
        Ok(Writer {
            ref_: ref_.to_owned(),
            paths,
            blob_dir: self.blob_dir(),
            file: Some(file),
            offset,
            total,
            digester,
            started_at,
            updated_at,
            writeback_from: offset,
            _lock: lock,
        })
    }
}

type Resumed = (u64, u64, Digester, SystemTime, SystemTime);

/// The state of an existing ingest, its data hashed again from the start.
fn resume(
    paths: &IngestPaths,
    ref_: &str,
    total: u64,
    file: &mut std::fs::File,
) -> anyhow::Result<Resumed> {
    let st = status_at(paths)?;
    if st.ref_ != ref_ {
        anyhow::bail!("ref key does not match: {ref_} != {}", st.ref_);
    }
    if total > 0 && st.total > 0 && total != st.total {
        anyhow::bail!(
            "provided total differs from status: {total} != {}",
            st.total
        );
    }
    file.seek(SeekFrom::Start(0))?;
    let mut d = Digester::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_all = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        n_all += n as u64;
    }
    let total = if st.total > 0 { st.total } else { total };
    Ok((n_all, total, d, st.started_at, st.updated_at))
}

fn status_at(paths: &IngestPaths) -> anyhow::Result<Status> {
    let not_found = |what: &Path| err(ErrorKind::NotFound, format!("ingest {}", what.display()));
    let m = match std::fs::metadata(paths.data()) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(&paths.data())),
        Err(e) => return Err(e).with_context(|| format!("stat {}", paths.data().display())),
    };
    let ref_ = match paths.read_ref() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_found(&paths.ref_file()))
        }
        Err(e) => return Err(e).with_context(|| format!("read {}", paths.ref_file().display())),
    };
    let started_at = paths
        .read_time(&paths.started_at())
        .context("could not read startedat")?;
    let mut updated_at = paths
        .read_time(&paths.updated_at())
        .context("could not read updatedat")?;
    // updatedat is not rewritten on every write: the data's mtime may be newer.
    if let Ok(mt) = m.modified() {
        if mt > updated_at {
            updated_at = mt;
        }
    }
    Ok(Status {
        ref_,
        offset: m.len(),
        total: paths.read_total(),
        started_at,
        updated_at,
    })
}

fn info_of(digest: Digest, m: &std::fs::Metadata) -> Info {
    let atime = UNIX_EPOCH
        + Duration::new(
            m.atime().max(0) as u64,
            m.atime_nsec().clamp(0, 999_999_999) as u32,
        );
    Info {
        digest,
        size: m.len(),
        created_at: m.modified().unwrap_or(UNIX_EPOCH),
        updated_at: atime,
    }
}
