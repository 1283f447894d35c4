//! The garbage-collection labels a fetch puts on a manifest or index blob so that whatever
//! holds it holds its children too: containerd's `images.ChildGCLabels` keys, numbered as
//! `images.SetChildrenMappedLabels` numbers them, and the `distribution.source` label
//! (`docker.AppendDistributionSourceLabel`) that says which repository a blob came from.

use crate::image::media_types::{self, Kind};
use crate::image::Descriptor;
use crate::metadata::encoding::Labels;

/// The label prefix of every content reference.
pub const GC_REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// The label prefix of the source repositories of a blob.
pub const DISTRIBUTION_SOURCE: &str = "containerd.io/distribution.source";

/// containerd's `ChildGCLabels`: a config is `….config`; a manifest `….m.`; a layer
/// `….l.`; anything else (a nested index, an attestation) `….` — a key ending in `.` is
/// always numbered.
fn child_key(child: &Descriptor) -> String {
    match media_types::kind(&child.media_type) {
        Kind::Config => format!("{GC_REF_CONTENT}.config"),
        Kind::Manifest => format!("{GC_REF_CONTENT}.m."),
        Kind::Layer { .. } => format!("{GC_REF_CONTENT}.l."),
        _ => format!("{GC_REF_CONTENT}."),
    }
}

/// The labels of a parent whose children are `children` (in document order): the n-th use
/// of a key gets the suffix n when n > 0 or the key ends in `.`
/// (`m.0`, `m.1`, `config`, `l.0`…), each naming the child's digest.
pub fn children_labels(children: &[Descriptor]) -> Labels {
    let mut used: std::collections::HashMap<String, usize> = Default::default();
    let mut out = Labels::new();
    for ch in children {
        let key = child_key(ch);
        let n = used.entry(key.clone()).or_insert(0);
        let key = if *n > 0 || key.ends_with('.') {
            format!("{key}{n}")
        } else {
            key
        };
        *n += 1;
        out.insert(key, ch.digest.to_string());
    }
    out
}

/// `containerd.io/distribution.source.<host>` = `<repository path>`, the host without its
/// port as containerd takes it (Go's `url.Hostname()`: `127.0.0.1:5000` → `127.0.0.1`,
/// `[::1]:5000` → `::1`).
pub fn distribution_source(host: &str, path: &str) -> (String, String) {
    let hostname = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    };
    (format!("{DISTRIBUTION_SOURCE}.{hostname}"), path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Digest;
    use crate::image::media_types::*;

    #[test]
    fn numbered_as_containerd_numbers_them() {
        let d = |mt: &str, s: &[u8]| Descriptor::new(mt, Digest::of(s), 1);
        let l = children_labels(&[
            d(OCI_CONFIG, b"c"),
            d(OCI_LAYER_GZIP, b"a"),
            d(DOCKER_LAYER_GZIP, b"b"),
        ]);
        let keys: Vec<_> = l.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "containerd.io/gc.ref.content.config",
                "containerd.io/gc.ref.content.l.0",
                "containerd.io/gc.ref.content.l.1"
            ]
        );
        assert_eq!(
            l["containerd.io/gc.ref.content.l.1"],
            Digest::of(b"b").to_string()
        );
        let l = children_labels(&[
            d(OCI_MANIFEST, b"1"),
            d(DOCKER_MANIFEST, b"2"),
            d(OCI_INDEX, b"3"),
            d("application/vnd.in-toto+json", b"4"),
        ]);
        let keys: Vec<_> = l.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "containerd.io/gc.ref.content.0",
                "containerd.io/gc.ref.content.1",
                "containerd.io/gc.ref.content.m.0",
                "containerd.io/gc.ref.content.m.1"
            ]
        );
        let src = |h: &str| distribution_source(h, "busybox").0;
        assert_eq!(
            src("127.0.0.1:5000"),
            "containerd.io/distribution.source.127.0.0.1"
        );
        assert_eq!(src("[::1]:5000"), "containerd.io/distribution.source.::1");
        assert_eq!(
            src("docker.io"),
            "containerd.io/distribution.source.docker.io"
        );
    }
}
