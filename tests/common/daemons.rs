//! The two daemons the ctl's tests run every case against, shared by a test binary: ONE
//! private containerd 1.6 (tests/common/containerd.rs) and ONE private ociboxd
//! (tests/common/ociboxd.rs), each started the first time a case asks for it. A case gets
//! a namespace of its own (and sub-namespaces named after it), a scratch directory, and a
//! cleanup of both when it ends, also when it fails: its tasks killed and deleted, its
//! containers removed, its shims and cgroups gone. The daemons themselves are stopped and
//! their directories removed when the test process exits (an `atexit` handler: statics are
//! never dropped), so a second daemon does not mean a second start per case.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::containerd::{
    kill9, pids_with_namespace_flag, remove_namespace_leftovers, with_timeout, Containerd, Runtime,
};
use super::ociboxd::{unmount_under, Ociboxd};

/// For each case `NAME(which: Which)`: the tests `NAME::on_containerd` and
/// `NAME::on_ociboxd`, the same case on each daemon.
#[macro_export]
macro_rules! both_daemons {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            #[test]
            fn on_containerd() {
                super::$case($crate::common::daemons::Which::Containerd);
            }
            #[test]
            fn on_ociboxd() {
                super::$case($crate::common::daemons::Which::Ociboxd);
            }
        }
    )+};
}

/// Which daemon a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Debian's containerd 1.6.
    Containerd,
    /// ocibox's own daemon.
    Ociboxd,
}

/// A shared daemon: where it listens and its directory.
pub struct Daemon {
    pub which: Which,
    pub address: String,
    pub dir: PathBuf,
}

/// What is dropped at exit: the daemons' own guards and the scratch directory.
static KEEP: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());
/// Namespaces handed out and not yet cleaned (address, namespace).
static LIVE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// Every namespace named (cases' and their `sub`s): what their shims leave outside the
/// daemons' directories is removed once more at exit, after the daemons are gone (a
/// daemon's cleanup of a killed shim runs `runc delete`, which makes the runc root again).
static NAMED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CONTAINERD: OnceLock<Daemon> = OnceLock::new();
static OCIBOXD: OnceLock<Daemon> = OnceLock::new();
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
static BUSYBOX: OnceLock<PathBuf> = OnceLock::new();
static AT_EXIT: std::sync::Once = std::sync::Once::new();

extern "C" fn stop_everything() {
    // A panic must not cross the C boundary; what is left is best effort anyway.
    let _ = std::panic::catch_unwind(|| {
        let live: Vec<(String, String)> = std::mem::take(&mut *LIVE.lock().unwrap());
        for (address, ns) in live {
            clean_namespace(&address, &ns);
        }
        let keep: Vec<Box<dyn Send>> = std::mem::take(&mut *KEEP.lock().unwrap());
        // Last in, first out: the daemons before the scratch directory.
        for k in keep.into_iter().rev() {
            drop(k);
        }
        for ns in std::mem::take(&mut *NAMED.lock().unwrap()) {
            remove_namespace_leftovers(&ns);
        }
    });
}

fn at_exit() {
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that lives as long as the process.
        unsafe { libc::atexit(stop_everything) };
    });
}

/// A directory for what the cases of this process share (the busybox archive), removed
/// at exit.
fn scratch() -> &'static Path {
    SCRATCH.get_or_init(|| {
        at_exit();
        let dir = std::env::temp_dir().join(format!("ocibox-daemons-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                unmount_under(&self.0);
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        KEEP.lock().unwrap().push(Box::new(Remove(dir.clone())));
        dir
    })
}

/// scripts/make-busybox-image.sh's archive (every busybox applet), made once.
pub fn busybox_tar() -> &'static Path {
    BUSYBOX.get_or_init(|| {
        let tar = scratch().join("busybox.tar");
        super::make_busybox_image(&tar);
        tar
    })
}

/// The shared containerd 1.6.
pub fn containerd() -> &'static Daemon {
    CONTAINERD.get_or_init(|| {
        scratch();
        let c = Containerd::start(Runtime::RuncShimRunc);
        let d = Daemon {
            which: Which::Containerd,
            address: c.address.clone(),
            dir: c.dir.clone(),
        };
        KEEP.lock().unwrap().push(Box::new(c));
        d
    })
}

/// The shared ociboxd.
pub fn ociboxd() -> &'static Daemon {
    OCIBOXD.get_or_init(|| {
        scratch();
        let o = Ociboxd::start();
        let d = Daemon {
            which: Which::Ociboxd,
            address: o.address.display().to_string(),
            dir: o.dir.clone(),
        };
        KEEP.lock().unwrap().push(Box::new(o));
        d
    })
}

