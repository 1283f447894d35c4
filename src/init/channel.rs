//! The runtime ⇄ init channel: length-prefixed JSON messages over a stream socketpair.
//! A stream (not seqpacket) so a large config.json is never limited by socket buffers.

use super::message::Message;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// A message bigger than this is refused (a config.json is limited to 32 MiB).
const MAX_MESSAGE: usize = 64 << 20;

pub struct Channel {
    /// None once closed: the descriptor is gone, not only shut down (the waiting init
    /// holds no socket, as runc's holds no init pipe).
    sock: Option<UnixStream>,
}

impl Channel {
    pub fn new(sock: UnixStream) -> Channel {
        Channel { sock: Some(sock) }
    }

    fn sock(&mut self) -> Result<&mut UnixStream> {
        self.sock.as_mut().context("the init channel is closed")
    }

    /// Hang up: the peer sees end-of-file; later sends fail.
    pub fn close(&mut self) {
        if let Some(s) = self.sock.take() {
            // The container's seccomp profile may deny shutdown (runc only needs close):
            // dropping the socket closes our descriptor all the same.
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn send(&mut self, m: &Message) -> Result<()> {
        let body = serde_json::to_vec(m).context("encode init message")?;
        let frame = frame(&body)?;
        self.sock()?
            .write_all(&frame)
            .context("write to init channel")
    }

    /// Pass a descriptor: one byte carrying it by SCM_RIGHTS (after a message announcing it).
    pub fn send_fd(&mut self, fd: std::os::fd::BorrowedFd) -> Result<()> {
        use std::os::fd::AsFd;
        crate::linux::fd_passing::send_fd(self.sock()?.as_fd(), b"F", fd)
            .context("send a descriptor over the init channel")?;
        Ok(())
    }

    /// Receive the descriptor sent by [`Channel::send_fd`].
    pub fn recv_fd(&mut self) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        crate::linux::fd_passing::recv_fd(self.sock()?.as_fd())
            .context("receive a descriptor over the init channel")
    }

    /// The next message, or None when the peer closed the channel between messages.
    /// A frame cut off by the peer's end-of-file is an error, not a clean close.
    pub fn recv(&mut self) -> Result<Option<Message>> {
        let mut len = [0u8; 4];
        if !read_frame_part(self.sock()?, &mut len, true)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_MESSAGE {
            bail!("init message of {len} bytes exceeds the limit");
        }
        let mut body = vec![0u8; len];
        read_frame_part(self.sock()?, &mut body, false)?;
        let m = serde_json::from_slice(&body).context("decode init message")?;
        Ok(Some(m))
    }

    /// Receive a message that must be there.
    pub fn expect(&mut self, what: &str) -> Result<Message> {
        match self.recv()? {
            Some(Message::Error { message }) => bail!("{message}"),
            Some(m) => Ok(m),
            None => bail!("init channel closed while waiting for {what}"),
        }
    }
}

/// The length prefix (u32, little-endian) and the body; a body over the limit the peer
/// would refuse is refused here.
fn frame(body: &[u8]) -> Result<Vec<u8>> {
    if body.len() > MAX_MESSAGE {
        bail!("init message of {} bytes exceeds the limit", body.len());
    }
    let len = u32::try_from(body.len()).context("init message too large")?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Fill `buf` from the socket. False when end-of-file came before the first byte and
/// `eof_ok` is set (the peer hung up between messages); end-of-file after that is an error.
fn read_frame_part(sock: &mut UnixStream, buf: &mut [u8], eof_ok: bool) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match sock.read(&mut buf[got..]) {
            Ok(0) if got == 0 && eof_ok => return Ok(false),
            Ok(0) => bail!(
                "init channel closed in the middle of a message ({got} of {} bytes)",
                buf.len()
            ),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read from init channel"),
        }
    }
    Ok(true)
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
