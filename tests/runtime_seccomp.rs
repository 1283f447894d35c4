//! linux.seccomp in real containers: the errno asked for, containerd's default profile,
//! and SCMP_ACT_NOTIFY handing the listener to an agent.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn run(b: &Bundle) -> (i32, String, String) {
    let rt = Runtime::new();
    let id = unique("sc");
    rt.track(&id);
    let out = rt.run(&["run", "-b", b.path().to_str().unwrap(), &id]);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn denied_syscalls_fail_with_the_errno_asked_for() {
    let b = Bundle::new(&["sh", "-c", "mkdir /tmp/a; rmdir /tmp; echo alive"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}
            ]
        });
    });
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alive\n");
    assert!(
        err.contains("Function not implemented"),
        "ENOSYS for mkdir: {err}"
    );
    assert!(
        err.contains("Operation not permitted"),
        "EPERM by default: {err}"
    );
}

#[test]
fn containerd_default_profile_runs_busybox_and_denies_unshare() {
    let profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seccomp/containerd-default.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "ls / >/dev/null && cp /bin/busybox /tmp/bb && echo works; unshare -U true || echo denied",
    ]);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "works\ndenied\n", "{err}");
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    let dir = TempDir::new("agent");
    let sock_path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let n = msg.bytes;
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        // Closing the listener answers every notified syscall with ENOSYS.
        for f in &fds {
            // SAFETY (test): the kernel installed this descriptor for us.
            drop(unsafe { OwnedFd::from_raw_fd(*f) });
        }
        (state, fds.len())
    });
    let b = Bundle::new(&["sh", "-c", "sleep 0.3; mkdir /tmp/n; echo after"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_path,
            "listenerMetadata": "meta-1",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let (code, out, err) = run(&b);
    let (state, nfds) = agent.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "after\n");
    assert!(err.contains("Function not implemented"), "{err}");
    assert_eq!(nfds, 1);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "meta-1");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert!(state["state"]["id"].as_str().unwrap().starts_with("sc-"));
}

/// containerd's default profile (default action ERRNO) without the syscalls in `remove`.
fn containerd_profile_without(remove: &[&str], errno: Option<u32>) -> serde_json::Value {
    let mut p: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seccomp/containerd-default.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for rule in p["syscalls"].as_array_mut().unwrap() {
        rule["names"]
            .as_array_mut()
            .unwrap()
            .retain(|n| !remove.contains(&n.as_str().unwrap()));
    }
    if let Some(e) = errno {
        p["defaultErrnoRet"] = json!(e);
    }
    p
}

/// Runs `b` with `exe` (ocibox or Debian's runc); (exit code, stdout, stderr). A run that
/// hangs (an init stuck under its own filter) is killed after 30 s and reported as -1; the
/// runtime guard force-deletes what it left.
fn run_with(exe: &std::path::Path, b: &Bundle) -> (i32, String, String) {
    let rt = Runtime::with_binary(exe);
    let id = unique("sc");
    rt.track(&id);
    let out_path = rt.root.path().join(format!("{id}.out"));
    let err_path = rt.root.path().join(format!("{id}.err"));
    let mut child = rt
        .command(&["run", "-b", b.path().to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let read =
        |p: &std::path::Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (code, read(&out_path), read(&err_path))
}

const RUNC: &str = "/usr/sbin/runc";

/// Without no_new_privs the filter is loaded before the user switch, so everything the init
/// does afterwards runs under the profile. Profiles that leave out syscalls runc's init does
/// not need (close_range and fcntl for the fd sweep, statx, setresuid/setresgid, shutdown, umask),
/// denied with EPERM or ENOSYS, must not stop ocibox where runc runs.
#[test]
fn init_survives_a_profile_denying_what_runc_does_not_need() {
    let cases: &[&[&str]] = &[
        &["close_range"],
        &["close_range", "fcntl"],
        &["statx"],
        &["setresuid", "setresgid"],
        &["shutdown"],
        &["umask"],
    ];
    for remove in cases {
        for errno in [None, Some(libc::ENOSYS as u32)] {
            for nnp in [false, true] {
                let b = Bundle::new(&["/bin/busybox", "echo", "ok"]);
                b.edit(|c| {
                    c["process"]["noNewPrivileges"] = json!(nnp);
                    c["linux"]["seccomp"] = containerd_profile_without(remove, errno);
                });
                for exe in [std::path::PathBuf::from(RUNC), bin()] {
                    let (code, out, err) = run_with(&exe, &b);
                    assert_eq!(
                        (code, out.as_str()),
                        (0, "ok\n"),
                        "{} without {remove:?} (errno {errno:?}, noNewPrivileges {nnp}): {err}",
                        exe.display()
                    );
                }
            }
        }
    }
}