/// The daemon `which`.
pub fn daemon(which: Which) -> &'static Daemon {
    match which {
        Which::Containerd => containerd(),
        Which::Ociboxd => ociboxd(),
    }
}

impl Daemon {
    /// A fresh namespace (`<tag>-<pid>-<n>`) and scratch directory on this daemon.
    pub fn case(&'static self, tag: &str) -> Case {
        let namespace = super::unique(&format!("ctl-{tag}"));
        NAMED.lock().unwrap().push(namespace.clone());
        let dir = self.dir.join("cases").join(&namespace);
        std::fs::create_dir_all(&dir).unwrap();
        LIVE.lock()
            .unwrap()
            .push((self.address.clone(), namespace.clone()));
        Case {
            daemon: self,
            address: self.address.clone(),
            namespace,
            dir,
        }
    }

    pub fn name(&self) -> &'static str {
        match self.which {
            Which::Containerd => "containerd",
            Which::Ociboxd => "ociboxd",
        }
    }
}

/// One test case's part of a shared daemon.
pub struct Case {
    pub daemon: &'static Daemon,
    pub address: String,
    /// The case's namespace; `sub(x)` names more, cleaned the same way.
    pub namespace: String,
    /// A scratch directory (fifos, archives, mount targets), removed after the case.
    pub dir: PathBuf,
}

impl Case {
    /// `<namespace>-<which>`: a second namespace of this case.
    pub fn sub(&self, which: &str) -> String {
        let ns = format!("{}-{which}", self.namespace);
        let mut named = NAMED.lock().unwrap();
        if !named.contains(&ns) {
            named.push(ns.clone());
        }
        ns
    }

    /// Where ctr makes a task's stdio fifos (`--fifo-dir`): the case's directory.
    pub fn fifo_dir(&self) -> String {
        self.dir.join("fifo").display().to_string()
    }

    /// `ocibox ctr -a ADDR -n NS ARGS…` (own) or Debian's `ctr -a ADDR -n NS ARGS…`.
    pub fn cmd(&self, own: bool, ns: &str, args: &[&str]) -> Command {
        let mut c = if own {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ocibox"));
            c.arg("ctr");
            c
        } else {
            Command::new("ctr")
        };
        c.args(["-a", &self.address, "-n", ns])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `cmd` run to completion, killed after two minutes.
    pub fn run(&self, own: bool, ns: &str, args: &[&str]) -> Output {
        with_timeout(&mut self.cmd(own, ns, args), Duration::from_secs(120))
    }

    /// ocibox's ctr in namespace `ns`.
    pub fn own(&self, ns: &str, args: &[&str]) -> Output {
        self.run(true, ns, args)
    }

    /// Debian's ctr in namespace `ns`.
    pub fn real(&self, ns: &str, args: &[&str]) -> Output {
        self.run(false, ns, args)
    }

    /// The busybox archive imported into namespace `ns` by Debian's ctr.
    pub fn import_busybox(&self, ns: &str) {
        let out = self.run(
            false,
            ns,
            &["image", "import", busybox_tar().to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "import into {ns} on {}: {}",
            self.daemon.name(),
            super::containerd::text(&out)
        );
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let all = Command::new("ctr")
            .args(["-a", &self.address, "ns", "ls", "-q"])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut mine: Vec<String> = all
            .lines()
            .map(str::trim)
            .filter(|n| *n == self.namespace || n.starts_with(&format!("{}-", self.namespace)))
            .map(str::to_string)
            .collect();
        if !mine.contains(&self.namespace) {
            mine.push(self.namespace.clone());
        }
        for ns in &mine {
            clean_namespace(&self.address, ns);
        }
        LIVE.lock()
            .unwrap()
            .retain(|(a, n)| !(a == &self.address && n == &self.namespace));
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything a namespace's containers hold: tasks killed and deleted, containers removed,
/// shims killed, the runtime state and cgroups named after the namespace removed.
pub fn clean_namespace(address: &str, ns: &str) {
    let ctr = |args: &[&str]| -> String {
        let mut c = Command::new("ctr");
        c.args(["-a", address, "-n", ns])
            .args(args)
            .stdin(Stdio::null());
        String::from_utf8_lossy(&with_timeout(&mut c, Duration::from_secs(20)).stdout).into_owned()
    };
    let tasks = ctr(&["task", "ls", "-q"]);
    for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
        ctr(&["task", "kill", "-a", "-s", "KILL", id]);
    }
    if !tasks.trim().is_empty() {
        std::thread::sleep(Duration::from_millis(200));
    }
    for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
        ctr(&["task", "delete", "-f", id]);
    }
    for id in ctr(&["container", "ls", "-q"])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        ctr(&["container", "rm", id]);
    }
    for p in pids_with_namespace_flag(ns) {
        kill9(p);
    }
    remove_namespace_leftovers(ns);
}
