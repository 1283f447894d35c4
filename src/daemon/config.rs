//! What ociboxd runs with: embedded defaults (no config file needed), overridden by an
//! optional TOML file in containerd's format for what applies, overridden by flags.
//!
//! The file (`--config`, containerd 1.6's `config.toml`; no file is read unless named, so
//! ociboxd never picks up a containerd's own `/etc/containerd/config.toml`). Keys read,
//! with containerd 1.6's names (version 2 layout; version 1's short plugin names `cri` are
//! read too):
//!
//! | key | meaning |
//! | --- | --- |
//! | `version` | 1 or 2 (containerd 1.6's); a higher one is refused |
//! | `root`, `state` | persistent and runtime directories |
//! | `[grpc] address` | the gRPC socket |
//! | `[grpc] max_recv_message_size`, `max_send_message_size` | bytes, one message (default 16 MiB) |
//! | `[grpc] uid`, `gid` | owner of the socket (default root's) |
//! | `[ttrpc] address` | where shims publish events (default `<grpc address>.ttrpc`) |
//! | `[debug] level` | log level |
//! | `[plugins."io.containerd.grpc.v1.cri".registry] config_path` | hosts.toml directories, `:`-separated |
//! | `[plugins."io.containerd.grpc.v1.cri".containerd] default_runtime_name` | runtime for a container that names none: a `runtimes.<name>.runtime_type` there, or a runtime name itself |
//! | `[plugins."io.containerd.grpc.v1.cri".containerd] snapshotter` | default snapshotter |
//!
//! Everything else containerd knows (`oom_score`, `[timeouts]`, `[metrics]`, other plugins'
//! tables, …) is accepted and ignored, so a containerd config works unchanged; a key that is
//! neither read nor one of containerd's top-level keys gets a warning line in the log, as
//! containerd 1.7 warns about undecoded keys. A key read here with the wrong type (`root =
//! 5`), a value out of range, or a file that is not TOML is an error naming the file, the
//! key and the problem, and ociboxd exits non-zero.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::registry::toml_subset::{self, Value};

/// ociboxd's own socket when none is named; `--address /run/containerd/containerd.sock`
/// makes it a drop-in containerd.
pub const DEFAULT_ADDRESS: &str = "/run/ocibox/ociboxd.sock";
pub const DEFAULT_ROOT: &str = "/var/lib/ocibox";
pub const DEFAULT_STATE: &str = "/run/ocibox";
/// The runtime of a container that names none (ocibox's own shim).
pub const DEFAULT_RUNTIME: &str = "io.containerd.ocibox.v2";
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
/// Bounds on a configured message size: containerd's default is 16 MiB; below 4 KiB no real
/// request fits, above 1 GiB one message could exhaust the daemon's memory.
const MIN_CONFIGURED_MESSAGE: i64 = 4 << 10;
const MAX_CONFIGURED_MESSAGE: i64 = 1 << 30;

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent data: content, snapshots, the metadata database.
    pub root: PathBuf,
    /// Runtime state: task bundles, sockets.
    pub state: PathBuf,
    /// The gRPC socket.
    pub address: PathBuf,
    /// The ttrpc socket shims publish to, when configured apart from `<address>.ttrpc`.
    pub ttrpc: Option<PathBuf>,
    /// `info`, `debug`, `warn`, `error` (containerd's levels; `trace` is debug here).
    pub log_level: String,
    /// Owner of the gRPC socket (`[grpc] uid`, `gid`); None leaves the creator's.
    pub socket_uid: Option<u32>,
    pub socket_gid: Option<u32>,
    /// The largest gRPC message accepted.
    pub max_recv_message_size: usize,
    /// The largest gRPC message sent.
    pub max_send_message_size: usize,
    /// Directories of registry `hosts.toml` files (containerd's `config_path`), in order.
    pub registry_config_path: Vec<PathBuf>,
    /// The runtime name used when a container names none.
    pub default_runtime: String,
    /// The default snapshotter.
    pub snapshotter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: DEFAULT_ROOT.into(),
            state: DEFAULT_STATE.into(),
            address: DEFAULT_ADDRESS.into(),
            ttrpc: None,
            log_level: "info".into(),
            socket_uid: None,
            socket_gid: None,
            max_recv_message_size: crate::api::MAX_MESSAGE_SIZE,
            max_send_message_size: crate::api::MAX_MESSAGE_SIZE,
            registry_config_path: Vec::new(),
            default_runtime: DEFAULT_RUNTIME.into(),
            snapshotter: DEFAULT_SNAPSHOTTER.into(),
        }
    }
}

impl Config {
    /// Where shims publish events (containerd's ttrpc address: the socket path + `.ttrpc`,
    /// unless `[ttrpc] address` names another).
    pub fn ttrpc_address(&self) -> PathBuf {
        if let Some(t) = &self.ttrpc {
            return t.clone();
        }
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

    /// Read the TOML file at `path` over this configuration; the keys it ignores but does
    /// not know are returned for a warning.
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to load TOML: {}", path.display()))?;
        self.apply_toml(&text)
            .with_context(|| format!("failed to load TOML from {}", path.display()))
    }

