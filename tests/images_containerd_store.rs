//! ocibox's content store, manifest parsing and chain IDs against a real containerd 1.6's
//! own on-disk content store: what containerd wrote, ocibox reads and verifies; an ingest
//! containerd left half done, ocibox resumes and commits, and containerd accepts the blob.

mod common;

use common::containerd::{text, Containerd, Runtime};
use ocibox::content::{Digest, Store};
use ocibox::image::manifest::{self, ManifestOrIndex};
use ocibox::image::{chain_id, Matcher, Reference};
use std::io::Write;
use std::process::Stdio;

fn content_root(c: &Containerd) -> std::path::PathBuf {
    c.dir.join("root/io.containerd.content.v1.content")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn reads_containerds_store_and_computes_its_snapshot_chain() {
    let c = Containerd::start(Runtime::Own);
    let store = Store::open(content_root(&c)).unwrap();

    // Every blob containerd committed hashes to its name under ocibox's reader.
    let mut n = 0;
    store
        .walk(|info| {
            let data = store.reader(&info.digest)?.read_all(1 << 30)?;
            assert_eq!(Digest::of(&data), info.digest);
            assert_eq!(data.len() as u64, info.size);
            n += 1;
            Ok(())
        })
        .unwrap();
    assert!(
        n >= 3,
        "an image has at least a manifest, a config and a layer"
    );

    // The image's name is what ocibox's normalisation gives for "busybox".
    let ls = stdout(&c.ctr(&["images", "ls"]));
    let row = ls.lines().nth(1).expect("one image");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols[0],
        Reference::parse_docker_ref("busybox").unwrap().to_string()
    );
    let target: Digest = cols[2].parse().unwrap();

    // Follow target → (index →) manifest → config, as a pull for this host would.
    let mut desc_digest = target;
    let m = loop {
        let data = store
            .reader(&desc_digest)
            .unwrap()
            .read_all(manifest::MAX_MANIFEST_SIZE)
            .unwrap();
        let mt = serde_json::from_slice::<serde_json::Value>(&data).unwrap()["mediaType"]
            .as_str()
            .unwrap_or(ocibox::image::media_types::OCI_MANIFEST)
            .to_owned();
        match manifest::parse_manifest_or_index(&mt, &data).unwrap() {
            ManifestOrIndex::Manifest(m) => break m,
            ManifestOrIndex::Index(i) => {
                let pick = manifest::select_manifests(&i, &Matcher::default_for_host(), Some(1));
                desc_digest = manifest::descriptor_digest(&pick[0]).unwrap();
            }
        }
    };
    let cfg_digest = manifest::descriptor_digest(m.config()).unwrap();
    let cfg = manifest::parse_config(
        &store
            .reader(&cfg_digest)
            .unwrap()
            .read_all(manifest::MAX_CONFIG_SIZE)
            .unwrap(),
    )
    .unwrap();
    let top = chain_id::chain_id(&manifest::diff_ids(&cfg).unwrap()).unwrap();
    for l in m.layers() {
        assert!(
            store.info(&manifest::descriptor_digest(l).unwrap()).is_ok(),
            "layer blob present"
        );
    }

    // containerd unpacked the image on import: its committed snapshot is named by the chain ID.
    let snaps = stdout(&c.ctr(&["snapshots", "ls"]));
    assert!(
        snaps
            .lines()
            .any(|l| l.split_whitespace().next() == Some(top.to_string().as_str())),
        "chain ID {top} not among containerd's snapshots:\n{snaps}"
    );
}

#[test]
fn resumes_an_ingest_containerd_left_and_containerd_accepts_the_blob() {
    let c = Containerd::start(Runtime::Own);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let d = Digest::of(&data);
    let size = data.len().to_string();
    let dstr = d.to_string();

    // ctr ingests only the first 70000 bytes, then its input ends: the ingest stays active.
    let mut child = c
        .ctr_cmd(&[
            "content",
            "ingest",
            "--expected-size",
            &size,
            "--expected-digest",
            &dstr,
            "partial-ref",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&data[..70_000])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a short body must not commit: {}",
        text(&out)
    );
    let active = stdout(&c.ctr(&["content", "active"]));
    assert!(active.contains("partial-ref"), "{active}");

    // ocibox finds containerd's ingest (by the backing ref in its `ref` file) and reads the
    // same offset and total.
    let store = Store::open(content_root(&c)).unwrap();
    let statuses = store.list_statuses(&[]).unwrap();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let st = &statuses[0];
    assert!(st.ref_.ends_with("partial-ref"), "backing ref {}", st.ref_);
    assert_eq!((st.offset, st.total), (70_000, data.len() as u64));

    // Keep containerd's garbage collector off the blob once containerd records it (ctr's
    // lease ends with each command): the image's target references it by a gc.ref label.
    let ls = stdout(&c.ctr(&["images", "ls"]));
    let target = ls
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned();
    let label = format!("containerd.io/gc.ref.content.ocibox-test={dstr}");
    stdout(&c.ctr(&["content", "label", &target, &label]));

    // ocibox resumes it where containerd stopped and commits.
    let mut w = store.writer(&st.ref_, data.len() as u64, None).unwrap();
    assert_eq!(w.status().offset, 70_000);
    w.write_all(&data[70_000..]).unwrap();
    assert_eq!(w.commit(data.len() as u64, Some(d)).unwrap(), d);

    // containerd takes the committed blob as present: its writer for a new ref starts at the
    // full size (ctr seeks its input there, so give it a file) and the commit just records it.
    let file = c.dir.join("blob.bin");
    std::fs::write(&file, &data).unwrap();
    let out = c
        .ctr_cmd(&[
            "content",
            "ingest",
            "--expected-size",
            &size,
            "--expected-digest",
            &dstr,
            "again",
        ])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let ls = stdout(&c.ctr(&["content", "ls"]));
    assert!(ls.contains(&dstr), "{ls}");
    let got = c.ctr(&["content", "get", &dstr]);
    assert!(got.status.success(), "{}", text(&got));
    assert_eq!(
        Digest::of(&got.stdout),
        d,
        "containerd serves the bytes ocibox committed"
    );
}
