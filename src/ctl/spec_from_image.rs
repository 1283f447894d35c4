//! The OCI spec `ctr run` and `ctr container create` give a new container, built as ctr 1.6
//! builds it (`cmd/ctr/commands/run/run_unix.go` with containerd's `oci` spec options):
//!
//! 1. `oci.WithDefaultSpec` + `WithDefaultUnixDevices`: containerd's default Linux spec
//!    (14 capabilities, RLIMIT_NOFILE 1024, the seven default mounts, masked and read-only
//!    paths, the five namespaces, `cgroupsPath` `/<namespace>/<id>`, devices deny-all then
//!    the default allow list);
//! 2. `--env-file`, then `--env` (containerd's replace-or-append: `K=V` sets, a bare `K`
//!    removes), `--mount`;
//! 3. `WithImageConfig`: the image's Env (or the default PATH) under the flags' overrides,
//!    Entrypoint + Cmd, WorkingDir (or `/`), the image's User resolved against the rootfs's
//!    /etc/passwd and /etc/group, and the primary gid always first in `additionalGids`
//!    (containerd ≥ 1.6.18);
//! 4. the flags in ctr's order: `--read-only`, args, `--cwd`, `-t` (terminal +
//!    `TERM=xterm`), `--privileged` (all current capabilities, no masked/read-only paths,
//!    rw sysfs, every host device), `--net-host` (host network namespace, /etc/hosts and
//!    /etc/resolv.conf bound, `HOSTNAME=`), `--cpus`, `--with-ns`, `--memory-limit`,
//!    annotations from `--label`.
//!
//! The result serialises with the field names and order of the runtime-spec's Go structs,
//! so `ctr container info` of a container made by either ctl prints the same JSON.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use crate::ctl::spec_opts::userns::IdMapping;
use crate::ctl::spec_opts::{apparmor, capabilities, devices, seccomp};

/// The Env an image without one gets (containerd's `defaultUnixEnv`).
pub const DEFAULT_UNIX_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The container label ctr records the image's stop signal under.
pub const STOP_SIGNAL_LABEL: &str = "io.containerd.image.config.stop-signal";

