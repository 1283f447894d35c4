//! Real layers: what unpack makes matches GNU tar's own extraction (modes, owners, mtimes,
//! xattrs, devices, hardlinks), zstd and gzip blobs digest right, a busybox rootfs layer runs
//! as a container, and three layers unpacked in parallel stack into overlay and native
//! snapshots whose mounts (made for real in a private mount namespace) show the whiteouts.

mod common;
mod unpack_support;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use common::{Bundle, Runtime, TempDir};
use ocibox::image::chain_id::chain_ids;
use ocibox::linux::mount::{mount_all, unmount_all};
use ocibox::snapshot::{Kind, Snapshotter};
use ocibox::unpack::{unpack_layer, Compression, ParallelUnpack, UnpackOptions};
use unpack_support::*;

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree with one of everything a layer carries.
fn make_source(src: &Path) {
    let s = src.display();
    sh(&format!(
        "set -e; cd {s}; mkdir -p etc dir/sub; echo hello > etc/file; chown 1000:2000 etc/file; \
         chmod 4755 etc/file; ln etc/file etc/hard; ln -s ../etc/file dir/link; \
         ln -s /nonexistent/abs dir/abslink; mknod dir/null c 1 3; mknod dir/blk b 7 0; \
         mkfifo dir/fifo; chmod 0750 dir/sub; chown 5:6 dir/sub; \
         touch -h -d '2001-02-03 04:05:06' dir/link; touch -d '2002-03-04 05:06:07' etc/file dir/sub dir etc; \
         touch -d '1999-01-01 00:00:00' dir/fifo dir/null"
    ));
}

/// (type, mode, uid, gid, mtime, size, rdev, link target, user xattrs, nlink) per path.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let p = root.join(&r);
            let m = p.symlink_metadata().unwrap();
            let ft = m.file_type();
            let link = if ft.is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            let content = if ft.is_file() {
                format!("{:?}", std::fs::read(&p).unwrap().len())
            } else {
                String::new()
            };
            let xattr = if ft.is_symlink() {
                String::new()
            } else {
                user_xattrs(&p)
            };
            out.insert(
                r.display().to_string(),
                format!(
                    "dir={} chr={} blk={} fifo={} mode={:o} uid={} gid={} mtime={} size={content} rdev={} link={link} xattr={xattr} nlink={}",
                    ft.is_dir(), ft.is_char_device(), ft.is_block_device(), ft.is_fifo(),
                    m.mode(), m.uid(), m.gid(), m.mtime(), m.rdev(), m.nlink()
                ),
            );
            if ft.is_dir() {
                stack.push(r);
            }
        }
    }
    out
}

/// `name="value"` for each user.* xattr of `p` (not following a symlink).
fn user_xattrs(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 64 << 10];
    // SAFETY: NUL-terminated path, live buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = Vec::new();
    for name in names[..n.max(0) as usize].split(|&b| b == 0) {
        if !name.starts_with(b"user.") {
            continue;
        }
        let cn = std::ffi::CString::new(name).unwrap();
        let mut v = vec![0u8; 64 << 10];
        // SAFETY: NUL-terminated path and name, live buffer of the given length.
        let len =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        v.truncate(len.max(0) as usize);
        out.push(format!(
            "{}=\"{}\"",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(&v)
        ));
    }
    out.sort();
    out.join(",")
}

