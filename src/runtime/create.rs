//! `create`: make the state directory, start the init, leave it blocked on exec.fifo.
//! Any failure undoes everything: no state dir, cgroup, mount or process is left behind.

use super::state::{self, State, EXEC_FIFO};
use super::status::{process_start_time, Status};
use crate::init::message::{Bootstrap, Mode};
use crate::init::parent::{self, Callbacks, IdMaps};
use crate::linux::cgroups::Manager;
use crate::linux::namespaces::{self, Kind};
use crate::oci::hooks::{self, Point};
use crate::oci::spec;
use crate::oci::state::OciState;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    /// A console socket already connected (for `run -t` in the foreground).
    pub console_fd: Option<OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// Undo list for a create that fails half-way.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Manager>,
    pid: Option<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            super::kill::wait_gone(pid, std::time::Duration::from_secs(5));
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The bundle directory, resolved, and its validated config.json.
pub fn load_bundle(bundle: &Path) -> Result<(PathBuf, spec::Config)> {
    let bundle =
        std::fs::canonicalize(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    let cfg = spec::load(&bundle)?;
    Ok((bundle, cfg))
}

pub fn create(opts: CreateOptions) -> Result<State> {
    super::validate_id(&opts.id)?;
    let loaded = load_bundle(&opts.bundle)?;
    create_loaded(opts, loaded)
}

/// `create` with the bundle already loaded by [`load_bundle`] (`run` reads it first).
pub fn create_loaded(opts: CreateOptions, (bundle, cfg): (PathBuf, spec::Config)) -> Result<State> {
    super::validate_id(&opts.id)?;
    for w in &cfg.warnings {
        crate::runtime_log::warn(w);
    }
    let rootfs = spec::rootfs_path(&cfg.spec, &bundle)?;
    let spec = cfg.spec;
    let ns_requests = namespaces::requests_from_spec(&spec);
    for r in &ns_requests {
        if let Some(p) = &r.path {
            namespaces::check_path(r.kind, p)?;
        }
    }
    if let Some(p) = spec.process() {
        crate::linux::lsm::check_labels(
            p.apparmor_profile().as_deref(),
            p.selinux_label().as_deref(),
        )?;
    }
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = match (terminal, opts.console_fd, &opts.console_socket) {
        (true, Some(fd), _) => Some(fd),
        (true, None, Some(path)) => Some(crate::linux::console::connect_console_socket(path)?),
        (true, None, None) => {
            anyhow::bail!("cannot allocate tty if runc will detach without setting console socket")
        }
        (false, _, Some(_)) => {
            anyhow::bail!("cannot use console socket if runc will not detach or allocate tty")
        }
        (false, _, None) => None,
    };

    let dir = state::make_container_dir(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: None,
    };
    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_context(|| format!("create exec fifo {}", fifo_path.display()))?;
    // The container's user (any uid, maybe in a user namespace) must be able to open it
    // for writing: 0622 regardless of our umask, owned by the container's root.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .with_context(|| format!("chmod exec fifo {}", fifo_path.display()))?;
    let (root_uid, root_gid) = container_root_ids(&spec);
    nix::unistd::chown(&fifo_path, Some(root_uid.into()), Some(root_gid.into()))
        .with_context(|| format!("chown exec fifo {}", fifo_path.display()))?;
    let fifo = open_path(&fifo_path)?;

    let linux = spec.linux().clone().unwrap_or_default();
    let cgroup = Manager::new(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        &opts.id,
        opts.systemd_cgroup,
        opts.rootless,
    )?;
    // Before the cgroup is ours to remove on failure: a refused one stays as it was.
    for w in cgroup.check_preexisting()? {
        crate::runtime_log::warn(&w);
    }
    cleanup.cgroup = Some(cgroup.clone());

    let mut preserve_fds = opts.preserve_fds;
    let mut extra_env = Vec::new();
    if let Some(n) = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        // systemd socket activation: the fds follow 0-2 and the container's pid 1 gets them.
        extra_env.push(format!("LISTEN_FDS={n}"));
        extra_env.push("LISTEN_PID=1".to_string());
        preserve_fds += n;
    }

    let created = crate::runtime_log::rfc3339_with_nanos(std::time::SystemTime::now(), true);
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let owner = String::new();
    let oci_state = |pid: i32, status: Status| OciState {
        oci_version: spec.version().clone(),
        id: opts.id.clone(),
        pid,
        status,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: created.clone(),
        annotations: annotations.clone(),
        owner: owner.clone(),
    };

    let b = Bootstrap {
        mode: Mode::Create,
        id: opts.id.clone(),
        spec: spec.clone(),
        time_offsets: cfg.time_offsets,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        namespaces: ns_requests.clone(),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds,
        extra_env,
        console_fd: console.as_ref().map(|f| f.as_raw_fd()),
        fifo_fd: Some(fifo.as_raw_fd()),
    };
    let new_userns = ns_requests
        .iter()
        .any(|r| r.kind == Kind::User && r.path.is_none());
    let uids = linux.uid_mappings().clone().unwrap_or_default();
    let gids = linux.gid_mappings().clone().unwrap_or_default();
    let id_maps = new_userns.then(|| IdMaps {
        uids: &uids,
        gids: &gids,
        // Without privilege, setgroups must be denied before a gid map may be written.
        // SAFETY: geteuid cannot fail.
        deny_setgroups: unsafe { libc::geteuid() } != 0,
    });
    let hooks = spec.hooks().clone();
    let resources = container_resources(&linux, opts.rootless)?;
    let mut pid_seen = None;
    let pid = parent::run_init(
        b,
        Some(&cgroup),
        id_maps,
        Callbacks {
            on_pid: &mut |p| {
                pid_seen = Some(p);
                Ok(())
            },
            run_hooks: &mut |p| {
                let s = serde_json::to_vec(&oci_state(p, Status::Creating))?;
                hooks::run(hooks.as_ref(), Point::Prestart, &s)?;
                hooks::run(hooks.as_ref(), Point::CreateRuntime, &s)?;
                Ok(
                    String::from_utf8_lossy(&serde_json::to_vec(&oci_state(p, Status::Created))?)
                        .into_owned(),
                )
            },
            on_ready: &mut |_| {
                if let Some(r) = &resources {
                    cgroup.set(r).context("apply cgroup resources")?;
                }
                Ok(())
            },
            on_seccomp_fd: &mut |p, fd| {
                super::seccomp_agent::hand_over(&spec, fd, &oci_state(p, Status::Creating))
            },
        },
    );
    cleanup.pid = pid_seen;
    let pid = pid.context("unable to start container process")?;
    let pid_start_time =
        process_start_time(pid).context("the container process died during create")?;
    let st = State {
        id: opts.id.clone(),
        pid,
        pid_start_time,
        bundle,
        rootfs,
        created,
        owner,
        annotations,
        config: spec,
        cgroup: Some(cgroup),
        rootless: opts.rootless,
        systemd_cgroup: opts.systemd_cgroup,
    };
    st.save(&opts.root)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    // Created: nothing to undo any more.
    cleanup.pid = None;
    cleanup.cgroup = None;
    cleanup.dir = None;
    Ok(st)
}

