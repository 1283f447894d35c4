//! Real filters in the real kernel. Each test re-executes this test binary to run only itself
//! (`CHILD_ENV` names it); the child installs the filter, checks what syscalls return, and
//! exits 0 on success; the parent checks the exit status and shows the child's output on failure.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;

use super::super::*;
use super::{containerd_profile, spec};

const CHILD_ENV: &str = "OCIBOX_SECCOMP_TEST_CHILD";

/// In the parent: runs test `name` in a child copy of the test binary with `env` added and
/// returns its exit status and output. In that child: runs `body` and exits (0 on success).
fn in_child(
    name: &str,
    env: &[(&str, String)],
    body: impl FnOnce() -> Result<()>,
) -> (std::process::ExitStatus, String) {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    let full = format!("{module}::{name}");
    if std::env::var(CHILD_ENV).as_deref() == Ok(full.as_str()) {
        let code = match body() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child {full}: {e:#}");
                1
            }
        };
        std::process::exit(code);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([full.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &full)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("re-execute test binary");
    let log = format!(
        "child {full}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, log)
}

fn env_arg(key: &str) -> Result<String> {
    std::env::var(key).with_context(|| format!("child needs {key}"))
}

fn no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    ensure!(
        rc == 0,
        "prctl(PR_SET_NO_NEW_PRIVS): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// The errno of a raw mkdir(2) of a path that must not exist, or 0 when it succeeded.
fn mkdir_errno(path: &std::path::Path) -> Result<i32> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).context("path")?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_mkdir, c.as_ptr(), 0o700) };
    if rc == 0 {
        let _ = std::fs::remove_dir(path);
        return Ok(0);
    }
    Ok(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ocibox-seccomp-{name}-{}", std::process::id()))
}

fn install_denying_mkdir(errno: Option<u32>, flags: serde_json::Value) -> Result<()> {
    let mut rule = json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": flags, "syscalls": [rule]
    })))?;
    no_new_privs()?;
    ensure!(install(&p)?.is_none(), "no listener expected");
    Ok(())
}

#[test]
fn kernel_denies_mkdir_with_the_asked_errno() {
    for (errno, want) in [("", libc::EPERM), ("38", libc::ENOSYS), ("123", 123)] {
        let env = [
            ("SECCOMP_TEST_ERRNO", errno.to_string()),
            ("SECCOMP_TEST_WANT", want.to_string()),
        ];
        let (status, log) = in_child("kernel_denies_mkdir_with_the_asked_errno", &env, || {
            let errno = env_arg("SECCOMP_TEST_ERRNO")?.parse().ok();
            let want: i32 = env_arg("SECCOMP_TEST_WANT")?.parse()?;
            let flags = json!(["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]);
            install_denying_mkdir(errno, flags)?;
            let got = mkdir_errno(&scratch("mkdir"))?;
            ensure!(got == want, "mkdir returned errno {got}, want {want}");
            // Everything else still works.
            ensure!(std::fs::metadata("/").is_ok(), "stat / failed");
            Ok(())
        });
        assert!(status.success(), "errno {errno:?}: {log}");
    }
}

#[test]
fn kernel_kill_process_kills_with_sigsys() {
    let (status, log) = in_child("kernel_kill_process_kills_with_sigsys", &[], || {
        let p = compile(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
        })))?;
        no_new_privs()?;
        install(&p)?;
        // SAFETY: getppid has no arguments and no side effects; the filter kills us here.
        unsafe { libc::getppid() };
        bail!("still alive after getppid")
    });
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{log}");
}

#[test]
fn kernel_install_needs_no_new_privs_or_cap_sys_admin() {
    let (status, log) = in_child(
        "kernel_install_needs_no_new_privs_or_cap_sys_admin",
        &[],
        || {
            // Drop CAP_SYS_ADMIN from the effective set; without no_new_privs install must fail.
            caps::drop(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_ADMIN,
            )?;
            let p = compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW"})))?;
            let err = format!("{:#}", install(&p).err().context("install succeeded")?);
            ensure!(err.contains("no_new_privs"), "unexpected error: {err}");
            Ok(())
        },
    );
    assert!(status.success(), "{log}");
}