/// The type URL containerd stores a container's spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// containerd's `defaultUnixCaps`, in its order.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Capability names by number, as containerd's `pkg/cap` knows them (for `--privileged`,
/// which takes every capability the ctl itself holds).
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The runtime-spec's Go `Spec`, the parts ctr fills, in Go's field order.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Spec {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub process: Process,
    pub root: Root,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub linux: Linux,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Process {
    #[serde(skip_serializing_if = "is_false")]
    pub terminal: bool,
    pub user: User,
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    pub cwd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(rename = "noNewPrivileges", skip_serializing_if = "is_false")]
    pub no_new_privileges: bool,
    #[serde(rename = "apparmorProfile", skip_serializing_if = "String::is_empty")]
    pub apparmor_profile: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(rename = "additionalGids", skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Root {
    pub path: String,
    #[serde(skip_serializing_if = "is_false")]
    pub readonly: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Linux {
    #[serde(rename = "uidMappings", skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(rename = "gidMappings", skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    pub resources: Resources,
    #[serde(rename = "cgroupsPath", skip_serializing_if = "String::is_empty")]
    pub cgroups_path: String,
    pub namespaces: Vec<Namespace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// A generated default profile or one read from `--seccomp-profile` (kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<serde_json::Value>,
    #[serde(rename = "rootfsPropagation", skip_serializing_if = "String::is_empty")]
    pub rootfs_propagation: String,
    #[serde(rename = "maskedPaths", skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    #[serde(rename = "readonlyPaths", skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    #[serde(rename = "intelRdt", skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<IntelRdt>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IntelRdt {
    #[serde(rename = "closID", skip_serializing_if = "String::is_empty")]
    pub clos_id: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Resources {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Memory {
    pub limit: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct Cpu {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    pub access: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Device {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    #[serde(rename = "fileMode")]
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mount(dst: &str, kind: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dst.into(),
        kind: kind.into(),
        source: src.into(),
        options: strings(opts),
    }
}

fn char_rule(major: i64, minor: Option<i64>) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind: "c".into(),
        major: Some(major),
        minor,
        access: "rwm".into(),
    }
}

/// containerd's default Linux spec for container `id` in namespace `ns`, with the default
/// devices allowed (`WithDefaultSpec` + `WithDefaultUnixDevices`).
pub fn default_spec(ns: &str, id: &str) -> Spec {
    let caps = strings(&DEFAULT_CAPS);
    Spec {
        oci_version: crate::OCI_VERSION.into(),
        process: Process {
            terminal: false,
            user: User {
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
            },
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                permitted: caps,
            }),
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            apparmor_profile: String::new(),
        },
        root: Root {
            path: "rootfs".into(),
            readonly: false,
        },
        mounts: vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/run",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
        ],
        annotations: BTreeMap::new(),
        linux: Linux {
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            resources: Resources {
                devices: vec![
                    DeviceRule {
                        allow: false,
                        kind: String::new(),
                        major: None,
                        minor: None,
                        access: "rwm".into(),
                    },
                    // WithDefaultUnixDevices: null, random, full, tty, zero, urandom,
                    // console, /dev/pts/*, ptmx — in containerd's order.
                    char_rule(1, Some(3)),
                    char_rule(1, Some(8)),
                    char_rule(1, Some(7)),
                    char_rule(5, Some(0)),
                    char_rule(1, Some(5)),
                    char_rule(1, Some(9)),
                    char_rule(5, Some(1)),
                    char_rule(136, None),
                    char_rule(5, Some(2)),
                ],
                memory: None,
                cpu: None,
            },
            cgroups_path: format!("/{ns}/{id}"),
            namespaces: ["pid", "ipc", "uts", "mount", "network"]
                .iter()
                .map(|k| Namespace {
                    kind: k.to_string(),
                    path: String::new(),
                })
                .collect(),
            devices: Vec::new(),
            seccomp: None,
            rootfs_propagation: String::new(),
            masked_paths: strings(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ]),
            readonly_paths: strings(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
            intel_rdt: None,
        },
    }
}

/// containerd's `replaceOrAppendEnvValues`: `overrides` replace same-named entries of
/// `defaults` or are appended; an override without `=` removes the variable.
pub fn replace_or_append_env(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<Option<String>> = defaults.iter().cloned().map(Some).collect();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in defaults.iter().enumerate() {
        index.insert(key(e), i);
    }
    for v in overrides {
        let k = key(v);
        if !v.contains('=') {
            if let Some(&i) = index.get(&k) {
                out[i] = None;
            }
            continue;
        }
        match index.get(&k) {
            Some(&i) => out[i] = Some(v.clone()),
            None => {
                index.insert(k, out.len());
                out.push(Some(v.clone()));
            }
        }
    }
    out.into_iter().flatten().collect()
}

/// The part of an image's config the spec takes (`config` of the OCI image config).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: String,
}

impl ImageConfig {
    /// Read from the image config blob (the JSON document the manifest's config names).
    pub fn from_json(data: &[u8]) -> Result<ImageConfig> {
        let v: serde_json::Value =
            serde_json::from_slice(data).context("failed to unmarshal image config")?;
        let c = v.get("config").cloned().unwrap_or(serde_json::Value::Null);
        let list = |k: &str| -> Vec<String> {
            c.get(k)
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let string =
            |k: &str| -> String { c.get(k).and_then(|s| s.as_str()).unwrap_or("").to_string() };
        Ok(ImageConfig {
            env: list("Env"),
            entrypoint: list("Entrypoint"),
            cmd: list("Cmd"),
            working_dir: string("WorkingDir"),
            user: string("User"),
            stop_signal: string("StopSignal"),
        })
    }

    /// ctr's stop-signal label value (`WithImageStopSignal(image, "SIGTERM")`).
    pub fn stop_signal_label(&self) -> String {
        if self.stop_signal.is_empty() {
            "SIGTERM".to_string()
        } else {
            self.stop_signal.clone()
        }
    }
}

/// The rootfs's user databases: the bytes of /etc/passwd and /etc/group (None when absent).
#[derive(Clone, Debug, Default)]
pub struct UserDb {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

impl UserDb {
    /// Read both files under `root` (a mounted rootfs); missing files are `None`. The paths
    /// are resolved inside `root` only as far as a plain join goes: the caller mounts the
    /// snapshot read-only in a private directory, as containerd's `WithTempMount` does.
    pub fn read(root: &Path) -> Result<UserDb> {
        let read = |rel: &str| -> Result<Option<String>> {
            let p = root.join(rel);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() && m.len() <= 16 << 20 => {
                    let b = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
                    Ok(Some(String::from_utf8_lossy(&b).into_owned()))
                }
                _ => Ok(None),
            }
        };
        Ok(UserDb {
            passwd: read("etc/passwd")?,
            group: read("etc/group")?,
        })
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn passwd_entries(db: &UserDb) -> Vec<PasswdEntry> {
    db.passwd
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

fn group_entries(db: &UserDb) -> Vec<GroupEntry> {
    db.group
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// containerd's `WithUser`: `uid`, `name`, `uid:gid`, `name:group`, … resolved against the
/// rootfs. A numeric user without a passwd entry gets gid 0; a name must exist.
fn resolve_user(spec: &mut Spec, user: &str, db: &UserDb) -> Result<()> {
    let passwd = passwd_entries(db);
    let groups = group_entries(db);
    let parts: Vec<&str> = user.split(':').collect();
    let lookup_group = |g: &str| -> Result<u32> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        groups
            .iter()
            .find(|e| e.name == g)
            .map(|e| e.gid)
            .ok_or_else(|| anyhow::anyhow!("no groups found"))
    };
    let lookup_name = |u: &str| -> Result<(u32, u32)> {
        passwd
            .iter()
            .find(|e| e.name == u)
            .map(|e| (e.uid, e.gid))
            .ok_or_else(|| anyhow::anyhow!("no users found"))
    };
    let (uid, gid) = match parts.as_slice() {
        [u] => match u.parse::<u32>() {
            Ok(uid) => (
                uid,
                passwd.iter().find(|e| e.uid == uid).map_or(0, |e| e.gid),
            ),
            Err(_) => lookup_name(u)?,
        },
        [u, g] => {
            let uid = match u.parse::<u32>() {
                Ok(uid) => uid,
                Err(_) => lookup_name(u)?.0,
            };
            (uid, lookup_group(g)?)
        }
        _ => bail!("invalid USER value {user}"),
    };
    spec.process.user.uid = uid;
    spec.process.user.gid = gid;
    Ok(())
}

/// containerd's `WithAdditionalGIDs(userstr)`: the groups that list the user as a member
/// (not its own-named group), the primary gid always first.
fn additional_gids(spec: &mut Spec, userstr: &str, db: &UserDb) {
    let passwd = passwd_entries(db);
    let username = match userstr.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid).map(|e| e.name.clone()),
        Err(_) => Some(userstr.to_string()),
    };
    let mut gids = Vec::new();
    if let Some(name) = username {
        for g in group_entries(db) {
            if g.name != name && g.members.contains(&name) {
                gids.push(g.gid);
            }
        }
    }
    let primary = spec.process.user.gid;
    if !gids.contains(&primary) {
        gids.insert(0, primary);
    }
    spec.process.user.additional_gids = gids;
}

/// `ctr task exec --user`: containerd's `WithUser` on the container's process — uid and
/// gid resolved against the rootfs, the additional gids reset to just the primary one
/// (`ensureAdditionalGids`). Lookup failures read as ctr's, which come from a temporary
/// mount of the rootfs.
pub fn exec_user(user: &str, db: &UserDb) -> Result<(u32, u32, Vec<u32>)> {
    let mut s = default_spec("", "");
    resolve_user(&mut s, user, db).map_err(|e| {
        anyhow::anyhow!(
            "mount callback failed on /tmp/containerd-mount{}: {e}",
            std::process::id()
        )
    })?;
    Ok((
        s.process.user.uid,
        s.process.user.gid,
        vec![s.process.user.gid],
    ))
}

/// `WithImageConfig`.
pub fn apply_image_config(spec: &mut Spec, img: &ImageConfig, db: &UserDb) -> Result<()> {
    let defaults = if img.env.is_empty() {
        vec![DEFAULT_UNIX_ENV.to_string()]
    } else {
        img.env.clone()
    };
    spec.process.env = replace_or_append_env(&defaults, &spec.process.env);
    let mut args = img.entrypoint.clone();
    args.extend(img.cmd.iter().cloned());
    spec.process.args = args;
    spec.process.cwd = if img.working_dir.is_empty() {
        "/".into()
    } else {
        img.working_dir.clone()
    };
    if img.user.is_empty() {
        additional_gids(spec, "root", db);
    } else {
        resolve_user(spec, &img.user, db)?;
        let uid = spec.process.user.uid.to_string();
        additional_gids(spec, &uid, db);
    }
    Ok(())
}

/// The flags of `ctr run` / `ctr container create` that shape the spec.
#[derive(Clone, Debug, Default)]
pub struct SpecFlags {
    pub env: Vec<String>,
    /// The lines of `--env-file` (already read).
    pub env_file: Vec<String>,
    pub mounts: Vec<String>,
    pub read_only: bool,
    pub args: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    pub privileged: bool,
    pub net_host: bool,
    pub cpus: f64,
    pub with_ns: Vec<String>,
    pub memory_limit: u64,
    /// `--label` as `k=v` (they become annotations as well as container labels).
    pub labels: Vec<String>,
    /// `--user` (ctr 1.7's `WithUser` + `WithAdditionalGIDs`; ctr 1.6 has no such flag).
    pub user: String,
    /// `--rootfs`: the image argument is a host directory (absolute) used as the rootfs.
    pub rootfs_path: String,
    /// `--uidmap` and `--gidmap`, both given (`WithUserNamespace`).
    pub id_maps: Option<(IdMapping, IdMapping)>,
    /// `--annotation` as `k=v`.
    pub annotations: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: bool,
    pub seccomp_profile: String,
    pub apparmor_default_profile: String,
    pub apparmor_profile: String,
    /// `--cpu-shares` (run only; ctr's default 1024, 0 leaves it out).
    pub cpu_shares: u64,
    /// `--cpu-quota` and `--cpu-period`, when either differs from ctr's defaults (-1, 0).
    pub cpu_cfs: Option<(i64, u64)>,
    /// `--gpus` given.
    pub gpus: bool,
    pub allow_new_privs: bool,
    /// `--cgroup` given (an empty value clears cgroupsPath).
    pub cgroup: Option<String>,
    pub devices: Vec<String>,
    pub rootfs_propagation: String,
    pub rdt_class: String,
}

/// ctr's `--mount` value: `type=bind,src=/a,dst=/b,options=rbind:ro` (`source`/`destination`
/// long forms accepted).
pub fn parse_mount(s: &str) -> Result<Mount> {
    let mut m = Mount {
        destination: String::new(),
        kind: String::new(),
        source: String::new(),
        options: Vec::new(),
    };
    for field in s.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            bail!("invalid mount specification: expected key=val");
        };
        match k {
            "type" => m.kind = v.into(),
            "source" | "src" => m.source = v.into(),
            "destination" | "dst" => m.destination = v.into(),
            "options" => m.options = v.split(':').map(str::to_string).collect(),
            _ => bail!("mount option {k:?} not supported"),
        }
    }
    Ok(m)
}

/// ctr's `LabelArgs`: the `--label` list as a map (`k=v`; a bare `k` maps to "true").
pub fn label_args(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), "true".to_string()),
        })
        .collect()
}