    /// Apply a config document (see the module doc for the keys).
    pub fn apply_toml(&mut self, text: &str) -> Result<Vec<String>> {
        let entries = toml_subset::parse(text)?;
        let version = match entries
            .iter()
            .find(|e| e.table.is_empty() && e.key == ["version"])
        {
            None => 1,
            Some(e) => match e.value {
                Value::Integer(v @ (1 | 2)) => v,
                Value::Integer(v) => bail!(
                    "unsupported config version {v}: ociboxd reads containerd 1.6's versions 1 and 2"
                ),
                _ => bail!("version: expected an integer"),
            },
        };
        let cri: &str = if version == 1 {
            "cri"
        } else {
            "io.containerd.grpc.v1.cri"
        };
        let mut runtime_name: Option<String> = None;
        let mut runtime_types: Vec<(String, String)> = Vec::new();
        let mut unknown = Vec::new();
        for e in &entries {
            let mut full: Vec<&str> = e.table.iter().map(String::as_str).collect();
            full.extend(e.key.iter().map(String::as_str));
            let name = full.join(".");
            match full.as_slice() {
                ["version"] => {}
                ["root"] => self.root = path_value(&name, &e.value)?,
                ["state"] => self.state = path_value(&name, &e.value)?,
                ["grpc", "address"] => {
                    let p = path_value(&name, &e.value)?;
                    if !p.as_os_str().is_empty() {
                        self.address = p;
                    }
                }
                ["grpc", "max_recv_message_size"] => {
                    self.max_recv_message_size = size_value(&name, &e.value)?
                }
                ["grpc", "max_send_message_size"] => {
                    self.max_send_message_size = size_value(&name, &e.value)?
                }
                ["grpc", "uid"] => self.socket_uid = Some(id_value(&name, &e.value)?),
                ["grpc", "gid"] => self.socket_gid = Some(id_value(&name, &e.value)?),
                ["ttrpc", "address"] => {
                    let p = path_value(&name, &e.value)?;
                    self.ttrpc = (!p.as_os_str().is_empty()).then_some(p);
                }
                ["debug", "level"] => {
                    let l = str_value(&name, &e.value)?;
                    if !l.is_empty() {
                        if crate::daemon::log::Level::parse(l).is_none() {
                            bail!("{name}: not a valid log level {l:?}");
                        }
                        self.log_level = l.to_string();
                    }
                }
                ["plugins", p, "registry", "config_path"] if *p == cri => {
                    let s = str_value(&name, &e.value)?;
                    self.registry_config_path = s
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect();
                }
                ["plugins", p, "containerd", "default_runtime_name"] if *p == cri => {
                    runtime_name = Some(str_value(&name, &e.value)?.to_string());
                }
                ["plugins", p, "containerd", "snapshotter"] if *p == cri => {
                    let s = str_value(&name, &e.value)?;
                    if !s.is_empty() {
                        self.snapshotter = s.to_string();
                    }
                }
                ["plugins", p, "containerd", "runtimes", rt, "runtime_type"] if *p == cri => {
                    runtime_types.push((rt.to_string(), str_value(&name, &e.value)?.to_string()));
                }
                // containerd's other top-level keys and tables, and every plugin's table:
                // valid in a containerd config, nothing ociboxd applies.
                [k, ..] if CONTAINERD_TOP_LEVEL.contains(k) => {}
                _ => unknown.push(name),
            }
        }
        if let Some(n) = runtime_name.filter(|n| !n.is_empty()) {
            // CRI names a runtimes table ("runc" → io.containerd.runc.v2); a full runtime
            // name is taken as it is.
            self.default_runtime = match runtime_types.iter().find(|(k, _)| *k == n) {
                Some((_, t)) if !t.is_empty() => t.clone(),
                _ if n.starts_with("io.containerd.") => n,
                _ => {
                    bail!("default_runtime_name {n:?}: no runtimes.{n}.runtime_type in the config")
                }
            };
        }
        Ok(unknown)
    }
}

/// containerd 1.6's top-level config keys and tables (`services/server/config`).
const CONTAINERD_TOP_LEVEL: &[&str] = &[
    "version",
    "root",
    "state",
    "temp",
    "plugin_dir",
    "grpc",
    "ttrpc",
    "debug",
    "metrics",
    "disabled_plugins",
    "required_plugins",
    "oom_score",
    "cgroup",
    "proxy_plugins",
    "timeouts",
    "imports",
    "stream_processors",
    "plugins",
];

fn str_value<'a>(name: &str, v: &'a Value) -> Result<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        _ => bail!("{name}: expected a string"),
    }
}

