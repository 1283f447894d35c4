//! The registry client (`src/registry`) against Debian's docker-registry 2.8 (plain, TLS with
//! a test CA, htpasswd Basic auth) holding a busybox image pushed by skopeo, and against small
//! in-test servers for the Bearer token flow, redirects to blob storage, 5xx answers and
//! broken downloads.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocibox::content::Digest;
use ocibox::image::{Descriptor, Reference};
use ocibox::registry::credentials::DockerConfig;
use ocibox::registry::error::{is_not_found, StatusError};
use ocibox::registry::push::PushOutcome;
use ocibox::registry::transport::RetryPolicy;
use ocibox::registry::{ClientOptions, Credentials, RegistryClient, Repository};

use common::registry::*;
use common::TempDir;

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn client_with(f: impl FnOnce(&mut ClientOptions)) -> RegistryClient {
    let mut o = ClientOptions {
        retry: quick_retry(),
        ..Default::default()
    };
    f(&mut o);
    RegistryClient::new(o)
}

fn desc(b: &Blob) -> Descriptor {
    Descriptor::new(
        b.media_type.clone(),
        b.digest.parse().unwrap(),
        b.data.len() as u64,
    )
}

fn read_all(mut r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

fn status_of(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<StatusError>())
        .map(|s| s.status)
}

/// Pull everything of `image` from `reference` and compare it with the layout's bytes.
fn pull_and_compare(client: &RegistryClient, reference: &str, image: &BusyboxImage) {
    let r = Reference::parse_docker_ref(reference).unwrap();
    let top = client
        .resolve(&r)
        .unwrap_or_else(|e| panic!("resolve {reference}: {e:#}"));
    assert_eq!(top, desc(&image.top));
    let repo = Repository::of(&r);
    assert_eq!(client.fetch_manifest(&repo, &top).unwrap(), image.top.data);
    for blob in image.blobs() {
        let got = read_all(client.fetch_blob(&repo, &desc(blob)).unwrap()).unwrap();
        assert!(got == blob.data, "blob {} differs", blob.digest);
    }
}

#[test]
fn pulls_a_busybox_image_from_docker_registry() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-img");
    let image = busybox_layout(tmp.path(), "1.36", &["amd64"]);
    skopeo_push(&image, &format!("{}/busybox:1.36", reg.host()), &[]);

    // A loopback registry named without a scheme: HTTPS is tried, plain HTTP answers.
    let client = client_with(|_| {});
    let reference = format!("{}/busybox:1.36", reg.host());
    pull_and_compare(&client, &reference, &image);

    // By digest, and `name:tag@digest`.
    let by_digest = format!("{}/busybox@{}", reg.host(), image.top.digest);
    let d = client
        .resolve(&Reference::parse_docker_ref(&by_digest).unwrap())
        .unwrap();
    assert_eq!(d, desc(&image.top));
    let both = format!("{reference}@{}", image.top.digest);
    assert_eq!(
        client
            .resolve(&Reference::parse_docker_ref(&both).unwrap())
            .unwrap(),
        d
    );

    // Unknown tag, unknown repository, unknown blob: "not found", not a panic or a hang.
    for missing in [
        format!("{}/busybox:nope", reg.host()),
        format!("{}/nothing:1", reg.host()),
    ] {
        let err = client
            .resolve(&Reference::parse_docker_ref(&missing).unwrap())
            .unwrap_err();
        assert!(is_not_found(&err), "{missing}: {err:#}");
        assert!(format!("{err:#}").contains("not found"), "{err:#}");
    }
    let ghost = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"ghost"), 5);
    let err = client
        .fetch_blob(
            &Repository::of(&Reference::parse_docker_ref(&reference).unwrap()),
            &ghost,
        )
        .unwrap_err();
    assert!(is_not_found(&err), "{err:#}");

    // --plain-http says so from the start.
    let plain = client_with(|o| o.hosts.plain_http = true);
    pull_and_compare(&plain, &reference, &image);
}

