//! The multi-call binary: dispatch by link name, --install, --list, static linking.

mod common;
use common::*;
use std::process::Command;

/// Every link name with whether this build has its applet (applets are cargo features).
const LINKS: &[(&str, bool)] = &[
    ("runc", cfg!(feature = "runtime")),
    ("ocibox-runtime", cfg!(feature = "runtime")),
    ("containerd-shim-ocibox-v2", cfg!(feature = "shim")),
    ("ocibox-shim", cfg!(feature = "shim")),
    ("ociboxd", cfg!(feature = "daemon")),
    ("ctr", cfg!(feature = "ctl")),
    ("ocibox-ctl", cfg!(feature = "ctl")),
];

fn built(name: &str) -> bool {
    LINKS.iter().any(|(n, b)| *n == name && *b)
}

#[test]
fn install_symlinks_dispatch_to_their_applets() {
    let dir = TempDir::new("ocibox-links");
    let out = Command::new(bin())
        .args(["--install", "-s"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |name: &str, arg: &str| {
        let link = dir.path().join(name);
        assert!(
            link.symlink_metadata().unwrap().file_type().is_symlink(),
            "{name}"
        );
        Command::new(&link).arg(arg).output().unwrap()
    };
    let v = run("runc", "--version");
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("runc version "), "{}", stdout(&v));
    assert!(stdout(&v).contains("\nspec: 1."));
    if built("ctr") {
        let h = run("ctr", "--help");
        assert!(h.status.success());
        assert!(stdout(&h).contains("ctr"), "{}", stdout(&h));
    }
    if built("ociboxd") {
        let h = run("ociboxd", "--help");
        assert!(h.status.success());
        assert!(stdout(&h).contains("ociboxd"));
    }
    if built("containerd-shim-ocibox-v2") {
        let h = run("containerd-shim-ocibox-v2", "--help");
        assert!(h.status.success(), "{}", stderr(&h));
        assert!(stdout(&h).contains("-namespace"), "{}", stdout(&h));
    }
    // --install makes links for exactly the applets this build has.
    for (name, has) in LINKS {
        assert_eq!(dir.path().join(name).exists(), *has, "{name}");
    }
}

#[test]
fn install_hard_links_by_default_and_is_repeatable() {
    let dir = TempDir::new("ocibox-hardlinks");
    for _ in 0..2 {
        let st = Command::new(bin())
            .arg("--install")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let meta = std::fs::symlink_metadata(dir.path().join("runc")).unwrap();
    assert!(meta.file_type().is_file());
    let out = Command::new(dir.path().join("runc"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn list_and_unknown_applet() {
    let out = Command::new(bin()).arg("--list").output().unwrap();
    let text = stdout(&out);
    for (name, has) in LINKS {
        assert_eq!(text.contains(name), *has, "{name}: {text}");
    }
    // A link name of an applet this build leaves out is not found.
    for (name, _) in LINKS.iter().filter(|(_, has)| !has) {
        let out = Command::new(bin()).arg(name).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains("applet not found"), "{name}");
    }
    let out = Command::new(bin()).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ocibox: applet not found: frobnicate"));
    let dir = TempDir::new("ocibox-badlink");
    let link = dir.path().join("not-an-applet");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let out = Command::new(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("applet not found: not-an-applet"));
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(stdout(&out).starts_with("ocibox version "));
}

/// The release binary has no interpreter and no shared library dependencies.
#[test]
fn release_binary_is_static() {
    let release = bin()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("release/ocibox");
    let path = if release.exists() { release } else { bin() };
    let data = std::fs::read(&path).unwrap();
    let (interp, needed) = elf_dynamic_facts(&data);
    assert!(!interp, "{} has a PT_INTERP", path.display());
    assert_eq!(needed, 0, "{} has DT_NEEDED entries", path.display());
}

/// (has PT_INTERP, number of DT_NEEDED) of an ELF64 little-endian file.
fn elf_dynamic_facts(d: &[u8]) -> (bool, usize) {
    assert_eq!(&d[..4], b"\x7fELF");
    assert_eq!(d[4], 2, "ELF64");
    let u16_at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(d[ph..ph + 4].try_into().unwrap());
        match p_type {
            3 => interp = true,
            2 => {
                let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
                for e in (off..off + size).step_by(16) {
                    let tag = u64_at(e);
                    if tag == 0 {
                        break;
                    }
                    if tag == 1 {
                        needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}
