//! `process.terminal`: the pty made inside the container, its master handed out over the
//! `--console-socket`, and (on the host) the receiving and forwarding side.
//!
//! In the container (after pivot_root, as runc's `setupConsole`):
//! 1. [`open_pty_in_container`] opens a new pty on the container's devpts (`/dev/pts/ptmx`),
//!    unlocks it and names its slave (`/dev/pts/N`);
//! 2. the caller bind-mounts the slave onto /dev/console (rootfs code);
//! 3. [`send_console_fd`] sends the master over the console socket: one `sendmsg` whose data
//!    is the master's name, `/dev/ptmx` (what runc sends: the path containerd/console opened),
//!    with the fd attached by SCM_RIGHTS;
//! 4. after `setsid()` the caller opens the slave ([`open_pty_slave`]) and calls
//!    [`make_controlling_terminal_and_dup`].
//!
//! On the host: [`recv_console_fd`], [`window_size`] and [`set_window_size`]; the
//! foreground relay of `run -t` / `exec -t` is `container::tty_relay`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use super::fd_passing;

/// The name runc puts in the console-socket message (the path the master was opened by).
pub const CONSOLE_MASTER_NAME: &str = "/dev/ptmx";

/// Longest name accepted from a console socket (runc's `MaxNameLen`).
const MAX_NAME_LEN: usize = 4096;

/// Open a new pty through `ptmx` (a ptmx device or devpts' `ptmx` node), unlock it and return
/// the master and the slave's path `/dev/pts/N`.
pub fn open_pty(ptmx: &Path) -> Result<(OwnedFd, PathBuf)> {
    open_pty_with(ptmx, 0)
}

fn open_pty_with(ptmx: &Path, extra_flags: libc::c_int) -> Result<(OwnedFd, PathBuf)> {
    let c = CString::new(ptmx.as_os_str().as_bytes())
        .with_context(|| format!("pty device path {}", ptmx.display()))?;
    // What is opened must be a pty multiplexer (character device 5:2, as /dev/ptmx and
    // devpts' ptmx both are).
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | extra_flags;
    // SAFETY: c is a valid NUL-terminated path; the fd returned is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last()).with_context(|| format!("open {}", ptmx.display()));
    }
    // SAFETY: fd is a fresh fd that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(master.as_raw_fd())
        .with_context(|| format!("fstat {}", ptmx.display()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(5, 2) {
        bail!(
            "{} is not a pty multiplexer (character device 5:2)",
            ptmx.display()
        );
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int into `n`, which outlives the call.
    if unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTN,
            &mut n as *mut libc::c_uint,
        )
    } != 0
    {
        return Err(Errno::last()).context("ioctl TIOCGPTN on pty master");
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from `unlock`, which outlives the call.
    if unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSPTLCK,
            &unlock as *const libc::c_int,
        )
    } != 0
    {
        return Err(Errno::last()).context("ioctl TIOCSPTLCK (unlockpt) on pty master");
    }
    Ok((master, PathBuf::from(format!("/dev/pts/{n}"))))
}

/// [`open_pty`] on the container's own devpts instance (after pivot_root).
pub fn open_pty_in_container() -> Result<(OwnedFd, PathBuf)> {
    // O_NOFOLLOW: the path is the container's, and a link there (to a proc file, say) must
    // not be opened read-write.
    open_pty_with(Path::new("/dev/pts/ptmx"), libc::O_NOFOLLOW)
}

/// Open the slave of `master`: TIOCGPTPEER (the slave of exactly this master, immune to a
/// swapped /dev/pts), falling back to opening `slave_path` on kernels before 4.13.
/// The fd is O_CLOEXEC; dup2 onto 0/1/2 clears that.
pub fn open_pty_slave(master: BorrowedFd<'_>, slave_path: &Path) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer and returns a new fd.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd >= 0 {
        // SAFETY: fd is a fresh fd that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let c = CString::new(slave_path.as_os_str().as_bytes())
        .with_context(|| format!("pty slave path {}", slave_path.display()))?;
    // SAFETY: c is a valid NUL-terminated path; the fd returned is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last()).with_context(|| format!("open {}", slave_path.display()));
    }
    // SAFETY: fd is a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connect to the `--console-socket` (a unix stream socket); the fd is O_CLOEXEC.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to console socket {}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

/// Send the pty master over the console socket exactly as runc: one message whose data is
/// [`CONSOLE_MASTER_NAME`] and whose SCM_RIGHTS carries the master.
pub fn send_console_fd(console_socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    fd_passing::send_fd(console_socket, CONSOLE_MASTER_NAME.as_bytes(), master)
        .context("send pty master over console socket")?;
    Ok(())
}

