//! Each config.json section, checked from inside the container (it reports what it sees)
//! and from the host.

mod common;
use common::*;
use serde_json::json;

/// Run `script` in a fresh container made from `b` after `edit`; (exit code, stdout, stderr).
fn run_in(b: &Bundle, edit: impl FnOnce(&mut serde_json::Value)) -> (i32, String, String) {
    b.edit(edit);
    let rt = Runtime::new();
    let id = unique("cfg");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

fn sh(script: &str) -> Bundle {
    Bundle::new(&["sh", "-c", script])
}

/// runc 1.1.5 runs a config whatever string its ociVersion holds (spec generators write
/// "1.3.0"; old bundles "1.0.0-rc5" or "0.5.0"), or without one; only a non-string fails.
#[test]
fn every_oci_version_runc_accepts_runs() {
    let versions = [
        Some(json!("1.3.0")),
        Some(json!("1.0.0-rc5")),
        Some(json!("0.5.0")),
        Some(json!("2.0.0")),
        Some(json!("")),
        Some(json!("garbage")),
        None,
        Some(json!(5)),
    ];
    for exe in [bin(), std::path::PathBuf::from("/usr/sbin/runc")] {
        for v in &versions {
            let b = sh("echo ran");
            b.edit(|c| match v {
                Some(v) => c["ociVersion"] = v.clone(),
                None => {
                    c.as_object_mut().unwrap().remove("ociVersion");
                }
            });
            let rt = Runtime::with_binary(&exe);
            let id = unique("ver");
            rt.track(&id);
            let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
            let who = exe.display();
            if v.as_ref().is_some_and(|v| !v.is_string()) {
                assert!(!out.status.success(), "{who}: ociVersion {v:?} must fail");
                assert!(
                    stderr(&out).contains(
                        "json: cannot unmarshal number into Go struct field Spec.ociVersion of type string"
                    ),
                    "{who}: {}",
                    stderr(&out)
                );
            } else {
                assert_eq!(
                    stdout(&out),
                    "ran\n",
                    "{who}: ociVersion {v:?}: {}",
                    stderr(&out)
                );
            }
        }
    }
}

#[test]
fn process_args_env_cwd_and_hostname() {
    let b = sh("echo $FOO; pwd; hostname; cat /proc/sys/kernel/domainname");
    let (code, out, err) = run_in(&b, |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/tmp");
        c["hostname"] = json!("boxhost");
        c["domainname"] = json!("example.org");
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "bar baz\n/tmp\nboxhost\nexample.org\n");
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let (code, out, err) = run_in(&sh("echo $$; ls /proc | grep -c '^[0-9]'"), |_| {});
    assert_eq!(code, 0, "{err}");
    // sh and ls, and grep when it was already forked while ls read /proc: no host process.
    assert!(
        out == "1\n2\n" || out == "1\n3\n",
        "only sh, ls (and grep) are visible: {out}"
    );
}

#[test]
fn user_uid_gid_additional_gids_umask_and_home() {
    let b = sh("id -u; id -g; id -G; umask; echo $HOME; touch /tmp/f && stat -c %a /tmp/f");
    let (code, out, err) = run_in(&b, |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 63});
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let groups: Vec<&str> = lines[2].split(' ').collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "{out}"
    );
    assert_eq!(lines[3], "0077");
    assert_eq!(
        lines[4], "/home/tester",
        "HOME from the container's /etc/passwd"
    );
    assert_eq!(lines[5], "600");
}

#[test]
fn rlimits_no_new_privileges_capabilities_and_oom_score() {
    let b = sh("ulimit -n; ulimit -Hn; grep -E '^(NoNewPrivs|CapBnd|CapEff|CapAmb)' /proc/self/status; cat /proc/self/oom_score_adj");
    let (code, out, err) = run_in(&b, |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["oomScoreAdj"] = json!(123);
        let caps = json!(["CAP_KILL", "CAP_CHOWN"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps, "inheritable": caps});
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "321");
    assert_eq!(lines[1], "654");
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5.
    let want = "0000000000000021";
    for l in &lines[2..6] {
        if l.starts_with("NoNewPrivs") {
            assert!(l.ends_with('1'), "{l}");
        } else {
            assert!(l.ends_with(want), "{l}");
        }
    }
    assert_eq!(lines[6], "123");
}