#[test]
fn resolves_and_walks_a_multi_platform_index() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-index");
    let image = busybox_layout(tmp.path(), "multi", &["amd64", "arm64", "riscv64"]);
    skopeo_push(&image, &format!("{}/busybox:multi", reg.host()), &[]);
    let client = client_with(|o| o.hosts.plain_http = true);
    let r = Reference::parse_docker_ref(&format!("{}/busybox:multi", reg.host())).unwrap();
    let top = client.resolve(&r).unwrap();
    assert_eq!(top.media_type, OCI_INDEX);
    let index: serde_json::Value =
        serde_json::from_slice(&client.fetch_manifest(&Repository::of(&r), &top).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    let archs: Vec<_> = entries
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64", "riscv64"]);
    for (entry, (arch, manifest, config)) in entries.iter().zip(&image.manifests) {
        let d: Descriptor = serde_json::from_value(entry.clone()).unwrap();
        assert_eq!(
            d.platform.as_ref().map(|p| p.architecture.as_str()),
            Some(arch.as_str())
        );
        assert_eq!(
            Descriptor {
                platform: None,
                ..d.clone()
            },
            desc(manifest)
        );
        assert_eq!(
            client.fetch_manifest(&Repository::of(&r), &d).unwrap(),
            manifest.data
        );
        let cfg = read_all(
            client
                .fetch_blob(&Repository::of(&r), &desc(config))
                .unwrap(),
        )
        .unwrap();
        let cfg: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
        assert_eq!(cfg["architecture"], arch.as_str());
    }
}

#[test]
fn pushes_an_image_that_skopeo_reads_back() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-push");
    let image = busybox_layout(tmp.path(), "pushed", &["amd64"]);
    let client = client_with(|o| o.hosts.plain_http = true);
    let r = Reference::parse_docker_ref(&format!("{}/mine/busybox:pushed", reg.host())).unwrap();
    let repo = Repository::of(&r);
    let (_, manifest, config) = &image.manifests[0];
    for blob in [&image.layer, config] {
        let src: PathBuf = image.layout.join("blobs/sha256").join(&blob.digest[7..]);
        assert_eq!(
            client.push_blob(&repo, &desc(blob), &src).unwrap(),
            PushOutcome::Uploaded
        );
        // Again: the registry has it.
        assert_eq!(
            client.push_blob(&repo, &desc(blob), &src).unwrap(),
            PushOutcome::Exists
        );
    }
    let d = client
        .push_manifest(&repo, "pushed", OCI_MANIFEST, &manifest.data)
        .unwrap();
    assert_eq!(d.to_string(), manifest.digest);

    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, manifest.data);
    // And the whole image pulls back.
    pull_and_compare(&client, &r.to_string(), &image);

    // A blob whose bytes do not match its digest is refused by the registry.
    let liar = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"the truth"), 5);
    let err = client
        .push_blob(&repo, &liar, &b"a lie".to_vec())
        .unwrap_err();
    assert!(status_of(&err).is_some_and(|s| s == 400), "{err:#}");
}

#[test]
fn basic_auth_with_user_flag_and_docker_config() {
    let reg = DockerRegistry::start(RegistryConfig {
        htpasswd: Some(("ocibox".into(), "s3cret:pass".into())),
        tls: false,
    });
    let tmp = TempDir::new("ocibox-reg-basic");
    let image = busybox_layout(tmp.path(), "auth", &["amd64"]);
    skopeo_push(
        &image,
        &format!("{}/busybox:auth", reg.host()),
        &["--dest-creds", "ocibox:s3cret:pass"],
    );
    let reference = format!("{}/busybox:auth", reg.host());

    let anonymous = client_with(|o| o.hosts.plain_http = true);
    let err = anonymous
        .resolve(&Reference::parse_docker_ref(&reference).unwrap())
        .unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err:#}");

    let wrong = client_with(|o| {
        o.hosts.plain_http = true;
        o.credentials = Some(Credentials::parse_user_flag("ocibox:wrong").unwrap());
    });
    let err = wrong
        .resolve(&Reference::parse_docker_ref(&reference).unwrap())
        .unwrap_err();
    assert_eq!(status_of(&err), Some(401), "{err:#}");
    assert!(
        !format!("{err:#}").contains("wrong"),
        "no secret in errors: {err:#}"
    );

    let user = client_with(|o| {
        o.hosts.plain_http = true;
        o.credentials = Some(Credentials::parse_user_flag("ocibox:s3cret:pass").unwrap());
    });
    pull_and_compare(&user, &reference, &image);

    let config = tmp.path().join("config.json");
    let auth = ocibox::registry::base64::encode(b"ocibox:s3cret:pass");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{auth}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let from_config = client_with(|o| {
        o.hosts.plain_http = true;
        o.docker_config = Some(DockerConfig::load(&config).unwrap());
    });
    pull_and_compare(&from_config, &reference, &image);
}