/// ctr's `AnnotationArgs`: every `--annotation` must be `k=v`.
pub fn annotation_args(annotations: &[String]) -> Result<BTreeMap<String, String>> {
    annotations
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("invalid key=value format annotation: {a}"),
        })
        .collect()
}

/// The lines of an `--env-file`, as containerd's `WithEnvFile` takes them.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

fn current_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| eff & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn valid_namespace(ns: &str) -> bool {
    matches!(
        ns,
        "pid" | "network" | "uts" | "mount" | "user" | "ipc" | "cgroup"
    )
}

fn set_namespace(spec: &mut Spec, kind: &str, path: &str) {
    let ns = Namespace {
        kind: kind.into(),
        path: path.into(),
    };
    match spec.linux.namespaces.iter_mut().find(|n| n.kind == kind) {
        Some(n) => *n = ns,
        None => spec.linux.namespaces.push(ns),
    }
}

/// The hostname `--net-host` puts into `HOSTNAME=`.
fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The union of the spec's capability sets (what containerd's default seccomp profile
/// looks at).
fn all_capabilities(s: &Spec) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(c) = &s.process.capabilities {
        for cap in c.bounding.iter().chain(&c.effective).chain(&c.permitted) {
            if !out.contains(cap) {
                out.push(cap.clone());
            }
        }
    }
    out
}

