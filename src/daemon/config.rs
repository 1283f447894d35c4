//! What ociboxd runs with: embedded defaults (no config file needed), overridden by an
//! optional TOML file in containerd's format for what applies, overridden by flags.

use std::path::PathBuf;

/// ociboxd's own socket when none is named; `--address /run/containerd/containerd.sock`
/// makes it a drop-in containerd.
pub const DEFAULT_ADDRESS: &str = "/run/ocibox/ociboxd.sock";
pub const DEFAULT_ROOT: &str = "/var/lib/ocibox";
pub const DEFAULT_STATE: &str = "/run/ocibox";

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent data: content, snapshots, the metadata database.
    pub root: PathBuf,
    /// Runtime state: task bundles, sockets.
    pub state: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// `info`, `debug`, `warn`, `error` (containerd's levels; `trace` is debug here).
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: DEFAULT_ROOT.into(),
            state: DEFAULT_STATE.into(),
            address: DEFAULT_ADDRESS.into(),
            log_level: "info".into(),
        }
    }
}

impl Config {
    /// Where shims publish events (containerd's ttrpc address: the socket path + `.ttrpc`).
    pub fn ttrpc_address(&self) -> PathBuf {
        let mut s = self.address.clone().into_os_string();
        s.push(".ttrpc");
        s.into()
    }

    /// containerd's on-disk layout under the root.
    pub fn content_root(&self) -> PathBuf {
        self.root.join("io.containerd.content.v1.content")
    }

    pub fn metadata_path(&self) -> PathBuf {
        self.root
            .join("io.containerd.metadata.v1.redb")
            .join("meta.db")
    }
}