#[test]
fn tls_with_a_test_ca_from_hosts_toml() {
    let reg = DockerRegistry::start(RegistryConfig {
        htpasswd: None,
        tls: true,
    });
    let ca = reg.ca.as_ref().unwrap();
    let tmp = TempDir::new("ocibox-reg-tls");
    let image = busybox_layout(tmp.path(), "tls", &["amd64"]);
    skopeo_push(&image, &format!("{}/busybox:tls", reg.host()), &[]);
    let reference = format!("{}/busybox:tls", reg.host());

    // No CA: verification fails, and says why (no silent fall back to plain HTTP).
    let err = client_with(|_| {})
        .resolve(&Reference::parse_docker_ref(&reference).unwrap())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");

    // hosts.toml with `ca` relative to its directory.
    let certs_d = tmp.path().join("certs.d");
    let dir = certs_d.join(format!("127.0.0.1_{}_", reg.port));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&ca.ca_cert, dir.join("registry-ca.pem")).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"https://{}\"\nca = \"registry-ca.pem\"\n",
            reg.host()
        ),
    )
    .unwrap();
    let with_ca = client_with(|o| o.hosts.hosts_dir = Some(certs_d.clone()));
    pull_and_compare(&with_ca, &reference, &image);

    // Docker's pattern: a *.crt in the host's directory, no hosts.toml.
    std::fs::remove_file(dir.join("hosts.toml")).unwrap();
    let plain_dir = certs_d.join(reg.host());
    std::fs::rename(&dir, &plain_dir).unwrap();
    std::fs::rename(plain_dir.join("registry-ca.pem"), plain_dir.join("ca.crt")).unwrap();
    pull_and_compare(
        &client_with(|o| o.hosts.hosts_dir = Some(certs_d.clone())),
        &reference,
        &image,
    );

    // --tlscacert and --skip-verify.
    pull_and_compare(
        &client_with(|o| o.hosts.ca_files = vec![ca.ca_cert.clone()]),
        &reference,
        &image,
    );
    pull_and_compare(
        &client_with(|o| o.hosts.skip_verify = true),
        &reference,
        &image,
    );
}

#[test]
fn mirror_from_hosts_toml_gets_the_namespace_query() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-mirror");
    let image = busybox_layout(tmp.path(), "m", &["amd64"]);
    skopeo_push(&image, &format!("{}/library/busybox:m", reg.host()), &[]);
    // A front that records the `ns` query and relays to the registry.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let port = reg.port;
    let front = TestServer::start(move |req| {
        seen2.lock().unwrap().push(req.query("ns"));
        forward(port, req)
    });
    let certs_d = tmp.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join("docker.io")).unwrap();
    std::fs::write(
        certs_d.join("docker.io/hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            front.host()
        ),
    )
    .unwrap();
    let client = client_with(|o| o.hosts.hosts_dir = Some(certs_d.clone()));
    // docker.io/library/busybox:m is served by the mirror; the upstream is never asked.
    pull_and_compare(&client, "busybox:m", &image);
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|ns| ns == &["docker.io".to_string()]),
        "{seen:?}"
    );
}