fn cpu(s: &mut Spec) -> &mut Cpu {
    s.linux.resources.cpu.get_or_insert_with(Cpu::default)
}

/// The flag errors ctr reports while reading its flags, before it prepares a snapshot or
/// applies any spec option (`build` makes the same checks in place).
pub fn check_flags(flags: &SpecFlags) -> Result<()> {
    annotation_args(&flags.annotations)?;
    capabilities::check_names(&flags.cap_add)?;
    capabilities::check_names(&flags.cap_drop)?;
    if !flags.seccomp && !flags.seccomp_profile.is_empty() {
        bail!("seccomp must be set to true, if using a custom seccomp-profile");
    }
    if !flags.apparmor_profile.is_empty() && !flags.apparmor_default_profile.is_empty() {
        bail!("apparmor-profile conflicts with apparmor-default-profile");
    }
    if flags.cpu_cfs.is_some() && flags.cpus > 0.0 {
        bail!("cpus and quota/period should be used separately");
    }
    for ns in &flags.with_ns {
        let parts: Vec<&str> = ns.split(':').collect();
        if parts.len() != 2 {
            bail!("joining a Linux namespace using --with-ns requires the format 'nstype:path'");
        }
        if !valid_namespace(parts[0]) {
            bail!(
                "the Linux namespace type specified in --with-ns is not valid: {}",
                parts[0]
            );
        }
    }
    Ok(())
}

