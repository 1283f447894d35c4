//! Init stage 2: the container process sets itself up and execs the user's program.
//!
//! The order follows runc's standard init: rootfs (with the prestart/createRuntime hooks
//! run by the runtime and createContainer hooks run here before pivot_root), console,
//! hostname, sysctl, read-only and masked paths, rlimits and scheduling, no_new_privs,
//! Ready/Continue with the runtime, seccomp (when no_new_privs is off it needs
//! CAP_SYS_ADMIN, so before the user switch), user and capabilities, cwd, fds, then
//! exec.fifo, seccomp (with no_new_privs: as late as possible), startContainer hooks,
//! AppArmor/SELinux exec labels, execve.

use super::channel::Channel;
use super::message::{Bootstrap, Message, Mode};
use super::mount_sources::SourceFds;
use crate::linux::namespaces::Kind;
use crate::linux::{capabilities, console, fds, lsm, rlimits, rootfs, sched, seccomp, user};
use crate::oci::hooks::{self, Point};
use crate::oci::state::{OciState, Status};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Stage 2 from the bootstrap to execve, in the order of the module comment. Returns only
/// on failure.
pub fn run(chan: &mut Channel, b: Bootstrap, source_fds: SourceFds) -> Result<u8> {
    let spec = &b.spec;
    let process = spec
        .process()
        .as_ref()
        .context("process must be specified")?;
    nix::unistd::setsid().context("setsid")?;
    let passed = PassedFds::take(&b);
    if let Some(adj) = process.oom_score_adj() {
        sched::set_oom_score_adj(adj)?;
    }
    let seccomp_program = compile_seccomp(spec)?;
    // The init's own environment is the process's from here on, as runc's is: the
    // container's hooks without an `env` of their own inherit it.
    adopt_env(&process_env(process, &b.extra_env, false));

    let (hook_state, prepared) = setup_mounts(chan, &b, &source_fds)?;
    drop(source_fds);
    setup_console(process, b.mode, passed.console_sock)?;
    if let Some(prepared) = prepared {
        set_names_and_sysctls(spec)?;
        rootfs::finalize_rootfs(spec, prepared)?;
    }
    apply_process_limits(process, spec)?;
    let nnp = process.no_new_privileges() == Some(true);
    if nnp {
        sched::set_no_new_privileges()?;
    }

    sync_ready(chan)?;
    // Before seccomp: a profile may deny close_range, fcntl or the /proc walk's syscalls
    // (or rt_sigaction).
    fds::close_fds_above(2 + b.preserve_fds as RawFd)?;
    reset_signal_dispositions();
    let seccomp_late = install_seccomp_early(chan, seccomp_program, nnp)?;
    become_container_user(chan, &b, process)?;
    let (program, args, env) = resolve_command(process, &b.extra_env)?;
    adopt_env(&env);

    // Closing the channel tells `create` that the container is created.
    chan.close();
    // Held (close-on-exec) until execve: `start` reads until end-of-file, so its poststart
    // hooks run only once the user's process is executing, as the runtime-spec orders.
    let _started = match passed.fifo {
        Some(fifo) => Some(wait_for_start(fifo.as_fd())?),
        None => None,
    };
    last_steps_before_exec(spec, process, seccomp_late, hook_state)?;
    exec(&program, &args, &env)
}

/// A new container: its own session keyring, then the root filesystem (returns the
/// state for the startContainer hooks). exec: the process is already in the container's
/// mount namespace and starts from its root.
fn setup_mounts(
    chan: &mut Channel,
    b: &Bootstrap,
    source_fds: &SourceFds,
) -> Result<(Option<OciState>, Option<rootfs::Prepared>)> {
    match b.mode {
        Mode::Create => {
            if let Some(name) = &b.session_keyring {
                join_session_keyring(name);
            }
            for message in rootfs::mount_warnings(&b.spec) {
                let _ = chan.send(&Message::Warning { message });
            }
            let (state, prepared) = setup_rootfs(chan, b, source_fds)?;
            Ok((Some(state), Some(prepared)))
        }
        Mode::Exec => {
            nix::unistd::chdir("/").context("chdir to the container root")?;
            Ok((None, None))
        }
    }
}

