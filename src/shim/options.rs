//! The runtime options a task is created with: containerd's `containerd.runc.v1.Options`
//! (what `ctr run --runc-binary` and CRI's `[…runtimes.X.options]` send), the older
//! `containerd.linux.runc.CreateOptions` (what ctr 1.6 sends to a runtime not named
//! `io.containerd.runc.*`, e.g. for `--uidmap`, `--no-pivot`), or a
//! `runtimeoptions.v1.Options` naming a TOML config file (`ctr run --runtime-config-path`)
//! with the same keys (`BinaryName`, `Root`, `SystemdCgroup`, `NoPivotRoot`,
//! `NoNewKeyring`). The options in force are saved in the bundle as `options.json`, so the
//! `delete` subcommand drives the same runtime.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use serde::{Deserialize, Serialize};

/// Saved options, in the bundle.
pub const OPTIONS_FILE: &str = "options.json";
/// The raw options containerd passed on `start`'s stdin, in the bundle.
pub const START_OPTIONS_FILE: &str = "start-options.pb";

const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
const RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";
const CREATE_OPTIONS: &str = "containerd.linux.runc.CreateOptions";
const MAX_CONFIG: u64 = 1 << 20;

/// What the shim needs to know about the runtime it drives.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    pub binary_name: Option<String>,
    pub root: Option<String>,
    pub systemd_cgroup: bool,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
    /// Owner of the stdio pipes (`IoUid`/`IoGid`), so a process running as a remapped uid
    /// can reopen its /dev/stdout; None leaves them root's.
    #[serde(default)]
    pub io_uid: Option<u32>,
    #[serde(default)]
    pub io_gid: Option<u32>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl RuntimeOptions {
    /// Decodes an options Any; an empty Any is the defaults.
    pub fn from_any(any: &Any) -> Result<RuntimeOptions> {
        let ty = any.type_url.rsplit('/').next().unwrap_or("");
        match ty {
            "" => Ok(RuntimeOptions::default()),
            RUNC_OPTIONS => {
                let o = RuncOptions::parse_from_bytes(&any.value)
                    .context("decode containerd.runc.v1.Options")?;
                Ok(RuntimeOptions {
                    binary_name: non_empty(&o.binary_name),
                    root: non_empty(&o.root),
                    systemd_cgroup: o.systemd_cgroup,
                    no_pivot_root: o.no_pivot_root,
                    no_new_keyring: o.no_new_keyring,
                    io_uid: (o.io_uid != 0).then_some(o.io_uid),
                    io_gid: (o.io_gid != 0).then_some(o.io_gid),
                })
            }
            CREATE_OPTIONS => create_options(&any.value),
            RUNTIME_OPTIONS => {
                let path = config_path_field(&any.value)?;
                if path.is_empty() {
                    return Ok(RuntimeOptions::default());
                }
                RuntimeOptions::from_config_file(Path::new(&path))
            }
            other => bail!("unsupported runtime options type {other:?}"),
        }
    }

    /// Reads a runtime options TOML file (flat `Key = value` lines).
    pub fn from_config_file(path: &Path) -> Result<RuntimeOptions> {
        let mut text = String::new();
        std::fs::File::open(path)
            .with_context(|| format!("open runtime options config {}", path.display()))?
            .take(MAX_CONFIG)
            .read_to_string(&mut text)
            .with_context(|| format!("read runtime options config {}", path.display()))?;
        RuntimeOptions::from_toml(&text)
            .with_context(|| format!("parse runtime options config {}", path.display()))
    }

    /// Parses the flat TOML subset the options use.
    pub fn from_toml(text: &str) -> Result<RuntimeOptions> {
        let mut o = RuntimeOptions::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                bail!("line {}: expected key = value", n + 1);
            };
            let key: String = k
                .trim()
                .trim_matches('"')
                .chars()
                .filter(|c| *c != '_')
                .collect::<String>()
                .to_ascii_lowercase();
            let v = v.trim();
            let string = || -> Result<String> {
                let s = v.trim_matches(|c| c == '"' || c == '\'');
                if s.len() + 2 != v.len() {
                    bail!("line {}: {key} needs a quoted string", n + 1);
                }
                Ok(s.to_string())
            };
            let boolean = || -> Result<bool> {
                match v {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => bail!("line {}: {key} needs true or false", n + 1),
                }
            };
            match key.as_str() {
                "binaryname" => o.binary_name = non_empty(&string()?),
                "root" => o.root = non_empty(&string()?),
                "systemdcgroup" => o.systemd_cgroup = boolean()?,
                "nopivotroot" => o.no_pivot_root = boolean()?,
                "nonewkeyring" => o.no_new_keyring = boolean()?,
                _ => {}
            }
        }
        Ok(o)
    }

    /// Saves the options into the bundle (atomically).
    pub fn save(&self, bundle: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).context("encode runtime options")?;
        let tmp = bundle.join(".options.json.tmp");
        std::fs::write(&tmp, data)
            .with_context(|| format!("write runtime options {}", tmp.display()))?;
        std::fs::rename(&tmp, bundle.join(OPTIONS_FILE))
            .with_context(|| format!("save runtime options in bundle {}", bundle.display()))
    }

    /// Loads the saved options, or the defaults when none were saved.
    pub fn load(bundle: &Path) -> Result<RuntimeOptions> {
        let p = bundle.join(OPTIONS_FILE);
        match std::fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d)
                .with_context(|| format!("decode runtime options {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuntimeOptions::default()),
            Err(e) => Err(e).with_context(|| format!("read runtime options {}", p.display())),
        }
    }

    /// The options containerd gave `start` on stdin, if it gave any.
    pub fn load_start_options(bundle: &Path) -> Result<RuntimeOptions> {
        match std::fs::read(bundle.join(START_OPTIONS_FILE)) {
            Ok(d) if !d.is_empty() => {
                let any = Any::parse_from_bytes(&d).context("decode start options Any")?;
                RuntimeOptions::from_any(&any)
            }
            _ => Ok(RuntimeOptions::default()),
        }
    }
}