#[test]
fn hosts_are_tried_in_order_past_a_missing_and_a_dead_mirror() {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-order");
    let image = busybox_layout(tmp.path(), "o", &["amd64"]);
    skopeo_push(&image, &format!("{}/busybox:o", reg.host()), &[]);
    // A mirror that has nothing (404 for all) and one that is not running at all.
    let asked = Arc::new(AtomicUsize::new(0));
    let asked2 = asked.clone();
    let empty = TestServer::start(move |_| {
        asked2.fetch_add(1, Ordering::SeqCst);
        TestResponse::new(404)
    });
    let dead = free_port();
    let certs_d = tmp.path().join("certs.d");
    let dir = certs_d.join(format!("127.0.0.1_{}_", reg.port));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n[host.\"http://127.0.0.1:{dead}\"]\n  capabilities = [\"pull\"]\n",
            reg.host(),
            empty.host()
        ),
    )
    .unwrap();
    let client = client_with(|o| o.hosts.hosts_dir = Some(certs_d.clone()));
    pull_and_compare(&client, &format!("{}/busybox:o", reg.host()), &image);
    // The empty mirror was asked first for the tag and for every blob.
    assert!(
        asked.load(Ordering::SeqCst) > image.blobs().len(),
        "{}",
        asked.load(Ordering::SeqCst)
    );

    // A host without `push` is never pushed to; here no host may push at all.
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"http://{}\"\ncapabilities = [\"pull\", \"resolve\"]\n",
            reg.host()
        ),
    )
    .unwrap();
    let client = client_with(|o| o.hosts.hosts_dir = Some(certs_d.clone()));
    let repo =
        Repository::of(&Reference::parse_docker_ref(&format!("{}/busybox:o", reg.host())).unwrap());
    let err = client
        .push_blob(&repo, &desc(&image.layer), &image.layer.data.clone())
        .unwrap_err();
    assert!(format!("{err:#}").contains("no host"), "{err:#}");
}

/// A token server and a front that wants its tokens, relaying to a real registry.
struct BearerSetup {
    _reg: DockerRegistry,
    front: TestServer,
    _tokens: TestServer,
    token_requests: Arc<Mutex<Vec<TestRequest>>>,
    front_auth: Arc<Mutex<Vec<Option<String>>>>,
}

fn bearer_setup(require: Option<&'static str>) -> (BearerSetup, BusyboxImage, TempDir) {
    let reg = DockerRegistry::start(RegistryConfig::default());
    let tmp = TempDir::new("ocibox-reg-bearer");
    let image = busybox_layout(tmp.path(), "tok", &["amd64"]);
    skopeo_push(&image, &format!("{}/team/busybox:tok", reg.host()), &[]);

    let token_requests = Arc::new(Mutex::new(Vec::new()));
    let tr = token_requests.clone();
    let tokens = TestServer::start(move |req| {
        tr.lock().unwrap().push(req.clone());
        if let Some(basic) = require {
            if req.header("authorization") != Some(basic) {
                return TestResponse::new(401)
                    .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#);
            }
        }
        if req.query("service") != ["ocibox-test"] {
            return TestResponse::new(400);
        }
        let scopes = req.query("scope").join(" ");
        TestResponse::new(200)
            .header("Content-Type", "application/json")
            .body(
                serde_json::to_vec(
                    &serde_json::json!({"token": format!("tok {scopes}"), "expires_in": 300}),
                )
                .unwrap(),
            )
    });
    let realm = format!("http://{}/token", tokens.host());
    let front_auth = Arc::new(Mutex::new(Vec::new()));
    let fa = front_auth.clone();
    let port = reg.port;
    let front = TestServer::start(move |req| {
        let auth = req.header("authorization").map(str::to_string);
        fa.lock().unwrap().push(auth.clone());
        let path = req.path_only();
        let name = path
            .strip_prefix("/v2/")
            .and_then(|p| {
                ["/manifests/", "/blobs/"]
                    .iter()
                    .find_map(|k| p.find(k).map(|i| &p[..i]))
            })
            .unwrap_or("");
        let actions = if matches!(req.method.as_str(), "GET" | "HEAD") {
            "pull"
        } else {
            "pull,push"
        };
        let needed = format!("repository:{name}:{actions}");
        let ok = auth
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer tok "))
            .is_some_and(|scopes| {
                scopes.split(' ').any(|s| {
                    s == needed
                        || (actions == "pull" && s == format!("repository:{name}:pull,push"))
                })
            });
        if !ok {
            return TestResponse::new(401)
                .header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="{realm}",service="ocibox-test",scope="{needed}""#),
                )
                .body(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                );
        }
        forward(port, req)
    });
    (
        BearerSetup {
            _reg: reg,
            front,
            _tokens: tokens,
            token_requests,
            front_auth,
        },
        image,
        tmp,
    )
}