fn set_user_xattr(p: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated path and name; the value slice is live for the call.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn unpack_matches_gnu_tar() {
    let t = TempDir::new("ocibox-unpack-gnutar");
    let (src, ours, theirs) = (
        t.path().join("src"),
        t.path().join("ours"),
        t.path().join("theirs"),
    );
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    make_source(&src);
    set_user_xattr(&src.join("etc/file"), "user.test", b"hello");
    let tarball = t.path().join("layer.tar");
    sh(&format!(
        "tar --format=posix --xattrs --xattrs-include='*' --numeric-owner -cf {} -C {} .",
        tarball.display(),
        src.display()
    ));
    sh(&format!(
        "tar --xattrs --xattrs-include='*' --numeric-owner --same-owner -p -xf {} -C {}",
        tarball.display(),
        theirs.display()
    ));
    let tar = std::fs::read(&tarball).unwrap();
    let info = unpack_layer(Cursor::new(&tar), &ours, &UnpackOptions::default()).unwrap();
    assert_eq!(info.diff_id, sha256(&tar));
    let (a, b) = (describe(&ours), describe(&theirs));
    assert!(
        a.get("etc/file")
            .unwrap()
            .contains("xattr=user.test=\"hello\""),
        "{a:#?}"
    );
    assert!(
        a.get("etc/file")
            .unwrap()
            .contains("mode=104755 uid=1000 gid=2000"),
        "{a:#?}"
    );
    assert!(a.get("dir/null").unwrap().contains("chr=true"), "{a:#?}");
    for (k, v) in &b {
        assert_eq!(a.get(k), Some(v), "{k} differs from GNU tar's");
    }
    assert_eq!(a.len(), b.len(), "ours {a:#?}\ntheirs {b:#?}");
}

#[test]
fn zstd_gzip_and_plain_blobs_digest_right() {
    let tar = TarBuilder::new()
        .dir("d", 0o755)
        .file("d/f", 0o644, &vec![3u8; 300_000])
        .finish();
    let zst = zstd::encode_all(Cursor::new(&tar), 3).unwrap();
    let gz = gzip(&tar);
    let t = TempDir::new("ocibox-unpack-comp");
    for (i, (blob, c)) in [
        (&zst, Compression::Auto),
        (&zst, Compression::Zstd),
        (&gz, Compression::Auto),
        (&gz, Compression::Gzip),
        (&tar, Compression::Auto),
    ]
    .into_iter()
    .enumerate()
    {
        let dest = t.path().join(format!("l{i}"));
        let o = UnpackOptions {
            compression: c,
            expected_diff_id: Some(sha256(&tar)),
            ..Default::default()
        };
        let info = unpack_layer(Cursor::new(blob), &dest, &o).unwrap();
        assert_eq!(info.digest, Some(sha256(blob)));
        assert_eq!(info.size, blob.len() as u64);
        assert_eq!(std::fs::read(dest.join("d/f")).unwrap().len(), 300_000);
    }
    // A gzip blob declared zstd is an error, not a plain tar.
    let o = UnpackOptions {
        compression: Compression::Zstd,
        ..Default::default()
    };
    assert!(unpack_layer(Cursor::new(&gz), &t.path().join("bad"), &o).is_err());
    assert!(!t.path().join("bad").exists());
}

#[test]
fn sparse_runs_of_zeros_take_no_disk() {
    let mut data = vec![0u8; 32 << 20];
    data[0] = 1;
    *data.last_mut().unwrap() = 2;
    let tar = TarBuilder::new().file("sparse", 0o644, &data).finish();
    let t = TempDir::new("ocibox-unpack-sparse");
    let dest = t.path().join("l");
    unpack_layer(Cursor::new(gzip(&tar)), &dest, &UnpackOptions::default()).unwrap();
    let m = std::fs::metadata(dest.join("sparse")).unwrap();
    assert_eq!(m.len(), 32 << 20);
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
    assert_eq!(std::fs::read(dest.join("sparse")).unwrap(), data);
}

#[test]
fn a_busybox_layer_runs() {
    let b = Bundle::new(&["sh", "-c", "echo hello from the layer; ls -l /bin/sh"]);
    let tarball = b.path().join("layer.tgz");
    sh(&format!(
        "tar -czf {} -C {} .",
        tarball.display(),
        b.rootfs().display()
    ));
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let info = unpack_layer(
        std::fs::File::open(&tarball).unwrap(),
        &b.rootfs(),
        &UnpackOptions::default(),
    )
    .unwrap();
    assert!(info.entries > 100, "{info:?}");
    let rt = Runtime::new();
    let id = common::unique("unpack-bb");
    rt.track(&id);
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("hello from the layer"),
        "{}",
        common::stdout(&out)
    );
    assert!(
        common::stdout(&out).contains("/bin/sh -> busybox"),
        "{}",
        common::stdout(&out)
    );
}

/// Run `f` in a forked child in a private mount namespace (mounts vanish with it).
fn in_mount_ns(f: impl FnOnce() -> Result<()>) -> Result<()> {
    let (rd, wr) = nix::unistd::pipe()?;
    // SAFETY: the child runs only `f` (mounts and file reads), reports over a pipe and
    // _exits; it never returns into the test harness. glibc's fork keeps malloc usable.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let r = (|| -> Result<()> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&str>,
                )?;
                f()
            })();
            let msg = match r {
                Ok(()) => String::new(),
                Err(e) => format!("{e:#}"),
            };
            let _ = nix::unistd::write(&wr, msg.as_bytes());
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut msg)?;
            nix::sys::wait::waitpid(child, None)?;
            ensure!(msg.is_empty(), "in the mount namespace: {msg}");
            Ok(())
        }
    }
}

