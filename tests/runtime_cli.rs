//! The runtime's command line, logs and the messages callers grep for, each case run
//! against ocibox and against Debian's runc 1.1.5 (/usr/sbin/runc) in the same test:
//! what a script reads from runc (exit codes, first lines, message substrings) it must
//! read from ocibox too.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const RUNC: &str = "/usr/sbin/runc";

/// Both runtimes, ocibox first. Each with its own root; containers are deleted on drop.
fn both() -> [(&'static str, Runtime); 2] {
    [
        ("ocibox", Runtime::new()),
        ("runc", Runtime::with_binary(Path::new(RUNC))),
    ]
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

fn wait_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.status(id) != want {
        assert!(Instant::now() < deadline, "{id} never became {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A detached container running `args` from a `runc spec` busybox bundle.
fn running(rt: &Runtime, b: &Bundle, prefix: &str) -> String {
    let id = unique(prefix);
    rt.create(&id, b);
    rt.ok(&["start", &id]);
    id
}

// ---- item 9: help ---------------------------------------------------------------------

/// What a script reads from a help or usage answer: the status, the first lines of
/// stdout, the flag names listed, and whether stderr is empty.
fn help_view(o: &Output) -> (Option<i32>, Vec<String>, Vec<String>, bool) {
    let out = stdout(o);
    let first: Vec<String> = out.lines().take(5).map(str::to_string).collect();
    let mut flags: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("   -"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    flags.sort();
    (code(o), first, flags, stderr(o).is_empty())
}

#[test]
fn help_answers_as_runcs() {
    let [(_, own), (_, runc)] = both();
    let cases: &[&[&str]] = &[
        &[],
        &["-h"],
        &["--help"],
        &["help"],
        &["h"],
        &["create", "-h"],
        &["create", "--help", "x"],
        &["help", "create"],
        &["h", "kill"],
        &["run", "-h"],
        &["start", "-h"],
        &["state", "-h"],
        &["kill", "-h"],
        &["delete", "-h"],
        &["exec", "-h"],
        &["ps", "-h"],
        &["events", "-h"],
        &["pause", "-h"],
        &["resume", "-h"],
        &["update", "-h"],
        &["list", "-h"],
        &["checkpoint", "-h"],
        &["restore", "-h"],
    ];
    for args in cases {
        let (a, b) = (own.run(args), runc.run(args));
        let (va, vb) = (help_view(&a), help_view(&b));
        assert_eq!(va.0, Some(0), "ocibox {args:?}: {}", text(&a));
        // The NAME block (and for commands the USAGE line) are runc's.
        let n = if args.is_empty() || args.len() == 1 && args[0] != "help" {
            2
        } else {
            5
        };
        let n = n.min(va.1.len()).min(vb.1.len()).max(2);
        assert_eq!(
            va.1[..n],
            vb.1[..n],
            "{args:?}\nocibox: {}\nrunc: {}",
            text(&a),
            text(&b)
        );
        // Every flag runc lists (the global ones, or the command's: checkpoint's and
        // restore's whole sets, exec's --cgroup), ocibox lists too, and no other.
        assert_eq!(va.2, vb.2, "flags of {args:?}");
        assert_eq!(
            (va.0, va.3),
            (vb.0, vb.3),
            "{args:?}\nocibox: {}\nrunc: {}",
            text(&a),
            text(&b)
        );
    }
}

#[test]
fn unknown_commands_and_usage_errors_answer_as_runcs() {
    let [(_, own), (_, runc)] = both();
    // (args, what stderr must say in both)
    let cases: &[(&[&str], &str)] = &[
        (&["foo", "-h"], "No help topic for 'foo'"),
        (&["help", "foo"], "No help topic for 'foo'"),
        (&["foo"], "No help topic for 'foo'"),
        (&["create"], "\\\"create\\\" requires exactly 1 argument(s)"),
        (
            &["start", "a", "b"],
            "\\\"start\\\" requires exactly 1 argument(s)",
        ),
        (
            &["kill"],
            "\\\"kill\\\" requires a minimum of 1 argument(s)",
        ),
        (
            &["kill", "a", "b", "c"],
            "\\\"kill\\\" requires a maximum of 2 argument(s)",
        ),
        (
            &["list", "x"],
            "\\\"list\\\" requires exactly 0 argument(s)",
        ),
        (
            &["checkpoint"],
            "\\\"checkpoint\\\" requires exactly 1 argument(s)",
        ),
        (
            &["create", "--bogus", "x"],
            "flag provided but not defined: -bogus",
        ),
        (
            &["--bogus", "list"],
            "flag provided but not defined: -bogus",
        ),
        (
            &["--log-format", "yaml", "list"],
            "invalid log-format: yaml",
        ),
        (&["create", "--bundle"], "flag needs an argument: -bundle"),
        (
            &["create", "--preserve-fds", "abc", "x"],
            "invalid value \\\"abc\\\" for flag -preserve-fds: parse error",
        ),
        (
            &["--log", "/nonexistent/dir/log", "list"],
            "open /nonexistent/dir/log: no such file or directory",
        ),
    ];
    for (args, needle) in cases {
        let (a, b) = (own.run(args), runc.run(args));
        assert_eq!(
            code(&a),
            code(&b),
            "{args:?}\nocibox: {}\nrunc: {}",
            text(&a),
            text(&b)
        );
        for (who, o) in [("ocibox", &a), ("runc", &b)] {
            assert!(stderr(o).contains(needle), "{who} {args:?}: {}", text(o));
        }
        // Usage errors print "Incorrect Usage" and the command's help on stdout.
        let first = |o: &Output| stdout(o).lines().next().map(str::to_string);
        assert_eq!(
            first(&a),
            first(&b),
            "{args:?}\nocibox: {}\nrunc: {}",
            text(&a),
            text(&b)
        );
    }
}

// ---- item 9: logs ---------------------------------------------------------------------

#[test]
fn log_file_is_created_at_start() {
    for (who, rt) in both() {
        let dir = TempDir::new("cli-log");
        let log = dir.path().join("log.out");
        let out = rt.run(&["--log", log.to_str().unwrap(), "list"]);
        assert!(out.status.success(), "{who}: {}", text(&out));
        let meta = std::fs::metadata(&log).unwrap_or_else(|e| panic!("{who}: no log file: {e}"));
        assert_eq!(meta.len(), 0, "{who}: nothing was to be logged");
    }
}

#[test]
fn debug_writes_level_debug_lines() {
    let b = Bundle::from_real_runc(&["/bin/echo", "Hello World"]);
    for (who, rt) in both() {
        for format in ["text", "json"] {
            let dir = TempDir::new("cli-debug");
            let log = dir.path().join("log.out");
            let id = unique("dbg");
            rt.track(&id);
            let out = rt.run(&[
                "--log",
                log.to_str().unwrap(),
                "--log-format",
                format,
                "--debug",
                "run",
                "--bundle",
                b.path().to_str().unwrap(),
                &id,
            ]);
            assert!(out.status.success(), "{who}: {}", text(&out));
            assert_eq!(stdout(&out), "Hello World\n", "{who}");
            assert!(!stderr(&out).contains("debug"), "{who}: {}", text(&out));
            let logged = std::fs::read_to_string(&log).unwrap();
            let level = if format == "json" {
                "\"level\":\"debug\""
            } else {
                "level=debug"
            };
            // runc's own tests (debug.bats) look for these.
            for needle in [
                level,
                "nsexec container setup",
                "child process in init()",
                "init: closing the pipe to signal completion",
            ] {
                assert!(
                    logged.contains(needle),
                    "{who} {format}: {needle:?} in\n{logged}"
                );
            }
        }
        // Without --log the debug lines go to stderr.
        let id = unique("dbg");
        rt.track(&id);
        let out = rt.run(&[
            "--debug",
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            &id,
        ]);
        assert!(out.status.success(), "{who}: {}", text(&out));
        assert!(
            stderr(&out).contains("level=debug"),
            "{who}: {}",
            text(&out)
        );
    }
}

// ---- item 9: kill, ps, exec -p ----------------------------------------------------------

#[test]
fn kill_takes_signal_numbers_as_runc_does() {
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    let mut seen = Vec::new();
    for (who, rt) in both() {
        let id = running(&rt, &b, "kill");
        let mut view = Vec::new();
        for args in [
            &["kill", &id, "0"][..],
            &["kill", "--all", &id, "0"],
            &["kill", &id, "99"],
            &["kill", "--all", &id, "99"],
            &["kill", &id, "SIGFOO"],
        ] {
            let o = rt.run(args);
            let err = stderr(&o);
            let words = [
                "unable to signal init: invalid argument",
                "level=warning msg=\"invalid argument\"",
                "unknown signal \\\"SIGFOO\\\"",
            ]
            .iter()
            .filter(|w| err.contains(*w))
            .map(|w| w.to_string())
            .collect::<Vec<_>>();
            view.push((code(&o), words));
        }
        assert_eq!(rt.status(&id), "running", "{who}: signal 0 only probes");
        // A stopped container: signal 0 says it is not running; --all is quiet.
        rt.ok(&["kill", &id, "KILL"]);
        wait_status(&rt, &id, "stopped");
        let o = rt.run(&["kill", &id, "0"]);
        view.push((
            code(&o),
            vec![stderr(&o).contains("container not running").to_string()],
        ));
        let o = rt.run(&["kill", "--all", &id, "0"]);
        view.push((code(&o), vec![]));
        seen.push((who, view));
    }
    assert_eq!(seen[0].1, seen[1].1, "ocibox vs runc: {seen:#?}");
    assert_eq!(seen[0].1[0].0, Some(0), "kill ID 0 succeeds");
    assert_eq!(seen[0].1[1].0, Some(0), "kill --all ID 0 succeeds");
}

#[test]
fn ps_of_a_stopped_container_answers() {
    let b = Bundle::from_real_runc(&["true"]);
    let mut seen = Vec::new();
    for (who, rt) in both() {
        let id = running(&rt, &b, "ps");
        wait_status(&rt, &id, "stopped");
        let table = rt.run(&["ps", &id]);
        let json = rt.run(&["ps", "--format", "json", &id]);
        let header = stdout(&table)
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        seen.push((
            who,
            code(&table),
            stdout(&table).lines().count(),
            header,
            code(&json),
            stdout(&json),
        ));
    }
    let strip = |s: &(&str, Option<i32>, usize, String, Option<i32>, String)| {
        (s.1, s.2, s.3.clone(), s.4, s.5.clone())
    };
    assert_eq!(strip(&seen[0]), strip(&seen[1]), "{seen:#?}");
    assert_eq!(strip(&seen[0]).4, "null\n");
}

#[test]
fn exec_process_json_without_user_runs_as_root() {
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    let mut seen = Vec::new();
    for (who, rt) in both() {
        let id = running(&rt, &b, "execp");
        let dir = TempDir::new("cli-proc");
        let p = dir.path().join("process.json");
        std::fs::write(
            &p,
            json!({"args": ["/bin/sh", "-c", "id -u; id -g"], "cwd": "/"}).to_string(),
        )
        .unwrap();
        let ok = rt.run(&["exec", "--process", p.to_str().unwrap(), &id]);
        std::fs::write(&p, json!({"args": ["/bin/id"]}).to_string()).unwrap();
        let no_cwd = rt.run(&["exec", "-p", p.to_str().unwrap(), &id]);
        seen.push((
            who,
            code(&ok),
            stdout(&ok),
            code(&no_cwd),
            stderr(&no_cwd).contains("Cwd property must not be empty"),
        ));
    }
    assert_eq!(seen[0].1, Some(0), "{seen:?}");
    assert_eq!(seen[0].2, "0\n0\n");
    let strip = |s: &(&str, Option<i32>, String, Option<i32>, bool)| (s.1, s.2.clone(), s.3, s.4);
    assert_eq!(strip(&seen[0]), strip(&seen[1]), "{seen:?}");
}

// ---- item 9: checkpoint / restore ---------------------------------------------------------

#[test]
fn checkpoint_and_restore_fail_as_runc_does_without_criu() {
    assert!(
        !Path::new("/usr/sbin/criu").exists() && !Path::new("/usr/bin/criu").exists(),
        "this test expects a host without criu"
    );
    let b = Bundle::from_real_runc(&["sleep", "1000"]);
    let missing =
        "CRIU version check failed: exec: \\\"criu\\\": executable file not found in $PATH";
    let mut seen = Vec::new();
    for (who, rt) in both() {
        // runc writes ./checkpoint before it finds criu missing: run where that is harmless.
        let cwd = TempDir::new("cli-criu");
        let run_in = |args: &[&str]| {
            rt.command(args)
                .current_dir(cwd.path())
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let created = unique("ckpt");
        rt.create(&created, &b);
        let id = running(&rt, &b, "ckpt");
        let mut view = Vec::new();
        let o = run_in(&["checkpoint", &created]);
        view.push((
            code(&o),
            stderr(&o).contains("Container cannot be checkpointed in created state"),
        ));
        let o = run_in(&["checkpoint", &id]);
        view.push((code(&o), stderr(&o).contains(missing)));
        let o = run_in(&[
            "checkpoint",
            "--leave-running",
            "--tcp-established",
            "--image-path",
            "img",
            &id,
        ]);
        view.push((code(&o), stderr(&o).contains(missing)));
        let o = run_in(&["--criu", "/nonexistent/criu", "checkpoint", &id]);
        view.push((
            code(&o),
            stderr(&o).contains(
                "CRIU version check failed: fork/exec /nonexistent/criu: no such file or directory",
            ),
        ));
        let o = run_in(&["checkpoint", "--manage-cgroups-mode", "bogus", &id]);
        view.push((code(&o), stderr(&o).contains("Invalid manage cgroups mode")));
        let new_id = unique("rst");
        rt.track(&new_id);
        let o = run_in(&[
            "restore",
            "--bundle",
            b.path().to_str().unwrap(),
            "--detach",
            &new_id,
        ]);
        view.push((code(&o), stderr(&o).contains(missing)));
        let o = run_in(&["restore", "-b", b.path().to_str().unwrap(), &id]);
        view.push((
            code(&o),
            stderr(&o).contains("container with given ID already exists"),
        ));
        let o = run_in(&["restore", &new_id]);
        view.push((code(&o), stderr(&o).contains("config.json not found")));
        // The container is still there and running after the failed checkpoint.
        assert_eq!(rt.status(&id), "running", "{who}");
        seen.push((who, view));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:#?}");
    assert!(
        seen[0].1.iter().all(|(c, found)| *c == Some(1) && *found),
        "{seen:#?}"
    );
}

// ---- item 10: messages ----------------------------------------------------------------------

/// `run` of a bundle edited by `f`; its exit status and stderr.
fn run_bundle(rt: &Runtime, b: &Bundle) -> (Option<i32>, String) {
    let id = unique("msg");
    rt.track(&id);
    let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    (code(&o), stderr(&o))
}

#[test]
fn hook_failures_read_as_runcs() {
    let hook = |point: &str, h: serde_json::Value| {
        let b = Bundle::from_real_runc(&["true"]);
        b.edit(|c| c["hooks"] = json!({ point: [h] }));
        b
    };
    let cases = [
        (
            hook("prestart", json!({"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; exit 1"]})),
            "unable to start container process: error during container init: \
             error running hook #0: error running hook: exit status 1, stdout: out\\n, stderr: err\\n",
        ),
        (
            hook("createRuntime", json!({"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]})),
            "error running hook #0: error running hook: signal: killed, stdout: , stderr: ",
        ),
        (
            hook("createRuntime", json!({"path": "/nonexistent-hook"})),
            "error running hook #0: fork/exec /nonexistent-hook: no such file or directory",
        ),
        (
            hook("prestart", json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1})),
            "error running hook #0: hook ran past specified timeout of 1.0s",
        ),
        (
            hook("poststart", json!({"path": "/bin/false"})),
            "error running hook #0: error running hook: exit status 1, stdout: , stderr: ",
        ),
        // A failing poststop hook is logged and the run still succeeds.
        (
            hook("poststop", json!({"path": "/bin/false"})),
            "error running hook #0: error running hook: exit status 1, stdout: , stderr: ",
        ),
    ];
    for (b, needle) in &cases {
        let mut codes = Vec::new();
        for (who, rt) in both() {
            let (c, err) = run_bundle(&rt, b);
            assert!(err.contains(needle), "{who}: {needle:?} not in {err}");
            codes.push(c);
        }
        assert_eq!(codes[0], codes[1], "{needle}");
    }
}

#[test]
fn proc_on_a_symlink_or_file_reads_as_runcs() {
    for make in ["symlink", "file"] {
        let b = Bundle::from_real_runc(&["true"]);
        let proc_ = b.rootfs().join("proc");
        std::fs::remove_dir(&proc_).unwrap();
        if make == "symlink" {
            std::os::unix::fs::symlink("/tmp", &proc_).unwrap();
        } else {
            std::fs::write(&proc_, "").unwrap();
        }
        for (who, rt) in both() {
            let (c, err) = run_bundle(&rt, &b);
            assert_eq!(c, Some(1), "{who}: {err}");
            assert!(
                err.contains("error during container init: "),
                "{who}: {err}"
            );
            assert!(
                err.contains("filesystem \\\"proc\\\" must be mounted on ordinary directory"),
                "{who} {make}: {err}"
            );
        }
    }
}

#[test]
fn unreachable_seccomp_agent_reads_as_runcs() {
    let b = Bundle::from_real_runc(&["true"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/nonexistent/agent.sock",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })
    });
    for (who, rt) in both() {
        let (c, err) = run_bundle(&rt, &b);
        assert_eq!(c, Some(1), "{who}: {err}");
        assert!(
            err.contains(
                "failed to connect with seccomp agent specified in the seccomp profile: \
                 dial unix /nonexistent/agent.sock: connect: no such file or directory"
            ),
            "{who}: {err}"
        );
    }
}

#[test]
fn missing_executable_reads_as_runcs() {
    let b = Bundle::from_real_runc(&["/x"]);
    let running_b = Bundle::from_real_runc(&["sleep", "1000"]);
    for (who, rt) in both() {
        let (c, err) = run_bundle(&rt, &b);
        assert_eq!(c, Some(1), "{who}: {err}");
        // runc 1.1.5's words; ocibox adds newer runc's `exec /x: no such file or
        // directory` in the same message.
        assert!(
            err.contains("exec: \\\"/x\\\": stat /x: no such file or directory"),
            "{who}: {err}"
        );
        if who == "ocibox" {
            assert!(err.contains("exec /x: no such file or directory"), "{err}");
        }
        let id = running(&rt, &running_b, "nox");
        let o = rt.run(&["exec", &id, "/x"]);
        assert_eq!(code(&o), Some(255), "{who}: {}", text(&o));
        assert!(
            stderr(&o).contains("exec failed: unable to start container process: exec: \\\"/x\\\": stat /x: no such file or directory"),
            "{who}: {}",
            text(&o)
        );
    }
}