/// The host ids that container uid/gid 0 map to (ours when there is no user namespace).
fn container_root_ids(spec: &oci_spec::runtime::Spec) -> (u32, u32) {
    let linux = spec.linux().clone().unwrap_or_default();
    let map = |m: Option<Vec<oci_spec::runtime::LinuxIdMapping>>, own: u32| {
        m.unwrap_or_default()
            .iter()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(own)
    };
    (
        map(
            linux.uid_mappings().clone(),
            nix::unistd::geteuid().as_raw(),
        ),
        map(
            linux.gid_mappings().clone(),
            nix::unistd::getegid().as_raw(),
        ),
    )
}

/// The spec's resources with runc's default device rules added (a rootless container
/// cannot use the devices cgroup, so it keeps the spec's as they are). The device rules are
/// checked here, before any process exists, as runc checks them when it reads the config.
fn container_resources(
    linux: &oci_spec::runtime::Linux,
    rootless: bool,
) -> Result<Option<oci_spec::runtime::LinuxResources>> {
    use crate::linux::cgroups::device_rules::{parse_rules, runc_device_rules};
    let mut r = linux.resources().clone().unwrap_or_default();
    parse_rules(r.devices().as_deref().unwrap_or_default())?;
    if rootless {
        return Ok(linux.resources().clone());
    }
    r.set_devices(Some(runc_device_rules(
        r.devices().as_deref().unwrap_or_default(),
        linux.devices().as_deref().unwrap_or_default(),
    )));
    Ok(Some(r))
}

fn open_path(p: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open {}", p.display()))?;
    // SAFETY: open returned a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Write the pid file atomically, as runc does (temp file, then rename).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write pid file {}", path.display()))
}
