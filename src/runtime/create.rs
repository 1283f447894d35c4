//! `create`: make the state directory, start the init, leave it blocked on exec.fifo.
//! Any failure undoes everything: no state dir, cgroup, mount or process is left behind.
//! A create killed with -9 cannot undo anything; it leaves `intent.json` (written before the
//! cgroup and the init exist) from which `delete -f` removes what it made.

use super::id::ContainerId;
use super::intent::{Intent, Proc};
use super::state::{self, State, EXEC_FIFO};
use super::status::{process_start_time, Status};
use super::stdio::{RelayEnd, Stdio};
use crate::init::message::{Bootstrap, Mode};
use crate::init::parent::{self, Callbacks, IdMaps};
use crate::linux::cgroups::Manager;
use crate::linux::namespaces::{self, Kind};
use crate::oci::hooks::{self, Point};
use crate::oci::spec;
use crate::oci::state::OciState;
use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct CreateOptions {
    pub root: PathBuf,
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    /// `run` without `--detach`: this runtime stays with the container and relays its
    /// terminal, so `process.terminal` needs no console socket.
    pub foreground: bool,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// A created container, and (for a foreground `run` with a terminal) the end of the
/// console socketpair the pty master waits in.
pub struct Created {
    pub state: State,
    pub relay_end: Option<RelayEnd>,
}

/// Undo list for a create that fails half-way.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Manager>,
    pid: Option<i32>,
}

impl Cleanup {
    fn new(dir: PathBuf) -> Cleanup {
        Cleanup {
            dir: Some(dir),
            cgroup: None,
            pid: None,
        }
    }

    /// Created: nothing to undo any more.
    fn disarm(&mut self) {
        self.pid = None;
        self.cgroup = None;
        self.dir = None;
    }
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

/// runc's order: read and check the bundle, decide the console, make the state directory
/// with its exec fifo and the cgroup, start the init (which runs the runtime's hooks and
/// stops at exec.fifo), then record the state and the pid file.
pub fn create(opts: CreateOptions) -> Result<Created> {
    let (bundle, cfg) = load_bundle(&opts.bundle)?;
    for w in &cfg.warnings {
        crate::runtime_log::warn(w);
    }
    let rootfs = spec::rootfs_path(&cfg.spec, &bundle)?;
    let ns_requests = namespace_requests(&cfg.spec)?;
    check_process_labels(&cfg.spec)?;
    let console = Stdio::decide(
        process_has_terminal(&cfg.spec),
        opts.console_socket.as_deref(),
        !opts.foreground,
    )?
    .open()?;

    let dir = state::make_container_dir(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup::new(dir.clone());
    let cgroup = cgroup_manager(&cfg.spec, &opts)?;
    // Before anything else is made: what `delete -f` needs if this create is killed.
    let mut intent = Intent {
        creator: Proc::of(std::process::id() as i32).unwrap_or_default(),
        bundle: bundle.clone(),
        cgroup: Some(cgroup.clone()),
        cgroup_ours: !cgroup.exists(),
        init: None,
    };
    intent.save(&dir)?;
    let fifo = make_exec_fifo(&dir, &cfg.spec)?;
    // Before the cgroup is ours to remove on failure: a refused one stays as it was.
    for w in cgroup.check_preexisting()? {
        crate::runtime_log::warn(&w);
    }
    cleanup.cgroup = Some(cgroup.clone());

    let (preserve_fds, extra_env) = socket_activation(opts.preserve_fds);
    let mut st = new_state(&opts, bundle, rootfs, cfg.spec, cgroup.clone());
    let bootstrap = Bootstrap {
        mode: Mode::Create,
        session_keyring: (!opts.no_new_keyring).then(|| format!("_ses.{}", opts.id)),
        spec: st.config.clone(),
        time_offsets: cfg.time_offsets,
        rootfs: st.rootfs.clone(),
        namespaces: ns_requests,
        no_pivot: opts.no_pivot,
        preserve_fds,
        extra_env,
        console_fd: console.init_fd(),
        fifo_fd: Some(fifo.as_raw_fd()),
    };
    let pid = start_init(
        &st,
        &cgroup,
        bootstrap,
        opts.rootless,
        &mut cleanup,
        &mut |p| {
            intent.init = Proc::of(p);
            intent.save(&dir)
        },
    )?;

    st.pid = pid;
    st.pid_start_time =
        process_start_time(pid).context("the container process died during create")?;
    st.save(&opts.root)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    cleanup.disarm();
    Ok(Created {
        state: st,
        relay_end: console.into_relay_end(),
    })
}

fn process_has_terminal(spec: &Spec) -> bool {
    spec.process().as_ref().and_then(|p| p.terminal()) == Some(true)
}

/// The namespaces to create or join; a path to join must name a namespace of its kind.
fn namespace_requests(spec: &Spec) -> Result<Vec<namespaces::Request>> {
    let requests = namespaces::requests_from_spec(spec);
    for r in &requests {
        if let Some(p) = &r.path {
            namespaces::check_path(r.kind, p)?;
        }
    }
    Ok(requests)
}

/// AppArmor / SELinux labels must be usable on this host before anything is made.
fn check_process_labels(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        crate::linux::lsm::check_labels(
            p.apparmor_profile().as_deref(),
            p.selinux_label().as_deref(),
        )?;
    }
    Ok(())
}

/// `<state>/exec.fifo`, which the init blocks on until `start`; returned as an O_PATH
/// descriptor for the init.
fn make_exec_fifo(dir: &Path, spec: &Spec) -> Result<OwnedFd> {
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
    let (root_uid, root_gid) = container_root_ids(spec);
    nix::unistd::chown(&fifo_path, Some(root_uid.into()), Some(root_gid.into()))
        .with_context(|| format!("chown exec fifo {}", fifo_path.display()))?;
    open_path(&fifo_path)
}

fn cgroup_manager(spec: &Spec, opts: &CreateOptions) -> Result<Manager> {
    let linux = spec.linux().clone().unwrap_or_default();
    Manager::new(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        opts.id.as_str(),
        opts.systemd_cgroup,
        opts.rootless,
    )
}

/// systemd socket activation: the `LISTEN_FDS` fds follow 0-2 and the container's pid 1
/// gets them. Returns the fds to preserve in all and the environment to add.
fn socket_activation(preserve_fds: u32) -> (u32, Vec<String>) {
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(n) => (
            preserve_fds + n,
            vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".to_string()],
        ),
        None => (preserve_fds, Vec::new()),
    }
}

