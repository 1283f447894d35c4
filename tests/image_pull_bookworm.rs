//! A real distribution image end to end: Debian bookworm minbase (mmdebstrap, ~8,700 entries:
//! hardlinks, symlinks, setuid files, device-less /dev, empty dirs) pushed with skopeo to a
//! loopback docker-registry, pulled by ocibox's ctl through ociboxd (the Transfer pull:
//! parallel download and unpack in the daemon) and by Debian's ctr 1.6 into containerd 1.6.
//! Both images are mounted with `ctr image mount` and walked: every path has the same type,
//! mode, owner, size, mtime, link target, hardlink grouping and file contents.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::containerd::{text, Containerd, Runtime};
use common::ociboxd::Ociboxd;
use common::registry::DockerRegistry;
use common::TempDir;
use sha2::{Digest as _, Sha256};

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The cached bookworm layout (`scripts/make-bookworm-image.sh`; builds it on first use).
fn bookworm_layout() -> PathBuf {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/make-bookworm-image.sh"
    ))
    .output()
    .expect("scripts/make-bookworm-image.sh");
    PathBuf::from(ok(out).trim())
}

/// What a user can see of one path.
#[derive(Debug, PartialEq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    link: Option<PathBuf>,
    sha256: Option<String>,
    /// The first path (in walk order) of the same inode, for hardlinks.
    same_as: Option<String>,
}

fn walk(root: &Path) -> BTreeMap<String, Entry> {
    fn go(
        root: &Path,
        dir: &Path,
        inodes: &mut BTreeMap<(u64, u64), String>,
        out: &mut BTreeMap<String, Entry>,
    ) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_file() {
                "file"
            } else {
                "other"
            };
            let mut same_as = None;
            if ft.is_file() && m.nlink() > 1 {
                let first = inodes
                    .entry((m.dev(), m.ino()))
                    .or_insert_with(|| rel.clone());
                if *first != rel {
                    same_as = Some(first.clone());
                }
            }
            let sha256 = ft.is_file().then(|| {
                let mut h = Sha256::new();
                let mut f = std::fs::File::open(&p).unwrap();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                format!("{:x}", h.finalize())
            });
            out.insert(
                rel,
                Entry {
                    kind,
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                    size: if ft.is_dir() { 0 } else { m.size() },
                    mtime: m.mtime(),
                    link: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                    sha256,
                    same_as,
                },
            );
            if ft.is_dir() {
                go(root, &p, inodes, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut BTreeMap::new(), &mut out);
    out
}

/// Unmounts a `ctr image mount` target when dropped (also on a failed assertion).
struct Mounted<'a> {
    ctr: &'a dyn Fn(&[&str]) -> Output,
    target: PathBuf,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = (self.ctr)(&["image", "unmount", "--rm", self.target.to_str().unwrap()]);
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.target)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn bookworm_pulled_by_ocibox_through_ociboxd_is_containerds_tree() {
    let layout = bookworm_layout();
    let reg = DockerRegistry::start(Default::default());
    let name = format!("{}/debian:bookworm", reg.host());
    let st = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:bookworm", layout.display()))
        .arg(format!("docker://{name}"))
        .status()
        .unwrap();
    assert!(st.success(), "skopeo copy");
    let work = TempDir::new("bookworm");

    let o = Ociboxd::start();
    let out = ok(o.own_ctr(&["image", "pull", "--plain-http", &name]));
    assert!(out.contains("unpacking linux/amd64 sha256:"), "{out}");
    assert!(
        o.log().contains("transfer: pull "),
        "the pull ran in the daemon:\n{}",
        o.log()
    );
    let c = Containerd::start(Runtime::Runc);
    ok(c.ctr(&["image", "pull", "--plain-http", &name]));

    let octr = |args: &[&str]| o.ctr(args);
    let cctr = |args: &[&str]| c.ctr(args);
    let (ot, ct) = (work.path().join("ocibox"), work.path().join("containerd"));
    std::fs::create_dir_all(&ot).unwrap();
    std::fs::create_dir_all(&ct).unwrap();
    ok(octr(&["image", "mount", &name, ot.to_str().unwrap()]));
    let _om = Mounted {
        ctr: &octr,
        target: ot.clone(),
    };
    ok(cctr(&["image", "mount", &name, ct.to_str().unwrap()]));
    let _cm = Mounted {
        ctr: &cctr,
        target: ct.clone(),
    };

    let (ours, theirs) = (walk(&ot), walk(&ct));
    assert!(
        theirs.len() > 5000,
        "a whole Debian: {} entries",
        theirs.len()
    );
    assert!(theirs.get("usr/bin/bash").is_some_and(|e| e.kind == "file"));
    let differ: Vec<String> = theirs
        .iter()
        .filter(|(p, e)| ours.get(*p) != Some(e))
        .map(|(p, e)| format!("{p}: containerd {e:?}, ocibox {:?}", ours.get(p)))
        .chain(
            ours.keys()
                .filter(|p| !theirs.contains_key(*p))
                .map(|p| format!("{p}: only in ocibox's")),
        )
        .take(20)
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
