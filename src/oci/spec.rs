//! The OCI runtime configuration: load and validate a bundle's config.json, and the
//! default spec `runc spec` writes.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Spec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Bigger config.json (and exec process.json) files are refused: the biggest real configs
/// (many mounts, long seccomp profiles) are a few hundred KiB, so 32 MiB leaves room for
/// anything honest and still stops a file with no end (/dev/zero, a growing file) long before
/// memory runs out. runc reads without a limit.
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;

/// A time namespace offset (`linux.timeOffsets`), read by ocibox itself because oci-spec
/// 0.7 models that field wrongly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimeOffset {
    pub clock: String,
    pub secs: i64,
    pub nanosecs: u32,
}

/// A validated bundle configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub spec: Spec,
    pub time_offsets: Vec<TimeOffset>,
    /// Things runc warns about and ignores (unknown capability names).
    pub warnings: Vec<String>,
}

/// Read `<bundle>/config.json`, sanitize what runc tolerates, and validate.
pub fn load(bundle: &Path) -> Result<Config> {
    let path = bundle.join("config.json");
    let text = read_regular_file(&path, MAX_CONFIG_BYTES).map_err(|e| {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            anyhow::anyhow!("JSON specification file {} not found", path.display())
        } else {
            e
        }
    })?;
    parse(&text).with_context(|| format!("load {}", path.display()))
}

/// Read a small configuration file (config.json, exec's process.json) that a user may have
/// pointed anywhere. A symlink is followed, as runc follows it (a bundle's config.json may be
/// a link to a file next to it), but what it names must be a regular file: /dev/zero, a fifo,
/// a socket or a directory is refused before anything is read, and a fifo is opened with
/// O_NONBLOCK so that even a race with the check cannot block us. The read stops at `limit`
/// bytes (runc has no limit; a config.json with no end must not reach the OOM killer), and a
/// bigger file is refused rather than parsed in part.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let kind = |ft: std::fs::FileType| {
        if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a fifo"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        }
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::Error::new(e).context(format!("stat {}", path.display())))?;
    if !meta.is_file() {
        bail!(
            "{}: is {}, not a regular file",
            path.display(),
            kind(meta.file_type())
        );
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| anyhow::Error::new(e).context(format!("open {}", path.display())))?;
    // Again on what was opened: the path may have been swapped since the stat.
    let meta = f
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: is {}, not a regular file",
            path.display(),
            kind(meta.file_type())
        );
    }
    if meta.len() > limit {
        bail!(
            "{}: {} bytes is larger than the {} byte limit",
            path.display(),
            meta.len(),
            limit
        );
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    // A file that grew while being read.
    if text.len() as u64 > limit {
        bail!("{}: larger than the {} byte limit", path.display(), limit);
    }
    Ok(text)
}

/// Parse and validate config.json text.
pub fn parse(text: &[u8]) -> Result<Config> {
    let mut v: Value = serde_json::from_slice(text).context("parse JSON")?;
    if !v.is_object() {
        bail!("the configuration is not a JSON object");
    }
    let mut warnings = Vec::new();
    check_version(&mut v)?;
    drop_unknown_capabilities(&mut v, &mut warnings);
    let time_offsets = take_time_offsets(&mut v)?;
    let spec: Spec = serde_json::from_value(v).context("invalid configuration")?;
    let cfg = Config {
        spec,
        time_offsets,
        warnings,
    };
    validate(&cfg)?;
    Ok(cfg)
}

/// `ociVersion` as runc reads it: any string is accepted, also "", "garbage", "0.5.0" or
/// "2.0.0" (runc 1.1.5 never compares it with the versions it implements, and runtime-spec
/// generators write newer versions than a runtime knows, e.g. "1.3.0"); a missing or null
/// field is the empty string. Only a value that is not a string is refused, with the JSON
/// decoder's message runc prints. Fields of newer spec versions that ocibox does not know are
/// ignored, as runc's decoder ignores them.
fn check_version(v: &mut Value) -> Result<()> {
    let kind = match v.get("ociVersion") {
        None | Some(Value::Null) => {
            v["ociVersion"] = Value::String(String::new());
            return Ok(());
        }
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(_)) => "number",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    };
    bail!("json: cannot unmarshal {kind} into Go struct field Spec.ociVersion of type string")
}