/// The state to record, before the container process exists (pid 0 until it does).
fn new_state(
    opts: &CreateOptions,
    bundle: PathBuf,
    rootfs: PathBuf,
    spec: Spec,
    cgroup: Manager,
) -> State {
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    State {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle,
        rootfs,
        created: crate::timefmt::format(std::time::SystemTime::now()),
        owner: String::new(),
        annotations,
        config: spec,
        cgroup: Some(cgroup),
        rootless: opts.rootless,
        systemd_cgroup: opts.systemd_cgroup,
    }
}

/// Spawn the init and answer it until it waits on exec.fifo: id maps for a new user
/// namespace, the pid (remembered for cleanup), the prestart and createRuntime hooks,
/// cgroup resources before it drops privileges, the seccomp listener for the agent.
fn start_init(
    st: &State,
    cgroup: &Manager,
    b: Bootstrap,
    rootless: bool,
    cleanup: &mut Cleanup,
    record_pid: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<i32> {
    let linux = st.config.linux().clone().unwrap_or_default();
    let new_userns = b
        .namespaces
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
    let resources = container_resources(&linux, rootless)?;
    let state_of = |pid: i32, status: Status| OciState {
        pid,
        ..st.oci_state(status)
    };
    let mut pid_seen = None;
    let pid = parent::run_init(
        b,
        Some(cgroup),
        id_maps,
        Callbacks {
            on_pid: &mut |p| {
                pid_seen = Some(p);
                record_pid(p)
            },
            run_hooks: &mut |p| {
                let creating = serde_json::to_vec(&state_of(p, Status::Creating))?;
                hooks::run(st.config.hooks().as_ref(), Point::Prestart, &creating)?;
                hooks::run(st.config.hooks().as_ref(), Point::CreateRuntime, &creating)?;
                Ok(state_of(p, Status::Created))
            },
            on_ready: &mut |_| {
                if let Some(r) = &resources {
                    cgroup.set(r).context("apply cgroup resources")?;
                }
                Ok(())
            },
            on_seccomp_fd: &mut |p, fd| {
                super::seccomp_agent::hand_over(&st.config, fd, &state_of(p, Status::Creating))
            },
        },
    );
    cleanup.pid = pid_seen;
    pid.context("unable to start container process")
}

/// The host ids that container uid/gid 0 map to (ours when there is no user namespace).
fn container_root_ids(spec: &Spec) -> (u32, u32) {
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