#[test]
fn bearer_token_flow_anonymous_with_cache_per_scope() {
    let (s, image, tmp) = bearer_setup(None);
    let client = client_with(|o| o.hosts.plain_http = true);
    let reference = format!("{}/team/busybox:tok", s.front.host());
    pull_and_compare(&client, &reference, &image);
    {
        let reqs = s.token_requests.lock().unwrap();
        // One token for every request of that repository's pull scope, fetched anonymously.
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].query("scope"), ["repository:team/busybox:pull"]);
        assert_eq!(reqs[0].header("authorization"), None);
    }
    // The registry saw a bearer token, never anything else, after the first 401.
    let auths = s.front_auth.lock().unwrap().clone();
    assert_eq!(auths[0], None);
    assert!(
        auths[1..]
            .iter()
            .all(|a| a.as_deref() == Some("Bearer tok repository:team/busybox:pull")),
        "{auths:?}"
    );

    // A push needs another scope: a new token, and the image lands.
    let other = busybox_layout(&tmp.path().join("other"), "two", &["arm64"]);
    let repo = Repository::of(
        &Reference::parse_docker_ref(&format!("{}/team/other:two", s.front.host())).unwrap(),
    );
    let (_, m, c) = &other.manifests[0];
    for b in [&other.layer, c] {
        client.push_blob(&repo, &desc(b), &b.data.clone()).unwrap();
    }
    client
        .push_manifest(&repo, "two", OCI_MANIFEST, &m.data)
        .unwrap();
    let scopes: Vec<_> = s
        .token_requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.query("scope").join(" "))
        .collect();
    assert_eq!(
        scopes,
        [
            "repository:team/busybox:pull",
            "repository:team/other:pull,push"
        ]
    );
    pull_and_compare(
        &client,
        &format!("{}/team/other:two", s.front.host()),
        &other,
    );
}

#[test]
fn bearer_token_flow_with_credentials() {
    let basic = "Basic b2NpYm94OnB3"; // ocibox:pw
    let (s, image, _tmp) = bearer_setup(Some(basic));
    let reference = format!("{}/team/busybox:tok", s.front.host());
    let err = client_with(|o| o.hosts.plain_http = true)
        .resolve(&Reference::parse_docker_ref(&reference).unwrap())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("failed to fetch anonymous token") && msg.contains("401"),
        "{msg}"
    );

    let client = client_with(|o| {
        o.hosts.plain_http = true;
        o.credentials = Some(Credentials::parse_user_flag("ocibox:pw").unwrap());
    });
    pull_and_compare(&client, &reference, &image);
    let reqs = s.token_requests.lock().unwrap();
    assert_eq!(reqs.last().unwrap().header("authorization"), Some(basic));
    // The credentials went to the token server only.
    assert!(s
        .front_auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a.as_deref() != Some(basic)));
}

/// A fake registry serving `blobs` (and the top manifest under tag `t`) by a handler the
/// test shapes; `auth` is demanded as Basic on /v2/.
fn layout_server(
    image: &BusyboxImage,
    extra: impl Fn(&TestRequest, &Blob, &AtomicUsize) -> Option<TestResponse> + Send + Sync + 'static,
) -> (TestServer, Arc<Mutex<Vec<TestRequest>>>) {
    let blobs: Vec<Blob> = image.blobs().into_iter().cloned().collect();
    let top = image.top.clone();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let hits = AtomicUsize::new(0);
    let server = TestServer::start(move |req| {
        log2.lock().unwrap().push(req.clone());
        let path = req.path_only();
        let wanted = path.rsplit('/').next().unwrap_or("");
        let blob = if wanted == "t" {
            Some(&top)
        } else {
            blobs.iter().find(|b| b.digest == wanted)
        };
        let Some(blob) = blob else {
            return TestResponse::new(404);
        };
        if let Some(r) = extra(req, blob, &hits) {
            return r;
        }
        TestResponse::content(&blob.media_type, &blob.data)
    });
    (server, log)
}