/// Three layers: a base, one that whites out a file and makes a directory opaque, one that
/// adds a file.
fn three_layers() -> Vec<Vec<u8>> {
    let l1 = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/a", 0o644, b"1")
        .file("etc/b", 0o644, b"1")
        .dir("opt", 0o755)
        .file("opt/keep", 0o644, b"1")
        .file("opt/gone", 0o644, b"1")
        .finish();
    let l2 = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/.wh.a", 0o644, b"")
        .file("etc/b", 0o644, b"2")
        .dir("opt", 0o755)
        .file("opt/.wh..wh..opq", 0o644, b"")
        .file("opt/new", 0o644, b"2")
        .finish();
    let l3 = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/c", 0o644, b"3")
        .finish();
    vec![l1, l2, l3]
}

fn check_merged(root: &Path) -> Result<()> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| p.to_string());
    ensure!(!root.join("etc/a").exists(), "etc/a is whited out");
    ensure!(read("etc/b")? == "2", "etc/b from layer 2");
    ensure!(read("etc/c")? == "3", "etc/c from layer 3");
    ensure!(
        !root.join("opt/keep").exists() && !root.join("opt/gone").exists(),
        "opt is opaque"
    );
    ensure!(read("opt/new")? == "2", "opt/new");
    Ok(())
}

/// A layer stream that, on its first read, waits (up to 20 s) until `n` streams have been
/// started: it only gets past that if the layers really unpack at the same time.
struct Gated {
    inner: Cursor<Vec<u8>>,
    started: Arc<AtomicUsize>,
    n: usize,
    waited: bool,
}

impl std::io::Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.waited {
            self.waited = true;
            self.started.fetch_add(1, Ordering::SeqCst);
            let t0 = std::time::Instant::now();
            while self.started.load(Ordering::SeqCst) < self.n {
                if t0.elapsed() > std::time::Duration::from_secs(20) {
                    return Err(std::io::Error::other("layers did not unpack in parallel"));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        self.inner.read(buf)
    }
}

/// Unpack three layers at once (as they "arrive") into the snapshotter's unpack area, then
/// commit them in chain order.
fn unpack_chain(sn: &Snapshotter) -> Vec<String> {
    let layers = three_layers();
    let diff_ids: Vec<_> = layers.iter().map(|l| sha256(l)).collect();
    let chain = chain_ids(&diff_ids);
    let pool = ParallelUnpack::new(3);
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let dir = sn.unpack_dir(&format!("layer{i}")).unwrap();
        let o = UnpackOptions {
            expected_diff_id: Some(diff_ids[i]),
            ..Default::default()
        };
        let blob = Gated {
            inner: Cursor::new(gzip(l)),
            started: started.clone(),
            n: 3,
            waited: false,
        };
        handles.push((dir.clone(), pool.submit(blob, dir, o).unwrap()));
    }
    let mut parent = String::new();
    for (i, (dir, h)) in handles.into_iter().enumerate() {
        let info = h.wait().unwrap();
        assert_eq!(info.diff_id, diff_ids[i]);
        sn.commit_dir(&chain[i].to_string(), &parent, &dir, BTreeMap::new())
            .unwrap();
        parent = chain[i].to_string();
    }
    assert!(
        names(&sn.root().join("unpack")).is_empty(),
        "unpack area left over"
    );
    chain.iter().map(|c| c.to_string()).collect()
}

