//! The ocibox multi-call binary: one applet table, busybox style.
//!
//! `basename(argv[0])` picks the applet; `ocibox APPLET ARGS…` works too. The internal
//! init applet is checked before anything else runs, because entering a user namespace
//! fails once a process has a second thread.

#[cfg(feature = "ctl")]
mod ctl;
#[cfg(feature = "daemon")]
mod daemon;
#[cfg(feature = "runtime")]
mod init;
#[cfg(feature = "runtime")]
mod runtime;
#[cfg(feature = "shim")]
mod shim;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// One row of the applet table: the applet, the names it answers to, its entry point.
struct Applet {
    name: &'static str,
    links: &'static [&'static str],
    main: fn(&str, Vec<OsString>) -> ExitCode,
    about: &'static str,
}

/// The applet table. The first link name of each row is the one users type most; a row is
/// there only when its cargo feature is built in.
const APPLETS: &[Applet] = &[
    #[cfg(feature = "runtime")]
    Applet {
        name: "runtime",
        links: &["runc", "ocibox-runtime"],
        main: runtime::main,
        about: "OCI runtime (runc-compatible)",
    },
    #[cfg(feature = "shim")]
    Applet {
        name: "shim",
        links: &["containerd-shim-ocibox-v2", "ocibox-shim"],
        main: shim::main,
        about: "containerd shim v2 (task v2 API over ttrpc)",
    },
    #[cfg(feature = "daemon")]
    Applet {
        name: "daemon",
        links: &["ociboxd"],
        main: daemon::main,
        about: "container daemon (containerd resource model)",
    },
    #[cfg(feature = "ctl")]
    Applet {
        name: "ctl",
        links: &["ctr", "ocibox-ctl"],
        main: ctl::main,
        about: "client (ctr-compatible)",
    },
];

fn find_applet(name: &str) -> Option<&'static Applet> {
    APPLETS
        .iter()
        .find(|a| a.name == name || a.links.contains(&name))
}

fn basename(arg0: &OsString) -> String {
    Path::new(arg0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    // Init first: no thread, no logger, no allocation-heavy work before this branch.
    #[cfg(feature = "runtime")]
    if let Some(code) = init::enter_if_init() {
        return code;
    }
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.is_empty() {
        eprintln!("ocibox: no argv[0]");
        return ExitCode::from(1);
    }
    let arg0 = args.remove(0);
    let invoked = basename(&arg0);
    if invoked == "ocibox" || invoked.starts_with("ocibox.") {
        return multicall(args);
    }
    match find_applet(&invoked) {
        Some(applet) => (applet.main)(&invoked, args),
        None => {
            eprintln!("ocibox: applet not found: {invoked}");
            ExitCode::from(1)
        }
    }
}

/// `ocibox ARGS…`: `--list`, `--install [-s] DIR`, `--version`, `--help`, or `APPLET ARGS…`.
fn multicall(mut args: Vec<OsString>) -> ExitCode {
    let Some(first) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        usage();
        return ExitCode::from(1);
    };
    match first.as_str() {
        "--list" | "-l" => {
            for a in APPLETS {
                println!("{}\t{}", a.name, a.links.join(" "));
            }
            ExitCode::SUCCESS
        }
        "--install" => install(&args[1..]),
        "--version" | "-v" => {
            println!("ocibox version {}", ocibox::VERSION);
            ExitCode::SUCCESS
        }
        "--help" | "-h" | "help" => {
            usage();
            ExitCode::SUCCESS
        }
        name => match find_applet(name) {
            Some(applet) => {
                args.remove(0);
                // Behave as if called through the applet's primary link name.
                (applet.main)(applet.links[0], args)
            }
            None => {
                eprintln!("ocibox: applet not found: {name}");
                ExitCode::from(1)
            }
        },
    }
}

fn usage() {
    println!(
        "ocibox {} — one executable, a whole container stack\n",
        ocibox::VERSION
    );
    println!("Usage: ocibox APPLET [ARGS…]   or call it through a link named after the applet");
    println!("       ocibox --list | --install [-s] DIR | --version\n");
    println!("Applets:");
    for a in APPLETS {
        println!(
            "  {:<8} {:<44} links: {}",
            a.name,
            a.about,
            a.links.join(", ")
        );
    }
}

/// `--install [-s] DIR`: a hard link (or a symlink with `-s`) for every link name.
fn install(args: &[OsString]) -> ExitCode {
    let mut symlink = false;
    let mut dir = None;
    for a in args {
        match a.to_str() {
            Some("-s") => symlink = true,
            _ if dir.is_none() => dir = Some(std::path::PathBuf::from(a)),
            _ => {
                eprintln!("ocibox: --install: unexpected argument {a:?}");
                return ExitCode::from(1);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("ocibox: --install needs a directory");
        return ExitCode::from(1);
    };
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ocibox: --install: resolve /proc/self/exe: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("ocibox: --install: create {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    for link in APPLETS.iter().flat_map(|a| a.links.iter()) {
        let path = dir.join(link);
        // Replace what is there, like `ln -f`: a re-install must not fail.
        let _ = std::fs::remove_file(&path);
        let made = if symlink {
            std::os::unix::fs::symlink(&exe, &path)
        } else {
            std::fs::hard_link(&exe, &path)
        };
        if let Err(e) = made {
            eprintln!("ocibox: --install: link {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
