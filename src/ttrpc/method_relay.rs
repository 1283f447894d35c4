//! Answers requests for methods the shim does not serve with UNIMPLEMENTED, as Go's ttrpc
//! does (the ttrpc crate's server answers INVALID_ARGUMENT itself and cannot be hooked).
//!
//! The relay owns the shim's listening socket. The ttrpc server listens on a private
//! socket in the bundle instead, and for every client connection the relay opens one to
//! it. One thread, a `poll(2)` loop over all of them, moves the bytes both ways: requests
//! from a client are cut into frames, and a request whose `/service/method` is not
//! registered is answered right there and not passed on. Everything else (responses,
//! malformed or oversized frames, which the server answers as before) passes unchanged.
//! A frame of ours goes to the client only between the server's frames.
//!
//! Back-pressure: a side is read only while less than [`HIGH_WATER`] waits to be written
//! to the other, so a client that does not read holds up only its own connection.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::frames::{
    request_path, unimplemented_response, Piece, Splitter, KEEP_CAPACITY, TYPE_REQUEST,
};

/// The relay loop's stack: it copies through one heap buffer.
const LOOP_STACK: usize = 64 * 1024;
/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;
/// Pending bytes above which a side's source is not read.
const HIGH_WATER: usize = 64 * 1024;

/// One direction of a connection's traffic.
#[derive(Default)]
struct Lane {
    split: Splitter,
    /// Cut into pieces, not yet written.
    out: Vec<u8>,
}

struct Conn {
    client: UnixStream,
    server: UnixStream,
    /// Client → server.
    up: Lane,
    /// Server → client.
    down: Lane,
    /// Our own answers, waiting for the server's stream to be between frames.
    answers: Vec<u8>,
    closed: bool,
}

/// The registered method paths (`/service/method`) and their services.
pub struct Known {
    methods: HashSet<String>,
    services: HashSet<String>,
}

impl Known {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a String>) -> Known {
        let methods: HashSet<String> = paths.into_iter().cloned().collect();
        let services = methods
            .iter()
            .filter_map(|p| p.trim_start_matches('/').split_once('/'))
            .map(|(s, _)| s.to_string())
            .collect();
        Known { methods, services }
    }
}

/// Starts the relay thread: accepts on `listener`, connects each client to the ttrpc
/// server at `server` (a path, relative to our cwd if need be).
pub fn start(listener: OwnedFd, server: PathBuf, known: Known) -> Result<()> {
    let listener = UnixListener::from(listener);
    listener
        .set_nonblocking(true)
        .context("make the shim's listener non-blocking")?;
    std::thread::Builder::new()
        .name("ttrpc-relay".into())
        .stack_size(LOOP_STACK)
        .spawn(move || run(listener, &server, &known))
        .context("start the ttrpc relay thread")?;
    Ok(())
}

fn run(listener: UnixListener, server: &Path, known: &Known) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        for c in &conns {
            fds.push(PollFd::new(c.client.as_fd(), c.client_events()));
            fds.push(PollFd::new(c.server.as_fd(), c.server_events()));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e != nix::errno::Errno::EINTR {
                eprintln!("ttrpc relay: poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        for (i, c) in conns.iter_mut().enumerate() {
            c.step(ready[1 + 2 * i], ready[2 + 2 * i], &mut buf, known);
        }
        conns.retain(|c| !c.closed);
        if !ready[0].is_empty() {
            accept(&listener, server, &mut conns);
        }
    }
}

fn accept(listener: &UnixListener, server: &Path, conns: &mut Vec<Conn>) {
    let client = match listener.accept() {
        Ok((s, _)) => s,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => return,
        Err(e) => {
            // Out of fds or memory: the listener stays readable, so do not spin.
            eprintln!("ttrpc relay: accept: {e}");
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
    };
    let server = match UnixStream::connect(server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ttrpc relay: connect to {}: {e}", server.display());
            return;
        }
    };
    if client.set_nonblocking(true).is_err() || server.set_nonblocking(true).is_err() {
        return;
    }
    conns.push(Conn {
        client,
        server,
        up: Lane::default(),
        down: Lane::default(),
        answers: Vec::new(),
        closed: false,
    });
}

/// Reads what `from` has (at most a few chunks); false at EOF or on an error.
fn read_into(from: &mut UnixStream, split: &mut Splitter, buf: &mut [u8]) -> bool {
    for _ in 0..4 {
        match from.read(buf) {
            Ok(0) => return false,
            Ok(n) => split.feed(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Writes what it can of `out`; false on an error.
fn flush(to: &mut UnixStream, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match to.write(out) {
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if out.capacity() > KEEP_CAPACITY {
        *out = Vec::new();
    }
    true
}

impl Conn {
    fn client_events(&self) -> PollFlags {
        let mut ev = PollFlags::empty();
        if self.up.out.len() < HIGH_WATER && self.down.out.len() < HIGH_WATER {
            ev |= PollFlags::POLLIN;
        }
        if !self.down.out.is_empty() {
            ev |= PollFlags::POLLOUT;
        }
        ev
    }

    fn server_events(&self) -> PollFlags {
        let mut ev = PollFlags::empty();
        if self.down.out.len() < HIGH_WATER {
            ev |= PollFlags::POLLIN;
        }
        if !self.up.out.is_empty() {
            ev |= PollFlags::POLLOUT;
        }
        ev
    }

    fn step(&mut self, client: PollFlags, server: PollFlags, buf: &mut [u8], known: &Known) {
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if client.intersects(readable) && !read_into(&mut self.client, &mut self.up.split, buf) {
            // The client is gone (or half-closed): nothing more can reach it.
            self.closed = true;
            return;
        }
        if server.intersects(readable) && !read_into(&mut self.server, &mut self.down.split, buf) {
            // The server dropped the connection: pass on what it sent, then hang up.
            self.closed = true;
        }
        self.cut_requests(known);
        self.cut_responses();
        // Both flushed, whatever the first one's outcome.
        let ok =
            flush(&mut self.server, &mut self.up.out) & flush(&mut self.client, &mut self.down.out);
        if !ok {
            self.closed = true;
        }
    }

    fn cut_requests(&mut self, known: &Known) {
        while let Some(p) = self.up.split.next_piece() {
            match p {
                Piece::Raw(b) => self.up.out.extend_from_slice(&b),
                Piece::Frame(h, body) => {
                    if h.kind == TYPE_REQUEST {
                        if let Some(path) = request_path(&body) {
                            if !known.methods.contains(&path) {
                                self.answers.extend(unimplemented_response(
                                    h.stream_id,
                                    &path,
                                    |s| known.services.contains(s),
                                ));
                                continue;
                            }
                        }
                    }
                    self.up.out.extend_from_slice(&h.encode());
                    self.up.out.extend_from_slice(&body);
                }
            }
        }
    }

    fn cut_responses(&mut self) {
        while let Some(p) = self.down.split.next_piece() {
            match p {
                Piece::Raw(b) => self.down.out.extend_from_slice(&b),
                Piece::Frame(h, body) => {
                    self.down.out.extend_from_slice(&h.encode());
                    self.down.out.extend_from_slice(&body);
                }
            }
            if self.down.split.at_boundary() && !self.answers.is_empty() {
                self.down.out.append(&mut self.answers);
            }
        }
        if self.down.split.at_boundary() && !self.answers.is_empty() {
            self.down.out.append(&mut self.answers);
        }
    }
}