/// Close what is not passed on, switch to the container's user, set umask and cwd, then
/// the capabilities (after setuid, as the kernel needs).
///
/// The cwd is tried before the user switch too, as runc does: a directory only root may
/// enter still becomes the cwd; one only the container's user may enter (EACCES for us,
/// e.g. root squashed on NFS) is entered after the switch.
fn become_container_user(chan: &mut Channel, b: &Bootstrap, process: &Process) -> Result<()> {
    let cwd_done = enter_cwd_as_root(process)?;
    switch_user(chan, process, &b.spec)?;
    apply_umask(process);
    if !cwd_done {
        enter_cwd(process)?;
    }
    // CVE-2024-21626: the working directory must be inside the container's root.
    fds::verify_cwd_inside_root()?;
    set_capabilities(chan, process)
}

/// After exec.fifo: the late seccomp filter (with no_new_privs), the startContainer hooks,
/// then the AppArmor/SELinux exec labels (last, so no hook process inherits them; they
/// take effect at the execve).
fn last_steps_before_exec(
    spec: &Spec,
    process: &Process,
    seccomp_late: Option<seccomp::Program>,
    hook_state: Option<OciState>,
) -> Result<()> {
    if let Some(p) = &seccomp_late {
        seccomp::install(p).context("install seccomp filter")?;
    }
    if let Some(state) = hook_state {
        run_start_container_hooks(spec, state)?;
    }
    lsm::apply_exec_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )
}

/// The descriptors the runtime passed at the numbers named in the bootstrap, owned now
/// and close-on-exec so the container process never inherits them.
struct PassedFds {
    console_sock: Option<OwnedFd>,
    fifo: Option<OwnedFd>,
}

impl PassedFds {
    fn take(b: &Bootstrap) -> PassedFds {
        for fd in [b.console_fd, b.fifo_fd].into_iter().flatten() {
            set_cloexec(fd);
        }
        PassedFds {
            // SAFETY: the runtime handed these descriptors to the init; nothing else owns them.
            console_sock: b.console_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            // SAFETY: as above.
            fifo: b.fifo_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
        }
    }
}

/// Compiled up front: a bad profile fails before anything is set up.
fn compile_seccomp(spec: &Spec) -> Result<Option<seccomp::Program>> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Ok(Some(
            seccomp::compile(s).context("compile seccomp profile")?,
        )),
        None => Ok(None),
    }
}

/// Mounts and pivot_root; the runtime's hooks and the createContainer hooks run just
/// before the pivot, as the runtime-spec puts them. Returns the state for the
/// startContainer hooks.
fn setup_rootfs(
    chan: &mut Channel,
    b: &Bootstrap,
    source_fds: &SourceFds,
) -> Result<(OciState, rootfs::Prepared)> {
    let spec = &b.spec;
    let has = |k: Kind| b.namespaces.iter().any(|r| r.kind == k);
    // Without a mount namespace runc still sets up the rootfs, in the caller's mount
    // namespace (the mounts stay there after the container is gone), and chroots into it.
    let opts = rootfs::RootfsOptions {
        rootfs: &b.rootfs,
        no_pivot: b.no_pivot,
        new_mount_ns: has(Kind::Mount),
        new_cgroup_ns: b
            .namespaces
            .iter()
            .any(|r| r.kind == Kind::Cgroup && r.path.is_none()),
        in_user_ns: has(Kind::User),
        source_fds,
    };
    let mut hook_state = None;
    let mut before_pivot = || -> Result<()> {
        let state = run_runtime_hooks(chan)?;
        let json = serde_json::to_vec(&state).context("encode the state for hooks")?;
        hook_state = Some(state);
        hooks::run(spec.hooks().as_ref(), Point::CreateContainer, &json)
    };
    let prepared = rootfs::prepare_rootfs(spec, &opts, &mut before_pivot)?;
    let state = hook_state.context("the root filesystem was set up without running the hooks")?;
    Ok((state, prepared))
}

