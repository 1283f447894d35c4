//! Lifecycle hooks: run at the points the runtime-spec names, state JSON on stdin,
//! `timeout` honoured (the hook is killed when it runs over).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hook points of the runtime-spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::Prestart => "prestart",
            Point::CreateRuntime => "createRuntime",
            Point::CreateContainer => "createContainer",
            Point::StartContainer => "startContainer",
            Point::Poststart => "poststart",
            Point::Poststop => "poststop",
        }
    }

    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            Point::Prestart => hooks.prestart(),
            Point::CreateRuntime => hooks.create_runtime(),
            Point::CreateContainer => hooks.create_container(),
            Point::StartContainer => hooks.start_container(),
            Point::Poststart => hooks.poststart(),
            Point::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Run every hook of `point` in order; the first failure stops the rest.
///
/// The words are runc 1.1's, which callers grep for: `error running hook #0: error
/// running hook: exit status 1, stdout: …, stderr: …` (runc 1.1 does not name the hook
/// point; 1.2 says `error running prestart hook #0: …`, which the same grep matches too).
pub fn run(hooks: Option<&Hooks>, point: Point, state_json: &[u8]) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    for (i, hook) in point.select(hooks).iter().enumerate() {
        run_one(hook, state_json).with_context(|| format!("error running hook #{i}"))?;
    }
    Ok(())
}

/// An exit status in Go's words (`exit status 1`, `signal: killed`), as os/exec prints it.
fn go_exit_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(sig) = status.signal() else {
        return status.to_string();
    };
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        _ => return format!("signal: signal {sig}"),
    };
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    format!("signal: {name}{core}")
}

/// Run one hook: `path` with `args` (args[0] is argv[0]) and exactly `env`; a hook without
/// `env` inherits the environment of the process running it (as Go's exec does for runc):
/// the runtime's for the runtime's hooks, the container process's for the container's.
pub fn run_one(hook: &Hook, state_json: &[u8]) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // startContainer hooks run in the container's init under its seccomp profile, which may
    // deny clone3 with EPERM: glibc's posix_spawn and pthread_create fall back to clone only
    // on ENOSYS. So: fork+exec (a pre_exec closure makes std fork, which uses clone), and the
    // output is drained in this thread, not in helper threads.
    // SAFETY: the closure runs between fork and exec and does nothing.
    unsafe { cmd.pre_exec(|| Ok(())) };
    let mut child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "fork/exec {}: {}",
            path.display(),
            crate::linux::go_errno::errno_text(&e)
        )
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let mut out = Drain::new(child.stdout.take().map(Into::into));
    let mut err = Drain::new(child.stderr.take().map(Into::into));
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        // Drained while the hook runs, so a chatty hook cannot block on a full pipe.
        out.read_available();
        err.read_available();
        if let Some(st) = child.try_wait().context("wait for hook")? {
            out.read_available();
            err.read_available();
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "hook ran past specified timeout of {:.1}s",
                hook.timeout().unwrap_or(0) as f64
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = (out.buf, err.buf);
    if !status.success() {
        // runc keeps the hook's output as it is, trailing newlines included.
        bail!(
            "error running hook: {}, stdout: {}, stderr: {}",
            go_exit_status(status),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(())
}

/// A hook's stdout or stderr, read without blocking: the first 64 KiB are kept for the error
/// message, the rest is thrown away. What is still unread when the hook exits (a process it
/// left behind may hold the pipe) is not waited for.
struct Drain {
    pipe: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl Drain {
    const KEEP: usize = 64 << 10;

    fn new(fd: Option<std::os::fd::OwnedFd>) -> Drain {
        use std::os::fd::AsRawFd;
        let pipe = fd.map(std::fs::File::from);
        if let Some(p) = &pipe {
            let on: libc::c_int = 1;
            // SAFETY: FIONBIO reads one int and only sets the fd's O_NONBLOCK (ioctl rather
            // than fcntl: a seccomp profile is likelier to deny fcntl than ioctl).
            unsafe { libc::ioctl(p.as_raw_fd(), libc::FIONBIO, &on) };
        }
        Drain {
            pipe,
            buf: Vec::new(),
        }
    }

    fn read_available(&mut self) {
        let Some(p) = self.pipe.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 8192];
        loop {
            match p.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => {
                    let room = Self::KEEP.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.pipe = None;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["X=1".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hook_gets_state_and_env() {
        let dir = std::env::temp_dir().join(format!("ocibox-hook-{}", std::process::id()));
        let out = dir.with_extension("out");
        let script = format!("cat > {}; echo \"$X\" >> {}", out.display(), out.display());
        run_one(&hook(&script, None), b"{\"id\":\"x\"}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(got, "{\"id\":\"x\"}1\n");
    }

    #[test]
    fn failure_and_timeout_are_errors() {
        let e = run_one(&hook("echo bad >&2; exit 3", None), b"").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg == "error running hook: exit status 3, stdout: , stderr: bad\n",
            "{msg}"
        );
        let t = Instant::now();
        let e = run_one(&hook("sleep 10", Some(1)), b"").unwrap_err();
        assert_eq!(format!("{e:#}"), "hook ran past specified timeout of 1.0s");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn chatty_hooks_do_not_block_and_their_first_output_is_kept() {
        let script =
            "head -c 1048576 /dev/zero; echo first >&2; head -c 1048576 /dev/zero >&2; exit 4";
        let e = run_one(&hook(script, Some(20)), b"").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("exit status 4") && msg.contains("first"),
            "{}",
            &msg[..200.min(msg.len())]
        );
        // A process the hook leaves behind holding its stdout does not hold up the caller.
        let t = Instant::now();
        run_one(&hook("sleep 2 & echo started", None), b"").unwrap();
        assert!(t.elapsed() < Duration::from_millis(1500));
    }
}
