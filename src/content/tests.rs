//! Store behaviour as containerd's local store tests it, and a kill -9 crash test.

use super::*;
use crate::errdefs::{kind_of, ErrorKind};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

pub(crate) struct TempDir(pub PathBuf);
impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("ocibox-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(s: &Store, ref_: &str, data: &[u8]) -> Digest {
    let mut w = s.writer(ref_, data.len() as u64, None).unwrap();
    w.write_all(data).unwrap();
    w.commit(data.len() as u64, Some(Digest::of(data))).unwrap()
}

#[test]
fn write_commit_read_with_containerd_layout() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let data = b"hello, content";
    let d = put(&s, "ref-1", data);
    assert_eq!(d, Digest::of(data));
    let blob = t.0.join("blobs/sha256").join(d.encoded());
    assert_eq!(std::fs::read(&blob).unwrap(), data);
    // read-only: no write or exec bits
    let mode = std::fs::metadata(&blob).unwrap().permissions().mode();
    assert_eq!(mode & 0o333, 0, "{mode:o}");
    // the ingest is gone
    assert_eq!(std::fs::read_dir(t.0.join("ingest")).unwrap().count(), 0);
    let info = s.info(&d).unwrap();
    assert_eq!(info.size, data.len() as u64);
    let r = s.reader(&d).unwrap();
    let mut buf = [0u8; 7];
    assert_eq!(r.read_at(&mut buf, 7).unwrap(), 7);
    assert_eq!(&buf, b"content");
    assert_eq!(r.read_at(&mut buf, 100).unwrap(), 0);
    assert_eq!(r.read_all(1024).unwrap(), data);
    let mut tail = String::new();
    std::io::Read::read_to_string(&mut r.stream_from(7).unwrap(), &mut tail).unwrap();
    assert_eq!(tail, "content");
    assert!(r.read_all(3).is_err());
}

#[test]
fn commit_checks_size_and_digest_and_keeps_the_ingest() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let mut w = s.writer("r", 0, None).unwrap();
    w.write_all(b"abc").unwrap();
    let e = w.commit(4, None).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::FailedPrecondition);
    assert!(
        e.to_string()
            .contains("unexpected commit size 3, expected 4"),
        "{e}"
    );
    let mut w = s.writer("r", 0, None).unwrap();
    assert_eq!(w.status().offset, 3);
    let e = w.commit(3, Some(Digest::of(b"abd"))).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::FailedPrecondition);
    assert!(e.to_string().contains("unexpected commit digest"), "{e}");
    assert!(!s.blob_path(&Digest::of(b"abc")).exists());
    assert!(!s.blob_path(&Digest::of(b"abd")).exists());
    assert_eq!(s.status("r").unwrap().offset, 3);
    w = s.writer("r", 0, None).unwrap();
    w.truncate(0).unwrap();
    w.write_all(b"abd").unwrap();
    w.commit(3, Some(Digest::of(b"abd"))).unwrap();
}

#[test]
fn existing_blob_is_already_exists() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let d = put(&s, "a", b"same");
    let e = s.writer("b", 4, Some(d)).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::AlreadyExists);
    let mut w = s.writer("b", 4, None).unwrap();
    w.write_all(b"same").unwrap();
    let e = w.commit(4, Some(d)).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::AlreadyExists);
    assert_eq!(e.to_string(), format!("content {d}: already exists"));
    assert!(s.status("b").is_err(), "ingest removed after the collision");
    assert_eq!(std::fs::read(s.blob_path(&d)).unwrap(), b"same");
}

#[test]
fn ingest_files_resume_and_status() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let mut w = s.writer("layer-1", 10, None).unwrap();
    w.write_all(b"01234").unwrap();
    let st = w.status();
    assert_eq!((st.offset, st.total), (5, 10));
    w.close().unwrap();
    let dir = t.0.join("ingest").join(Digest::of(b"layer-1").encoded());
    assert_eq!(std::fs::read_to_string(dir.join("ref")).unwrap(), "layer-1");
    assert_eq!(std::fs::read_to_string(dir.join("total")).unwrap(), "10");
    assert_eq!(std::fs::read(dir.join("data")).unwrap(), b"01234");
    for f in ["startedat", "updatedat"] {
        let txt = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(crate::timefmt::parse(&txt).is_some(), "{f}: {txt}");
    }
    let st = s.status("layer-1").unwrap();
    assert_eq!((st.ref_.as_str(), st.offset, st.total), ("layer-1", 5, 10));
    // resume: offset and digest carry on
    let mut w = s.writer("layer-1", 10, None).unwrap();
    assert_eq!(w.status().offset, 5);
    assert_eq!(w.status().started_at, st.started_at);
    w.write_all(b"56789").unwrap();
    assert_eq!(w.digest(), Digest::of(b"0123456789"));
    w.commit(10, Some(Digest::of(b"0123456789"))).unwrap();
    // a different total starts the ingest over
    let mut w = s.writer("x", 3, None).unwrap();
    w.write_all(b"ab").unwrap();
    drop(w);
    let w = s.writer("x", 4, None).unwrap();
    assert_eq!((w.status().offset, w.status().total), (0, 4));
}