/// One field of a protobuf message read by hand (for messages not in the generated protos).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Calls `f` with each field number and value of the encoded message `buf`.
fn walk_fields<'a>(
    mut buf: &'a [u8],
    mut f: impl FnMut(u64, Field<'a>) -> Result<()>,
) -> Result<()> {
    while !buf.is_empty() {
        let (key, rest) = varint(buf)?;
        buf = rest;
        let field = match key & 7 {
            0 => {
                let (v, rest) = varint(buf)?;
                buf = rest;
                Field::Varint(v)
            }
            1 => {
                buf = buf.get(8..).context("truncated fixed64")?;
                Field::Fixed
            }
            5 => {
                buf = buf.get(4..).context("truncated fixed32")?;
                Field::Fixed
            }
            2 => {
                let (len, rest) = varint(buf)?;
                let len = usize::try_from(len).context("length too large")?;
                let data = rest.get(..len).context("truncated field")?;
                buf = &rest[len..];
                Field::Bytes(data)
            }
            w => bail!("unsupported wire type {w}"),
        };
        f(key >> 3, field)?;
    }
    Ok(())
}

/// Field 2 (`config_path`, a string) of a `runtimeoptions.v1.Options` message.
fn config_path_field(buf: &[u8]) -> Result<String> {
    let mut path = String::new();
    walk_fields(buf, |n, f| {
        if let (2, Field::Bytes(d)) = (n, f) {
            path = String::from_utf8(d.to_vec()).context("config_path is not UTF-8")?;
        }
        Ok(())
    })
    .context("decode runtimeoptions.v1.Options")?;
    Ok(path)
}

/// The fields of `containerd.linux.runc.CreateOptions` a shim acts on: no_pivot_root (1),
/// no_new_keyring (8), io_uid (10), io_gid (11). The checkpoint and criu fields have no
/// use without CRIU.
fn create_options(buf: &[u8]) -> Result<RuntimeOptions> {
    let mut o = RuntimeOptions::default();
    walk_fields(buf, |n, f| {
        match (n, f) {
            (1, Field::Varint(v)) => o.no_pivot_root = v != 0,
            (8, Field::Varint(v)) => o.no_new_keyring = v != 0,
            (10, Field::Varint(v)) => o.io_uid = Some(u32::try_from(v).context("io_uid")?),
            (11, Field::Varint(v)) => o.io_gid = Some(u32::try_from(v).context("io_gid")?),
            _ => {}
        }
        Ok(())
    })
    .context("decode containerd.linux.runc.CreateOptions")?;
    Ok(o)
}

fn varint(buf: &[u8]) -> Result<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, &buf[i + 1..]));
        }
    }
    bail!("malformed varint in runtime options")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_in_both_spellings() {
        let o = RuntimeOptions::from_toml(
            "# x\n[options]\nBinaryName = \"/usr/sbin/runc\"\nsystemd_cgroup = true\nRoot='/r'\n",
        )
        .unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("/usr/sbin/runc"));
        assert!(o.systemd_cgroup);
        assert_eq!(o.root.as_deref(), Some("/r"));
        assert!(RuntimeOptions::from_toml("BinaryName = 3").is_err());
    }

    #[test]
    fn runtimeoptions_config_path_decodes() {
        // field 1 "t", field 2 "/p"
        let bytes = [0x0a, 1, b't', 0x12, 2, b'/', b'p'];
        assert_eq!(config_path_field(&bytes).unwrap(), "/p");
        assert!(config_path_field(&[0x12, 5, b'/']).is_err());
    }

    #[test]
    fn runc_options_any_decodes() {
        let mut o = RuncOptions::new();
        o.binary_name = "/usr/sbin/runc".into();
        let any = Any {
            type_url: RUNC_OPTIONS.into(),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let r = RuntimeOptions::from_any(&any).unwrap();
        assert_eq!(r.binary_name.as_deref(), Some("/usr/sbin/runc"));
    }

    #[test]
    fn linux_runc_create_options_decode() {
        // no_pivot_root=true (1), terminal=true (4, ignored), empty_namespaces "x" (6,
        // ignored), no_new_keyring=true (8), io_uid=100000 (10), io_gid=100000 (11)
        let bytes = [
            0x08, 1, 0x20, 1, 0x32, 1, b'x', 0x40, 1, 0x50, 0xa0, 0x8d, 0x06, 0x58, 0xa0, 0x8d,
            0x06,
        ];
        let any = Any {
            type_url: CREATE_OPTIONS.into(),
            value: bytes.to_vec(),
            ..Default::default()
        };
        let o = RuntimeOptions::from_any(&any).unwrap();
        assert!(o.no_pivot_root && o.no_new_keyring);
        assert_eq!((o.io_uid, o.io_gid), (Some(100000), Some(100000)));
        assert!(create_options(&[0x50, 0x80]).is_err());
    }
}
