//! Which hosts serve a registry namespace, and how to talk to each: containerd's
//! `hosts.toml` per-registry directories (`/etc/containerd/certs.d/<host>/hosts.toml`).
//!
//! For a namespace `h:5000` the directories `h_5000_`, `h:5000` and `_default` are tried in
//! that order; the first with a `hosts.toml` wins. Its `[host."URL"]` entries are tried first,
//! in file order, then `server` (or the namespace itself when `server` is absent), as
//! containerd does. Without a `hosts.toml`, Docker's certificate pattern applies: `*.crt` files
//! in the directory are CAs of the namespace's own host. Keys read: `server`,
//! `capabilities`, `ca`, `skip_verify`, `override_path`, `[header]`; others are ignored
//! (`client` certificates, `dial_timeout`, `proxy`: not supported yet).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use super::toml_subset::{self, Value};

pub const DEFAULT_HOSTS_DIR: &str = "/etc/containerd/certs.d";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub pull: bool,
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
}

/// What the TLS layer needs to know about a host; equal settings share one HTTP agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Extra CA files, trusted beside the system bundle.
    pub ca_files: Vec<PathBuf>,
    pub skip_verify: bool,
}

/// One host to send a namespace's requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEndpoint {
    pub scheme: Scheme,
    /// `host[:port]`.
    pub host: String,
    /// The API root: `/v2`, or the URL's own path with `override_path`.
    pub path: String,
    pub capabilities: Capabilities,
    pub tls: TlsSettings,
    pub headers: Vec<(String, String)>,
    /// Sent as `?ns=` when this host is not the namespace (a mirror), as containerd does.
    pub namespace: Option<String>,
    /// A loopback host named without a scheme: HTTPS first, plain HTTP when TLS fails.
    pub http_fallback: bool,
}

impl HostEndpoint {
    /// `scheme://host/v2/<repository>/<suffix>` with the `ns` query when it applies.
    pub fn url(&self, repository: &str, suffix: &str) -> String {
        let mut u = format!(
            "{}://{}{}/{}/{}",
            self.scheme.as_str(),
            self.host,
            self.path,
            repository,
            suffix
        );
        if let Some(ns) = &self.namespace {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str("ns=");
            u.push_str(ns);
        }
        u
    }
}

/// Settings from the command line (ctr's `--plain-http`, `--skip-verify`, `--tlscacert`,
/// `--hosts-dir`), applied beside what `hosts.toml` says.
#[derive(Debug, Clone, Default)]
pub struct HostsOptions {
    pub hosts_dir: Option<PathBuf>,
    pub plain_http: bool,
    pub skip_verify: bool,
    pub ca_files: Vec<PathBuf>,
}

pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The hosts for `namespace` (a registry host as in a reference: `docker.io`, `h:5000`), in
/// the order they are tried.
pub fn endpoints_for(namespace: &str, opts: &HostsOptions) -> Result<Vec<HostEndpoint>> {
    let mut hosts = Vec::new();
    let mut server: Option<HostEndpoint> = None;
    if let Some(dir) = &opts.hosts_dir {
        if let Some(cfg_dir) = find_config_dir(dir, namespace) {
            let file = cfg_dir.join("hosts.toml");
            if file.is_file() {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("read {}", file.display()))?;
                let (s, h) = parse_hosts_toml(&text, &cfg_dir, namespace)
                    .with_context(|| format!("parse {}", file.display()))?;
                server = s;
                hosts = h;
            } else {
                let mut d = default_server(namespace, opts);
                d.tls.ca_files = docker_cert_files(&cfg_dir)?;
                server = Some(d);
            }
        }
    }
    hosts.push(server.unwrap_or_else(|| default_server(namespace, opts)));
    for h in &mut hosts {
        h.tls.skip_verify |= opts.skip_verify;
        h.tls.ca_files.extend(opts.ca_files.iter().cloned());
        if h.host != namespace {
            h.namespace = Some(namespace.to_string());
        }
    }
    Ok(hosts)
}

fn find_config_dir(dir: &Path, namespace: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some((h, port)) = namespace.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            candidates.push(format!("{h}_{port}_"));
        }
    }
    candidates.push(namespace.to_string());
    candidates.push("_default".to_string());
    candidates
        .into_iter()
        // A namespace is a host name: never let it walk out of the hosts directory.
        .filter(|c| !c.contains('/') && c != ".." && c != ".")
        .map(|c| dir.join(c))
        .find(|p| p.is_dir())
}