#[test]
fn one_writer_per_ref() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let w = s.writer("busy", 0, None).unwrap();
    let e = s.writer("busy", 0, None).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::Unavailable);
    assert!(e.to_string().starts_with("ref busy locked for "), "{e}");
    // another ref is fine
    drop(s.writer("other", 0, None).unwrap());
    drop(w);
    drop(s.writer("busy", 0, None).unwrap());
    assert_eq!(
        kind_of(&s.writer("", 0, None).unwrap_err()),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn list_statuses_abort_walk_delete() {
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    for r in ["a-1", "a-2", "b-1"] {
        let mut w = s.writer(r, 0, None).unwrap();
        w.write_all(r.as_bytes()).unwrap();
        w.close().unwrap();
    }
    let refs = |f: &[&str]| -> Vec<String> {
        s.list_statuses(f)
            .unwrap()
            .into_iter()
            .map(|s| s.ref_)
            .collect()
    };
    assert_eq!(refs(&[]), ["a-1", "a-2", "b-1"]);
    assert_eq!(refs(&["ref==a-2"]), ["a-2"]);
    assert_eq!(refs(&["ref==a-2", "ref==b-1"]), ["a-2", "b-1"]);
    s.abort("a-1").unwrap();
    assert_eq!(kind_of(&s.abort("a-1").unwrap_err()), ErrorKind::NotFound);
    assert_eq!(kind_of(&s.status("a-1").unwrap_err()), ErrorKind::NotFound);
    assert_eq!(refs(&[]), ["a-2", "b-1"]);

    let d1 = put(&s, "c1", b"one");
    let d2 = put(&s, "c2", b"two");
    std::fs::write(t.0.join("blobs/sha256/not-a-digest"), b"junk").unwrap();
    let mut seen = Vec::new();
    s.walk(|i| {
        seen.push((i.digest, i.size));
        Ok(())
    })
    .unwrap();
    seen.sort();
    let mut want = vec![(d1, 3), (d2, 3)];
    want.sort();
    assert_eq!(seen, want);
    s.delete(&d1).unwrap();
    assert_eq!(kind_of(&s.delete(&d1).unwrap_err()), ErrorKind::NotFound);
    assert_eq!(kind_of(&s.info(&d1).unwrap_err()), ErrorKind::NotFound);
    assert_eq!(kind_of(&s.reader(&d1).unwrap_err()), ErrorKind::NotFound);
}

#[test]
fn a_torn_ingest_never_commits_under_the_expected_name() {
    // What a crash can leave: data whose tail is not what the writer meant (zeros after a
    // power cut with delayed allocation, or a shorter file). The resumed writer hashes the
    // bytes on disk, so committing them under the intended digest fails.
    let t = TempDir::new("content");
    let s = Store::open(&t.0).unwrap();
    let good = b"the real layer bytes";
    let mut w = s.writer("torn", 0, None).unwrap();
    w.write_all(&good[..10]).unwrap();
    w.close().unwrap();
    let dir = t.0.join("ingest").join(Digest::of(b"torn").encoded());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("data"))
        .unwrap();
    f.write_all(&[0u8; 4]).unwrap();
    drop(f);
    let mut w = s.writer("torn", 0, None).unwrap();
    assert_eq!(w.status().offset, 14);
    w.write_all(&good[14..]).unwrap();
    let e = w
        .commit(good.len() as u64, Some(Digest::of(good)))
        .unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::FailedPrecondition);
    assert!(!s.blob_path(&Digest::of(good)).exists());
}

// ---- crash test: a child process killed with SIGKILL while writing and committing ----

const CHILD_ENV: &str = "OCIBOX_CONTENT_CRASH_CHILD";

/// Deterministic blob `i` of the child: 300 KB to 1.3 MB, at least five 64 KiB chunks each.
fn blob_bytes(i: u32) -> Vec<u8> {
    let len = (i as usize * 787_123) % (1 << 20) + 300_000;
    let mut v = Vec::with_capacity(len);
    let mut x = i.wrapping_mul(2_654_435_761).wrapping_add(1);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(x as u8);
    }
    v
}