#[test]
fn mounts_masked_readonly_paths_and_readonly_root() {
    let b = sh(
        "grep ' /scratch ' /proc/mounts; echo x > /ro/probe 2>/dev/null && echo ro-writable; \
         cat /ro/hostfile; cat /proc/keys 2>&1 | wc -c; ls /proc/acpi 2>/dev/null | wc -l; \
         echo 1 > /proc/sys/kernel/shmmax 2>/dev/null && echo sys-writable; \
         touch /rootprobe 2>/dev/null && echo root-writable; echo done",
    );
    std::fs::create_dir_all(b.path().join("hostdir")).unwrap();
    std::fs::write(b.path().join("hostdir/hostfile"), "from-host\n").unwrap();
    let hostdir = b.path().join("hostdir");
    let (code, out, err) = run_in(&b, |c| {
        c["root"]["readonly"] = json!(true);
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=700"]}));
        mounts.push(json!({"destination": "/ro", "type": "bind", "source": hostdir, "options": ["rbind", "ro"]}));
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("tmpfs /scratch tmpfs rw,nosuid")
            && lines[0].contains("size=1024k")
            && lines[0].contains("mode=700"),
        "{out}"
    );
    assert_eq!(lines[1], "from-host", "{out}");
    assert_eq!(lines[2], "0", "masked file reads empty");
    assert_eq!(lines[3], "0", "masked dir is empty");
    assert_eq!(lines[4], "done", "no writable ro paths or root: {out}");
}

#[test]
fn mount_destination_symlink_cannot_escape_the_rootfs() {
    let b = sh("cat /escape/marker 2>/dev/null || echo no-marker; ls /etc/passwd");
    // /escape -> /tmp/host-marker-dir on the host: resolved inside the rootfs instead.
    let marker_dir = TempDir::new("escape-target");
    std::os::unix::fs::symlink(marker_dir.path(), b.rootfs().join("escape")).unwrap();
    let (code, out, err) = run_in(&b, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"}));
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no-marker"), "{out}");
    // Nothing was mounted on the host path the symlink names.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(marker_dir.path().to_str().unwrap()));
}

#[test]
fn devices_and_default_dev_nodes() {
    let b = sh("ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse | awk '{print $1, $5, $6, $10}'; readlink /dev/fd; head -c 4 /dev/zero | wc -c");
    let (code, out, err) = run_in(&b, |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("crw-rw-rw- 10, 229 /dev/fuse"), "{out}");
    assert!(out.contains("crw-rw-rw- 1, 3 /dev/null"), "{out}");
    assert!(out.contains("/proc/self/fd"), "{out}");
    assert!(out.ends_with("4\n"), "{out}");
}

#[test]
fn sysctl_is_written_in_the_container() {
    let (code, out, err) = run_in(&sh("cat /proc/sys/kernel/msgmax"), |c| {
        c["linux"]["sysctl"] = json!({"kernel.msgmax": "12345"});
        c["linux"]["readonlyPaths"] = json!([]);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "12345\n");
}

#[test]
fn network_namespace_has_loopback_up_and_nothing_else() {
    let (code, out, err) = run_in(
        &sh("ls /sys/class/net; cat /sys/class/net/lo/operstate"),
        |c| {
            c["linux"]["readonlyPaths"] = json!([]);
        },
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines[1], "unknown", "lo is up (operstate unknown)");
}

#[test]
fn user_namespace_with_mappings() {
    let b = sh("id -u; cat /proc/self/uid_map; touch /tmp/x && stat -c %u /tmp/x");
    // The rootfs must belong to the mapped root for the container to use it.
    let out = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(out.success());
    let (code, out, err) = run_in(&b, |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // Remove what a user namespace cannot mount.
        c["mounts"] = json!(c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] != "cgroup" && m["type"] != "sysfs")
            .cloned()
            .collect::<Vec<_>>());
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert!(
        lines[1].split_whitespace().eq(["0", "100000", "65536"]),
        "{out}"
    );
    assert_eq!(lines[2], "0");
    let host_uid =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(b.rootfs().join("tmp/x")).unwrap());
    assert_eq!(host_uid, 100000);
}

#[test]
fn cgroup_and_time_namespaces() {
    let b = sh("cat /proc/self/cgroup | grep -c ':/$'; cat /proc/uptime | cut -d. -f1");
    let (code, out, err) = run_in(&b, |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "cgroup"}));
        ns.push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].parse::<u32>().unwrap() >= 5,
        "every hierarchy is rooted at /: {out}"
    );
    assert!(lines[1].parse::<u64>().unwrap() >= 86_400_000, "{out}");
}