fn path_value(name: &str, v: &Value) -> Result<PathBuf> {
    let s = str_value(name, v)?;
    if !s.is_empty() && !s.starts_with('/') {
        bail!("{name}: {s:?} must be an absolute path");
    }
    Ok(PathBuf::from(s))
}

fn id_value(name: &str, v: &Value) -> Result<u32> {
    match v {
        Value::Integer(n) => u32::try_from(*n)
            .ok()
            .filter(|n| *n != u32::MAX)
            .ok_or_else(|| anyhow::anyhow!("{name}: {n} is not a valid id")),
        _ => bail!("{name}: expected an integer"),
    }
}

fn size_value(name: &str, v: &Value) -> Result<usize> {
    match v {
        Value::Integer(n) if (MIN_CONFIGURED_MESSAGE..=MAX_CONFIGURED_MESSAGE).contains(n) => Ok(*n as usize),
        Value::Integer(n) => bail!(
            "{name}: {n} is out of range ({MIN_CONFIGURED_MESSAGE} to {MAX_CONFIGURED_MESSAGE} bytes)"
        ),
        _ => bail!("{name}: expected an integer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_containerd_keys_and_keeps_defaults_for_the_rest() {
        let mut c = Config::default();
        let unknown = c
            .apply_toml(
                r#"
version = 2
root = "/r"
state = "/s"
oom_score = -999
[grpc]
  address = "/a.sock"
  max_recv_message_size = 1048576
[ttrpc]
  address = "/t.sock"
[debug]
  level = "debug"
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/a:/etc/b"
[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
bogus = 1
"#,
            )
            .unwrap();
        assert_eq!(c.root, Path::new("/r"));
        assert_eq!(c.state, Path::new("/s"));
        assert_eq!(c.address, Path::new("/a.sock"));
        assert_eq!(c.ttrpc_address(), Path::new("/t.sock"));
        assert_eq!(c.max_recv_message_size, 1 << 20);
        assert_eq!(c.max_send_message_size, 16 << 20);
        assert_eq!((c.socket_uid, c.socket_gid), (None, None));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.default_runtime, "io.containerd.runc.v2");
        assert_eq!(c.snapshotter, "native");
        assert_eq!(
            c.registry_config_path,
            [PathBuf::from("/etc/a"), PathBuf::from("/etc/b")]
        );
        // `bogus` sits in the gc plugin's table: containerd's, ignored silently.
        assert!(unknown.is_empty(), "{unknown:?}");
        let unknown = Config::default()
            .apply_toml("frobnicate = true\n[wat]\nx = 1\n")
            .unwrap();
        assert_eq!(unknown, ["frobnicate", "wat.x"]);
    }

    #[test]
    fn version_one_uses_short_plugin_names() {
        let mut c = Config::default();
        c.apply_toml("[plugins.cri.containerd]\nsnapshotter = \"native\"\n")
            .unwrap();
        assert_eq!(c.snapshotter, "native");
    }

    #[test]
    fn wrong_types_and_ranges_are_errors() {
        for (doc, want) in [
            ("root = 5", "root: expected a string"),
            ("state = \"rel/dir\"", "must be an absolute path"),
            ("version = 3", "unsupported config version 3"),
            ("[grpc]\nmax_recv_message_size = 12", "out of range"),
            ("[grpc]\nmax_send_message_size = \"big\"", "expected an integer"),
            ("[debug]\nlevel = \"loud\"", "not a valid log level"),
            ("[grpc]\ngid = -1", "not a valid id"),
            ("root = ", "expected a value"),
            (
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"x\"",
                "no runtimes.x.runtime_type",
            ),
        ] {
            let e = Config::default().apply_toml(doc).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{doc:?}: {e:#}");
        }
    }

    #[test]
    fn containerds_own_default_config_loads() {
        // What `containerd config default` prints (1.6), abridged to its shape: nested
        // quoted tables, arrays over lines, a float, durations as strings.
        let doc = r#"
disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[debug]
  address = ""
  format = ""
  gid = 0
  level = ""
  uid = 0

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  tcp_address = ""
  uid = 0

[plugins]
  [plugins."io.containerd.gc.v1.scheduler"]
    deletion_threshold = 0
    pause_threshold = 0.02
    schedule_delay = "0s"
    startup_delay = "100ms"
  [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

[stream_processors]
  [stream_processors."io.containerd.ocicrypt.decoder.v1.tar"]
    accepts = ["application/vnd.oci.image.layer.v1.tar+encrypted"]
    args = ["--decryption-keys-path", "/etc/containerd/ocicrypt/keys"]

[timeouts]
  "io.containerd.timeout.bolt.open" = "0s"
"#;
        let mut c = Config::default();
        assert!(c.apply_toml(doc).unwrap().is_empty());
        assert_eq!(c.root, Path::new("/var/lib/containerd"));
        assert_eq!(c.address, Path::new("/run/containerd/containerd.sock"));
        assert_eq!(c.default_runtime, "io.containerd.runc.v2");
        assert_eq!(c.log_level, "info");
    }
}