/// The child: writes blobs 0.. in chunks (closing and resuming now and then) and commits
/// them, appending each committed digest to `committed.log` after `commit` returned. It
/// reports progress on stdout (`w <blob> <chunk>` after a chunk, `c <blob>` after a commit)
/// and pauses briefly after the fourth chunk of a blob, so the parent can kill it there,
/// with an ingest half written and its writer open.
#[test]
#[ignore = "child process of content_store_survives_sigkill"]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let s = Store::open(root.join("store")).unwrap();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("committed.log"))
        .unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        let data = blob_bytes(i);
        let d = Digest::of(&data);
        let ref_ = format!("blob-{i}");
        let mut w = match s.writer(&ref_, data.len() as u64, Some(d)) {
            Ok(w) => w,
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("{e:#}"),
        };
        let mut off = w.status().offset as usize;
        for (n, chunk) in data[off..].chunks(64 * 1024).enumerate() {
            w.write_all(chunk).unwrap();
            off += chunk.len();
            writeln!(out, "w {i} {n}").unwrap();
            out.flush().unwrap();
            if n == 3 {
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
            if n % 7 == 6 {
                w.close().unwrap();
                w = s.writer(&ref_, data.len() as u64, Some(d)).unwrap();
                assert_eq!(w.status().offset as usize, off);
            }
        }
        match w.commit(data.len() as u64, Some(d)) {
            Ok(_) => {}
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e:#}"),
        }
        writeln!(log, "{i} {d}").unwrap();
        writeln!(out, "c {i}").unwrap();
        out.flush().unwrap();
    }
}

/// Checks the store after a kill; returns (blobs, leftover ingests with data).
fn check_store(s: &Store, root: &std::path::Path) -> (usize, usize) {
    // Every blob's bytes hash to its name.
    let mut n = 0;
    s.walk(|info| {
        let data = std::fs::read(s.blob_path(&info.digest))?;
        assert_eq!(
            Digest::of(&data),
            info.digest,
            "a wrong blob under a right name"
        );
        n += 1;
        Ok(())
    })
    .unwrap();
    // Every commit the child saw return is there, intact.
    let log = std::fs::read_to_string(root.join("committed.log")).unwrap_or_default();
    for line in log.lines() {
        let Some((i, d)) = line.split_once(' ') else {
            continue;
        };
        let d: Digest = d.parse().unwrap();
        let data = std::fs::read(s.blob_path(&d)).expect("a committed blob is lost");
        assert_eq!(data, blob_bytes(i.parse().unwrap()));
    }
    // Leftover ingests hold a prefix of the intended bytes and resume where they stopped.
    let mut partial = 0;
    for st in s.list_statuses(&[]).unwrap() {
        let i: u32 = st.ref_.trim_start_matches("blob-").parse().unwrap();
        let data = blob_bytes(i);
        let w = match s.writer(&st.ref_, data.len() as u64, None) {
            Ok(w) => w,
            Err(e) => panic!("ingest {} not resumable: {e:#}", st.ref_),
        };
        let off = w.status().offset as usize;
        assert!(off <= data.len());
        assert_eq!(
            w.digest(),
            Digest::of(&data[..off]),
            "ingest {} is not a prefix",
            st.ref_
        );
        partial += usize::from(off > 0);
        w.close().unwrap();
    }
    (n, partial)
}

#[test]
fn content_store_survives_sigkill() {
    let t = TempDir::new("content-crash");
    let exe = std::env::current_exe().unwrap();
    let (mut blobs, mut partial) = (0, 0);
    for round in 0..8u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "content::tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &t.0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        // Even rounds: kill while a writer is open mid-blob (the child pauses after its
        // fourth chunk). Odd rounds: kill at a varying delay after a commit, which lands in
        // the next blob's writes, its commit (fsync, rename, directory fsync) or between.
        let mut commits_seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if round % 2 == 0 && line.starts_with('w') && line.ends_with(" 3") {
                break;
            }
            if round % 2 == 1 && line.starts_with('c') {
                commits_seen += 1;
                if commits_seen == 1 + round as usize / 2 {
                    std::thread::sleep(std::time::Duration::from_millis(round * 11 % 47));
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        drop(lines);
        let s = Store::open(t.0.join("store")).unwrap();
        let (b, p) = check_store(&s, &t.0);
        blobs = b;
        partial += p;
    }
    // The kills must have hit both sides of a commit for the test to mean something.
    assert!(
        blobs > 0,
        "the child committed nothing: delays too short for this machine"
    );
    assert!(partial > 0, "no kill landed in the middle of a write");
    // After the crashes, a clean run finishes what was interrupted.
    let s = Store::open(t.0.join("store")).unwrap();
    for st in s.list_statuses(&[]).unwrap() {
        let i: u32 = st.ref_.trim_start_matches("blob-").parse().unwrap();
        let data = blob_bytes(i);
        let mut w = s.writer(&st.ref_, data.len() as u64, None).unwrap();
        let off = w.status().offset as usize;
        w.write_all(&data[off..]).unwrap();
        match w.commit(data.len() as u64, Some(Digest::of(&data))) {
            Ok(_) => {}
            Err(e) if kind_of(&e) == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("{e:#}"),
        }
    }
    assert!(s.list_statuses(&[]).unwrap().is_empty());
    check_store(&s, &t.0);
}