#[test]
fn joining_another_containers_namespace_by_path() {
    let rt = Runtime::new();
    let b1 = Bundle::new(&["sleep", "100"]);
    let id1 = unique("ipcowner");
    b1.edit(|c| c["hostname"] = json!("owner"));
    rt.create(&id1, &b1);
    let pid = rt.state(&id1)["pid"].as_i64().unwrap();
    let b2 = sh("hostname");
    b2.edit(|c| {
        c["hostname"] = serde_json::Value::Null;
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "uts" {
                ns["path"] = json!(format!("/proc/{pid}/ns/uts"));
            }
        }
    });
    let id2 = unique("joiner");
    rt.track(&id2);
    let out = rt.run(&["run", "-b", b2.path().to_str().unwrap(), &id2]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "owner\n");
}

#[test]
fn hooks_run_at_their_points_with_state_on_stdin() {
    let b = sh(
        "cat /hooklog/createContainer.json >/dev/null 2>&1 && echo in-container-hook-ran; exit 0",
    );
    let log = TempDir::new("hooklog");
    let logp = log.path().to_str().unwrap().to_string();
    // createContainer runs in the container's mount namespace before pivot_root (host
    // paths); startContainer after it (container paths).
    let hook = |name: &str, log_in_container: bool| {
        let dir = if log_in_container {
            "/hooklog".to_string()
        } else {
            logp.clone()
        };
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {dir}/{name}.json; echo {name} >> {dir}/order")]})
    };
    let (code, out, err) = run_in(&b, |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": logp, "options": ["rbind"]}));
        c["hooks"] = json!({
            "prestart": [hook("prestart", false)],
            "createRuntime": [hook("createRuntime", false)],
            "createContainer": [hook("createContainer", false)],
            "startContainer": [hook("startContainer", true)],
            "poststart": [hook("poststart", false)],
            "poststop": [hook("poststop", false)],
        });
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "in-container-hook-ran\n");
    let order = std::fs::read_to_string(log.path().join("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(
        order[..4],
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ]
    );
    assert!(
        order.contains(&"poststart") && order.last() == Some(&"poststop"),
        "{order:?}"
    );
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.path().join("prestart.json")).unwrap()).unwrap();
    assert_eq!(st["status"], "creating");
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.path().join("poststop.json")).unwrap()).unwrap();
    assert_eq!(st["status"], "stopped");
}

#[test]
fn failing_or_slow_prestart_hook_fails_create_cleanly() {
    let rt = Runtime::new();
    for (i, hook) in [
        json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 7"]}),
        json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        let b = Bundle::new(&["true"]);
        b.edit(|c| c["hooks"] = json!({"prestart": [hook]}));
        let id = unique(&format!("badhook{i}"));
        let out = rt.run(&["create", "-b", b.path().to_str().unwrap(), &id]);
        assert!(!out.status.success());
        // runc 1.1's words for a failing hook.
        assert!(
            stderr(&out).contains("error running hook #0: "),
            "{}",
            stderr(&out)
        );
        assert!(!rt.root.path().join(&id).exists());
        assert!(leftovers(&id).is_empty(), "{:?}", leftovers(&id));
    }
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    let b = sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let (code, out, err) = run_in(&b, |_| {});
    assert_eq!(code, 0, "{err}");
    // 0 1 2 and the fd ls itself opens for the directory.
    assert_eq!(out, "0 1 2 3 ", "{out}");
}

#[test]
fn preserve_fds_and_listen_fds_pass_through() {
    use std::os::unix::process::CommandExt;
    let b = sh("echo preserved >&3; echo $LISTEN_FDS $LISTEN_PID");
    let rt = Runtime::new();
    let id = unique("fds");
    rt.track(&id);
    let outfile = b.path().join("fd3.out");
    let f = std::fs::File::create(&outfile).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    let mut cmd = rt.command(&[
        "run",
        "--preserve-fds",
        "1",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    // SAFETY (test): dup2 in the child before exec only.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps CLOEXEC: clear it explicitly.
            if raw == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.env("LISTEN_FDS", "0").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0 1\n");
    assert_eq!(std::fs::read_to_string(&outfile).unwrap(), "preserved\n");
}

#[test]
fn container_is_placed_in_the_cgroups_path_and_it_is_removed() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("cg");
    let path = format!("/{id}-parent/{id}");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    rt.create(&id, &b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        let procs =
            std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{path}/cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == pid), "{ctrl}: {procs}");
    }
    rt.ok(&["delete", "--force", &id]);
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        assert!(
            !std::path::Path::new(&format!("/sys/fs/cgroup/{ctrl}{path}")).exists(),
            "{ctrl}"
        );
    }
    remove_cgroup_everywhere(&format!("{id}-parent"));
}

