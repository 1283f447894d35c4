//! Hostile layers: each is refused with a clear error, writes nothing outside the target,
//! and commits nothing (the destination does not exist afterwards, no staging dir is left).

mod common;
mod unpack_support;

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use common::TempDir;
use ocibox::unpack::{unpack_layer, Limits, UnpackOptions};
use unpack_support::*;

struct Case {
    _tmp: TempDir,
    store: PathBuf,
    outside: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = TempDir::new("ocibox-unpack-hostile");
        let store = tmp.path().join("store");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        Case {
            _tmp: tmp,
            store,
            outside,
        }
    }

    fn dest(&self) -> PathBuf {
        self.store.join("layer")
    }

    /// Unpack `blob`, expect an error containing `want`, and check nothing stayed.
    fn refused(&self, blob: impl Read + Send, opts: &UnpackOptions, want: &str) {
        let e = unpack_layer(blob, &self.dest(), opts).expect_err("hostile layer accepted");
        let msg = format!("{e:#}");
        assert!(msg.contains(want), "error {msg:?} does not say {want:?}");
        self.nothing_left();
    }

    fn nothing_left(&self) {
        assert!(
            names(&self.store).is_empty(),
            "left in the store: {:?}",
            names(&self.store)
        );
        assert!(
            names(&self.outside).is_empty(),
            "written outside: {:?}",
            names(&self.outside)
        );
    }
}

fn opts() -> UnpackOptions {
    UnpackOptions::default()
}

#[test]
fn dotdot_path_is_refused() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .file("a", 0o644, b"ok")
        .file("../outside/x", 0o644, b"evil")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "escapes the target");
    let tar = TarBuilder::new()
        .file("a/../../outside/y", 0o644, b"evil")
        .finish();
    c.refused(Cursor::new(gzip(&tar)), &opts(), "escapes the target");
}

#[test]
fn absolute_paths_land_inside() {
    let c = Case::new();
    let abs = format!("{}/x", c.outside.display());
    let tar = TarBuilder::new().file(&abs, 0o644, b"inside").finish();
    unpack_layer(Cursor::new(tar), &c.dest(), &opts()).unwrap();
    let inside = c.dest().join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
    assert!(names(&c.outside).is_empty());
}

#[test]
fn file_through_an_escaping_symlink_is_refused() {
    let c = Case::new();
    let out = c.outside.display().to_string();
    let tar = TarBuilder::new()
        .symlink("evil", &out)
        .file("evil/pwned", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
    // Relative, and through a directory made first.
    let tar = TarBuilder::new()
        .dir("d", 0o755)
        .symlink("d/up", "../../outside")
        .file("d/up/pwned", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
    // A symlink where a later entry wants a directory is replaced only at the last
    // component; in the middle of a path it is refused, even pointing inside.
    let tar = TarBuilder::new()
        .dir("real", 0o755)
        .symlink("alias", "real")
        .file("alias/f", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
    // Whiteouts and opaque markers walk the same way.
    let tar = TarBuilder::new()
        .symlink("evil", &out)
        .file("evil/.wh.x", 0o644, b"")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
    let tar = TarBuilder::new()
        .symlink("evil", &out)
        .file("evil/.wh..wh..opq", 0o644, b"")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
}

#[test]
fn a_symlink_entry_is_replaced_not_followed() {
    let c = Case::new();
    let out = format!("{}/target", c.outside.display());
    let tar = TarBuilder::new()
        .symlink("f", &out)
        .file("f", 0o644, b"mine")
        .finish();
    unpack_layer(Cursor::new(tar), &c.dest(), &opts()).unwrap();
    assert_eq!(std::fs::read(c.dest().join("f")).unwrap(), b"mine");
    assert!(!Path::new(&out).exists());
}

#[test]
fn hardlinks_out_are_refused() {
    let c = Case::new();
    let victim = c._tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("secret"), "s").unwrap();
    let tar = TarBuilder::new().hardlink("h", "../victim/secret").finish();
    c.refused(Cursor::new(tar), &opts(), "escapes the target");
    // Absolute: resolved inside, where there is nothing to link to.
    let abs = format!("{}/secret", victim.display());
    let tar = TarBuilder::new().hardlink("h", &abs).finish();
    c.refused(Cursor::new(tar), &opts(), "hardlink");
    // Through a symlink to outside.
    let tar = TarBuilder::new()
        .symlink("s", &victim.display().to_string())
        .hardlink("h", "s/secret")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "is a symlink");
    // The victim was not linked to (its link count would show it).
    let m = std::fs::metadata(victim.join("secret")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&m), 1);
}

#[test]
fn huge_headers_are_refused() {
    let c = Case::new();
    // A PAX header of 8 MiB: over the 1 MiB header limit, refused before it is buffered.
    let big = vec![b'a'; 8 << 20];
    let tar = TarBuilder::new()
        .pax(&[("comment", &big)])
        .file("f", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(gzip(&tar)), &opts(), "header size limit");
    // A GNU long name of 2 MiB.
    let mut b = TarBuilder::new();
    b.raw(
        b'L',
        "././@LongLink",
        "",
        0o644,
        0,
        0,
        0,
        &vec![b'n'; 2 << 20],
        (0, 0),
    );
    let tar = b.file("f", 0o644, b"x").finish();
    c.refused(Cursor::new(tar), &opts(), "header size limit");
    // A path over the path limit (within the header limit).
    let long = "d/".repeat(3000);
    let tar = TarBuilder::new()
        .pax(&[("path", long.as_bytes())])
        .file("f", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "path longer than");
    // An xattr value over 64 KiB.
    let v = vec![b'v'; 70 << 10];
    let tar = TarBuilder::new()
        .pax(&[("SCHILY.xattr.user.big", &v)])
        .file("f", 0o644, b"x")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "xattr value longer");
}

