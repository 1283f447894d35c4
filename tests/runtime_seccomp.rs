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
    // getcwd denied: runc 1.1.5 fails ("failed to verify if current working directory is
    // safe"); ocibox checks the cwd by walking up with stat instead, and runs.
    for errno in [None, Some(libc::ENOSYS as u32)] {
        let b = Bundle::new(&["/bin/busybox", "echo", "ok"]);
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["process"]["cwd"] = json!("/tmp");
            c["linux"]["seccomp"] = containerd_profile_without(&["getcwd"], errno);
        });
        let (code, out, err) = run_with(&bin(), &b);
        assert_eq!((code, out.as_str()), (0, "ok\n"), "without getcwd: {err}");
    }
    // runc's seccomp.bats "verify syscall compatibility after seccomp enforcement".
    let b = Bundle::new(&["/bin/busybox", "echo", "ok"]);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["close_range", "fsopen", "fsconfig", "fspick", "openat2",
                                    "open_tree", "move_mount", "mount_setattr"],
                          "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
        });
    });
    for exe in [std::path::PathBuf::from(RUNC), bin()] {
        let (code, out, err) = run_with(&exe, &b);
        assert_eq!(
            (code, out.as_str()),
            (0, "ok\n"),
            "{}: {err}",
            exe.display()
        );
    }
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

const PROBE_ENV: &str = "OCIBOX_SECCOMP_PROBE";

/// The container side of `rule_semantics_match_runc`, not a test of its own: this test binary
/// (static) is copied into the rootfs as /probe and run with `PROBE_ENV` listing raw syscalls
/// ("nr,arg0,…" separated by spaces); it prints `probe <call>=<return value or -errno>` each.
#[test]
fn probe_syscalls() {
    let Ok(calls) = std::env::var(PROBE_ENV) else {
        return;
    };
    // libtest has printed "test probe_syscalls ... " without a newline.
    let mut out = String::from("\n");
    for call in calls.split_whitespace() {
        let mut a = [0 as libc::c_long; 7];
        for (slot, v) in a.iter_mut().zip(call.split(',')) {
            *slot = v.parse().expect("probe argument");
        }
        // SAFETY: the calls the test lists take integer arguments or NULL pointers only.
        let rc = unsafe { libc::syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]) };
        let r = if rc < 0 {
            -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as libc::c_long)
        } else {
            rc
        };
        out.push_str(&format!("probe {call}={r}\n"));
    }
    use std::io::Write;
    let mut so = std::io::stdout();
    let _ = so.write_all(out.as_bytes());
    let _ = so.flush();
    std::process::exit(0);
}

/// What the container sees of a profile's rules, under ocibox and Debian's runc alike: two
/// conditions on one argument OR-ed (runc's tests/integration/testdata/seccomp_syscall_test1
/// cases, plus a mixed entry), conditions on different arguments AND-ed, errnoRet and
/// defaultErrnoRet ENOANO exactly, ENOSYS above the highest syscall the profile names only for
/// listed architectures, with and without no_new_privs.
#[test]
fn rule_semantics_match_runc() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let rules = json!([
        {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW",
         "args": [eq(0, 100), eq(0, 9001)]},
        {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
         "args": [eq(0, 1337), eq(0, 2020)]},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 0), eq(1, 1337)]},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 1)]},
        {"names": ["dup3"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_GT"}]},
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
         "args": [eq(0, 7), eq(0, 8), eq(1, 9)]},
    ]);
    let ours = [
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "dup3",
        "getpriority",
    ];
    let base = || {
        let mut p = containerd_profile_without(&ours, None);
        p["syscalls"]
            .as_array_mut()
            .unwrap()
            .extend(rules.as_array().unwrap().iter().cloned());
        p
    };
    // x86_64 numbers: process_vm_readv 310, process_vm_writev 311, kcmp 312, dup3 292,
    // getpriority 140, unshare 272; 1000 and 460 are beyond every syscall the profile names.
    let calls = "310,100,0,0,0,0,-1 310,9001,0,0,0,0,-1 310,0,0,0,0,0,-1 \
                 311,1337,0,0,0,0,-1 311,2020,0,0,0,0,-1 311,0,0,0,0,0,-1 \
                 312,0,1337 312,0,0 312,500,1337 \
                 292,0,-100,65535 292,1,-100,65535 292,2,-100,65535 292,3,-100,65535 \
                 140,7,0 140,8,0 140,0,9 140,7,9 140,0,0 272,0 1000,1,2,3 460,0";
    let mut profiles = vec![("listed architectures", base())];
    let mut p = base();
    p["defaultErrnoRet"] = json!(55);
    profiles.push(("defaultErrnoRet ENOANO", p));
    let mut p = base();
    p.as_object_mut().unwrap().remove("architectures");
    profiles.push(("no architectures", p));
    let mut p = base();
    p["architectures"] = json!(["SCMP_ARCH_X86"]);
    profiles.push(("only SCMP_ARCH_X86", p));

    let b = ProbeBundle::new();
    for (what, profile) in &profiles {
        for nnp in [true, false] {
            b.same_as_runc(
                &format!("{what}, noNewPrivileges {nnp}"),
                profile,
                nnp,
                calls,
            );
        }
    }
}

