//! The `start` subcommand: pick the shim's socket address, listen on it, record it in the
//! bundle, launch the serving daemon with the listener as fd 3, print the address.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::options::START_OPTIONS_FILE;
use super::ShimArgs;

/// Where containerd 1.6/1.7 shims put their sockets.
pub const SOCKET_ROOT: &str = "/run/containerd/s";

/// The socket path containerd and `ctr shim` expect for a shim:
/// `/run/containerd/s/<hex sha256(address/namespace/id)>`.
pub fn socket_path(address: &str, namespace: &str, id: &str) -> PathBuf {
    let joined = format!("{address}/{namespace}/{id}");
    // Go's filepath.Join cleans the path; an address is a clean absolute path already,
    // apart from doubled slashes.
    let mut clean = String::with_capacity(joined.len());
    for c in joined.chars() {
        if c == '/' && clean.ends_with('/') {
            continue;
        }
        clean.push(c);
    }
    Path::new(SOCKET_ROOT).join(hex_sha256(clean.as_bytes()))
}

/// True when a shim is listening on `path` (a connect gets through).
fn is_live(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Removes the socket at `path` if nobody listens on it any more (a shim killed with -9
/// leaves its socket file behind); a live socket is left alone. Returns whether it was
/// stale and removed.
pub fn remove_stale_socket(path: &Path) -> Result<bool> {
    if std::fs::symlink_metadata(path).is_err() || is_live(path) {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("remove stale shim socket {}", path.display())),
    }
}

/// Binds the socket, mode 0600 as containerd's shims make theirs; a stale socket file is
/// replaced, a live one is an error.
fn listen(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create socket directory {}", dir.display()))?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if is_live(path) {
            bail!(
                "shim socket {} is in use: shim already exists",
                path.display()
            );
        }
        remove_stale_socket(path)?;
    }
    let fd = crate::ttrpc::server::bind_private(path)
        .with_context(|| format!("listen on shim socket {}", path.display()))?;
    Ok(UnixListener::from(fd))
}

/// Writes `data` to `dir/name` atomically.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, data).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name))
        .with_context(|| format!("write {name} in bundle {}", dir.display()))
}

/// Runs `start`; returns the address to print (`unix://…`).
pub fn start(args: &ShimArgs) -> Result<String> {
    let bundle = args.bundle_dir()?;
    // containerd writes the runtime options on stdin; keep them for Create.
    let mut opts = Vec::new();
    let _ = std::io::stdin().take(1 << 20).read_to_end(&mut opts);
    if !opts.is_empty() {
        write_atomic(&bundle, START_OPTIONS_FILE, &opts)?;
    }
    let path = socket_path(&args.address, &args.namespace, &args.id);
    let listener = listen(&path)?;
    let address = format!("unix://{}", path.display());

    let exe = std::fs::read_link("/proc/self/exe").context("resolve /proc/self/exe")?;
    let mut cmd = Command::new(&exe);
    cmd.arg0("containerd-shim-ocibox-v2")
        .arg("-namespace")
        .arg(&args.namespace)
        .arg("-id")
        .arg(&args.id)
        .arg("-address")
        .arg(&args.address);
    if !args.publish_binary.is_empty() {
        cmd.arg("-publish-binary").arg(&args.publish_binary);
    }
    if args.debug {
        cmd.arg("-debug");
    }
    cmd.current_dir(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls: dup2/fcntl on fds.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e).context("launch the serving shim");
        }
    };
    write_atomic(&bundle, "shim.pid", child.id().to_string().as_bytes())?;
    if let Err(e) = write_atomic(&bundle, "address", address.as_bytes()) {
        // SAFETY: plain kill of the child we just spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(address)
}

/// Lower-case hex SHA-256, as containerd names shim sockets.
fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_is_sha256_of_address_ns_id() {
        // sha256("/run/containerd/containerd.sock/default/abc")
        let p = socket_path("/run/containerd/containerd.sock", "default", "abc");
        assert_eq!(
            p,
            Path::new(SOCKET_ROOT)
                .join("8cb244a719603fe00870d5ce1d8e1f1db43a654cb993d107df1f1ae23ddffa59")
        );
        assert_eq!(p.file_name().unwrap().len(), 64);
    }
}