fn default_server(namespace: &str, opts: &HostsOptions) -> HostEndpoint {
    let (host, scheme, http_fallback) = if namespace == "docker.io" {
        ("registry-1.docker.io".to_string(), Scheme::Https, false)
    } else if opts.plain_http {
        (namespace.to_string(), Scheme::Http, false)
    } else {
        (namespace.to_string(), Scheme::Https, is_loopback(namespace))
    };
    HostEndpoint {
        scheme,
        host,
        path: "/v2".to_string(),
        capabilities: Capabilities::ALL,
        tls: TlsSettings::default(),
        headers: Vec::new(),
        namespace: None,
        http_fallback,
    }
}

/// Docker's `certs.d` pattern: every `*.crt` in the directory is a CA.
fn docker_cert_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "crt") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Default)]
struct HostSection {
    capabilities: Option<Capabilities>,
    ca: Vec<PathBuf>,
    skip_verify: bool,
    override_path: bool,
    headers: Vec<(String, String)>,
}

/// The server (if `server` is set) and the `[host]` entries in order.
fn parse_hosts_toml(
    text: &str,
    base: &Path,
    namespace: &str,
) -> Result<(Option<HostEndpoint>, Vec<HostEndpoint>)> {
    let entries = toml_subset::parse(text)?;
    let mut server_url: Option<String> = None;
    let mut root = HostSection::default();
    let mut sections: Vec<(String, HostSection)> = Vec::new();
    for e in entries {
        let (url, rest): (Option<String>, &[String]) = match e.table.as_slice() {
            [] => (None, &[]),
            [h, url, rest @ ..] if h == "host" => (Some(url.clone()), rest),
            [h] if h == "header" => (None, e.table.as_slice()),
            _ => continue,
        };
        let section = match &url {
            None => &mut root,
            Some(u) => {
                if let Some(i) = sections.iter().position(|(s, _)| s == u) {
                    &mut sections[i].1
                } else {
                    sections.push((u.clone(), HostSection::default()));
                    &mut sections.last_mut().expect("just pushed").1
                }
            }
        };
        let key: Vec<&str> = e.key.iter().map(String::as_str).collect();
        match (rest, key.as_slice()) {
            ([h], [name]) if h == "header" => {
                for v in strings(&e.value, name)? {
                    section.headers.push((name.to_string(), v));
                }
            }
            ([], ["server"]) if url.is_none() => {
                server_url = Some(
                    e.value
                        .as_str()
                        .context("server must be a string")?
                        .to_string(),
                );
            }
            ([], ["capabilities"]) => {
                let mut caps = Capabilities {
                    pull: false,
                    resolve: false,
                    push: false,
                };
                for c in strings(&e.value, "capabilities")? {
                    match c.as_str() {
                        "pull" => caps.pull = true,
                        "resolve" => caps.resolve = true,
                        "push" => caps.push = true,
                        other => bail!("unknown capability {other:?}"),
                    }
                }
                section.capabilities = Some(caps);
            }
            ([], ["ca"]) => {
                for c in strings(&e.value, "ca")? {
                    section.ca.push(base.join(c));
                }
            }
            ([], ["skip_verify"]) => {
                section.skip_verify = matches!(e.value, Value::Bool(true));
            }
            ([], ["override_path"]) => {
                section.override_path = matches!(e.value, Value::Bool(true));
            }
            _ => {}
        }
    }
    let server = match server_url {
        Some(u) => Some(endpoint(&u, root)?),
        None if root.capabilities.is_some()
            || !root.ca.is_empty()
            || root.skip_verify
            || !root.headers.is_empty() =>
        {
            // Settings for the namespace's own host without naming it.
            let scheme = if is_loopback(namespace) {
                "http"
            } else {
                "https"
            };
            Some(endpoint(&format!("{scheme}://{namespace}"), root)?)
        }
        None => None,
    };
    let hosts = sections
        .into_iter()
        .map(|(u, s)| endpoint(&u, s))
        .collect::<Result<Vec<_>>>()?;
    Ok((server, hosts))
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .with_context(|| format!("{what} must be strings"))
            })
            .collect(),
        _ => bail!("{what} must be a string or an array of strings"),
    }
}

