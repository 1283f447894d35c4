//! The ttrpc server: one thread, a `poll(2)` loop, owns the listening socket and every
//! client connection; a connection costs one fd and a small record, never a thread.
//! Complete request frames are decoded there and handed to a bounded [`WorkerPool`];
//! answers come back through an outbox the loop writes out.
//!
//! What a client can make it spend is bounded:
//! - connections: at most [`max_connections`] (1024, fewer when the fd limit is low); a
//!   client beyond that is accepted and closed at once (refused), the others go on;
//! - an idle client: a connection that has not sent a whole request within
//!   [`IDLE_TIMEOUT`] of connecting, or that stalls in the middle of a frame that long, is
//!   closed. One that has sent requests and sits between frames is kept (containerd's one
//!   connection is idle most of its life, and closing it would make containerd think the
//!   shim died);
//! - requests in flight per connection: at most [`MAX_IN_FLIGHT`]; beyond that the
//!   connection is not read until answers go out. A client that does not read its answers
//!   is not read either once [`HIGH_WATER`] bytes wait for it;
//! - frames: at most the ttrpc maximum (4 MiB); a longer one is skipped and answered
//!   RESOURCE_EXHAUSTED, as Go's ttrpc does;
//! - resource exhaustion: out of fds at accept, the client is refused through a reserved
//!   fd and the loop goes on; no worker thread can start: the request is answered
//!   RESOURCE_EXHAUSTED. Nothing here panics on a client's doing.
//!
//! Protocol, as Go's ttrpc server: a frame that is not a request is ignored; a request that
//! does not decode, or has an even stream id, is answered INVALID_ARGUMENT; an unknown
//! service or method UNIMPLEMENTED (`service X` / `method Y`); a payload that does not
//! decode as the method's message INTERNAL ([`super::handler`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use containerd_shim_protos::ttrpc::proto::{Code, Request};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use protobuf::Message;

use super::frames::{
    status_frame, unimplemented_response, Piece, Splitter, KEEP_CAPACITY, TYPE_REQUEST,
};
use super::handler::{Call, Methods, Responder, Sink};
use super::worker_pool::WorkerPool;

pub use super::handler::{after_each_request, deferred, unary, Handler, Reply};

/// Why 1024: the shim's legitimate clients are containerd's one connection (again after a
/// containerd restart), `ctr shim` and the odd health check, a handful at most; 1024 is far
/// above that, so no real client is refused, and it bounds what a flood holds to 1024 fds
/// and their small records.
pub const MAX_CONNECTIONS: usize = 1024;
/// Fds kept for everything else the shim opens (FIFOs, pipes, runtime processes, pty
/// masters) when the fd limit is what bounds the connections.
const RESERVED_FDS: u64 = 256;
/// A client that has not sent a whole request this long after connecting, or is stuck this
/// long inside a frame, is closed. containerd sends its first request right after dialing.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection being served or waiting (a parked Wait counts): far more
/// than containerd has at once (a Wait per running process of the task, a call or two),
/// while a client's parked answers stay bounded (and go when its connection closes).
pub const MAX_IN_FLIGHT: usize = 256;
/// Answer bytes waiting for a client above which its connection is not read.
const HIGH_WATER: usize = 1 << 20;
/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;
/// Reads per connection per wake-up before the others get their turn.
const ROUNDS: usize = 4;
/// The loop's stack: it copies through one heap buffer.
const LOOP_STACK: usize = 256 * 1024;

/// The connection limit for this process: [`MAX_CONNECTIONS`], or fewer when the fd limit
/// leaves less than that beside [`RESERVED_FDS`].
pub fn max_connections() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(s, _)| s)
        .unwrap_or(1024);
    let room = soft.saturating_sub(RESERVED_FDS).max(16);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(MAX_CONNECTIONS)
}

/// Raises the soft fd limit to the hard one (Go does this for every program since 1.19, so
/// containerd's own shim runs with it).
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Answers handed back by handlers, for the loop to write.
struct Outbox {
    frames: Mutex<Vec<(u64, Vec<u8>)>>,
    /// An eventfd that wakes the loop.
    wake: File,
}

impl Sink for Outbox {
    fn send(&self, conn: u64, frame: Vec<u8>) {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((conn, frame));
        let _ = (&self.wake).write(&1u64.to_ne_bytes());
    }
}

