//! The init's order and environment as runc 1.1.5 has them, each case run against ocibox
//! and Debian's runc in the same test: the cwd tried before the user switch, a container
//! without a mount namespace, the process environment (duplicates, HOME, what hooks
//! inherit), what the waiting init holds open, and ONLCR on a pty runc relays itself.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

const RUNC: &str = "/usr/sbin/runc";

/// The two runtimes every case runs against, named for assertion messages.
fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        ("ocibox", Runtime::new()),
        ("runc", Runtime::with_binary(Path::new(RUNC))),
    ]
}

/// `run` a bundle to completion: (exit code, stdout, stderr).
fn run(rt: &Runtime, b: &Bundle, prefix: &str) -> (i32, String, String) {
    let id = unique(prefix);
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// The same case on both runtimes: a fresh bundle each, edited by `edit`.
fn both(args: &[&str], edit: impl Fn(&mut Value)) -> Vec<(&'static str, i32, String, String)> {
    runtimes()
        .into_iter()
        .map(|(name, rt)| {
            let b = Bundle::new(args);
            b.edit(&edit);
            let (code, out, err) = run(&rt, &b, "order");
            (name, code, out, err)
        })
        .collect()
}

#[test]
fn a_cwd_only_root_may_enter_is_entered_before_the_user_switch() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&["sh", "-c", "pwd; id -u"]);
        b.edit(|c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            c["process"]["cwd"] = json!("/secret");
        });
        let secret = b.rootfs().join("secret");
        std::fs::create_dir(&secret).unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let (code, out, err) = run(&rt, &b, "cwd");
        assert_eq!(
            (code, out.as_str()),
            (0, "/secret\n1000\n"),
            "{name}: {err}"
        );
    }
}

/// Run `script` (a shell line) in a private mount namespace of its own, so whatever a
/// container without a mount namespace mounts vanishes with it.
fn in_private_mount_ns(script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["-m", "--propagation", "unchanged", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn runtime_cmdline(rt: &Runtime) -> String {
    let mut s = rt.exe.display().to_string();
    if rt.exe == bin() {
        s.push_str(" runc");
    }
    format!("{s} --root {}", rt.root.path().display())
}

/// A bundle without a mount namespace (nor the sys restrictions that need one).
fn bundle_without_mount_ns(args: &[&str]) -> Bundle {
    let b = Bundle::new(args);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array().unwrap().clone();
        c["linux"]["namespaces"] =
            Value::Array(ns.into_iter().filter(|n| n["type"] != "mount").collect());
        c["linux"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k != "maskedPaths" && k != "readonlyPaths");
    });
    b
}

#[test]
fn without_a_mount_namespace_the_container_shares_the_callers() {
    // The container process is chrooted into its rootfs but lives in the caller's mount
    // namespace; an exec'd process is not even chrooted (runc 1.1.5 does the same).
    for (name, rt) in runtimes() {
        let b = bundle_without_mount_ns(&[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; pwd; ls /bin/busybox",
        ]);
        let sleeper = bundle_without_mount_ns(&["sleep", "30"]);
        let (id, id2) = (unique("nomnt"), unique("nomnt-exec"));
        rt.track(&id);
        rt.track(&id2);
        let rtl = runtime_cmdline(&rt);
        let host_file = sleeper.path().join("config.json");
        let script = format!(
            "readlink /proc/self/ns/mnt; {rtl} run --bundle {b} {id} </dev/null; \
             {rtl} run -d --bundle {s} {id2} </dev/null >/dev/null 2>&1; \
             {rtl} exec {id2} sh -c 'readlink /proc/self/ns/mnt; ls {host}'; \
             {rtl} delete -f {id2}",
            b = b.path().display(),
            s = sleeper.path().display(),
            host = host_file.display(),
        );
        let out = in_private_mount_ns(&script);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(out.status.success(), "{name}: {text}{}", stderr(&out));
        assert_eq!(lines.len(), 6, "{name}: {text}{}", stderr(&out));
        assert_eq!(
            lines[0], lines[1],
            "{name}: not the caller's mount namespace"
        );
        assert_eq!(&lines[2..4], ["/", "/bin/busybox"], "{name}");
        assert_eq!(lines[4], lines[0], "{name}: exec");
        assert_eq!(lines[5], host_file.display().to_string(), "{name}: exec");
    }
}

#[test]
fn masked_or_readonly_paths_without_a_mount_namespace_are_refused() {
    for (name, code, _, err) in both(&["true"], |c| {
        let ns = c["linux"]["namespaces"].as_array().unwrap().clone();
        c["linux"]["namespaces"] =
            Value::Array(ns.into_iter().filter(|n| n["type"] != "mount").collect());
    }) {
        assert_eq!(code, 1, "{name}");
        assert!(
            err.contains("unable to restrict sys entries without a private MNT namespace"),
            "{name}: {err}"
        );
    }
}

#[test]
fn duplicate_env_entries_keep_the_first_place_and_the_last_value() {
    let results = both(&["env"], |c| {
        c["process"]["env"] = json!(["A=1", "PATH=/bin", "A=2", "B=x", "B=y"]);
    });
    for (name, code, out, err) in &results {
        assert_eq!(*code, 0, "{name}: {err}");
        assert_eq!(out, "A=2\nPATH=/bin\nB=y\nHOME=/root\n", "{name}");
    }
}

#[test]
fn home_comes_from_the_containers_passwd_or_is_slash() {
    for (uid, want) in [(1000, "/home/tester"), (5000, "/")] {
        for (name, code, out, err) in both(&["sh", "-c", "echo $HOME"], |c| {
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
            c["process"]["env"] = json!(["PATH=/bin"]);
        }) {
            assert_eq!((code, out.trim()), (0, want), "{name} uid {uid}: {err}");
        }
    }
}