/// Ask the runtime to run the prestart and createRuntime hooks; it answers with the
/// container's state.
fn run_runtime_hooks(chan: &mut Channel) -> Result<OciState> {
    chan.send(&Message::RunHooks)?;
    match chan.expect("prestart hooks")? {
        Message::HooksDone { state } => Ok(state),
        other => bail!("unexpected {other:?} while waiting for hooks"),
    }
}

/// A terminal: make a pty inside the container, send its master over the console socket
/// and make the slave our controlling terminal and stdio.
fn setup_console(process: &Process, mode: Mode, console_sock: Option<OwnedFd>) -> Result<()> {
    if process.terminal() != Some(true) {
        return Ok(());
    }
    let sock = console_sock
        .as_ref()
        .context("process.terminal is set but no console socket was given")?;
    let (master, slave_path) = console::open_pty_in_container()?;
    // The slave of exactly this master (TIOCGPTPEER): bound onto /dev/console by its
    // descriptor and made our terminal, with no path lookup in the container's /dev/pts.
    let slave = console::open_pty_slave(master.as_fd(), &slave_path)?;
    console::send_console_fd(sock.as_fd(), master.as_fd())?;
    drop(master);
    if mode == Mode::Create {
        rootfs::mount_console(slave.as_fd())?;
    }
    console::make_controlling_terminal_and_dup(slave.as_fd())
}

/// hostname, domainname and sysctls of a new container.
fn set_names_and_sysctls(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_context(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d)?;
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        write_sysctls(sysctl)?;
    }
    Ok(())
}

/// rlimits, I/O priority, scheduler and personality.
fn apply_process_limits(process: &Process, spec: &Spec) -> Result<()> {
    if let Some(r) = process.rlimits() {
        rlimits::apply_rlimits(r)?;
    }
    if let Some(p) = process.io_priority() {
        sched::set_io_priority(p)?;
    }
    if let Some(s) = process.scheduler() {
        sched::set_scheduler(s)?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        sched::set_personality(p)?;
    }
    Ok(())
}

/// Tell the runtime we are about to drop privileges; it applies cgroup resources first.
fn sync_ready(chan: &mut Channel) -> Result<()> {
    chan.send(&Message::Ready)?;
    match chan.expect("the runtime to continue")? {
        Message::Continue => Ok(()),
        other => bail!("unexpected {other:?} while waiting to continue"),
    }
}

/// Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in before the user
/// switch; a notify listener must reach the runtime while the channel is open. Returns
/// the program still to install (with no_new_privs: as late as possible, after exec.fifo).
fn install_seccomp_early(
    chan: &mut Channel,
    program: Option<seccomp::Program>,
    nnp: bool,
) -> Result<Option<seccomp::Program>> {
    let Some(p) = program else { return Ok(None) };
    if nnp && !p.uses_notify() {
        return Ok(Some(p));
    }
    if let Some(fd) = seccomp::install(&p).context("install seccomp filter")? {
        chan.send(&Message::SeccompFd)?;
        chan.send_fd(fd.as_fd())?;
    }
    Ok(None)
}

/// The chdir before the user switch: true when done; false when permission was denied
/// (tried again as the container's user); any other error is final.
fn enter_cwd_as_root(process: &Process) -> Result<bool> {
    match nix::unistd::chdir(process.cwd()) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::EPERM) => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("chdir to cwd ({:?}) set in config.json", process.cwd()))
        }
    }
}

fn enter_cwd(process: &Process) -> Result<()> {
    nix::unistd::chdir(process.cwd())
        .with_context(|| format!("chdir to cwd ({:?}) set in config.json", process.cwd()))
}

/// The program (looked up in the process's PATH), its arguments and its environment.
fn resolve_command(
    process: &Process,
    extra_env: &[String],
) -> Result<(PathBuf, Vec<String>, Vec<String>)> {
    let env = process_env(process, extra_env, true);
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args.first().context("args must not be empty")?;
    let program = lookup_program(arg0, &env)?;
    Ok((program, args, env))
}