struct Conn {
    stream: UnixStream,
    split: Splitter,
    out: Vec<u8>,
    /// Accept time, then the time of the last whole frame.
    progress_at: Instant,
    seen_request: bool,
    in_flight: usize,
    closed: bool,
    /// Shared with the responders of its requests: cleared when it closes.
    open: Arc<AtomicBool>,
}

impl Conn {
    fn events(&self) -> PollFlags {
        let mut ev = PollFlags::empty();
        if self.in_flight < MAX_IN_FLIGHT && self.out.len() < HIGH_WATER {
            ev |= PollFlags::POLLIN;
        }
        if !self.out.is_empty() {
            ev |= PollFlags::POLLOUT;
        }
        ev
    }

    /// When an idle or stalled client is closed; None when it may stay.
    fn deadline(&self, idle_timeout: Duration) -> Option<Instant> {
        (!self.seen_request || self.split.mid_frame()).then(|| self.progress_at + idle_timeout)
    }
}

struct Loop {
    listener: UnixListener,
    methods: Methods,
    services: HashSet<String>,
    pool: WorkerPool,
    outbox: Arc<Outbox>,
    conns: HashMap<u64, Conn>,
    next_id: u64,
    limit: usize,
    idle_timeout: Duration,
    /// An fd held back for refusing a client when the process is out of fds.
    reserve: Option<File>,
}