/// The agent side of SCMP_ACT_NOTIFY: accept one connection, take the state JSON and the
/// listener fd, answer one notification for mkdir with EXDEV.
fn agent(listener: UnixListener) -> Result<serde_json::Value> {
    let (conn, _) = listener.accept().context("accept")?;
    let mut buf = vec![0u8; 64 * 1024];
    let got = crate::linux::fd_passing::recv(conn.as_fd(), &mut buf).context("recvmsg")?;
    let (len, notify_fd) = (got.len, got.fd.context("no fd attached")?);
    let state: serde_json::Value = serde_json::from_slice(&buf[..len]).context("state json")?;

    // SAFETY: seccomp_notif is plain data; all-zero is the required initial value.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl fills `req`, which is the size the request number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    ensure!(rc == 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    ensure!(
        req.data.nr == libc::SYS_mkdir as i32,
        "notified syscall {}",
        req.data.nr
    );
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: -libc::EXDEV,
        flags: 0,
    };
    // SAFETY: the ioctl reads `resp`, which is the size the request number encodes.
    let rc = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        )
    };
    ensure!(rc == 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    Ok(state)
}

#[test]
fn kernel_notify_fd_reaches_the_listener_and_is_answered() {
    let (status, log) = in_child(
        "kernel_notify_fd_reaches_the_listener_and_is_answered",
        &[],
        || {
            let sock = scratch("agent.sock");
            let _ = std::fs::remove_file(&sock);
            let listener = UnixListener::bind(&sock).context("bind agent socket")?;
            let agent = std::thread::spawn(move || agent(listener));
            let result = (|| -> Result<()> {
                let p = compile(&spec(json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": sock, "listenerMetadata": "hello-agent",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
                })))?;
                ensure!(p.uses_notify());
                no_new_privs()?;
                let fd = install(&p)?.context("no listener fd")?;
                let state = json!({"ociVersion": "1.0.2", "id": "c1", "status": "creating",
                               "pid": std::process::id(), "bundle": "/b"});
                let msg = process_state_json(
                    "1.0.2",
                    std::process::id() as i32,
                    Some("hello-agent"),
                    &state,
                )?;
                send_to_listener(&sock, fd.as_fd(), &msg)?;
                drop(fd);
                let got = mkdir_errno(&scratch("notified"))?;
                ensure!(
                    got == libc::EXDEV,
                    "mkdir returned errno {got}, want EXDEV from the agent"
                );
                Ok(())
            })();
            let _ = std::fs::remove_file(&sock);
            result?;
            let state = agent
                .join()
                .map_err(|_| anyhow::anyhow!("agent panicked"))??;
            ensure!(state["fds"] == json!(["seccompFd"]), "fds: {state}");
            ensure!(state["metadata"] == "hello-agent", "metadata: {state}");
            ensure!(
                state["ociVersion"] == "1.0.2" && state["state"]["id"] == "c1",
                "{state}"
            );
            ensure!(state["pid"] == json!(std::process::id()), "pid: {state}");
            Ok(())
        },
    );
    assert!(status.success(), "{log}");
}

/// errno of a raw syscall with integer arguments (0 when it succeeded).
fn raw_errno(nr: libc::c_long, a: [libc::c_long; 3]) -> i32 {
    // SAFETY: only called with syscalls whose arguments are integers or NULL.
    let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
    if rc >= 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    }
}