/// startContainer hooks, in the container after exec.fifo opened, with status "running".
fn run_start_container_hooks(spec: &Spec, mut state: OciState) -> Result<()> {
    state.status = Status::Running;
    let json = serde_json::to_vec(&state).context("encode the state for hooks")?;
    hooks::run(spec.hooks().as_ref(), Point::StartContainer, &json)
}

fn switch_user(chan: &mut Channel, process: &Process, spec: &Spec) -> Result<()> {
    let u = process.user();
    let in_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    // setgroups is denied in a user namespace whose gid map was written without privilege.
    let setgroups_allowed = !in_userns
        || crate::linux::procfs::get()
            .and_then(|p| p.read_self("setgroups"))
            .map(|s| s.trim() == "allow")
            .unwrap_or(true);
    let mut gids: Vec<u32> = u.additional_gids().clone().unwrap_or_default();
    // Supplementary groups of the user from /etc/group, as runc does for a plain uid.
    if let Ok(found) = user::lookup_user(Path::new("/"), &u.uid().to_string()) {
        for g in found.sgids {
            if !gids.contains(&g) {
                gids.push(g);
            }
        }
    }
    if let Some(caps) = process.capabilities() {
        warn(chan, capabilities::drop_bounding(caps)?);
    }
    // The container's user must be able to use its stdio (a pty or fifos owned by root).
    user::fix_stdio_permissions(u.uid())?;
    user::apply_user(u.uid(), u.gid(), &gids, setgroups_allowed)?;
    Ok(())
}

fn set_capabilities(chan: &mut Channel, process: &Process) -> Result<()> {
    if let Some(caps) = process.capabilities() {
        warn(chan, capabilities::set_after_setuid(caps)?);
    }
    Ok(())
}

/// Pass warnings to the runtime's log. An ambient capability the kernel refuses (it is
/// not in the inheritable set, as in runc's own default spec) is not worth one: runc says
/// nothing about it either.
fn warn(chan: &mut Channel, w: Vec<String>) {
    for message in w.into_iter().filter(|m| !m.contains("ambient")) {
        let _ = chan.send(&Message::Warning { message });
    }
}

