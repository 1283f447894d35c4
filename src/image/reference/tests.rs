//! The cases of containerd's `reference/docker/normalize_test.go` and `reference_test.go`.

use super::*;
use crate::errdefs::kind_of;

const D: &str = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

#[test]
fn valid_and_invalid_repo_names() {
    let valid = [
        "docker/docker",
        "library/debian",
        "debian",
        "docker.io/docker/docker",
        "docker.io/library/debian",
        "docker.io/debian",
        "index.docker.io/docker/docker",
        "index.docker.io/library/debian",
        "index.docker.io/debian",
        "127.0.0.1:5000/docker/docker",
        "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        // TestValidateRemoteName
        "docker-rules/docker",
        "docker---rules/docker",
        "doc/docker",
        "d/docker",
        "jess/t",
        "dock__er/docker",
    ];
    for v in valid {
        if let Err(e) = Reference::parse_normalized_named(v) {
            panic!("{v} should be valid: {e}");
        }
    }
    let too_long = format!(
        "{}/docker",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_".repeat(4)
    );
    let invalid = [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "docker.io/docker///docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "docker-/docker",
        "-docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
        "",
        &too_long,
    ];
    for v in invalid {
        let e = Reference::parse_normalized_named(v).expect_err(v);
        assert_eq!(kind_of(&e), ErrorKind::InvalidArgument, "{v}");
    }
}

#[test]
fn repository_info() {
    // (remote name, familiar, full, ambiguous, domain)
    let cases = [
        (
            "fooo/bar",
            "fooo/bar",
            "docker.io/fooo/bar",
            "index.docker.io/fooo/bar",
            "docker.io",
        ),
        (
            "library/ubuntu",
            "ubuntu",
            "docker.io/library/ubuntu",
            "library/ubuntu",
            "docker.io",
        ),
        (
            "nonlibrary/ubuntu",
            "nonlibrary/ubuntu",
            "docker.io/nonlibrary/ubuntu",
            "",
            "docker.io",
        ),
        (
            "other/library",
            "other/library",
            "docker.io/other/library",
            "",
            "docker.io",
        ),
        (
            "private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "127.0.0.1:8000/private/moonbase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "privatebase",
            "127.0.0.1:8000/privatebase",
            "127.0.0.1:8000/privatebase",
            "",
            "127.0.0.1:8000",
        ),
        (
            "private/moonbase",
            "example.com/private/moonbase",
            "example.com/private/moonbase",
            "",
            "example.com",
        ),
        (
            "privatebase",
            "example.com/privatebase",
            "example.com/privatebase",
            "",
            "example.com",
        ),
        (
            "private/moonbase",
            "example.com:8000/private/moonbase",
            "example.com:8000/private/moonbase",
            "",
            "example.com:8000",
        ),
        (
            "privatebasee",
            "example.com:8000/privatebasee",
            "example.com:8000/privatebasee",
            "",
            "example.com:8000",
        ),
        (
            "library/ubuntu-12.04-base",
            "ubuntu-12.04-base",
            "docker.io/library/ubuntu-12.04-base",
            "index.docker.io/library/ubuntu-12.04-base",
            "docker.io",
        ),
        (
            "library/foo",
            "foo",
            "docker.io/library/foo",
            "docker.io/foo",
            "docker.io",
        ),
        (
            "library/foo/bar",
            "library/foo/bar",
            "docker.io/library/foo/bar",
            "",
            "docker.io",
        ),
        (
            "store/foo/bar",
            "store/foo/bar",
            "docker.io/store/foo/bar",
            "",
            "docker.io",
        ),
        ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
        ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
    ];
    for (remote, familiar, full, ambiguous, domain) in cases {
        let mut inputs = vec![familiar, full];
        if !ambiguous.is_empty() {
            inputs.push(ambiguous);
        }
        for i in inputs {
            let r = Reference::parse_normalized_named(i).unwrap();
            assert_eq!(r.familiar_name(), familiar, "{i}");
            assert_eq!(r.to_string(), full, "{i}");
            assert_eq!(r.domain(), domain, "{i}");
            assert_eq!(r.path(), remote, "{i}");
        }
    }
}

#[test]
fn tag_and_digest() {
    let short =
        "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    let r = Reference::parse_normalized_named(short).unwrap();
    assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
    assert_eq!(r.tag(), Some("latest"));
    assert!(r.digest().is_some());
    assert_eq!(r.familiar_string(), short);
    assert_eq!(
        r.object(),
        "latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    );
    // ParseDockerRef keeps only the digest
    let d = Reference::parse_docker_ref(short).unwrap();
    assert_eq!(d.to_string(), "docker.io/library/busybox@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa");
    assert_eq!(
        d.object(),
        "@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    );
}

#[test]
fn docker_ref_defaults() {
    // containerd's TestParseDockerRef
    let cases = [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:latest", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        (
            &format!("busybox@{D}") as &str,
            &format!("docker.io/library/busybox@{D}") as &str,
        ),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
        ),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("gcr.io/library/busybox", "gcr.io/library/busybox:latest"),
        (
            "example.com:5000/busybox",
            "example.com:5000/busybox:latest",
        ),
        ("localhost/busybox", "localhost/busybox:latest"),
        ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
        ("127.0.0.1:5000/busybox:v1", "127.0.0.1:5000/busybox:v1"),
        ("[::1]:5000/busybox", "[::1]:5000/busybox:latest"),
        ("myuser/app", "docker.io/myuser/app:latest"),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest",
        ),
    ];
    for (input, want) in cases {
        let r = Reference::parse_docker_ref(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), want, "{input}");
    }
    let r = Reference::parse_docker_ref("localhost:5000/a/b:tag").unwrap();
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("localhost:5000", "a/b", Some("tag"))
    );
}