/// Build the spec of container `id` in namespace `ns` from the image's config (or, with
/// `--rootfs`, none), its rootfs's user databases and ctr's flags, in ctr 1.6's order.
pub fn build(
    ns: &str,
    id: &str,
    img: Option<&ImageConfig>,
    db: &UserDb,
    flags: &SpecFlags,
) -> Result<Spec> {
    let mut s = default_spec(ns, id);
    if !flags.env_file.is_empty() {
        s.process.env = replace_or_append_env(&s.process.env, &flags.env_file);
    }
    if !flags.env.is_empty() {
        s.process.env = replace_or_append_env(&s.process.env, &flags.env);
    }
    for m in &flags.mounts {
        s.mounts.push(parse_mount(m)?);
    }
    match img {
        Some(img) => {
            apply_image_config(&mut s, img, db)?;
            if let Some((uid, gid)) = flags.id_maps {
                if !s.linux.namespaces.iter().any(|n| n.kind == "user") {
                    set_namespace(&mut s, "user", "");
                }
                s.linux.uid_mappings.push(uid);
                s.linux.gid_mappings.push(gid);
            }
        }
        None => s.root.path = flags.rootfs_path.clone(),
    }
    if flags.read_only {
        s.root.readonly = true;
    }
    if !flags.args.is_empty() {
        s.process.args = flags.args.clone();
    }
    if !flags.cwd.is_empty() {
        s.process.cwd = flags.cwd.clone();
    }
    if flags.tty {
        s.process.terminal = true;
        s.process.env.push("TERM=xterm".into());
    }
    if flags.privileged {
        let caps = current_capabilities();
        s.process.capabilities = Some(Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            permitted: caps,
        });
        s.linux.masked_paths.clear();
        s.linux.readonly_paths.clear();
        for m in s.mounts.iter_mut().filter(|m| m.kind == "sysfs") {
            for o in m.options.iter_mut().filter(|o| *o == "ro") {
                *o = "rw".into();
            }
        }
        s.process.apparmor_profile.clear();
        s.linux.seccomp = None;
        s.linux.resources.devices = vec![DeviceRule {
            allow: true,
            kind: String::new(),
            major: None,
            minor: None,
            access: "rwm".into(),
        }];
        s.linux.devices.extend(devices::host_devices()?);
    }
    if flags.net_host {
        s.linux.namespaces.retain(|n| n.kind != "network");
        for f in ["/etc/hosts", "/etc/resolv.conf"] {
            s.mounts.push(mount(f, "bind", f, &["rbind", "ro"]));
        }
        s.process.env =
            replace_or_append_env(&s.process.env, &[format!("HOSTNAME={}", hostname())]);
    }
    if !flags.annotations.is_empty() {
        s.annotations.extend(annotation_args(&flags.annotations)?);
    }
    if !flags.cap_add.is_empty() {
        capabilities::check_names(&flags.cap_add)?;
        if let Some(c) = s.process.capabilities.as_mut() {
            capabilities::add(c, &flags.cap_add);
        }
    }
    if !flags.cap_drop.is_empty() {
        capabilities::check_names(&flags.cap_drop)?;
        if let Some(c) = s.process.capabilities.as_mut() {
            capabilities::drop(c, &flags.cap_drop);
        }
    }
    if !flags.seccomp && !flags.seccomp_profile.is_empty() {
        bail!("seccomp must be set to true, if using a custom seccomp-profile");
    }
    if flags.seccomp {
        s.linux.seccomp = Some(if flags.seccomp_profile.is_empty() {
            serde_json::to_value(seccomp::default_profile(&all_capabilities(&s)))?
        } else {
            seccomp::profile_from_file(Path::new(&flags.seccomp_profile))?
        });
    }
    // ctr refuses the pair while reading its flags, before it checks the kernel.
    if !flags.apparmor_profile.is_empty() && !flags.apparmor_default_profile.is_empty() {
        bail!("apparmor-profile conflicts with apparmor-default-profile");
    }
    if !flags.apparmor_default_profile.is_empty() {
        s.process.apparmor_profile = apparmor::default_profile(&flags.apparmor_default_profile)?;
    }
    if !flags.apparmor_profile.is_empty() {
        s.process.apparmor_profile = flags.apparmor_profile.clone();
    }
    if flags.cpus > 0.0 {
        let c = cpu(&mut s);
        c.quota = Some((flags.cpus * 100000.0) as i64);
        c.period = Some(100000);
    }
    if flags.cpu_shares > 0 {
        cpu(&mut s).shares = Some(flags.cpu_shares);
    }
    if let Some((q, p)) = flags.cpu_cfs {
        if flags.cpus > 0.0 {
            bail!("cpus and quota/period should be used separately");
        }
        let c = cpu(&mut s);
        c.quota = Some(q);
        c.period = Some(p);
    }
    for ns in &flags.with_ns {
        let parts: Vec<&str> = ns.split(':').collect();
        if parts.len() != 2 {
            bail!("joining a Linux namespace using --with-ns requires the format 'nstype:path'");
        }
        if !valid_namespace(parts[0]) {
            bail!(
                "the Linux namespace type specified in --with-ns is not valid: {}",
                parts[0]
            );
        }
        set_namespace(&mut s, parts[0], parts[1]);
    }
    if flags.gpus {
        // contrib/nvidia's WithGPUs looks up the hook (containerd itself) and the
        // nvidia CLI before it changes the spec.
        if !on_path("containerd") {
            bail!("exec: \"containerd\": executable file not found in $PATH");
        }
        if !on_path("nvidia-container-cli") {
            bail!("exec: \"nvidia-container-cli\": executable file not found in $PATH");
        }
        bail!("--gpus: the nvidia hook is not supported by ocibox's ctr");
    }
    if flags.allow_new_privs {
        s.process.no_new_privileges = false;
    }
    if let Some(path) = &flags.cgroup {
        s.linux.cgroups_path = path.clone();
    }
    if flags.memory_limit != 0 {
        s.linux.resources.memory = Some(Memory {
            limit: flags.memory_limit as i64,
        });
    }
    for dev in &flags.devices {
        for d in devices::devices_at(Path::new(dev))? {
            s.linux
                .resources
                .devices
                .push(devices::allow_rule(&d, "rwm"));
            s.linux.devices.push(d);
        }
    }
    if !flags.rootfs_propagation.is_empty() {
        s.linux.rootfs_propagation = flags.rootfs_propagation.clone();
    }
    if !flags.rdt_class.is_empty() {
        s.linux.intel_rdt = Some(IntelRdt {
            clos_id: flags.rdt_class.clone(),
        });
    }
    if !flags.user.is_empty() {
        resolve_user(&mut s, &flags.user, db)?;
        let uid = s.process.user.uid.to_string();
        additional_gids(&mut s, &uid, db);
    }
    s.annotations.extend(label_args(&flags.labels));
    Ok(s)
}

