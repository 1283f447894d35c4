//! Serving ttrpc: the private listener the server binds, the server's thread counts, the
//! per-request hook, and the [`super::method_relay`] in front of it that answers unknown
//! methods.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use containerd_shim_protos::ttrpc::{self, MethodHandler, Request, Server, TtrpcContext};

use super::method_relay::{self, Known};

/// A service's methods by `/service/method` path, as `create_*` of the protos returns them.
pub type Methods = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// Idle request workers per connection (ttrpc's counts are of *idle* workers: a worker busy
/// in a long call is not counted, and whenever fewer than `min` are idle more are started).
#[derive(Debug, Clone, Copy)]
pub struct Workers {
    pub min: usize,
    pub default: usize,
    pub max: usize,
}

/// A method handler that calls a hook after every request.
struct AfterEach {
    inner: Box<dyn MethodHandler + Send + Sync>,
    hook: Arc<dyn Fn() + Send + Sync>,
}

impl MethodHandler for AfterEach {
    fn handler(&self, ctx: TtrpcContext, req: Request) -> ttrpc::Result<()> {
        let r = self.inner.handler(ctx, req);
        (self.hook)();
        r
    }
}

/// Wraps every method so `hook` runs once each request was served.
pub fn after_each_request(methods: Methods, hook: impl Fn() + Send + Sync + 'static) -> Methods {
    let hook: Arc<dyn Fn() + Send + Sync> = Arc::new(hook);
    methods
        .into_iter()
        .map(|(name, inner)| {
            let h: Box<dyn MethodHandler + Send + Sync> = Box::new(AfterEach {
                inner,
                hook: hook.clone(),
            });
            (name, h)
        })
        .collect()
}

/// A started server and the private socket it listens on (remove it when done).
pub struct Serving {
    pub server: Server,
    pub private_path: PathBuf,
}

/// Serves `methods`: the ttrpc server on a private socket `name` in `dir`, and the method
/// relay accepting clients on `public` and passing them on.
pub fn serve(
    methods: Methods,
    public: OwnedFd,
    dir: &Path,
    name: &str,
    workers: Workers,
) -> Result<Serving> {
    let known = Known::new(methods.keys());
    let (private, private_path) = private_listener(dir, name)?;
    let mut server = Server::new()
        .add_listener(private.into_raw_fd())
        .context("use the private ttrpc listener")?
        .register_service(methods)
        .set_thread_count_default(workers.default)
        .set_thread_count_min(workers.min)
        .set_thread_count_max(workers.max);
    server.start().context("start the ttrpc server")?;
    method_relay::start(public, private_path.clone(), known)?;
    Ok(Serving {
        server,
        private_path,
    })
}

/// The private socket the ttrpc server listens on: `name` in `dir` (the bundle), only
/// root may connect. Returns the listener for `Server::add_listener` and the address to
/// connect to (the full path, or `name` when that is too long for a socket address).
pub fn private_listener(dir: &Path, name: &str) -> Result<(OwnedFd, PathBuf)> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let ctx = || format!("listen on private ttrpc socket {}", path.display());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(ctx)?;
    // Relative to the bundle (our cwd) when the full path would not fit in sun_path.
    let (addr, connect_to) = match nix::sys::socket::UnixAddr::new(&path) {
        Ok(a) => (a, path.clone()),
        Err(_) => (
            nix::sys::socket::UnixAddr::new(name).with_context(ctx)?,
            PathBuf::from(name),
        ),
    };
    bind(fd.as_raw_fd(), &addr).with_context(ctx)?;
    // Not connectable before listen, so nobody can get in before the mode is set.
    nix::sys::stat::fchmodat(
        None,
        &path,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .with_context(ctx)?;
    listen(&fd, Backlog::MAXCONN).with_context(ctx)?;
    Ok((fd, connect_to))
}