#[test]
fn too_many_entries_are_refused() {
    let c = Case::new();
    let mut b = TarBuilder::new();
    for i in 0..50 {
        b.file(&format!("f{i}"), 0o644, b"");
    }
    let o = UnpackOptions {
        limits: Limits {
            max_entries: 20,
            ..Limits::default()
        },
        ..opts()
    };
    c.refused(Cursor::new(b.finish()), &o, "more than 20 entries");
}

/// 1 GiB of zeros in a ~1 MiB gzip blob (1024 gzip members of 1 MiB of zeros each, which a
/// multi-member reader decodes back to back, after one tar header claiming 1 GiB).
fn zero_bomb() -> Vec<u8> {
    let header = TarBuilder::new()
        .header_only(REG, "zeros", 1 << 30)
        .finish();
    let mut blob = gzip(&header[..512]);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, &vec![0u8; 1 << 20]).unwrap();
    let member = e.finish().unwrap();
    for _ in 0..1024 {
        blob.extend_from_slice(&member);
    }
    blob
}

#[test]
fn a_zero_bomb_is_refused_by_the_size_limit() {
    let c = Case::new();
    let blob = zero_bomb();
    assert!(blob.len() < 2 << 20, "bomb is {} bytes", blob.len());
    let o = UnpackOptions {
        limits: Limits {
            max_uncompressed_bytes: 64 << 20,
            ..Limits::default()
        },
        ..opts()
    };
    c.refused(Cursor::new(blob), &o, "exceeds the limit of 67108864 bytes");
}

#[test]
fn truncated_gzip_is_refused() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .file("a", 0o644, &vec![7u8; 100_000])
        .file("b", 0o644, b"b")
        .finish();
    let gz = gzip(&tar);
    c.refused(Cursor::new(gz[..gz.len() - 30].to_vec()), &opts(), "");
    c.refused(Cursor::new(gz[..gz.len() / 2].to_vec()), &opts(), "");
    // A tar cut in the middle of a file's data, uncompressed.
    c.refused(Cursor::new(tar[..50_000].to_vec()), &opts(), "");
}

#[test]
fn wrong_diff_id_commits_nothing() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/hostname", 0o644, b"box\n")
        .finish();
    let blob = gzip(&tar);
    let o = UnpackOptions {
        expected_diff_id: Some(sha256(b"something else")),
        ..opts()
    };
    c.refused(
        Cursor::new(blob.clone()),
        &o,
        "wrong diff id calculated on extraction",
    );
    let o = UnpackOptions {
        expected_digest: Some(sha256(b"something else")),
        ..opts()
    };
    c.refused(Cursor::new(blob.clone()), &o, "unexpected commit digest");
    // The right ones commit.
    let o = UnpackOptions {
        expected_diff_id: Some(sha256(&tar)),
        expected_digest: Some(sha256(&blob)),
        ..opts()
    };
    let info = unpack_layer(Cursor::new(blob.clone()), &c.dest(), &o).unwrap();
    assert_eq!(info.size, blob.len() as u64);
    assert_eq!(info.uncompressed_size, tar.len() as u64);
    assert_eq!(
        std::fs::read(c.dest().join("etc/hostname")).unwrap(),
        b"box\n"
    );
    // An existing destination is never overwritten.
    let e = unpack_layer(Cursor::new(blob), &c.dest(), &o).unwrap_err();
    assert!(format!("{e:#}").contains("already exists"));
}

#[test]
fn unknown_entry_types_are_refused() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .raw(b'Z', "odd", "", 0o644, 0, 0, 0, b"", (0, 0))
        .finish();
    c.refused(Cursor::new(tar), &opts(), "unhandled tar header type");
    let tar = TarBuilder::new()
        .pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")])
        .file("f", 0o644, b"1\n0\n5\n")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "sparse files are not supported");
}

/// A directory replaced by a symlink to outside, then written through: the writer's cached
/// parent directory and its pending small files must not let the later entry land anywhere
/// but where a fresh walk puts it (refused), and a directory replaced by a file and then
/// made again takes new files.
#[test]
fn a_replaced_directory_is_never_written_through_its_old_handle() {
    let c = Case::new();
    let out = c.outside.display().to_string();
    let tar = TarBuilder::new()
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .file("a/b/x", 0o644, b"x")
        .symlink("a/b", &out)
        .file("a/b/escaped", 0o644, b"no")
        .finish();
    c.refused(Cursor::new(tar), &opts(), "a symlink");
    assert!(!c.outside.join("escaped").exists());

    let c = Case::new();
    let tar = TarBuilder::new()
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .file("a/b/x", 0o644, b"x")
        .file("a/b", 0o644, b"now a file")
        .dir("a/b", 0o755)
        .file("a/b/y", 0o644, b"y")
        .finish();
    unpack_layer(Cursor::new(tar), &c.dest(), &opts()).unwrap();
    assert_eq!(std::fs::read(c.dest().join("a/b/y")).unwrap(), b"y");
    assert!(!c.dest().join("a/b/x").exists());
}