fn endpoint(url: &str, s: HostSection) -> Result<HostEndpoint> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if url.contains("://") {
        bail!("host {url:?}: only http and https are supported");
    } else {
        (Scheme::Https, url)
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
        bail!("host {url:?}: invalid host");
    }
    let path = if s.override_path || path.ends_with("/v2") {
        path.to_string()
    } else {
        format!("{path}/v2")
    };
    Ok(HostEndpoint {
        scheme,
        host: host.to_string(),
        path,
        capabilities: s.capabilities.unwrap_or(Capabilities::ALL),
        tls: TlsSettings {
            ca_files: s.ca,
            skip_verify: s.skip_verify,
        },
        headers: s.headers,
        namespace: None,
        http_fallback: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocibox-hosts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn defaults_without_a_hosts_dir() {
        let o = HostsOptions::default();
        let h = endpoints_for("docker.io", &o).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].url("library/busybox", "manifests/latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest?ns=docker.io"
        );
        let h = endpoints_for("127.0.0.1:5000", &o).unwrap();
        assert!(h[0].http_fallback && h[0].scheme == Scheme::Https);
        assert_eq!(
            h[0].url("a", "blobs/x"),
            "https://127.0.0.1:5000/v2/a/blobs/x"
        );
        let plain = HostsOptions {
            plain_http: true,
            ..Default::default()
        };
        let h = endpoints_for("quay.io", &plain).unwrap();
        assert_eq!((h[0].scheme, h[0].http_fallback), (Scheme::Http, false));
        assert!(
            is_loopback("localhost:80") && is_loopback("[::1]:5000") && is_loopback("127.1.2.3")
        );
        assert!(!is_loopback("10.0.0.1:5000") && !is_loopback("example.com"));
    }

    #[test]
    fn reads_containerd_hosts_toml() {
        let dir = tmpdir("toml");
        let ns = dir.join("myregistry.io_5000_");
        std::fs::create_dir_all(&ns).unwrap();
        std::fs::write(
            ns.join("hosts.toml"),
            r#"
server = "https://myregistry.io:5000"
ca = "server-ca.pem"

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]
[host."http://mirror.internal/us"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  ca = ["/abs/m.crt", "rel.crt"]
  [host."http://mirror.internal/us".header]
    x-custom = ["a", "b"]
[host."https://non-compliant.example/v2/upstream"]
  override_path = true
"#,
        )
        .unwrap();
        let o = HostsOptions {
            hosts_dir: Some(dir.clone()),
            skip_verify: false,
            ..Default::default()
        };
        let h = endpoints_for("myregistry.io:5000", &o).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(
            h[0].url("img", "manifests/t"),
            "https://public-mirror.example.com/v2/img/manifests/t?ns=myregistry.io:5000"
        );
        assert_eq!(
            h[0].capabilities,
            Capabilities {
                pull: true,
                resolve: false,
                push: false
            }
        );
        assert_eq!(h[1].scheme, Scheme::Http);
        assert_eq!(h[1].path, "/us/v2");
        assert!(h[1].tls.skip_verify);
        assert_eq!(
            h[1].tls.ca_files,
            [PathBuf::from("/abs/m.crt"), ns.join("rel.crt")]
        );
        assert_eq!(
            h[1].headers,
            [
                ("x-custom".to_string(), "a".to_string()),
                ("x-custom".to_string(), "b".to_string())
            ]
        );
        assert_eq!(h[2].path, "/v2/upstream");
        assert_eq!(h[2].capabilities, Capabilities::ALL);
        assert_eq!(h[3].host, "myregistry.io:5000");
        assert_eq!(h[3].namespace, None);
        assert_eq!(h[3].tls.ca_files, [ns.join("server-ca.pem")]);

        // `_default` applies to every other namespace; Docker's *.crt pattern without hosts.toml.
        std::fs::create_dir_all(dir.join("_default")).unwrap();
        std::fs::write(
            dir.join("_default/hosts.toml"),
            "server = \"http://cache.local:8080\"\n",
        )
        .unwrap();
        let h = endpoints_for("quay.io", &o).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].url("x", "blobs/d"),
            "http://cache.local:8080/v2/x/blobs/d?ns=quay.io"
        );
        std::fs::create_dir_all(dir.join("ghcr.io")).unwrap();
        std::fs::write(dir.join("ghcr.io/ca.crt"), "").unwrap();
        std::fs::write(dir.join("ghcr.io/client.cert"), "").unwrap();
        let h = endpoints_for("ghcr.io", &o).unwrap();
        assert_eq!(h[0].tls.ca_files, [dir.join("ghcr.io/ca.crt")]);

        std::fs::write(
            ns.join("hosts.toml"),
            "[host.\"https://m\"]\ncapabilities = [\"fly\"]\n",
        )
        .unwrap();
        let err = format!("{:#}", endpoints_for("myregistry.io:5000", &o).unwrap_err());
        assert!(err.contains("unknown capability \"fly\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
