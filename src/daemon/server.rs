//! Start and serve: create the root and state directories, open the stores, bind the gRPC
//! socket (refusing one another daemon serves, replacing a stale one), serve on one small
//! tokio runtime until SIGTERM or SIGINT, then remove the socket.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::daemon::config::Config;
use crate::daemon::context::Daemon;
use crate::daemon::{log, services};

/// Run the daemon with `config` until a signal stops it.
pub fn run(config: Config) -> Result<()> {
    crate::daemon::idle::limit_malloc_arenas();
    // The socket first: a second daemon on the same address stops before touching disk.
    let address = config.address.clone();
    let std_listener = bind(&address)?;
    if config.socket_uid.is_some() || config.socket_gid.is_some() {
        if let Err(e) = std::os::unix::fs::chown(&address, config.socket_uid, config.socket_gid) {
            let _ = std::fs::remove_file(&address);
            return Err(e).with_context(|| format!("chown {}", address.display()));
        }
    }
    make_dir(&config.root, 0o711)?;
    make_dir(&config.state, 0o711)?;
    let daemon = Daemon::open(config)?;
    // Collections remove the directories of the snapshot records they sweep.
    daemon
        .gc
        .set_snapshot_collector(daemon.snapshotters.clone())?;
    let activity = daemon.activity.clone();
    let router = Arc::new(services::router(&daemon).on_request(move || activity.mark()));
    let max_message = daemon
        .config
        .max_recv_message_size
        .max(daemon.config.max_send_message_size);
    let gc_daemon = daemon.clone();
    log::info(&format!(
        "serving {} on {}",
        router.names().join(", "),
        address.display()
    ));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(crate::daemon::idle::BLOCKING_KEEP_ALIVE)
        .build()
        .context("start the tokio runtime")?;
    let ttrpc_address = daemon.config.ttrpc_address();
    let result = rt.block_on(async move {
        // Shims publish here: up before they are reconnected, so what they retried while
        // the daemon was away goes through.
        crate::daemon::events_ttrpc::start(&daemon)?;
        let d = daemon.clone();
        let found = tokio::task::spawn_blocking(move || {
            crate::daemon::runtime_v2::recovery::load_shims(&d.tasks, &d.events, &d.db)
        })
        .await
        .context("recover tasks")?;
        if found != Default::default() {
            log::info(&format!(
                "recovered tasks: {} live, {} dead shims reaped, {} stale bundles removed",
                found.live, found.reaped, found.removed
            ));
        }
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(std_listener)?;
        tokio::spawn(crate::daemon::idle::run(gc_daemon.activity.clone()));
        tokio::spawn(crate::daemon::runtime_v2::manager::reap_closed(
            gc_daemon.clone(),
        ));
        tokio::spawn(crate::daemon::gc::run(gc_daemon));
        let serving = crate::api::serve::serve(listener, router, max_message, |peer| {
            if let Some((pid, uid, gid)) = peer {
                log::debug(&format!(
                    "connection from pid {} uid {uid} gid {gid}",
                    pid.map_or("?".to_string(), |p| p.to_string())
                ));
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::select! {
            r = serving => r.context("serve"),
            _ = term.recv() => { log::info("stopping on SIGTERM"); Ok(()) }
            _ = int.recv() => { log::info("stopping on SIGINT"); Ok(()) }
        }
    });
    let _ = std::fs::remove_file(&address);
    let _ = std::fs::remove_file(&ttrpc_address);
    result
}

fn make_dir(p: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .with_context(|| format!("create {}", p.display()))
}

/// Bind the gRPC socket: its directory 0711, the socket 0660 (root's group may use it, as
/// containerd's). A socket another process answers on is refused; a dead one is replaced.
fn bind(address: &Path) -> Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = address.parent() {
        make_dir(dir, 0o711)?;
    }
    if std::os::unix::net::UnixStream::connect(address).is_ok() {
        bail!(
            "failed to serve {}: address already in use (another daemon serves it)",
            address.display()
        );
    }
    match std::fs::remove_file(address) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale {}", address.display())),
    }
    let l = std::os::unix::net::UnixListener::bind(address)
        .with_context(|| format!("failed to serve {}", address.display()))?;
    std::fs::set_permissions(address, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", address.display()))?;
    Ok(l)
}

/// The daemon's uuid, made once and kept where containerd keeps its own
/// (`<root>/io.containerd.grpc.v1.introspection/uuid`).
pub fn load_or_make_uuid(root: &Path) -> Result<String> {
    let dir = root.join("io.containerd.grpc.v1.introspection");
    let path = dir.join("uuid");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if s.len() == 36 {
            return Ok(s);
        }
    }
    make_dir(&dir, 0o711)?;
    let mut b = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("read /dev/urandom")?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    let tmp = dir.join("uuid.tmp");
    std::fs::write(&tmp, &uuid).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(uuid)
}