#[test]
fn any_reference() {
    let named = [
        ("redis", "docker.io/library/redis"),
        ("redis:latest", "docker.io/library/redis:latest"),
        (
            "docker.io/library/redis:latest",
            "docker.io/library/redis:latest",
        ),
        (
            &format!("redis@{D}") as &str,
            &format!("docker.io/library/redis@{D}") as &str,
        ),
        ("dmcgowan/myapp", "docker.io/dmcgowan/myapp"),
        ("dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
        (
            "docker.io/mcgowan/myapp:latest",
            "docker.io/mcgowan/myapp:latest",
        ),
        (
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
        ),
        ("dbcc1", "docker.io/library/dbcc1"),
    ];
    for (input, want) in named {
        let r = Reference::parse_any(input).unwrap();
        assert!(matches!(r, AnyReference::Named(_)), "{input}");
        assert_eq!(r.to_string(), want);
    }
    for input in [&D[7..], D] {
        let r = Reference::parse_any(input).unwrap();
        assert!(matches!(r, AnyReference::Digest(_)), "{input}");
        assert_eq!(r.to_string(), D);
    }
}

#[test]
fn split_hostname() {
    let cases = [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    ];
    for (input, domain, path) in cases {
        let r = Reference::parse_normalized_named(input).unwrap();
        assert_eq!((r.domain(), r.path()), (domain, path), "{input}");
    }
}

#[test]
fn plain_parse_as_distribution() {
    // distribution's reference_test.go: Parse without normalisation
    let r = Reference::parse("test_com").unwrap();
    assert_eq!((r.domain(), r.path()), ("", "test_com"));
    let r = Reference::parse("test.com:tag").unwrap();
    assert_eq!((r.path(), r.tag()), ("test.com", Some("tag")));
    let r = Reference::parse("test.com:5000").unwrap();
    assert_eq!((r.path(), r.tag()), ("test.com", Some("5000")));
    let r = Reference::parse("test.com/repo:tag").unwrap();
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("test.com", "repo", Some("tag"))
    );
    let r = Reference::parse("test:5000/repo").unwrap();
    assert_eq!((r.domain(), r.path()), ("test:5000", "repo"));
    let r = Reference::parse(&format!("test:5000/repo@{D}")).unwrap();
    assert_eq!(r.digest().map(|d| d.to_string()), Some(D.to_owned()));
    let r = Reference::parse("sub-dom1.foo.com/bar/baz/quux:some-long-tag").unwrap();
    assert_eq!((r.domain(), r.path()), ("sub-dom1.foo.com", "bar/baz/quux"));
    let r = Reference::parse("foo_bar.com:8080").unwrap();
    assert_eq!((r.path(), r.tag()), ("foo_bar.com", Some("8080")));
    let r = Reference::parse("foo/foo_bar.com:8080").unwrap();
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("foo", "foo_bar.com", Some("8080"))
    );
    let r = Reference::parse("xn--n3h.com/myimage:xn--n3h.com").unwrap();
    assert_eq!(
        (r.domain(), r.path(), r.tag()),
        ("xn--n3h.com", "myimage", Some("xn--n3h.com"))
    );

    let errs = [
        ("", "repository name must have at least one component"),
        (":justtag", "invalid reference format"),
        ("@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "invalid reference format"),
        ("repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "invalid"),
        ("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "unsupported digest algorithm"),
        ("Uppercase:tag", "repository name must be lowercase"),
        ("aa/asdf$$^/aa", "invalid reference format"),
        ("a:a:a", "invalid reference format"),
        (&format!("a/{}", "a".repeat(254)) as &str, "repository name must not be more than 255 characters"),
        (&format!("foo:{}", "a".repeat(129)) as &str, "invalid reference format"),
    ];
    for (input, want) in errs {
        let e = Reference::parse(input).expect_err(input);
        assert!(e.to_string().contains(want), "{input}: {e}");
        assert_eq!(kind_of(&e), ErrorKind::InvalidArgument);
    }
}

#[test]
fn errors_name_the_reference_and_the_problem() {
    let e = Reference::parse_docker_ref("Busybox").unwrap_err();
    assert_eq!(
        e.to_string(),
        "parsing reference \"Busybox\": invalid reference format: repository name (library/Busybox) must be lowercase: invalid argument"
    );
    let e = Reference::parse_docker_ref("busybox:-bad").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("parsing reference \"busybox:-bad\": invalid reference format"),
        "{e}"
    );
    let r = Reference::parse_docker_ref("busybox").unwrap();
    assert!(r.with_tag("-foo").is_err());
    assert_eq!(
        r.with_tag("1.0").unwrap().to_string(),
        "docker.io/library/busybox:1.0"
    );
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    for s in [
        "é",
        "busybox:é",
        "é/x",
        "[é]:1/x",
        "x@sha256:é",
        "@",
        ":",
        "/",
        "a:",
        "a@",
        "[",
        "[]/x",
        "a/b@sha256:",
        "\0",
        &"a/".repeat(300),
    ] {
        let _ = Reference::parse(s);
        let _ = Reference::parse_docker_ref(s);
        let _ = Reference::parse_any(s);
        let _ = crate::image::Platform::parse(s);
        let _ = crate::metadata::filter::Filter::parse_all(&[s]);
        let _ = s.parse::<Digest>();
        let _ = crate::timefmt::parse(s);
    }
    assert!(Reference::parse_docker_ref("é").is_err());
}
