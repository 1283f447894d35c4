//! A verified handle on the real procfs, for every write the init makes to /proc
//! (`oom_score_adj`, sysctls, `attr/exec`, reading `setgroups`) and for naming descriptors
//! in mount(2) (`<pid>/fd/N`). Never a path the container can redirect: the container's
//! /proc is a mount in its rootfs, and its mounts (a tmpfs file bound over
//! /proc/sys/kernel/hostname, a symlinked /proc, …) must not decide where those writes land
//! (the CVE-2025-52881 class).
//!
//! The handle is taken once, by the init before it enters any container namespace
//! ([`init`]): a fresh, detached procfs instance (fsopen, as runc's pathrs does), else a
//! detached clone of the host's /proc mount without its submounts (open_tree), else the
//! host's /proc itself. Each candidate must be a procfs root (fstatfs PROC_SUPER_MAGIC,
//! inode 1). Lookups under it use openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, so no symlink and no mount point is crossed, and
//! every opened file is checked to be on procfs again.
//!
//! "self" is a symlink, so it is read once per use (readlinkat) and the pid it names is
//! walked as a plain directory. The pid is this procfs's view (the host's pid namespace):
//! writes still act on the caller's own namespaces, as the kernel takes the net/uts/ipc
//! namespace of a sysctl from the writing task, not from the procfs instance.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

/// The inode number of every procfs root (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

/// How the handle was obtained (for messages and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// fsopen("proc") + fsmount: a private instance with nothing mounted on it.
    Fresh,
    /// open_tree(OPEN_TREE_CLONE) of the host's /proc: its submounts are left behind.
    Clone,
    /// The host's /proc, opened before any container mount or namespace.
    Host,
}

/// One way of getting a procfs root.
type Opener = fn() -> nix::Result<OwnedFd>;

/// An open procfs root.
pub struct ProcFs {
    root: OwnedFd,
    origin: Origin,
}

static HANDLE: OnceLock<ProcFs> = OnceLock::new();

/// Take the process-wide handle now (idempotent). The init calls this first thing, as the
/// host's root in the host's namespaces; a later [`get`] without it opens one lazily, which
/// is only right before the container's mount namespace is entered.
pub fn init() -> Result<&'static ProcFs> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    // Opened outside the cell's lock: a process forked by a threaded caller (the unit
    // tests) must not inherit a lock held across the opening. A lost race costs nothing.
    let h = ProcFs::open()?;
    let _ = HANDLE.set(h);
    HANDLE.get().context("the procfs handle")
}

/// The process-wide handle (see [`init`]).
pub fn get() -> Result<&'static ProcFs> {
    init()
}