/// Whether `name` is an executable on $PATH (Go's `exec.LookPath`).
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| {
                std::fs::metadata(d.join(name))
                    .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// The spec as the JSON bytes a container record carries.
pub fn to_json(spec: &Spec) -> Result<Vec<u8>> {
    serde_json::to_vec(spec).context("marshal spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busybox() -> (ImageConfig, UserDb) {
        (
            ImageConfig {
                env: vec![DEFAULT_UNIX_ENV.into()],
                cmd: vec!["sh".into()],
                ..ImageConfig::default()
            },
            UserDb {
                passwd: Some("root:x:0:0:root:/root:/bin/sh\n".into()),
                group: Some("root:x:0:\n".into()),
            },
        )
    }

    #[test]
    fn busybox_default_matches_ctr() {
        let (img, db) = busybox();
        let s = build("ref", "ref1", Some(&img), &db, &SpecFlags::default()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["process"]["args"], serde_json::json!(["sh"]));
        assert_eq!(
            v["process"]["user"]["additionalGids"],
            serde_json::json!([0])
        );
        assert_eq!(v["linux"]["cgroupsPath"], "/ref/ref1");
        assert_eq!(
            v["linux"]["resources"]["devices"].as_array().unwrap().len(),
            10
        );
        assert_eq!(
            v["linux"]["resources"]["devices"][8],
            serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})
        );
        assert!(v["annotations"].is_null());
        assert!(v["process"].get("terminal").is_none());
    }

    #[test]
    fn flags_in_ctr_order() {
        let (img, db) = busybox();
        let flags = SpecFlags {
            env: vec!["FOO=bar".into(), "PATH=/x".into()],
            env_file: vec!["A=1".into(), "B".into()],
            tty: true,
            cwd: "/tmp".into(),
            args: vec!["echo".into(), "hi".into()],
            memory_limit: 1 << 20,
            with_ns: vec!["pid:/proc/1/ns/pid".into()],
            mounts: vec!["type=bind,src=/tmp,dst=/host,options=rbind:ro".into()],
            labels: vec!["a=b".into()],
            read_only: true,
            ..SpecFlags::default()
        };
        let s = build("ref", "ref2", Some(&img), &db, &flags).unwrap();
        assert_eq!(s.process.env, ["PATH=/x", "A=1", "FOO=bar", "TERM=xterm"]);
        assert_eq!(s.process.cwd, "/tmp");
        assert!(s.root.readonly);
        assert_eq!(s.linux.namespaces[0].path, "/proc/1/ns/pid");
        assert_eq!(s.mounts[7].options, ["rbind", "ro"]);
        assert_eq!(s.annotations["a"], "b");
        assert_eq!(s.linux.resources.memory.as_ref().unwrap().limit, 1 << 20);
    }

    #[test]
    fn image_user_and_groups() {
        let img = ImageConfig {
            user: "app".into(),
            ..ImageConfig::default()
        };
        let db = UserDb {
            passwd: Some("root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n".into()),
            group: Some("app:x:1000:app\nwheel:x:10:root,app\naudio:x:29:app\n".into()),
        };
        let s = build("n", "c", Some(&img), &db, &SpecFlags::default()).unwrap();
        assert_eq!((s.process.user.uid, s.process.user.gid), (1000, 1000));
        assert_eq!(s.process.user.additional_gids, [1000, 10, 29]);
        assert_eq!(s.process.env, [DEFAULT_UNIX_ENV]);
        let missing = ImageConfig {
            user: "nobody".into(),
            ..ImageConfig::default()
        };
        assert!(build("n", "c", Some(&missing), &db, &SpecFlags::default()).is_err());
        let numeric = ImageConfig {
            user: "4242".into(),
            ..ImageConfig::default()
        };
        let s = build("n", "c", Some(&numeric), &db, &SpecFlags::default()).unwrap();
        assert_eq!((s.process.user.uid, s.process.user.gid), (4242, 0));
        assert_eq!(s.process.user.additional_gids, [0]);
    }

    #[test]
    fn bad_with_ns_is_ctrs_error() {
        let (img, db) = busybox();
        let flags = SpecFlags {
            with_ns: vec!["bogus:/x".into()],
            ..SpecFlags::default()
        };
        let e = build("n", "c", Some(&img), &db, &flags).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the Linux namespace type specified in --with-ns is not valid: bogus"
        );
    }
}