/// What one server may spend.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request threads at most.
    pub workers: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The shim's: [`max_connections`], [`IDLE_TIMEOUT`], and `workers` threads.
    pub fn with_workers(workers: usize) -> Limits {
        Limits {
            workers,
            max_connections: max_connections(),
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Starts serving `methods` on `listener` (already listening) within `limits`.
pub fn serve(methods: Methods, listener: OwnedFd, limits: Limits) -> Result<()> {
    let listener = UnixListener::from(listener);
    listener
        .set_nonblocking(true)
        .context("make the ttrpc listener non-blocking")?;
    // SAFETY: eventfd takes no pointers; the fd is owned by the File below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("create ttrpc server eventfd");
    }
    // SAFETY: a fresh eventfd nothing else owns.
    let wake = unsafe { File::from_raw_fd(fd) };
    let services = methods
        .keys()
        .filter_map(|p| p.trim_start_matches('/').split_once('/'))
        .map(|(s, _)| s.to_string())
        .collect();
    let mut l = Loop {
        listener,
        methods,
        services,
        pool: WorkerPool::new("ttrpc-worker", limits.workers),
        outbox: Arc::new(Outbox {
            frames: Mutex::new(Vec::new()),
            wake,
        }),
        conns: HashMap::new(),
        next_id: 1,
        limit: limits.max_connections,
        idle_timeout: limits.idle_timeout,
        reserve: File::open("/dev/null").ok(),
    };
    std::thread::Builder::new()
        .name("ttrpc".into())
        .stack_size(LOOP_STACK)
        .spawn(move || l.run())
        .context("start the ttrpc server thread")?;
    Ok(())
}

/// Reads what `c` has (a few chunks at most); false at EOF or on an error.
fn read_some(c: &mut Conn, buf: &mut [u8]) -> bool {
    for _ in 0..ROUNDS {
        match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => c.split.feed(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Writes what it can of `c.out`; false on an error.
fn flush(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if c.out.capacity() > KEEP_CAPACITY {
        c.out = Vec::new();
    }
    true
}

impl Loop {
    fn run(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let now = Instant::now();
            let idle = self.idle_timeout;
            let next_deadline = self.conns.values().filter_map(|c| c.deadline(idle)).min();
            let timeout = match next_deadline {
                Some(d) => {
                    let ms = d.saturating_duration_since(now).as_millis() + 1;
                    PollTimeout::from(ms.min(60_000) as u16)
                }
                None => PollTimeout::NONE,
            };
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            let ready: Vec<PollFlags> = {
                let mut fds = Vec::with_capacity(ids.len() + 2);
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.outbox.wake.as_fd(), PollFlags::POLLIN));
                for id in &ids {
                    let c = &self.conns[id];
                    fds.push(PollFd::new(c.stream.as_fd(), c.events()));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        eprintln!("ttrpc server: poll: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                    .collect()
            };
            if !ready[1].is_empty() {
                let mut b = [0u8; 8];
                let _ = (&self.outbox.wake).read(&mut b);
            }
            self.take_answers();
            for (i, id) in ids.iter().enumerate() {
                let ev = ready[2 + i];
                if ev.is_empty() {
                    continue;
                }
                self.step(*id, ev, &mut buf);
            }
            self.expire(Instant::now());
            // Answers written by the handlers meanwhile go out on the next turn (the
            // eventfd is readable then).
            self.conns.retain(|_, c| {
                if c.closed {
                    c.open.store(false, Ordering::Relaxed);
                }
                !c.closed
            });
            if !ready[0].is_empty() {
                self.accept();
            }
        }
    }

    fn take_answers(&mut self) {
        let frames =
            std::mem::take(&mut *self.outbox.frames.lock().unwrap_or_else(|e| e.into_inner()));
        for (id, frame) in frames {
            if let Some(c) = self.conns.get_mut(&id) {
                c.in_flight = c.in_flight.saturating_sub(1);
                c.out.extend_from_slice(&frame);
                if !flush(c) {
                    c.closed = true;
                }
            }
        }
    }

    fn step(&mut self, id: u64, ev: PollFlags, buf: &mut [u8]) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
            && !c.events().contains(PollFlags::POLLIN)
        {
            // Hung up while not being read (answers pending): nothing can reach it, and
            // the hang-up would wake the loop over and over.
            c.closed = true;
            return;
        }
        if ev.intersects(readable) && c.events().contains(PollFlags::POLLIN) && !read_some(c, buf) {
            // The client is gone (or half-closed): nothing more can reach it.
            c.closed = true;
            return;
        }
        if ev.contains(PollFlags::POLLOUT) && !flush(c) {
            c.closed = true;
            return;
        }
        let mut pieces = Vec::new();
        while let Some(p) = c.split.next_piece() {
            pieces.push(p);
        }
        if pieces.is_empty() {
            return;
        }
        c.progress_at = Instant::now();
        for p in pieces {
            self.handle(id, p);
        }
        if let Some(c) = self.conns.get_mut(&id) {
            if !flush(c) {
                c.closed = true;
            }
        }
    }

    /// Answers `frame` on connection `id` right here (errors the loop can tell itself).
    fn answer_now(&mut self, id: u64, frame: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.out.extend_from_slice(&frame);
        }
    }

    fn handle(&mut self, id: u64, piece: Piece) {
        let (h, body) = match piece {
            Piece::Oversized(h) => {
                let msg = format!(
                    "message length {} exceed maximum message size of {}",
                    h.length,
                    containerd_shim_protos::ttrpc::proto::MESSAGE_LENGTH_MAX
                );
                self.answer_now(id, status_frame(h.stream_id, Code::RESOURCE_EXHAUSTED, msg));
                return;
            }
            Piece::Frame(h, body) => (h, body),
        };
        if h.kind != TYPE_REQUEST {
            // Go's ttrpc ignores these, for future compatibility.
            return;
        }
        let req = match Request::parse_from_bytes(&body) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("unmarshal request error: {e}");
                self.answer_now(id, status_frame(h.stream_id, Code::INVALID_ARGUMENT, msg));
                return;
            }
        };
        if h.stream_id % 2 != 1 {
            let msg = "StreamID must be odd for client initiated streams";
            self.answer_now(id, status_frame(h.stream_id, Code::INVALID_ARGUMENT, msg));
            return;
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.seen_request = true;
        }
        let path = format!("/{}/{}", req.service, req.method);
        let Some(handler) = self.methods.get(&path).cloned() else {
            let services = &self.services;
            let frame = unimplemented_response(h.stream_id, &path, |s| services.contains(s));
            self.answer_now(id, frame);
            return;
        };
        let call = Call {
            payload: req.payload,
            reply: Responder {
                conn: id,
                stream_id: h.stream_id,
                sink: self.outbox.clone(),
                open: Arc::new(AtomicBool::new(true)),
            },
        };
        let open = match self.conns.get_mut(&id) {
            Some(c) => {
                c.in_flight += 1;
                c.open.clone()
            }
            None => return,
        };
        let call = Call {
            payload: call.payload,
            reply: Responder { open, ..call.reply },
        };
        if self.pool.submit(Box::new(move || handler(call))).is_err() {
            // No thread to run it: refuse this request, serve the next ones.
            if let Some(c) = self.conns.get_mut(&id) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
            let msg = "no worker thread available: the shim is out of threads";
            self.answer_now(id, status_frame(h.stream_id, Code::RESOURCE_EXHAUSTED, msg));
        }
    }

    /// Closes idle and stalled clients whose time is up.
    fn expire(&mut self, now: Instant) {
        for c in self.conns.values_mut() {
            if c.deadline(self.idle_timeout).is_some_and(|d| d <= now) {
                c.closed = true;
            }
        }
    }

    fn accept(&mut self) {
        // A few per turn, so a flood cannot starve the connections already served.
        for _ in 0..64 {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.refuse_without_fds(e);
                    return;
                }
            };
            if self.conns.len() >= self.limit || stream.set_nonblocking(true).is_err() {
                // Refused: closed at once; the clients already served go on.
                drop(stream);
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.conns.insert(
                id,
                Conn {
                    stream,
                    split: Splitter::default(),
                    out: Vec::new(),
                    progress_at: Instant::now(),
                    seen_request: false,
                    in_flight: 0,
                    closed: false,
                    open: Arc::new(AtomicBool::new(true)),
                },
            );
        }
    }

    /// accept(2) failed: out of fds (or memory). The pending client would keep the listener
    /// readable forever, so free the reserved fd, accept it and close it (refused), and
    /// take the reserve again.
    fn refuse_without_fds(&mut self, e: std::io::Error) {
        let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
        if out_of_fds && self.reserve.take().is_some() {
            if let Ok((s, _)) = self.listener.accept() {
                drop(s);
            }
            self.reserve = File::open("/dev/null").ok();
            return;
        }
        // Nothing to free: wait a little instead of spinning on a readable listener.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A listening unix socket at `path`, mode 0600: bound, made 0600 and only then listened
/// on, so nobody can connect while the mode is still wider (a socket is not connectable
/// before listen). A file already at `path` is an error (EADDRINUSE).
pub fn bind_private(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("create unix socket")?;
    let addr = nix::sys::socket::UnixAddr::new(path).context("socket address")?;
    bind(fd.as_raw_fd(), &addr).context("bind")?;
    let made = || -> Result<()> {
        nix::sys::stat::fchmodat(
            None,
            path,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .context("chmod 0600")?;
        listen(&fd, Backlog::MAXCONN).context("listen")?;
        Ok(())
    };
    if let Err(e) = made() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::api::{StateRequest, StateResponse};
    use containerd_shim_protos::ttrpc::proto::Response;

    fn start(limits: Limits) -> (PathBuf, impl Drop) {
        struct Gone(PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "ocibox-ttrpc-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let fd = bind_private(&path).unwrap();
        let mut m = Methods::new();
        m.insert(
            "/containerd.task.v2.Task/State".into(),
            unary(|r: StateRequest| {
                Ok(StateResponse {
                    id: r.id,
                    ..Default::default()
                })
            }),
        );
        serve(m, fd, limits).unwrap();
        (path, Gone(dir))
    }

    fn frame(stream: u32, kind: u8, body: &[u8]) -> Vec<u8> {
        let h = super::super::frames::Header {
            length: body.len() as u32,
            stream_id: stream,
            kind,
            flags: 0,
        };
        [&h.encode()[..], body].concat()
    }

    fn request(stream: u32, method: &str, payload: Vec<u8>) -> Vec<u8> {
        let mut r = Request::new();
        r.service = "containerd.task.v2.Task".into();
        r.method = method.into();
        r.payload = payload;
        frame(stream, TYPE_REQUEST, &r.write_to_bytes().unwrap())
    }

    fn response(s: &mut UnixStream) -> (u32, Response) {
        let mut head = [0u8; 10];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        let stream = u32::from_be_bytes(head[4..8].try_into().unwrap());
        (stream, Response::parse_from_bytes(&body).unwrap())
    }

    fn client(path: &Path) -> UnixStream {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Closed by the server: a read sees EOF (or a reset), not a timeout.
    fn closed(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0))
            || matches!(s.read(&mut b), Err(e) if e.kind() != ErrorKind::WouldBlock)
    }

    use std::path::PathBuf;

    #[test]
    fn socket_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let (path, _g) = start(Limits::with_workers(1));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_frames_are_answered_and_the_connection_goes_on() {
        let (path, _g) = start(Limits::with_workers(2));
        let mut s = client(&path);
        // Not a Request envelope; an even stream id; a payload that is not the message;
        // an unknown method; a frame that is not a request (ignored); then a good one.
        s.write_all(&frame(1, TYPE_REQUEST, &[0xff; 4])).unwrap();
        s.write_all(&request(2, "State", vec![])).unwrap();
        s.write_all(&request(3, "State", vec![0x0a, 0x7f])).unwrap();
        s.write_all(&request(5, "Nope", vec![])).unwrap();
        s.write_all(&frame(7, 9, b"")).unwrap();
        let st = StateRequest {
            id: "x".into(),
            ..Default::default()
        };
        s.write_all(&request(9, "State", st.write_to_bytes().unwrap()))
            .unwrap();
        let mut got: Vec<(u32, i32)> = (0..5)
            .map(|_| response(&mut s))
            .map(|(id, r)| (id, r.status.code.value()))
            .collect();
        got.sort();
        assert_eq!(got, [(1, 3), (2, 3), (3, 13), (5, 12), (9, 0)]);
    }

    #[test]
    fn oversized_frames_are_answered_resource_exhausted() {
        let (path, _g) = start(Limits::with_workers(1));
        let mut s = client(&path);
        let len = containerd_shim_protos::ttrpc::proto::MESSAGE_LENGTH_MAX + 1;
        let h = super::super::frames::Header {
            length: len as u32,
            stream_id: 1,
            kind: TYPE_REQUEST,
            flags: 0,
        };
        s.write_all(&h.encode()).unwrap();
        let (id, r) = response(&mut s);
        assert_eq!((id, r.status.code.value()), (1, 8));
        s.write_all(&vec![0u8; len]).unwrap();
        s.write_all(&request(3, "State", vec![])).unwrap();
        assert_eq!(response(&mut s).0, 3);
    }

    #[test]
    fn beyond_the_limit_clients_are_refused_and_the_others_served() {
        let (path, _g) = start(Limits {
            workers: 1,
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
        });
        let mut first: Vec<UnixStream> = (0..4).map(|_| client(&path)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = client(&path);
        assert!(closed(&mut extra), "the fifth client was not refused");
        let s = &mut first[0];
        s.write_all(&request(1, "State", vec![])).unwrap();
        assert_eq!(response(s).1.status.code.value(), 0);
    }

    #[test]
    fn idle_and_stalled_clients_are_closed_active_ones_kept() {
        let (path, _g) = start(Limits {
            workers: 1,
            max_connections: 16,
            idle_timeout: Duration::from_millis(300),
        });
        let mut idle = client(&path);
        let mut stalled = client(&path);
        let mut active = client(&path);
        active.write_all(&request(1, "State", vec![])).unwrap();
        assert_eq!(response(&mut active).0, 1);
        stalled.write_all(&request(1, "State", vec![])).unwrap();
        assert_eq!(response(&mut stalled).0, 1);
        // Half a frame, then nothing.
        stalled
            .write_all(&request(3, "State", vec![])[..5])
            .unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        assert!(closed(&mut idle), "an idle client was kept");
        assert!(closed(&mut stalled), "a client stalled mid-frame was kept");
        active.write_all(&request(3, "State", vec![])).unwrap();
        assert_eq!(response(&mut active).0, 3);
    }

    #[test]
    fn a_deferred_answer_holds_no_worker() {
        let dir = std::env::temp_dir().join(format!("ocibox-ttrpc-defer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let fd = bind_private(&path).unwrap();
        let parked: Arc<Mutex<Vec<Reply<StateResponse>>>> = Arc::default();
        let p = parked.clone();
        let mut m = Methods::new();
        m.insert(
            "/containerd.task.v2.Task/Wait".into(),
            deferred(move |_: StateRequest, reply| p.lock().unwrap().push(reply)),
        );
        m.insert(
            "/containerd.task.v2.Task/State".into(),
            unary(|_: StateRequest| Ok(StateResponse::default())),
        );
        serve(m, fd, Limits::with_workers(1)).unwrap();
        let mut s = client(&path);
        // More parked requests than workers, and the one worker still serves.
        for i in 0..10u32 {
            s.write_all(&request(2 * i + 1, "Wait", vec![])).unwrap();
        }
        s.write_all(&request(101, "State", vec![])).unwrap();
        assert_eq!(response(&mut s).0, 101);
        let replies = std::mem::take(&mut *parked.lock().unwrap());
        assert_eq!(replies.len(), 10);
        for r in replies {
            r.send(Ok(StateResponse::default()));
        }
        let mut ids: Vec<u32> = (0..10).map(|_| response(&mut s).0).collect();
        ids.sort();
        assert_eq!(ids, (0..10).map(|i| 2 * i + 1).collect::<Vec<u32>>());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