impl ProcFs {
    /// A fresh instance, else a clone of /proc, else /proc; each verified.
    pub fn open() -> Result<ProcFs> {
        let candidates: [(Origin, Opener); 3] = [
            (Origin::Fresh, fresh_instance),
            (Origin::Clone, clone_host_proc),
            (Origin::Host, open_host_proc),
        ];
        let mut last = None;
        for (origin, open) in candidates {
            match open() {
                Ok(root) => {
                    verify_root(root.as_fd())
                        .with_context(|| format!("verify procfs handle ({origin:?})"))?;
                    return Ok(ProcFs { root, origin });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Errno::ENOENT)).context("open a procfs handle")
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The pid "self" names in this procfs.
    pub fn self_pid(&self) -> Result<String> {
        let link = nix::fcntl::readlinkat(Some(self.root.as_raw_fd()), "self")
            .context("readlink self in procfs")?;
        let pid = link.to_string_lossy().into_owned();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            bail!("procfs self names {pid:?}, not a pid");
        }
        Ok(pid)
    }

    /// Open `rel` (relative to the procfs root: "sys/kernel/hostname", "1234/attr/exec")
    /// with `flags`, crossing no symlink and no mount, and check the result is on procfs.
    pub fn open_at(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = match openat2(self.root.as_raw_fd(), rel, how) {
            // SAFETY: openat2 returned a new fd that nothing else owns.
            Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            // No openat2 (before 5.6, or a seccomp profile denies it, which happens after the
            // init installed the container's filter): the same rules, one component at a time.
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => self.walk(rel, flags),
            Err(e) => Err(e),
        }
        .with_context(|| format!("open /proc/{} through the procfs handle", rel.display()))?;
        let st = fstatfs(&fd).with_context(|| format!("fstatfs /proc/{}", rel.display()))?;
        if st.filesystem_type() != PROC_SUPER_MAGIC {
            bail!("/proc/{} is not on procfs", rel.display());
        }
        Ok(fd)
    }

    /// [`ProcFs::open_at`] without openat2: each directory opened O_NOFOLLOW from the last,
    /// each step checked to stay on the root's filesystem (no mount crossed), no "..".
    fn walk(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        use std::path::Component;
        let dev = nix::sys::stat::fstat(self.root.as_raw_fd())?.st_dev;
        let names: Vec<&std::ffi::OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => Ok(n),
                _ => Err(Errno::EXDEV),
            })
            .collect::<nix::Result<_>>()?;
        let Some((last, dirs)) = names.split_last() else {
            return Err(Errno::EINVAL);
        };
        let open = |dir: RawFd, name: &std::ffi::OsStr, f: OFlag| -> nix::Result<OwnedFd> {
            let fd = nix::fcntl::openat(
                Some(dir),
                name,
                f | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            // SAFETY: openat returned a new fd that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if nix::sys::stat::fstat(fd.as_raw_fd())?.st_dev != dev {
                return Err(Errno::EXDEV);
            }
            Ok(fd)
        };
        let mut dir: Option<OwnedFd> = None;
        for name in dirs {
            let at = dir
                .as_ref()
                .map_or(self.root.as_raw_fd(), |d| d.as_raw_fd());
            dir = Some(open(at, name, OFlag::O_PATH | OFlag::O_DIRECTORY)?);
        }
        let at = dir
            .as_ref()
            .map_or(self.root.as_raw_fd(), |d| d.as_raw_fd());
        open(at, last, flags)
    }

    /// `rel` under this process's own directory ("attr/exec" → "<pid>/attr/exec").
    pub fn self_path(&self, rel: &str) -> Result<PathBuf> {
        Ok(Path::new(&self.self_pid()?).join(rel))
    }

    /// One write(2) of `value` to the caller's own `rel` ("oom_score_adj", "attr/exec").
    pub fn write_self(&self, rel: &str, value: &[u8]) -> Result<()> {
        let path = self.self_path(rel)?;
        self.write_at(&path, value)
            .with_context(|| format!("write /proc/self/{rel}"))
    }

    /// The caller's own `rel`, read whole.
    pub fn read_self(&self, rel: &str) -> Result<String> {
        let fd = self.open_at(&self.self_path(rel)?, OFlag::O_RDONLY)?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s)
            .with_context(|| format!("read /proc/self/{rel}"))?;
        Ok(s)
    }

    /// Whether the caller's own `rel` exists (e.g. "attr/apparmor/exec").
    pub fn self_exists(&self, rel: &str) -> bool {
        self.self_path(rel)
            .is_ok_and(|p| self.open_at(&p, OFlag::O_PATH).is_ok())
    }

    /// Write a sysctl: `key` in dotted or slashed form, under sys/.
    pub fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let rel = sysctl_path(key)?;
        self.write_at(&rel, value.as_bytes())
    }

    /// One write(2) of the whole value (procfs parses per write); a short write is an error.
    pub fn write_at(&self, rel: &Path, value: &[u8]) -> Result<()> {
        let fd = self.open_at(rel, OFlag::O_WRONLY)?;
        let n = std::fs::File::from(fd)
            .write(value)
            .with_context(|| format!("write /proc/{}", rel.display()))?;
        if n != value.len() {
            bail!(
                "write /proc/{}: short write ({n} of {})",
                rel.display(),
                value.len()
            );
        }
        Ok(())
    }

    /// Reopen descriptor `fd` with new `flags` (a fifo for writing, say) through its magic
    /// link in this procfs: the fd directory is reached without links, then the one name
    /// "N" is the kernel's own link to the open file.
    pub fn reopen(&self, fd: BorrowedFd<'_>, flags: OFlag) -> Result<OwnedFd> {
        let dir = self.open_at(&self.self_path("fd")?, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let new = nix::fcntl::openat(
            Some(dir.as_raw_fd()),
            fd_name(fd).as_path(),
            flags | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("reopen fd {}", fd.as_raw_fd()))?;
        // SAFETY: openat returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }

    /// Run `f` with the cwd at this process's fd directory in this procfs, so that the
    /// relative path "N" names descriptor N without any lookup in the container's tree
    /// (mount(2) takes only paths). The cwd is restored afterwards.
    pub fn with_fd_dir<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let dir = self.open_at(&self.self_path("fd")?, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let back = nix::fcntl::open(
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .context("open the current directory")?;
        // SAFETY: open returned a new fd that nothing else owns.
        let back = unsafe { OwnedFd::from_raw_fd(back) };
        nix::unistd::fchdir(dir.as_raw_fd()).context("chdir to the procfs fd directory")?;
        let res = f();
        nix::unistd::fchdir(back.as_raw_fd()).context("chdir back")?;
        res
    }
}

/// The relative path naming `fd` while inside [`ProcFs::with_fd_dir`].
pub fn fd_name(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(fd.as_raw_fd().to_string())
}

/// "net.ipv4.ip_forward" (or "net/ipv4/ip_forward") → "sys/net/ipv4/ip_forward". A key
/// with "..", an empty part or a leading "/" is refused.
pub fn sysctl_path(key: &str) -> Result<PathBuf> {
    // runc's conversion: every dot becomes a slash.
    let slashed = key.replace('.', "/");
    if slashed.starts_with('/') || slashed.split('/').any(|p| p.is_empty() || p == "..") {
        bail!("invalid sysctl name {key:?}");
    }
    Ok(Path::new("sys").join(slashed))
}

fn verify_root(fd: BorrowedFd<'_>) -> Result<()> {
    let st = fstatfs(fd).context("fstatfs")?;
    if st.filesystem_type() != PROC_SUPER_MAGIC {
        bail!("not a procfs");
    }
    let meta = nix::sys::stat::fstat(fd.as_raw_fd()).context("fstat")?;
    if meta.st_ino != PROC_ROOT_INO || meta.st_mode & libc::S_IFMT != libc::S_IFDIR {
        bail!("not the root of a procfs (inode {})", meta.st_ino);
    }
    Ok(())
}

fn cvt(rc: libc::c_long) -> nix::Result<RawFd> {
    Errno::result(rc).map(|fd| fd as RawFd)
}

/// fsopen("proc"), FSCONFIG_CMD_CREATE, fsmount: a private procfs of the caller's pid
/// namespace, mounted nowhere.
fn fresh_instance() -> nix::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
    // SAFETY: fsopen takes a NUL-terminated name and flags; returns a new fd or -1.
    let fs = cvt(unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: a new fd nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value (NULL) and aux 0.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsmount takes the configured fs fd and flag words; returns a new fd or -1.
    let mnt = cvt(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        )
    })?;
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt) })
}