#[test]
fn parallel_layers_stack_into_overlay_snapshots() {
    let t = TempDir::new("ocibox-snap-overlay");
    let root = t.path().join("io.containerd.snapshotter.v1.overlayfs");
    let sn = Snapshotter::overlay(&root).unwrap();
    let chain = unpack_chain(&sn);
    let top = chain.last().unwrap();
    // Layer 2's directory holds the whiteouts in overlay form.
    let l2 = sn.path_of(&chain[1]).unwrap();
    let wh = std::fs::symlink_metadata(l2.join("etc/a")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);

    let active = sn.prepare("active", top, BTreeMap::new()).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].fs_type, "overlay");
    let opts = active[0].options.join(",");
    assert!(
        opts.contains("upperdir=") && opts.contains("workdir="),
        "{opts}"
    );
    let lower = active[0]
        .options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap();
    let want: Vec<String> = chain
        .iter()
        .rev()
        .map(|c| sn.path_of(c).unwrap().display().to_string())
        .collect();
    assert_eq!(lower, want.join(":"), "nearest parent first");
    let view1 = sn.view("view1", &chain[0], BTreeMap::new()).unwrap();
    assert_eq!(
        (view1[0].fs_type.as_str(), view1[0].options.clone()),
        ("bind", vec!["ro".to_string(), "rbind".to_string()])
    );

    let target = t.path().join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    let upper = sn.path_of("active").unwrap();
    in_mount_ns(|| {
        mount_all(&target, &active)?;
        check_merged(&target)?;
        std::fs::write(target.join("etc/new"), "written")?;
        std::fs::remove_file(target.join("etc/b"))?;
        unmount_all(&target);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/new")).unwrap(),
        "written"
    );
    assert!(std::fs::symlink_metadata(upper.join("etc/b"))
        .unwrap()
        .file_type()
        .is_char_device());

    // Commit the container's changes, view them, and check the containerd rules.
    sn.commit(
        "top2",
        "active",
        BTreeMap::from([("l".to_string(), "v".to_string())]),
    )
    .unwrap();
    let info = sn.stat("top2").unwrap();
    assert_eq!(
        (info.kind, info.parent.as_str()),
        (Kind::Committed, top.as_str())
    );
    assert!(sn.usage("top2").unwrap().inodes >= 3);
    let v = sn.view("v", "top2", BTreeMap::new()).unwrap();
    in_mount_ns(|| {
        mount_all(&target, &v)?;
        ensure!(std::fs::read_to_string(target.join("etc/new"))? == "written");
        ensure!(!target.join("etc/b").exists());
        ensure!(
            std::fs::write(target.join("x"), "").is_err(),
            "a view is read-only"
        );
        unmount_all(&target);
        Ok(())
    })
    .unwrap();
    let e = sn.remove(top).unwrap_err();
    assert!(format!("{e:#}").contains("with child"), "{e:#}");
    assert!(
        sn.prepare("v", "", BTreeMap::new()).is_err(),
        "a key is unique"
    );
    assert!(sn.prepare("x", "missing", BTreeMap::new()).is_err());
    assert!(
        sn.prepare("x", "v", BTreeMap::new()).is_err(),
        "parent must be committed"
    );
    let mut n = 0;
    sn.walk(|_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 6);
    // Records survive a restart (the JSON store).
    let again = Snapshotter::overlay(&root).unwrap();
    assert_eq!(
        again
            .stat("top2")
            .unwrap()
            .labels
            .get("l")
            .map(String::as_str),
        Some("v")
    );
    for k in ["v", "view1", "top2", &chain[2], &chain[1], &chain[0]] {
        again.remove(k).unwrap();
    }
    assert!(names(&root.join("snapshots")).is_empty());
}

#[test]
fn parallel_layers_stack_into_native_snapshots() {
    let t = TempDir::new("ocibox-snap-native");
    let root = t.path().join("io.containerd.snapshotter.v1.native");
    let sn = Snapshotter::native(&root).unwrap();
    let chain = unpack_chain(&sn);
    let top = sn.path_of(chain.last().unwrap()).unwrap();
    check_merged(&top).unwrap();
    assert!(
        !top.join("etc/a").exists(),
        "no whiteout device in a native tree"
    );
    let m = sn
        .prepare("work", chain.last().unwrap(), BTreeMap::new())
        .unwrap();
    // containerd's native mounts: a read-write recursive bind (`ctr snapshots mounts` of a
    // real containerd 1.6 is compared in tests/daemon_stores.rs).
    assert_eq!(m[0].fs_type, "bind");
    assert_eq!(m[0].options, ["rbind", "rw"]);
    let target = t.path().join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    in_mount_ns(|| {
        mount_all(&target, &m)?;
        check_merged(&target)?;
        std::fs::write(target.join("etc/mine"), "x")?;
        unmount_all(&target);
        Ok(())
    })
    .unwrap();
    assert!(
        !top.join("etc/mine").exists(),
        "the copy is independent of its parent"
    );
    assert!(sn.path_of("work").unwrap().join("etc/mine").exists());
}