#[test]
fn blob_redirect_to_another_host_drops_authorization() {
    let tmp = TempDir::new("ocibox-reg-redirect");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let port = Arc::new(AtomicUsize::new(0));
    let port2 = port.clone();
    let (server, log) = layout_server(&image, move |req, blob, _| {
        let path = req.path_only();
        if path.starts_with("/storage/") {
            return None; // served as content, no auth asked
        }
        if req.header("authorization") != Some("Basic dTpw") {
            return Some(
                TestResponse::new(401).header("WWW-Authenticate", r#"Basic realm="test""#),
            );
        }
        if path.contains("/blobs/") {
            // "localhost" is another host than "127.0.0.1" to the client.
            let loc = format!(
                "http://localhost:{}/storage/{}?sig=secret",
                port2.load(Ordering::SeqCst),
                blob.digest
            );
            return Some(TestResponse::new(307).header("Location", &loc));
        }
        None
    });
    port.store(server.port as usize, Ordering::SeqCst);
    let client = client_with(|o| {
        o.hosts.plain_http = true;
        o.credentials = Some(Credentials::parse_user_flag("u:p").unwrap());
    });
    pull_and_compare(&client, &format!("{}/busybox:t", server.host()), &image);
    let log = log.lock().unwrap();
    let storage: Vec<_> = log
        .iter()
        .filter(|r| r.path.starts_with("/storage/"))
        .collect();
    assert_eq!(
        storage.len(),
        image.blobs().len() - 1,
        "every blob but the manifest came from storage"
    );
    assert!(
        storage.iter().all(|r| r.header("authorization").is_none()),
        "{storage:?}"
    );
}

#[test]
fn retries_5xx_with_backoff_and_gives_up() {
    let tmp = TempDir::new("ocibox-reg-5xx");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let (server, log) = layout_server(&image, |req, _, hits| {
        // The first two manifest requests fail, as a registry restarting would.
        if req.path.contains("/manifests/") && hits.fetch_add(1, Ordering::SeqCst) < 2 {
            return Some(TestResponse::new(503));
        }
        None
    });
    let client = client_with(|o| o.hosts.plain_http = true);
    pull_and_compare(&client, &format!("{}/busybox:t", server.host()), &image);
    let first_three: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .take(3)
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(first_three, ["HEAD", "HEAD", "HEAD"]);

    let (always, log) = layout_server(&image, |_, _, _| Some(TestResponse::new(500)));
    let err = client
        .resolve(&Reference::parse_docker_ref(&format!("{}/busybox:t", always.host())).unwrap())
        .unwrap_err();
    assert_eq!(status_of(&err), Some(500), "{err:#}");
    // HEAD tried `attempts` times; the 500 is final, no GET after it.
    assert_eq!(log.lock().unwrap().len(), quick_retry().attempts as usize);

    // A host that refuses connections: retried, then a clear error.
    let dead = free_port();
    let err = client
        .resolve(&Reference::parse_docker_ref(&format!("127.0.0.1:{dead}/busybox:t")).unwrap())
        .unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("127.0.0.1:{dead}")),
        "{err:#}"
    );
}

#[test]
fn broken_blob_download_resumes_with_range() {
    let tmp = TempDir::new("ocibox-reg-range");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let layer = image.layer.clone();
    let half = layer.data.len() / 2;
    let (server, log) = layout_server(&image, move |req, blob, hits| {
        if blob.digest != layer.digest || req.method != "GET" {
            return None;
        }
        let n = hits.fetch_add(1, Ordering::SeqCst);
        let range = req.header("range").map(str::to_string);
        match (n, range) {
            // First try: full length promised, half sent, connection closed.
            (0, None) => {
                let mut r = TestResponse::content(&blob.media_type, &blob.data);
                r.cut_after = Some(half);
                Some(r)
            }
            (_, Some(range)) => {
                let start: usize = range
                    .strip_prefix("bytes=")?
                    .strip_suffix('-')?
                    .parse()
                    .ok()?;
                Some(
                    TestResponse::new(206)
                        .header(
                            "Content-Range",
                            &format!("bytes {start}-{}/{}", blob.data.len() - 1, blob.data.len()),
                        )
                        .body(blob.data[start..].to_vec()),
                )
            }
            _ => None,
        }
    });
    let client = client_with(|o| o.hosts.plain_http = true);
    let r = Reference::parse_docker_ref(&format!("{}/busybox:t", server.host())).unwrap();
    let got = read_all(
        client
            .fetch_blob(&Repository::of(&r), &desc(&image.layer))
            .unwrap(),
    )
    .unwrap();
    assert!(got == image.layer.data);
    let ranges: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, [format!("bytes={half}-")]);

    // Resuming an ingest from an offset asks for the rest only.
    let mut rest = client
        .fetch_blob_at(&Repository::of(&r), &desc(&image.layer), 1000)
        .unwrap();
    assert_eq!(rest.offset(), 1000);
    let tail = read_all(&mut rest).unwrap();
    assert!(tail == image.layer.data[1000..]);
    assert_eq!(rest.offset(), image.layer.data.len() as u64);
}