/// A bundle running the probe (this test binary) in a busybox rootfs.
struct ProbeBundle(Bundle);

impl ProbeBundle {
    fn new() -> ProbeBundle {
        let b = Bundle::new(&[
            "/probe",
            "probe_syscalls",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]);
        std::fs::copy(std::env::current_exe().unwrap(), b.rootfs().join("probe")).unwrap();
        ProbeBundle(b)
    }

    /// Runs `calls` under `profile` with Debian's runc and with ocibox; asserts both ran and
    /// the container saw the same results.
    fn same_as_runc(&self, what: &str, profile: &serde_json::Value, nnp: bool, calls: &str) {
        self.0.edit(|c| {
            let env = c["process"]["env"].as_array_mut().unwrap();
            env.retain(|e| !e.as_str().unwrap().starts_with(PROBE_ENV));
            env.push(json!(format!("{PROBE_ENV}={calls}")));
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = profile.clone();
        });
        let seen = |exe: &std::path::Path| {
            let (code, out, err) = run_with(exe, &self.0);
            assert_eq!(code, 0, "{} with {what}: {err}", exe.display());
            out.lines()
                .filter_map(|l| l.strip_prefix("probe "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let (theirs, ours) = (seen(std::path::Path::new(RUNC)), seen(&bin()));
        assert_eq!(theirs.len(), calls.split_whitespace().count(), "{theirs:?}");
        assert_eq!(ours, theirs, "{what}: ocibox vs runc");
    }
}

/// Several rules for one syscall (getpriority, 140), as libseccomp combines them under runc:
/// an unconditional rule takes the whole syscall, conditional ones are tried by higher argument,
/// larger value, then EQ before GE before GT. Profiles runc refuses ("file exists") are not
/// compared, nor MASKED_EQ against another operator on one argument (libseccomp's order then
/// depends on the spec order in a way ocibox does not follow).
#[test]
fn rules_for_one_syscall_combine_as_under_runc() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let errno = |e: u32, args: serde_json::Value| json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": e, "args": args});
    let allow = |args: serde_json::Value| json!({"names": ["getpriority"], "action": "SCMP_ACT_ALLOW", "args": args});
    let cmp = |index: u32, op: &str, value: u64| json!([{"index": index, "value": value, "op": format!("SCMP_CMP_{op}")}]);
    let gt5 = cmp(0, "GT", 5);
    let and = json!([eq(0, 7), eq(1, 9)]);
    let none = json!(null);
    let cases = [
        (
            "unconditional allow, then conditional errno",
            json!([allow(none.clone()), errno(55, json!([eq(0, 7)]))]),
        ),
        (
            "conditional errno, then unconditional errno",
            json!([errno(55, json!([eq(0, 7)])), errno(56, none.clone())]),
        ),
        (
            "unconditional errno, then conditional allow",
            json!([errno(56, none.clone()), allow(json!([eq(0, 0)]))]),
        ),
        (
            "two unconditional",
            json!([errno(55, none.clone()), errno(56, none.clone())]),
        ),
        (
            "arg0 rule, then arg1 rule",
            json!([errno(55, json!([eq(0, 7)])), errno(56, json!([eq(1, 9)]))]),
        ),
        (
            "arg1 rule, then arg0 rule",
            json!([errno(55, json!([eq(1, 9)])), errno(56, json!([eq(0, 7)]))]),
        ),
        (
            "arg0 allow, then arg1 errno",
            json!([allow(json!([eq(0, 7)])), errno(56, json!([eq(1, 9)]))]),
        ),
        (
            "AND rule, then arg1 rule",
            json!([errno(55, and.clone()), errno(56, json!([eq(1, 9)]))]),
        ),
        (
            "GT, then EQ on one argument",
            json!([errno(55, gt5.clone()), errno(56, json!([eq(0, 7)]))]),
        ),
        (
            "EQ, then GT on one argument",
            json!([errno(56, json!([eq(0, 7)])), errno(55, gt5)]),
        ),
        (
            "prefix rule, then AND rule",
            json!([errno(56, json!([eq(0, 7)])), errno(55, and)]),
        ),
        (
            "GE 3, then GE 5",
            json!([errno(55, cmp(0, "GE", 3)), errno(56, cmp(0, "GE", 5))]),
        ),
        (
            "EQ 6, then NE 7",
            json!([errno(56, cmp(0, "EQ", 6)), errno(55, cmp(0, "NE", 7))]),
        ),
        (
            "LE 7, then GE 5",
            json!([errno(55, cmp(0, "LE", 7)), errno(56, cmp(0, "GE", 5))]),
        ),
        (
            "LT 8, then GT 5",
            json!([errno(55, cmp(0, "LT", 8)), errno(56, cmp(0, "GT", 5))]),
        ),
        (
            "EQ 6, then GE 6",
            json!([errno(56, cmp(0, "EQ", 6)), errno(55, cmp(0, "GE", 6))]),
        ),
        (
            "GE 5, then EQ 2^32+6",
            json!([
                errno(55, cmp(0, "GE", 5)),
                errno(56, cmp(0, "EQ", (1 << 32) + 6))
            ]),
        ),
        (
            "AND on arg1+arg2 failing deep, then arg0",
            json!([
                errno(55, json!([eq(1, 9), eq(2, 1)])),
                errno(56, json!([eq(0, 7)]))
            ]),
        ),
    ];
    let calls = "140,7,0 140,7,9 140,0,9 140,0,0 140,6,0 140,1,0 140,4,0 140,9,0 \
                 140,7,9,1 140,4294967302,0";
    let b = ProbeBundle::new();
    for (what, rules) in cases {
        let mut p = containerd_profile_without(&["getpriority"], None);
        p["syscalls"]
            .as_array_mut()
            .unwrap()
            .extend(rules.as_array().unwrap().iter().cloned());
        b.same_as_runc(what, &p, true, calls);
    }
}

/// `exec` sets itself up under the container's profile too: the same syscalls left out.
#[test]
fn exec_survives_a_profile_denying_what_runc_does_not_need() {
    let all = [
        "close_range",
        "fcntl",
        "statx",
        "setresuid",
        "setresgid",
        "shutdown",
        "umask",
    ];
    let b = Bundle::new(&["/bin/busybox", "sleep", "30"]);
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = containerd_profile_without(&all, None);
    });
    for exe in [std::path::PathBuf::from(RUNC), bin()] {
        let rt = Runtime::with_binary(&exe);
        let id = unique("scx");
        rt.track(&id);
        let out = rt.run(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
        assert!(out.status.success(), "{}: {}", exe.display(), stderr(&out));
        let out = rt.run(&["exec", &id, "/bin/busybox", "echo", "ok"]);
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "ok\n"),
            "{}: {}",
            exe.display(),
            stderr(&out)
        );
    }
}

/// startContainer hooks run under the container's profile (runc's seccomp.bats checks that).
/// A profile that denies clone3 with EPERM instead of ENOSYS (here containerd's without its
/// clone3 entry) must not stop the hook from being spawned: runc forks with clone.
#[test]
fn start_container_hook_runs_under_a_profile_denying_clone3() {
    let mut profile = containerd_profile_without(&[], None);
    profile["syscalls"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["names"] != json!(["clone3"]));
    for nnp in [true, false] {
        let b = Bundle::new(&["/bin/busybox", "echo", "ok"]);
        let marker = b.rootfs().join("hook-ran");
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = profile.clone();
            c["hooks"] = json!({"startContainer": [{
                "path": "/bin/busybox", "args": ["busybox", "touch", "/hook-ran"]
            }]});
        });
        for exe in [std::path::PathBuf::from(RUNC), bin()] {
            let _ = std::fs::remove_file(&marker);
            let (code, out, err) = run_with(&exe, &b);
            assert_eq!(
                (code, out.as_str()),
                (0, "ok\n"),
                "{} (noNewPrivileges {nnp}): {err}",
                exe.display()
            );
            assert!(marker.exists(), "{}: the hook did not run", exe.display());
        }
    }
}