/// runc warns about capability names it does not know and goes on; do the same.
fn drop_unknown_capabilities(v: &mut Value, warnings: &mut Vec<String>) {
    let Some(caps) = v
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        if let Some(arr) = list.as_array_mut() {
            arr.retain(|c| {
                let name = c.as_str().unwrap_or("");
                let known = serde_json::from_value::<Capability>(c.clone()).is_ok();
                if !known {
                    warnings.push(format!(
                        "ignoring unknown or unavailable capabilities: [{name}] in {set}"
                    ));
                }
                known
            });
        }
    }
}

fn take_time_offsets(v: &mut Value) -> Result<Vec<TimeOffset>> {
    let Some(raw) = v
        .get_mut("linux")
        .and_then(Value::as_object_mut)
        .and_then(|l| l.remove("timeOffsets"))
    else {
        return Ok(Vec::new());
    };
    let map = raw
        .as_object()
        .context("linux.timeOffsets must be an object")?;
    let mut out = Vec::new();
    for (clock, off) in map {
        if clock != "monotonic" && clock != "boottime" {
            bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
        }
        let secs = off.get("secs").and_then(Value::as_i64).unwrap_or(0);
        let nanosecs = off.get("nanosecs").and_then(Value::as_u64).unwrap_or(0);
        let nanosecs = u32::try_from(nanosecs)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .with_context(|| format!("linux.timeOffsets.{clock}.nanosecs out of range"))?;
        out.push(TimeOffset {
            clock: clock.clone(),
            secs,
            nanosecs,
        });
    }
    Ok(out)
}

fn validate(cfg: &Config) -> Result<()> {
    let spec = &cfg.spec;
    let root = spec.root().as_ref().context("root must be specified")?;
    if root.path().as_os_str().is_empty() {
        bail!("root.path is empty");
    }
    let process = spec
        .process()
        .as_ref()
        .context("process must be specified")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    if !process.cwd().is_absolute() {
        bail!("cwd {:?} is not an absolute path", process.cwd());
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            if seen.contains(&ns.typ()) {
                bail!("duplicate namespace {}", ns.typ());
            }
            seen.push(ns.typ());
        }
        let has = |t| seen.contains(&t);
        use oci_spec::runtime::LinuxNamespaceType as T;
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(T::Uts) {
            bail!("unable to set hostname without a private UTS namespace");
        }
        if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(T::Uts) {
            bail!("unable to set domainname without a private UTS namespace");
        }
        let restricts = linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
            || linux
                .readonly_paths()
                .as_ref()
                .is_some_and(|p| !p.is_empty());
        if restricts && !has(T::Mount) {
            bail!("unable to restrict sys entries without a private MNT namespace");
        }
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if maps && !has(T::User) {
            bail!("user namespaces aren't enabled in the config, but uid/gid mappings are set");
        }
        if !cfg.time_offsets.is_empty() && !has(T::Time) {
            bail!("time offsets are set but no time namespace is requested");
        }
    }
    Ok(())
}

/// Resolve `root.path` against the bundle directory.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().context("root must be specified")?;
    let p = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let p = std::fs::canonicalize(&p)
        .with_context(|| format!("rootfs ({}) does not exist", p.display()))?;
    if !p.is_dir() {
        bail!("rootfs ({}) is not a directory", p.display());
    }
    Ok(p)
}

/// The default config.json `runc spec` writes; `rootless` adapts it as `runc spec --rootless`.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// What `runc spec --rootless` changes: a user namespace mapping the caller, no network
/// namespace, /sys bind-mounted, no cgroup mount, no device rules.
fn make_rootless(spec: &mut Value) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("resources");
        linux.insert(
            "uidMappings".into(),
            json!([{ "containerID": 0, "hostID": uid, "size": 1 }]),
        );
        linux.insert(
            "gidMappings".into(),
            json!([{ "containerID": 0, "hostID": gid, "size": 1 }]),
        );
        linux.insert(
            "namespaces".into(),
            json!([{ "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "user" }]),
        );
    }
    if let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) {
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({ "destination": "/sys", "type": "none", "source": "/sys",
                             "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
            }
            if m["destination"] == "/dev/pts" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "gid=5");
                }
            }
        }
    }
}