#[test]
fn a_registry_ignoring_range_and_lying_about_sizes() {
    let tmp = TempDir::new("ocibox-reg-lies");
    let image = busybox_layout(tmp.path(), "t", &["amd64"]);
    let (server, _) = layout_server(&image, |_, _, _| None);
    let client = client_with(|o| o.hosts.plain_http = true);
    let repo = Repository::of(
        &Reference::parse_docker_ref(&format!("{}/busybox:t", server.host())).unwrap(),
    );
    // 200 with the whole blob for a Range request: the prefix is skipped.
    let tail = read_all(client.fetch_blob_at(&repo, &desc(&image.layer), 7).unwrap()).unwrap();
    assert!(tail == image.layer.data[7..]);

    // A descriptor shorter than what the registry sends: refused before reading.
    let mut short = desc(&image.layer);
    short.size -= 1;
    let err = client.fetch_blob(&repo, &short).unwrap_err();
    assert!(
        format!("{err:#}").contains("its descriptor says"),
        "{err:#}"
    );

    // A body that ends early every time: resumed a few times, then a clear error.
    let layer = image.layer.clone();
    let (cutting, log) = layout_server(&image, move |req, blob, _| {
        (blob.digest == layer.digest && req.method == "GET").then(|| {
            let mut r = TestResponse::new(if req.header("range").is_some() {
                500
            } else {
                200
            })
            .body(blob.data.clone());
            r.cut_after = Some(10);
            r
        })
    });
    let client = client_with(|o| {
        o.hosts.plain_http = true;
        o.blob_resumes = 2;
    });
    let repo = Repository::of(
        &Reference::parse_docker_ref(&format!("{}/busybox:t", cutting.host())).unwrap(),
    );
    let err = read_all(client.fetch_blob(&repo, &desc(&image.layer)).unwrap()).unwrap_err();
    assert!(err.to_string().contains("after 10 of"), "{err}");
    assert!(log.lock().unwrap().len() >= 3);

    // A manifest over the size limit is refused, by its descriptor and by its body.
    let small = client_with(|o| {
        o.hosts.plain_http = true;
        o.max_manifest_size = 100;
    });
    let err = small.fetch_manifest(&repo, &desc(&image.top)).unwrap_err();
    assert!(format!("{err:#}").contains("over the limit"), "{err:#}");
    let err = small
        .resolve(&Reference::parse_docker_ref(&format!("{}/busybox:t", cutting.host())).unwrap())
        .map(|_| ())
        .err();
    // HEAD gives everything, so resolve itself reads no body; fetching it is what is limited.
    assert!(err.is_none());
    // A manifest whose bytes do not match the digest asked for.
    let mut wrong = desc(&image.top);
    wrong.digest = Digest::of(b"other");
    let top = image.top.clone();
    let liar = TestServer::start(move |_| TestResponse::content(&top.media_type, &top.data));
    let liar_repo = Repository::of(
        &Reference::parse_docker_ref(&format!("{}/busybox:t", liar.host())).unwrap(),
    );
    let err = client.fetch_manifest(&liar_repo, &wrong).unwrap_err();
    assert!(
        format!("{err:#}").contains("does not match its digest"),
        "{err:#}"
    );
}