fn apply_umask(process: &Process) {
    let mask = process.user().umask().unwrap_or(0o022);
    // Raw umask(2): nix's wrapper panics on the -1 a seccomp profile denying umask returns.
    // SAFETY: umask only swaps the process's file mode creation mask.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Replace this process's environment with `env` (single-threaded: the init starts no
/// thread).
fn adopt_env(env: &[String]) {
    for (k, _) in std::env::vars_os() {
        std::env::remove_var(k);
    }
    for e in env {
        if let Some((k, v)) = e.split_once('=').filter(|(k, _)| !k.is_empty()) {
            if !k.contains('\0') && !v.contains('\0') {
                std::env::set_var(k, v);
            }
        }
    }
}

/// The process environment, plus HOME when missing and `with_home` (runc sets it from
/// /etc/passwd once it has switched to the container's user).
fn process_env(process: &Process, extra: &[String], with_home: bool) -> Vec<String> {
    let given = process.env().iter().flatten().chain(extra.iter());
    let mut env = dedup_env(given);
    if with_home && !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = user::lookup_user(Path::new("/"), &process.user().uid().to_string())
            .map(|u| u.home)
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

/// One entry per name, as runc's environment handling leaves it: a name keeps the place
/// of its first entry and the value of its last. An entry without "=" is kept as it is.
fn dedup_env<'a>(given: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    for e in given {
        let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n);
        let same = |x: &String| x.split_once('=').map_or(x.as_str(), |(n, _)| n) == name;
        match env.iter_mut().find(|x| same(x)) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

/// Resolve args[0] against the process's PATH, as Go's exec.LookPath does for runc.
/// A name with a slash is checked too (runc does it before waiting on exec.fifo): a missing
/// program must fail `create`, which containerd reports, not `start` with an exit status.
fn lookup_program(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        // Both runc's words: 1.1's LookPath `exec: "/x": stat /x: no such file or
        // directory`, then newer runc's `exec /x: no such file or directory`, so a grep
        // written for either matches.
        let mode = stat_mode(Path::new(arg0)).map_err(|e| {
            let t = crate::linux::go_errno::errno_text(&e);
            anyhow::anyhow!("exec: {arg0:?}: stat {arg0}: {t} (exec {arg0}: {t})")
        })?;
        if mode & libc::S_IFMT == libc::S_IFDIR || mode & 0o111 == 0 {
            bail!("exec: {arg0:?}: permission denied");
        }
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

fn is_executable(p: &Path) -> bool {
    stat_mode(p).is_ok_and(|m| m & libc::S_IFMT == libc::S_IFREG && m & 0o111 != 0)
}

/// st_mode by stat(2) (newfstatat), as Go's os.Stat in runc: this runs under the container's
/// seccomp profile, and std's metadata() uses statx, which older profiles deny.
fn stat_mode(p: &Path) -> std::io::Result<libc::mode_t> {
    nix::sys::stat::stat(p)
        .map(|st| st.st_mode)
        .map_err(std::io::Error::from)
}

/// Block until `start` opens the fifo for reading, then tell it we are going. The write
/// end is returned to be kept open until execve closes it.
fn wait_for_start(fifo: BorrowedFd) -> Result<OwnedFd> {
    // Reopened through the verified procfs: the container's /proc/self/fd/N could be a
    // link to any file of the image, which would then get the write.
    let fd = crate::linux::procfs::get()?
        .reopen(fifo, nix::fcntl::OFlag::O_WRONLY)
        .context("open exec fifo")?;
    nix::unistd::write(&fd, b"0").context("write to exec fifo")?;
    Ok(fd)
}

/// Every signal back to its default action before the user's process starts, as runc's
/// container processes start: an ignored signal survives execve, and this binary ignores
/// SIGPIPE (Rust's runtime does) while a caller may have ignored SIGINT and SIGQUIT (a
/// background job of a shell), which would make `yes | head` or a terminal's ^C behave
/// differently inside the container. Caught signals are reset by execve itself.
fn reset_signal_dispositions() {
    // The kernel's struct sigaction (handler, flags, restorer, mask): all zero is SIG_DFL
    // with no flags. The raw call, because glibc's sigaction refuses the real-time signals
    // it reserves (32, 33), which a caller may still have ignored.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid kernel sigaction for the call's duration and installs no
        // handler; no old action is asked for; the mask size is the kernel's (8 bytes).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
}

fn exec(program: &Path, args: &[String], env: &[String]) -> Result<u8> {
    let c = |s: &str| CString::new(s).with_context(|| format!("NUL byte in {s:?}"));
    let prog = c(&program.to_string_lossy())?;
    let argv = args.iter().map(|a| c(a)).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(|e| c(e)).collect::<Result<Vec<_>>>()?;
    let err = nix::unistd::execve(&prog, &argv, &envp).unwrap_err();
    bail!("exec {:?}: {err}", program)
}

/// Each sysctl through the verified procfs handle: a container mount over /proc/sys (or a
/// read-only /proc/sys) is never what the value is written to.
fn write_sysctls(sysctl: &std::collections::HashMap<String, String>) -> Result<()> {
    let proc = crate::linux::procfs::get()?;
    for (k, v) in sysctl {
        proc.write_sysctl(k, v)
            .with_context(|| format!("write sysctl {k}={v}"))?;
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: setdomainname reads exactly len bytes from a valid buffer.
    let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set domainname {d:?}"));
    }
    Ok(())
}

/// A fresh session keyring named after the container, so it does not share the host's.
/// Failure is not fatal: some kernels or seccomp profiles deny keyctl (runc ignores ENOSYS).
fn join_session_keyring(name: &str) {
    let Ok(name) = CString::new(name) else {
        return;
    };
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        );
    }
}

fn set_cloexec(fd: RawFd) {
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
}

#[cfg(test)]
mod tests {
    use super::dedup_env;

    #[test]
    fn duplicate_env_names_keep_the_first_place_and_the_last_value() {
        let given: Vec<String> = ["A=1", "PATH=/bin", "A=2", "B=x", "B=y", "C"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(dedup_env(given.iter()), ["A=2", "PATH=/bin", "B=y", "C"]);
    }
}