/// Serialize like runc: tab-indented JSON.
pub fn to_pretty_tabs(v: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).context("serialize spec")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mutate: impl FnOnce(&mut Value)) -> Result<Config> {
        let mut v = default_spec(false);
        mutate(&mut v);
        parse(&serde_json::to_vec(&v).unwrap())
    }

    fn bundle_with(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocibox-spec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        make(&d.join("config.json"));
        d
    }

    fn load_err(d: &Path) -> String {
        let e = format!("{:#}", load(d).unwrap_err());
        let _ = std::fs::remove_dir_all(d);
        e
    }

    #[test]
    fn config_json_that_is_not_a_regular_file_is_refused_without_reading() {
        let d = bundle_with("zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        });
        assert!(load_err(&d).contains("is a character device, not a regular file"));
        let d = bundle_with("dir", |p| std::fs::create_dir(p).unwrap());
        assert!(load_err(&d).contains("is a directory"));
        // A fifo with no writer: open(2) without O_NONBLOCK would wait for ever.
        let d = bundle_with("fifo", |p| {
            nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
        });
        assert!(load_err(&d).contains("is a fifo"));
    }

    #[test]
    fn config_json_bigger_than_the_limit_is_refused() {
        let d = bundle_with("huge", |p| {
            let f = std::fs::File::create(p).unwrap();
            f.set_len(MAX_CONFIG_BYTES + 1).unwrap(); // sparse: no disk used
        });
        assert!(load_err(&d).contains("byte limit"));
    }

    #[test]
    fn config_json_symlink_to_a_regular_file_still_loads() {
        let d = bundle_with("link", |p| {
            let real = p.with_file_name("real.json");
            std::fs::write(&real, serde_json::to_vec(&default_spec(false)).unwrap()).unwrap();
            std::os::unix::fs::symlink("real.json", p).unwrap();
        });
        let r = load(&d);
        let _ = std::fs::remove_dir_all(&d);
        r.unwrap();
        let d = bundle_with("missing", |_| {});
        assert!(load_err(&d).contains("JSON specification file"));
    }

    #[test]
    fn default_spec_loads() {
        let c = cfg(|_| {}).unwrap();
        assert_eq!(c.spec.hostname().as_deref(), Some("runc"));
        assert!(cfg(|_| {}).unwrap().warnings.is_empty());
        let r = default_spec(true);
        assert!(parse(&serde_json::to_vec(&r).unwrap()).is_ok());
    }

    #[test]
    fn versions_as_runc_reads_them() {
        // runc 1.1.5 runs every one of these (tests/runtime_config.rs checks it against runc).
        for ok in [
            "1.0.0",
            "1.0.2-dev",
            "1.2.0",
            "1.3.0",
            "1.0.0-rc5",
            "0.5.0",
            "2.0.0",
            "",
            "garbage",
        ] {
            let c = cfg(|v| v["ociVersion"] = json!(ok)).unwrap();
            assert_eq!(c.spec.version(), ok);
        }
        for absent in [None, Some(Value::Null)] {
            let c = cfg(|v| match &absent {
                None => {
                    v.as_object_mut().unwrap().remove("ociVersion");
                }
                Some(n) => v["ociVersion"] = n.clone(),
            })
            .unwrap();
            assert_eq!(c.spec.version(), "");
        }
        for (bad, kind) in [(json!(5), "number"), (json!(["1.0.0"]), "array")] {
            let e = cfg(|v| v["ociVersion"] = bad).unwrap_err();
            assert_eq!(
                format!("{e:#}"),
                format!("json: cannot unmarshal {kind} into Go struct field Spec.ociVersion of type string")
            );
        }
    }

    #[test]
    fn bad_input_is_named() {
        let e = cfg(|v| v["linux"]["namespaces"] = json!([{"type": "bogus"}])).unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        let e = cfg(|v| v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid"}]))
            .unwrap_err();
        assert!(format!("{e:#}").contains("duplicate namespace"));
        let e = cfg(|v| v["linux"]["namespaces"] = json!([{"type": "mount"}])).unwrap_err();
        assert!(format!("{e:#}").contains("UTS namespace"));
        assert!(parse(b"{not json").is_err());
        assert!(parse(b"[]").is_err());
    }

    #[test]
    fn unknown_capabilities_are_dropped_with_a_warning() {
        let c = cfg(|v| v["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_NOPE"]))
            .unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("CAP_NOPE"));
    }

    #[test]
    fn time_offsets_are_read() {
        let c = cfg(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 5, "nanosecs": 7}});
        })
        .unwrap();
        assert_eq!(
            c.time_offsets,
            vec![TimeOffset {
                clock: "monotonic".into(),
                secs: 5,
                nanosecs: 7
            }]
        );
    }
}
