//! Passing file descriptors over unix sockets (SCM_RIGHTS): the one send and the one receive
//! that the init channel, the console socket (`--console-socket`) and the shim all use.
//!
//! Receiving, the policy is the same for every caller: the first descriptor that arrives is
//! kept and any further ones are closed at once (a peer that sends more than asked must not
//! leak descriptors into us, and must not make a working exchange fail). No descriptor at
//! all is an error. Received descriptors are always close-on-exec.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// How many descriptors one receive makes room for; more are truncated by the kernel
/// (and closed by it), which is fine since only the first is kept.
const RECV_ROOM: usize = 4;

/// Send `fd` with `data` as the message body (which must not be empty: a stream socket
/// carries ancillary data only with at least one byte). Retries on EINTR; a peer that is
/// gone is an error (EPIPE), never a SIGPIPE. Returns the bytes of `data` sent (a stream
/// may take fewer; callers that send more than a byte check).
pub fn send_fd(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> Result<usize> {
    if data.is_empty() {
        bail!("send a descriptor: the message body must not be empty");
    }
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("sendmsg with a descriptor"),
        }
    }
}

/// What one receive brought.
#[derive(Debug)]
pub struct Received {
    /// The first descriptor of the message, if any (extra ones are already closed).
    pub fd: Option<OwnedFd>,
    /// How many descriptors arrived in all (extras included).
    pub count: usize,
    /// Bytes of the message body written into the caller's buffer.
    pub len: usize,
}

/// Receive one message into `buf`, keeping its first descriptor and closing the others.
/// Retries on EINTR.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Received> {
    let mut space = nix::cmsg_space!([RawFd; RECV_ROOM]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds: Vec<OwnedFd> = Vec::new();
                for c in msg.cmsgs().context("read control messages")? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel installed these descriptors for us just now;
                        // nothing else owns them.
                        fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                    }
                }
                let count = fds.len();
                // Extras are dropped (closed) here.
                let fd = fds.into_iter().next();
                return Ok(Received {
                    fd,
                    count,
                    len: msg.bytes,
                });
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("recvmsg for a descriptor"),
        }
    }
}

/// Receive one descriptor (see the module text for extras); no descriptor is an error.
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    match recv(sock, &mut byte)?.fd {
        Some(fd) => Ok(fd),
        None => bail!("no descriptor arrived"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn first_fd_is_kept_and_extras_are_closed() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r1, w1) = UnixStream::pair().unwrap();
        let (r2, _w2) = UnixStream::pair().unwrap();
        let fds = [w1.as_raw_fd(), r2.as_raw_fd()];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"x")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; 8];
        let got = recv(b.as_fd(), &mut buf).unwrap();
        assert_eq!((got.count, got.len), (2, 1));
        let fd = got.fd.unwrap();
        // The kept fd is the first one sent: a writer for r1.
        let mut kept = UnixStream::from(fd);
        kept.write_all(b"ok").unwrap();
        drop(kept);
        w1.shutdown(std::net::Shutdown::Write).unwrap();
        let mut s = [0u8; 2];
        r1.read_exact(&mut s).unwrap();
        assert_eq!(&s, b"ok");
    }

    #[test]
    fn no_fd_is_an_error() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"F").unwrap();
        let e = recv_fd(b.as_fd()).unwrap_err();
        assert!(format!("{e:#}").contains("no descriptor"));
    }

    #[test]
    fn send_then_recv_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_r, w) = UnixStream::pair().unwrap();
        send_fd(a.as_fd(), b"F", w.as_fd()).unwrap();
        let fd = recv_fd(b.as_fd()).unwrap();
        assert!(fd.as_raw_fd() >= 0);
    }
}