/// A detached copy of the mount at /proc alone (not recursive).
fn clone_host_proc() -> nix::Result<OwnedFd> {
    open_tree_clone(None, Path::new("/proc"), false)
}

fn open_host_proc() -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (relative to
/// `dir`, or `dir` itself for an empty path), recursive or not.
pub fn open_tree_clone(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    recursive: bool,
) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    let c = std::ffi::CString::new(OsString::from(path).into_vec()).map_err(|_| Errno::EINVAL)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: c is a valid NUL-terminated path for the duration of the call.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) })?;
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// move_mount(2) of the detached mount `from` onto the file or directory `onto` (both
/// descriptors, no path lookup at all).
pub fn move_mount_fds(from: BorrowedFd<'_>, onto: BorrowedFd<'_>) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty NUL-terminated strings; the fds are valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            onto.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_a_procfs_root_and_reads_self() {
        let p = ProcFs::open().unwrap();
        assert_eq!(p.self_pid().unwrap(), std::process::id().to_string());
        let status = p.read_self("status").unwrap();
        assert!(status.contains("Pid:"), "{status}");
        // "self" itself is a symlink: never followed by a lookup.
        assert!(p
            .open_at(Path::new("self/status"), OFlag::O_RDONLY)
            .is_err());
        assert!(p
            .open_at(Path::new("sys/kernel/hostname"), OFlag::O_RDONLY)
            .is_ok());
    }

    #[test]
    fn the_walk_without_openat2_keeps_the_same_rules() {
        let p = ProcFs::open().unwrap();
        let pid = p.self_pid().unwrap();
        let fd = p
            .walk(&Path::new(&pid).join("status"), OFlag::O_RDONLY)
            .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
        assert!(s.contains("Pid:"), "{s}");
        // "self" is a link: as a directory on the way it is refused (ENOTDIR with
        // O_NOFOLLOW), as the last name too (ELOOP).
        assert_eq!(
            p.walk(Path::new("self/status"), OFlag::O_RDONLY).err(),
            Some(Errno::ENOTDIR)
        );
        assert_eq!(
            p.walk(Path::new("self"), OFlag::O_RDONLY).err(),
            Some(Errno::ELOOP)
        );
        assert_eq!(
            p.walk(Path::new("sys/../self"), OFlag::O_PATH).err(),
            Some(Errno::EXDEV)
        );
    }

    #[test]
    fn sysctl_names() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("kernel/hostname").unwrap(),
            PathBuf::from("sys/kernel/hostname")
        );
        for bad in ["/etc/x", "a..b", "a/../b", "", "a..", "kernel.."] {
            assert!(sysctl_path(bad).is_err(), "{bad}");
        }
    }
}