#[test]
fn kernel_containerd_profile_runs_busybox_and_denies_the_rest() {
    let Ok(busybox) = which_busybox() else {
        eprintln!("busybox not installed (scripts install busybox-static): skipped");
        return;
    };
    let env = [("SECCOMP_TEST_BUSYBOX", busybox)];
    let (status, log) = in_child(
        "kernel_containerd_profile_runs_busybox_and_denies_the_rest",
        &env,
        || {
            let busybox = env_arg("SECCOMP_TEST_BUSYBOX")?;
            let dir = scratch("busybox");
            let p = compile(&containerd_profile())?;
            no_new_privs()?;
            install(&p)?;
            let script = format!(
                "set -e; d={d}; mkdir -p $d/a; echo hi > $d/a/f; cat $d/a/f >/dev/null; \
             ls -l $d >/dev/null; cp $d/a/f $d/g; sort $d/g | wc -l >/dev/null; \
             ps >/dev/null; uname -a >/dev/null; id >/dev/null; date >/dev/null; \
             sleep 0.01 & wait; rm -r $d; echo ok",
                d = dir.display()
            );
            let out = Command::new(&busybox).args(["sh", "-c", &script]).output();
            let _ = std::fs::remove_dir_all(&dir);
            let out = out.context("spawn busybox under the filter")?;
            ensure!(
                out.status.success() && out.stdout == b"ok\n",
                "busybox workload: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            for (name, nr, args, want) in [
                ("keyctl", libc::SYS_keyctl, [0, 0, 0], libc::EPERM),
                (
                    "unshare",
                    libc::SYS_unshare,
                    [libc::CLONE_NEWUTS as libc::c_long, 0, 0],
                    libc::EPERM,
                ),
                ("setns", libc::SYS_setns, [-1, 0, 0], libc::EPERM),
                ("clone3", libc::SYS_clone3, [0, 0, 0], libc::ENOSYS),
                ("fchmodat2", 452, [-1, 0, 0], libc::ENOSYS),
                (
                    "personality(0x1)",
                    libc::SYS_personality,
                    [1, 0, 0],
                    libc::EPERM,
                ),
            ] {
                let got = raw_errno(nr, args);
                ensure!(got == want, "{name}: errno {got}, want {want}");
            }
            Ok(())
        },
    );
    assert!(status.success(), "{log}");
}

/// In the kernel: two conditions on one argument are OR-ed and their ENOANO reaches the caller.
#[test]
fn kernel_conditions_on_one_argument_are_ored_with_exact_errno() {
    let (status, log) = in_child(
        "kernel_conditions_on_one_argument_are_ored_with_exact_errno",
        &[],
        || {
            let p = compile(&spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
                    "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
                             {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
            })))?;
            no_new_privs()?;
            install(&p)?;
            for which in [7, 8] {
                let got = raw_errno(libc::SYS_getpriority, [which, 0, 0]);
                ensure!(
                    got == libc::ENOANO,
                    "getpriority({which}): errno {got}, want ENOANO"
                );
            }
            let got = raw_errno(
                libc::SYS_getpriority,
                [libc::PRIO_PROCESS as libc::c_long, 0, 0],
            );
            ensure!(
                got == 0,
                "getpriority(PRIO_PROCESS, 0) must pass, errno {got}"
            );
            Ok(())
        },
    );
    assert!(status.success(), "{log}");
}

/// In the kernel: runc's ENOSYS stub for syscalls newer than the profile, only for the listed
/// architectures, and the default errno (ENOANO here) for older ones it does not name.
#[test]
fn kernel_enosys_stub_needs_listed_architectures() {
    for archs in ["listed", "none"] {
        let env = [("SECCOMP_TEST_ARCHS", archs.to_string())];
        let (status, log) = in_child(
            "kernel_enosys_stub_needs_listed_architectures",
            &env,
            || {
                let mut v = serde_json::to_value(containerd_profile())?;
                v["defaultErrnoRet"] = json!(libc::ENOANO);
                let listed = env_arg("SECCOMP_TEST_ARCHS")? == "listed";
                if !listed {
                    v.as_object_mut()
                        .context("profile")?
                        .remove("architectures");
                }
                let p = compile(&spec(v))?;
                no_new_privs()?;
                install(&p)?;
                let got = raw_errno(libc::SYS_keyctl, [0, 0, 0]);
                ensure!(got == libc::ENOANO, "keyctl: errno {got}, want ENOANO");
                let want = if listed { libc::ENOSYS } else { libc::ENOANO };
                for nr in [1000, 452] {
                    let got = raw_errno(nr, [-1, 0, 0]);
                    ensure!(got == want, "syscall {nr}: errno {got}, want {want}");
                }
                Ok(())
            },
        );
        assert!(status.success(), "{archs}: {log}");
    }
}

fn which_busybox() -> Result<String> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = std::path::Path::new(dir).join("busybox");
        if p.is_file() {
            return Ok(p.display().to_string());
        }
    }
    bail!("busybox not found")
}
