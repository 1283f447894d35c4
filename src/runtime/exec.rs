//! `exec`: a new process in a running container. It joins every namespace and the cgroup
//! of the container's init and gets the container's process settings unless overridden.

use super::foreground::Foreground;
use super::id::ContainerId;
use super::state::State;
use super::status::Status;
use super::stdio::{RelayEnd, Stdio};
use crate::init::message::{Bootstrap, Mode};
use crate::init::parent::{self, Callbacks};
use crate::linux::cgroups::Manager;
use crate::linux::namespaces;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, Process, Spec};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What `runc exec` flags change in the container's process spec.
#[derive(Default)]
pub struct Overrides {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// uid[:gid]
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

pub struct ExecOptions {
    pub root: PathBuf,
    pub id: ContainerId,
    /// `--process FILE` (`-` for stdin) instead of building from the container's process.
    pub process_file: Option<PathBuf>,
    pub overrides: Overrides,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup [<controller>:]<path>`: join these sub-cgroups of the container's cgroup.
    pub sub_cgroups: Vec<String>,
}

/// runc's order: the container must be running (or created), the process is built and
/// checked, the console decided, then an init joins the container and execs the process;
/// without `--detach` we stay with it until it exits.
pub fn exec(opts: ExecOptions) -> Result<i32> {
    let st = State::load(&opts.root, &opts.id)?;
    check_status(&st, &opts)?;
    let subs = crate::linux::cgroups::sub_cgroup::parse_sub_cgroup_args(&opts.sub_cgroups)?;
    let process = exec_process(&st, &opts)?;
    let terminal = process.terminal() == Some(true);
    let mut spec: Spec = st.config.clone();
    spec.set_process(Some(process));

    let fg = if opts.detach {
        None
    } else {
        Some(Foreground::prepare()?)
    };
    let console = Stdio::decide(terminal, opts.console_socket.as_deref(), opts.detach)?.open()?;
    let spec_ns = namespaces::requests_from_spec(&spec);
    let b = Bootstrap {
        mode: Mode::Exec,
        session_keyring: None,
        namespaces: namespaces::requests_to_join(st.pid, &spec_ns),
        spec,
        time_offsets: Vec::new(),
        rootfs: st.rootfs.clone(),
        no_pivot: false,
        preserve_fds: opts.preserve_fds,
        extra_env: Vec::new(),
        console_fd: console.init_fd(),
        fifo_fd: None,
    };
    if !st.is_alive() {
        bail!("cannot exec in a stopped container");
    }
    let cgroup = match &st.cgroup {
        Some(cg) if !subs.is_empty() => Some(
            cg.sub_cgroup(&subs)
                .context("unable to create new parent process")?,
        ),
        cg => cg.clone(),
    };
    let pid = start_init(&st, cgroup.as_ref(), b)?;
    let relay_end = console.into_relay_end();
    if let Some(pf) = &opts.pid_file {
        super::create::write_pid_file(pf, pid)?;
    }
    let Some(fg) = fg else { return Ok(0) };
    let relay = relay_end.map(RelayEnd::start_relay).transpose()?;
    fg.wait(pid, relay)
}

fn check_status(st: &State, opts: &ExecOptions) -> Result<()> {
    match st.status(&opts.root) {
        Status::Running | Status::Created => Ok(()),
        Status::Paused if opts.ignore_paused => Ok(()),
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        s => bail!("cannot exec in a {s} container"),
    }
}

/// `--process FILE`, or the container's process with the flags' overrides; it must have
/// args and labels this host can apply.
fn exec_process(st: &State, opts: &ExecOptions) -> Result<Process> {
    let process = match &opts.process_file {
        Some(p) => load_process(p)?,
        None => build_process(&st.config, &opts.overrides)?,
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    crate::linux::lsm::check_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;
    Ok(process)
}

/// Spawn an init that joins the container's namespaces and cgroup (or the `--cgroup`
/// sub-cgroups); it runs no hooks and applies no resources, and hands a seccomp listener
/// to the agent.
fn start_init(st: &State, cgroup: Option<&Manager>, b: Bootstrap) -> Result<i32> {
    parent::run_init(
        b,
        cgroup,
        None,
        Callbacks {
            on_pid: &mut |_| Ok(()),
            run_hooks: &mut |_| bail!("exec runs no hooks"),
            on_ready: &mut |_| Ok(()),
            on_seccomp_fd: &mut |_, fd| {
                super::seccomp_agent::hand_over(&st.config, fd, &st.oci_state(Status::Running))
            },
        },
    )
    .context("unable to start container process")
}

fn load_process(path: &Path) -> Result<Process> {
    let text = if path == Path::new("-") {
        let mut s = Vec::new();
        std::io::stdin()
            .take(crate::oci::spec::MAX_CONFIG_BYTES)
            .read_to_end(&mut s)
            .context("read process from stdin")?;
        s
    } else {
        crate::oci::spec::read_regular_file(path, crate::oci::spec::MAX_CONFIG_BYTES)?
    };
    let process =
        parse_process(&text).with_context(|| format!("parse process {}", path.display()))?;
    if process.cwd().as_os_str().is_empty() {
        bail!("Cwd property must not be empty");
    }
    Ok(process)
}

/// A process.json as runc reads it into Go's zero values: no `user` is uid 0 / gid 0,
/// no `cwd` is "" (which the caller refuses with runc's words).
pub fn parse_process(text: &[u8]) -> Result<Process> {
    let mut v: serde_json::Value = serde_json::from_slice(text)?;
    let Some(obj) = v.as_object_mut() else {
        bail!("the process is not a JSON object");
    };
    if obj.get("user").is_none_or(serde_json::Value::is_null) {
        obj.insert("user".into(), serde_json::json!({ "uid": 0, "gid": 0 }));
    }
    if obj.get("cwd").is_none_or(serde_json::Value::is_null) {
        obj.insert("cwd".into(), serde_json::json!(""));
    }
    Ok(serde_json::from_value(v)?)
}

/// The container's process with runc exec's overrides applied.
pub fn build_process(spec: &Spec, o: &Overrides) -> Result<Process> {
    let mut p = spec.process().clone().context("container has no process")?;
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .with_context(|| format!("invalid --user uid {uid:?}"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("invalid --user gid {g:?}"))?,
            );
        }
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let c: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .with_context(|| format!("unknown capability {name:?}"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.ambient().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(c);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    _ => caps.set_ambient(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::parse_process;

    #[test]
    fn process_json_without_user_is_root() {
        let p = parse_process(br#"{"args":["id"],"cwd":"/"}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        let p = parse_process(br#"{"args":["id"]}"#).unwrap();
        assert!(p.cwd().as_os_str().is_empty());
        let p = parse_process(br#"{"args":["id"],"cwd":"/","user":{"uid":7,"gid":8}}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
    }
}