/// CVE-2019-5736: a container process that grabs /proc/<init>/exe while the init still
/// runs the runtime's code must not be able to open it for writing, also after the init
/// has exec'd (when the kernel's "text busy" protection no longer holds). Checked for both
/// protections: the read-only bind (default) and the sealed copy.
#[test]
fn the_container_cannot_write_the_runtime_binary() {
    for sealed in [false, true] {
        let rt = Runtime::new();
        let b = Bundle::new(&["sleep", "100"]);
        let id = unique("cve");
        rt.track(&id);
        let mut cmd = rt.command(&["create", "-b", b.path().to_str().unwrap(), &id]);
        if sealed {
            cmd.env("OCIBOX_SEALED_INIT", "1");
        }
        let st = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        if sealed {
            assert!(
                exe.to_string_lossy().starts_with("/memfd:"),
                "{}",
                exe.display()
            );
        }
        // What an attacker keeps: an O_PATH handle on the init's exe.
        let handle = nix::fcntl::open(
            format!("/proc/{pid}/exe").as_str(),
            nix::fcntl::OFlag::O_PATH,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        rt.ok(&["start", &id]);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{handle}"));
        let _ = nix::unistd::close(handle);
        // The read-only bind refuses the open; a sealed memfd may be opened (it is not the
        // host's file anyway) but refuses every write.
        let e = match reopened {
            Err(e) => e,
            Ok(mut f) if sealed => std::io::Write::write_all(&mut f, b"\x7f").unwrap_err(),
            Ok(_) => panic!("the runtime binary can be opened for writing"),
        };
        let code = e.raw_os_error().unwrap();
        assert!(
            code == libc::EROFS || code == libc::EPERM || code == libc::ETXTBSY,
            "sealed={sealed}: {e}"
        );
    }
}

#[test]
fn scheduler_io_priority_and_personality() {
    // Field 41 of /proc/self/stat is the scheduling policy (3 = SCHED_BATCH), 19 the nice.
    let b = sh("uname -m; ionice -p $$; cut -d' ' -f19,41 /proc/self/stat");
    let (code, out, err) = run_in(&b, |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "i686", "{out}");
    assert_eq!(lines[1], "best-effort: prio 6", "{out}");
    assert_eq!(lines[2], "5 3", "{out}");
}

#[test]
fn no_pivot_and_rootfs_propagation() {
    let b = sh("awk '$5 == \"/\"' /proc/self/mountinfo");
    let (code, out, err) = run_in(&b, |c| {
        c["linux"]["rootfsPropagation"] = json!("shared");
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shared:"), "{out}");
    // --no-pivot: MS_MOVE + chroot instead of pivot_root; the container still runs.
    let rt = Runtime::new();
    let b = sh("echo moved; ls /");
    let id = unique("nopivot");
    rt.track(&id);
    let out = rt.run(&[
        "run",
        "--no-pivot",
        "--no-new-keyring",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("moved\n") && stdout(&out).contains("bin\n"));
}

/// The container's process starts with every signal at its default action, as Debian's
/// runc's does, run here on the same bundle: neither the SIGPIPE this binary ignores nor a
/// SIGINT or SIGQUIT ignored by whoever started the runtime reaches the container. (runc
/// passes on glibc's reserved signals 32 and 33 as its caller left them, Go does not touch
/// them; ocibox resets those too, so its mask is compared whole.)
#[test]
fn the_container_process_ignores_no_signal() {
    use std::os::unix::process::CommandExt;
    let b = Bundle::new(&["grep", "SigIgn", "/proc/self/status"]);
    let glibc_reserved: u64 = (1 << 31) | (1 << 32);
    for (rt, unchecked) in [
        (Runtime::new(), 0),
        (
            Runtime::with_binary(std::path::Path::new("/usr/sbin/runc")),
            glibc_reserved,
        ),
    ] {
        let id = unique("sigign");
        rt.track(&id);
        let mut cmd = rt.command(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{:?}: {}", rt.exe, stderr(&out));
        let shown = stdout(&out);
        let mask = shown
            .strip_prefix("SigIgn:\t")
            .and_then(|m| u64::from_str_radix(m.trim_end(), 16).ok())
            .unwrap_or_else(|| panic!("{:?}: {shown:?}", rt.exe));
        assert_eq!(mask & !unchecked, 0, "{:?}: {shown:?}", rt.exe);
    }
}
