use super::*;
use crate::errdefs::kind_of;
use crate::image::media_types::*;

const DG: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn docker_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
        "config":{{"mediaType":"{DOCKER_CONFIG}","size":1469,"digest":"{DG}"}},
        "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":2811478,"digest":"{DG}"}}]}}"#
    )
}

fn index(entries: &[(&str, &str, Option<&str>)]) -> String {
    let m: Vec<String> = entries
        .iter()
        .map(|(os, arch, v)| {
            let variant = v.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{DG}","platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        m.join(",")
    )
}

#[test]
fn parses_docker_schema2_and_oci() {
    let m = parse_manifest(docker_manifest().as_bytes()).unwrap();
    assert_eq!(m.layers().len(), 1);
    assert_eq!(m.config().media_type().as_ref(), DOCKER_CONFIG);
    assert_eq!(descriptor_digest(m.config()).unwrap().to_string(), DG);
    let parsed = parse_manifest_or_index(DOCKER_MANIFEST, docker_manifest().as_bytes()).unwrap();
    assert!(matches!(parsed, ManifestOrIndex::Manifest(_)));
    let i = index(&[("linux", "amd64", None)]);
    assert!(matches!(
        parse_manifest_or_index(OCI_INDEX, i.as_bytes()).unwrap(),
        ManifestOrIndex::Index(_)
    ));
}

#[test]
fn refuses_wrong_shapes_and_sizes() {
    let i = index(&[("linux", "amd64", None)]);
    let e = parse_manifest(i.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("expected manifest but found index"),
        "{e}"
    );
    let e = parse_index(docker_manifest().as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("expected index but found manifest"),
        "{e}"
    );
    let e = parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::NotImplemented);
    assert!(e.to_string().contains("schema 1"), "{e}");
    let e = parse_manifest(b"{not json").unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::InvalidArgument);
    let mut big = docker_manifest().into_bytes();
    big.resize(MAX_MANIFEST_SIZE as usize + 1, b' ');
    let e = parse_manifest(&big).unwrap_err();
    assert!(e.to_string().contains("larger than the limit"), "{e}");
    let e = parse_manifest_or_index(OCI_LAYER_GZIP, b"{}").unwrap_err();
    assert_eq!(kind_of(&e), ErrorKind::NotImplemented);
    // a bad digest inside a descriptor is refused, not carried along
    let bad = docker_manifest().replace(&DG[7..], "zz");
    assert!(parse_manifest(bad.as_bytes()).is_err());
}

#[test]
fn config_diff_ids() {
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"]}},
        "rootfs":{{"type":"layers","diff_ids":["{DG}"]}},"history":[]}}"#
    );
    let c = parse_config(cfg.as_bytes()).unwrap();
    assert_eq!(diff_ids(&c).unwrap(), vec![DG.parse().unwrap()]);
    // history is optional in the spec
    let no_history = cfg.replace(r#","history":[]"#, "");
    assert_eq!(
        diff_ids(&parse_config(no_history.as_bytes()).unwrap())
            .unwrap()
            .len(),
        1
    );
    let bad = cfg.replace(r#""type":"layers""#, r#""type":"other""#);
    assert!(diff_ids(&parse_config(bad.as_bytes()).unwrap()).is_err());
}

#[test]
fn selects_platform_manifests_as_a_pull_does() {
    let i = parse_index(
        index(&[
            ("linux", "arm64", Some("v8")),
            ("linux", "386", None),
            ("linux", "amd64", None),
            ("windows", "amd64", None),
        ])
        .as_bytes(),
    )
    .unwrap();
    let plat = |d: &Descriptor| descriptor_platform(d).unwrap().to_string();
    let host = Matcher::default_for_host();
    let got: Vec<String> = select_manifests(&i, &host, None).iter().map(plat).collect();
    assert_eq!(got, ["linux/amd64", "linux/386"]);
    let one = select_manifests(&i, &host, Some(1));
    assert_eq!(one.len(), 1);
    assert_eq!(plat(&one[0]), "linux/amd64");
    let arm = Matcher::from_specifiers(&["linux/arm64"]).unwrap();
    assert_eq!(
        select_manifests(&i, &arm, Some(1))
            .iter()
            .map(plat)
            .collect::<Vec<_>>(),
        ["linux/arm64/v8"]
    );
    assert_eq!(select_manifests(&i, &Matcher::All, None).len(), 4);
    let none = Matcher::from_specifiers(&["linux/s390x"]).unwrap();
    assert!(select_manifests(&i, &none, None).is_empty());
}