/// Receive one fd sent like [`send_console_fd`] (runc `RecvFd`), O_CLOEXEC. As everywhere in
/// ocibox ([`fd_passing`]), the first fd is used and extra ones are closed; none is an error.
pub fn recv_console_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    recv_fd_with_name(sock).map(|(fd, _)| fd)
}

/// [`recv_console_fd`] that also returns the name sent with the fd.
pub fn recv_fd_with_name(sock: BorrowedFd<'_>) -> Result<(OwnedFd, String)> {
    let mut name = vec![0u8; MAX_NAME_LEN];
    let got = fd_passing::recv(sock, &mut name).context("recvmsg on console socket")?;
    let Some(fd) = got.fd else {
        // runc's wording.
        bail!("recvfd: number of fds is not 1: {}", got.count);
    };
    let name = String::from_utf8_lossy(&name[..got.len]).into_owned();
    Ok((fd, name))
}

/// Make `slave` the controlling terminal of the calling process (which must be a session
/// leader without one: the caller has called setsid) and dup it onto fds 0, 1 and 2.
pub fn make_controlling_terminal_and_dup(slave: BorrowedFd<'_>) -> Result<()> {
    for target in 0..=2 {
        if slave.as_raw_fd() == target {
            continue;
        }
        // SAFETY: dup2 onto a standard fd; the old fd there (if any) is closed atomically.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Errno::last()).with_context(|| format!("dup2 pty slave onto fd {target}"));
        }
    }
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Errno::last()).context("ioctl TIOCSCTTY on pty slave");
    }
    Ok(())
}

/// TIOCSWINSZ: set a terminal's (or pty master's) window size.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which outlives the call.
    if unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    } != 0
    {
        return Err(Errno::last()).with_context(|| format!("set window size {rows}x{cols}"));
    }
    Ok(())
}

/// TIOCGWINSZ: a terminal's window size as (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<(u16, u16)> {
    // SAFETY: winsize is plain data; zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives the call.
    if unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    } != 0
    {
        return Err(Errno::last()).context("get window size");
    }
    Ok((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn raw_slave(master: &OwnedFd, path: &Path) -> OwnedFd {
        let slave = open_pty_slave(master.as_fd(), path).unwrap();
        let mut t = nix::sys::termios::tcgetattr(&slave).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
        slave
    }

    fn read_exact(fd: BorrowedFd<'_>, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while out.len() < n {
            let got = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap();
            assert!(got > 0, "unexpected EOF");
            out.extend_from_slice(&buf[..got]);
        }
        out
    }

    #[test]
    fn master_travels_over_socket_like_runc() {
        let (master, slave_path) = open_pty(Path::new("/dev/ptmx")).unwrap();
        assert!(slave_path.starts_with("/dev/pts/"));
        let slave = raw_slave(&master, &slave_path);
        let (a, b) = UnixStream::pair().unwrap();
        send_console_fd(a.as_fd(), master.as_fd()).unwrap();
        drop(master);
        let (got, name) = recv_fd_with_name(b.as_fd()).unwrap();
        assert_eq!(name, "/dev/ptmx");
        // SAFETY: F_GETFD only reads the fd's flags.
        let fdflags = unsafe { libc::fcntl(got.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fdflags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        nix::unistd::write(&slave, b"hello from the container").unwrap();
        assert_eq!(read_exact(got.as_fd(), 24), b"hello from the container");
        nix::unistd::write(&got, b"typed").unwrap();
        assert_eq!(read_exact(slave.as_fd(), 5), b"typed");
        set_window_size(got.as_fd(), 33, 101).unwrap();
        assert_eq!(window_size(slave.as_fd()).unwrap(), (33, 101));
    }

    #[test]
    fn recv_without_fd_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        nix::unistd::write(&a, b"/dev/ptmx").unwrap();
        let e = recv_console_fd(b.as_fd()).unwrap_err();
        assert!(
            format!("{e:#}").contains("number of fds is not 1: 0"),
            "{e:#}"
        );
    }

    #[test]
    fn connect_console_socket_reaches_listener() {
        let path = std::env::temp_dir().join(format!("ocibox-console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let conn = connect_console_socket(&path);
        let _ = std::fs::remove_file(&path);
        let conn = conn.unwrap();
        let (peer, _) = listener.accept().unwrap();
        let (master, _) = open_pty(Path::new("/dev/ptmx")).unwrap();
        send_console_fd(conn.as_fd(), master.as_fd()).unwrap();
        recv_console_fd(peer.as_fd()).unwrap();
        assert!(connect_console_socket(Path::new("/nonexistent/ocibox.sock")).is_err());
    }
}