fn sorted_env(p: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="))
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn hooks_without_env_inherit_the_environment_of_who_runs_them() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&["true"]);
        let host_out = b.path().join("prestart.env");
        b.edit(|c| {
            c["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
            c["hooks"] = json!({
                "prestart": [{"path": "/bin/sh",
                              "args": ["sh", "-c", format!("env > {}", host_out.display())]}],
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > create.env"]}],
                "startContainer": [
                    {"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/start.env"]},
                    {"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/empty.env"], "env": []}
                ]
            });
        });
        let id = unique("hookenv");
        rt.track(&id);
        let status = rt
            .command(&["run", "--bundle", b.path().to_str().unwrap(), &id])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOSTVAR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        assert_eq!(
            sorted_env(&host_out),
            ["HOSTVAR=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "{name}: prestart"
        );
        // createContainer runs before HOME is filled in, startContainer after.
        assert_eq!(
            sorted_env(&b.rootfs().join("create.env")),
            ["FOO=bar", "PATH=/bin"],
            "{name}: createContainer"
        );
        assert_eq!(
            sorted_env(&b.rootfs().join("tmp/start.env")),
            ["FOO=bar", "HOME=/root", "PATH=/bin"],
            "{name}: startContainer"
        );
        assert!(
            sorted_env(&b.rootfs().join("tmp/empty.env"))
                .iter()
                .all(|e| !e.starts_with("FOO=")),
            "{name}: a hook with env [] gets nothing"
        );
    }
}

/// The targets of every descriptor `pid` holds.
fn fd_targets(pid: i64) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn the_waiting_init_holds_none_of_the_callers_extra_descriptors() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&["true"]);
        let marker = b.path().join("marker");
        std::fs::write(&marker, "x").unwrap();
        let id = unique("initfds");
        rt.track(&id);
        let marker_file = std::fs::File::open(&marker).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let (m, n) = (
            std::os::fd::AsRawFd::as_raw_fd(&marker_file),
            std::os::fd::AsRawFd::as_raw_fd(&null),
        );
        let mut cmd = rt.command(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let log = std::fs::File::create(b.path().join("create.out")).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: dup2 is async-signal-safe; it only places two open descriptors at 4
        // and 5 (without close-on-exec) in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(m, 4) < 0 || libc::dup2(n, 5) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        assert!(cmd.status().unwrap().success(), "{name}: create");
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let held = fd_targets(pid);
        assert!(
            !held.iter().any(|t| t == &marker.display().to_string()),
            "{name}: the init holds the caller's fd 4: {held:?}"
        );
        assert_eq!(
            held.iter().filter(|t| *t == "/dev/null").count(),
            1,
            "{name}: only stdin is /dev/null: {held:?}"
        );
        assert!(
            !held.iter().any(|t| t.starts_with("socket:")),
            "{name}: {held:?}"
        );
    }
}

/// `stty -a` inside a terminal container run in the foreground under `script`'s pty.
fn onlcr_in_foreground(rt: &Runtime) -> String {
    let b = Bundle::new(&["sh", "-c", "stty -a"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique("onlcr");
    rt.track(&id);
    let line = format!(
        "{} run --bundle {} {id}",
        runtime_cmdline(rt),
        b.path().display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    text.split_whitespace()
        .find(|w| w.trim_start_matches('-') == "onlcr")
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_pty_relayed_by_the_runtime_itself_has_onlcr_cleared() {
    for (name, rt) in runtimes() {
        assert_eq!(onlcr_in_foreground(&rt), "-onlcr", "{name}");
    }
}

/// A user namespace mapping the container's root to 100000, with two binds of a source
/// under a directory only the host's root may enter (and one `missing` source if asked).
fn userns_with_private_binds(b: &Bundle, missing: bool) {
    let private = b.path().join("private");
    std::fs::create_dir_all(private.join("data")).unwrap();
    std::fs::write(private.join("data/f"), "secret-data\n").unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // The rootfs belongs to the host's root: the mount points exist beforehand.
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    std::fs::write(b.rootfs().join("f"), "").unwrap();
    std::fs::create_dir(b.rootfs().join("gone")).unwrap();
    let src = |p: &str| private.join(p).display().to_string();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/data", "type": "bind", "source": src("data"),
                           "options": ["bind", "ro"]}),
        );
        mounts.push(
            json!({"destination": "/f", "type": "bind", "source": src("data/f"),
                           "options": ["rbind"]}),
        );
        if missing {
            mounts.push(
                json!({"destination": "/gone", "type": "bind", "source": src("gone"),
                               "options": ["bind"]}),
            );
        }
    });
}

#[test]
fn bind_sources_the_user_namespace_cannot_reach_are_opened_beforehand() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&[
            "sh",
            "-c",
            "cat /data/f /f; touch /data/x 2>/dev/null || echo ro",
        ]);
        userns_with_private_binds(&b, false);
        let (code, out, err) = run(&rt, &b, "mntsrc");
        assert_eq!(
            (code, out.as_str()),
            (0, "secret-data\nsecret-data\nro\n"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_bind_source_that_cannot_be_opened_fails_create() {
    for (name, rt) in runtimes() {
        let b = Bundle::new(&["true"]);
        userns_with_private_binds(&b, true);
        let (code, _, err) = run(&rt, &b, "mntsrc-missing");
        assert_eq!(code, 1, "{name}");
        assert!(
            err.contains("failed to open mount source")
                && err.contains("No such file or directory"),
            "{name}: {err}"
        );
    }
}