#[test]
fn gnu_sparse_entries_stay_sparse() {
    let t = TempDir::new("ocibox-unpack-gnusparse");
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    sh(&format!(
        "set -e; cd {}; truncate -s 64M holes; printf head | dd of=holes conv=notrunc 2>/dev/null; \
         printf tail | dd of=holes bs=1 seek=$((48*1024*1024)) conv=notrunc 2>/dev/null; \
         tar --format=gnu --sparse -cf ../sparse.tar holes",
        src.display()
    ));
    let tar = std::fs::read(t.path().join("sparse.tar")).unwrap();
    assert!(
        tar.len() < 1 << 20,
        "GNU tar wrote a sparse entry ({} bytes)",
        tar.len()
    );
    let dest = t.path().join("l");
    unpack_layer(Cursor::new(&tar), &dest, &UnpackOptions::default()).unwrap();
    let (a, b) = (
        std::fs::read(src.join("holes")).unwrap(),
        std::fs::read(dest.join("holes")).unwrap(),
    );
    assert!(a == b, "content differs");
    let m = std::fs::metadata(dest.join("holes")).unwrap();
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
}

/// GNU tar's extraction of `tar` into a new directory `dest` (as root: owners, modes).
fn gnu_extract(tar: &[u8], dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let tarball = dest.with_extension("tar");
    std::fs::write(&tarball, tar).unwrap();
    sh(&format!(
        "tar --numeric-owner --same-owner -p -xf {} -C {}",
        tarball.display(),
        dest.display()
    ));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn duplicate_entries_the_last_one_wins() {
    let t = TempDir::new("ocibox-unpack-dups");
    let outside = t.path().join("outside");
    std::fs::write(&outside, "untouched").unwrap();
    let big = vec![7u8; 300_000];
    let tar = TarBuilder::new()
        // A small file twice (both go to the writer threads).
        .file("a", 0o644, b"first")
        .file("a", 0o600, b"second")
        // A big file (written in line) replaced by a small one, and the other way round.
        .file("big", 0o644, &big)
        .file("big", 0o644, b"small now")
        .file("grow", 0o644, b"small")
        .file("grow", 0o644, &big)
        // A file replaced by a directory, a directory (with a file in it, its fd cached)
        // replaced by a file.
        .file("m", 0o644, b"file")
        .dir("m", 0o711)
        .dir("d", 0o755)
        .file("d/f", 0o644, b"in d")
        .file("d", 0o644, b"d is a file now")
        .dir("e", 0o755)
        .file("e/inner", 0o644, b"x")
        .symlink("e", "a")
        // A symlink to outside the target, replaced by a file: the file is made, not
        // written through the link.
        .symlink("l", &outside.display().to_string())
        .file("l", 0o644, b"mine")
        .finish();
    let dest = t.path().join("ours");
    unpack_layer(Cursor::new(&tar), &dest, &UnpackOptions::default()).unwrap();
    assert_eq!(read(&dest.join("a")), "second");
    assert_eq!(
        std::fs::metadata(dest.join("a")).unwrap().mode() & 0o7777,
        0o600
    );
    assert_eq!(read(&dest.join("big")), "small now");
    assert_eq!(std::fs::read(dest.join("grow")).unwrap(), big);
    assert!(dest.join("m").is_dir());
    assert_eq!(read(&dest.join("d")), "d is a file now");
    assert_eq!(
        std::fs::read_link(dest.join("e")).unwrap(),
        PathBuf::from("a")
    );
    assert_eq!(read(&dest.join("l")), "mine");
    assert!(!dest.join("l").is_symlink());
    assert_eq!(read(&outside), "untouched");
    // GNU tar makes the same tree of the entries it can replace (it refuses to replace a
    // non-empty directory by a file or a link, so `d` and `e` are left out there; and it
    // makes a symlink to an absolute target last, over a placeholder file, which a later
    // file of the same name may or may not be taken for, so `l` is left out too).
    let mut tar_gnu = TarBuilder::new();
    tar_gnu
        .file("a", 0o644, b"first")
        .file("a", 0o600, b"second")
        .file("big", 0o644, &big)
        .file("big", 0o644, b"small now")
        .file("grow", 0o644, b"small")
        .file("grow", 0o644, &big)
        .file("m", 0o644, b"file")
        .dir("m", 0o711);
    let tar_gnu = tar_gnu.finish();
    let (ours, theirs) = (t.path().join("ours2"), t.path().join("theirs"));
    unpack_layer(Cursor::new(&tar_gnu), &ours, &UnpackOptions::default()).unwrap();
    gnu_extract(&tar_gnu, &theirs);
    assert_eq!(describe(&ours), describe(&theirs));
}

#[test]
fn hardlink_to_a_later_replaced_file() {
    let t = TempDir::new("ocibox-unpack-relink");
    let big = vec![9u8; 300_000];
    let tar = TarBuilder::new()
        // The link's target is a small file a writer thread may still be writing.
        .file("f", 0o644, b"old")
        .hardlink("h", "f")
        .file("f", 0o644, b"new")
        // The same with a big file, and a link made again to the replacement.
        .file("g", 0o644, &big)
        .hardlink("h1", "g")
        .file("g", 0o644, b"g replaced")
        .hardlink("h2", "g")
        .finish();
    let (ours, theirs) = (t.path().join("ours"), t.path().join("theirs"));
    unpack_layer(Cursor::new(&tar), &ours, &UnpackOptions::default()).unwrap();
    assert_eq!(read(&ours.join("h")), "old", "the link keeps the old inode");
    assert_eq!(read(&ours.join("f")), "new");
    assert_eq!(std::fs::metadata(ours.join("f")).unwrap().nlink(), 1);
    assert_eq!(std::fs::read(ours.join("h1")).unwrap(), big);
    assert_eq!(read(&ours.join("h2")), "g replaced");
    assert_eq!(
        std::fs::metadata(ours.join("g")).unwrap().ino(),
        std::fs::metadata(ours.join("h2")).unwrap().ino()
    );
    gnu_extract(&tar, &theirs);
    assert_eq!(describe(&ours), describe(&theirs));
}

/// What the daemon's Diff service does for a client-side pull (ctr 1.6's): a layer applied
/// into a directory that holds something already (the snapshot of an active mount).
#[test]
fn unpack_onto_a_non_empty_dir() {
    use ocibox::unpack::layer::unpack_into;
    let t = TempDir::new("ocibox-unpack-nonempty");
    let dest = t.path().join("snap");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    sh(&format!(
        "set -e; mkdir -p {d}/etc {d}/var/sub/deep {d}/usr/bin; cd {d}; echo old > etc/old; \
         echo before > etc/replace; echo x > var/sub/deep/x; ln -s usr/bin bin; \
         ln -s {o} out",
        d = dest.display(),
        o = outside.display()
    ));
    let tar = TarBuilder::new()
        .dir("etc", 0o750)
        .file("etc/replace", 0o644, b"after")
        .file("etc/new", 0o644, b"new")
        .file("var", 0o644, b"a file over a tree")
        .file("usr/bin/tool", 0o755, b"t")
        .dir("etc", 0o750)
        .file("etc/last", 0o644, b"last")
        .finish();
    let info = unpack_into(Cursor::new(&tar), &dest, &UnpackOptions::default()).unwrap();
    assert_eq!(info.entries, 7);
    assert_eq!(read(&dest.join("etc/old")), "old\n", "what was there stays");
    assert_eq!(read(&dest.join("etc/replace")), "after");
    assert_eq!(read(&dest.join("etc/new")), "new");
    assert_eq!(read(&dest.join("etc/last")), "last");
    assert_eq!(
        std::fs::metadata(dest.join("etc")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(read(&dest.join("var")), "a file over a tree");
    assert_eq!(read(&dest.join("usr/bin/tool")), "t");
    // An existing symlink is never written through, whether it points inside or out.
    for (name, wrote) in [
        ("bin/x", dest.join("usr/bin/x")),
        ("out/x", outside.join("x")),
    ] {
        let tar = TarBuilder::new().file(name, 0o644, b"x").finish();
        let e = unpack_into(Cursor::new(&tar), &dest, &UnpackOptions::default()).unwrap_err();
        assert!(format!("{e:#}").contains("a symlink"), "{name}: {e:#}");
        assert!(!wrote.exists(), "{name} was written through the link");
    }
}
