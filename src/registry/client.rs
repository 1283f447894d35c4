//! The distribution spec client: resolve a reference to a descriptor, fetch manifests and
//! blobs, across the hosts `hosts.toml` lists for the namespace (see [`super::hosts`]).
//!
//! Hosts are tried in order: a 404 or a connection failure moves on to the next host; the
//! first other failure is what is reported when no host serves the request (containerd's
//! resolver does the same).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ureq::http::{HeaderMap, Response};
use ureq::Body;

use crate::content::Digest;
use crate::image::media_types::{is_manifest_or_index, MANIFEST_ACCEPT};
use crate::image::{Descriptor, Reference};

use super::auth::{repository_scope, Authorizer, CredentialSource};
use super::blob_reader::BlobReader;
use super::challenge::parse_challenges;
use super::credentials::{Credentials, DockerConfig};
use super::error::{error_detail, NotFound, StatusError};
use super::hosts::{endpoints_for, HostEndpoint, HostsOptions};
use super::repository::{manifest_object, Repository};
use super::transport::{redact_url, HttpRequest, RetryPolicy, Transport};

/// The distribution spec asks registries to accept manifests of at least 4 MiB; larger
/// ones are refused rather than read into memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Error bodies are read this far for their message.
const MAX_ERROR_BODY: u64 = 64 << 10;

#[derive(Clone)]
pub struct ClientOptions {
    pub hosts: HostsOptions,
    /// `--user`: sent to any host that asks (as ctr does).
    pub credentials: Option<Credentials>,
    /// Looked up per host when `credentials` is not given.
    pub docker_config: Option<DockerConfig>,
    pub retry: RetryPolicy,
    pub user_agent: String,
    pub max_manifest_size: u64,
    /// How often a broken blob download is resumed with `Range` before giving up (counted
    /// from the last progress).
    pub blob_resumes: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            hosts: HostsOptions::default(),
            credentials: None,
            docker_config: None,
            retry: RetryPolicy::default(),
            user_agent: format!("ocibox/{}", crate::VERSION),
            max_manifest_size: MAX_MANIFEST_SIZE,
            blob_resumes: 5,
        }
    }
}

/// A registry client; cheap to clone and shared by the threads of a parallel pull.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    auth: Authorizer,
    hosts: HostsOptions,
    endpoints: Mutex<HashMap<String, Arc<Vec<HostEndpoint>>>>,
    pub(crate) max_manifest_size: u64,
    pub(crate) blob_resumes: u32,
}

/// Which operation a host must be capable of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Resolve,
    Pull,
    Push,
}

impl RegistryClient {
    pub fn new(opts: ClientOptions) -> RegistryClient {
        let creds: CredentialSource = match (opts.credentials.clone(), opts.docker_config.clone()) {
            (Some(c), _) => Arc::new(move |_: &str| Some(c.clone())),
            (None, Some(cfg)) => Arc::new(move |host: &str| cfg.lookup(host).cloned()),
            (None, None) => Arc::new(|_: &str| None),
        };
        Self::with_credential_source(opts, creds)
    }

    /// A client whose credentials come from `creds`, asked per host when the host
    /// challenges (the daemon's Transfer asks its client over the auth stream);
    /// `opts.credentials` and `opts.docker_config` are not used.
    pub fn with_credential_source(opts: ClientOptions, creds: CredentialSource) -> RegistryClient {
        RegistryClient {
            inner: Arc::new(Inner {
                transport: Transport::new(opts.retry, opts.user_agent),
                auth: Authorizer::new(creds),
                hosts: opts.hosts,
                endpoints: Mutex::new(HashMap::new()),
                max_manifest_size: opts.max_manifest_size,
                blob_resumes: opts.blob_resumes,
            }),
        }
    }

    /// Resolve a tag (or check a digest) to the descriptor of its manifest or index: `HEAD`
    /// first (digest from `Docker-Content-Digest`, size from `Content-Length`, media type from
    /// `Content-Type`), `GET` when the registry leaves something out.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor> {
        let repo = Repository::of(reference);
        let object = manifest_object(reference);
        let scope = repository_scope(&repo.name, false);
        let mut first_err: Option<anyhow::Error> = None;
        for ep in self
            .inner
            .endpoints(&repo.namespace, Operation::Resolve)?
            .iter()
        {
            let url = ep.url(&repo.name, &format!("manifests/{object}"));
            match self.resolve_at(ep, &url, &scope, reference) {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(match first_err {
            Some(e) => e.context(format!("failed to resolve reference \"{reference}\"")),
            None => anyhow::Error::new(NotFound(reference.to_string())),
        })
    }

    /// One host's answer: `Ok(None)` for not found there.
    fn resolve_at(
        &self,
        ep: &HostEndpoint,
        url: &str,
        scope: &str,
        reference: &Reference,
    ) -> Result<Option<Descriptor>> {
        let mut head = HttpRequest::new("HEAD", url.to_string());
        head.headers.push(("Accept".into(), MANIFEST_ACCEPT.into()));
        let resp = self.inner.request(ep, head, scope)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status == 200 {
            let h = resp.headers();
            let digest = header_digest(h)?.or_else(|| reference.digest().copied());
            let size = header(h, "content-length").and_then(|v| v.parse::<u64>().ok());
            let media_type = header(h, "content-type")
                .map(media_type_of)
                .unwrap_or_default();
            if let (Some(digest), Some(size)) = (digest, size) {
                if media_type_known(&media_type) {
                    check_reference_digest(reference, &digest)?;
                    return Ok(Some(Descriptor::new(media_type, digest, size)));
                }
            }
        } else if status != 405 && status != 400 {
            return Err(status_error("HEAD", url, resp));
        }
        // GET: the body gives the size and, hashed, the digest.
        let mut get = HttpRequest::new("GET", url.to_string());
        get.headers.push(("Accept".into(), MANIFEST_ACCEPT.into()));
        let resp = self.inner.request(ep, get, scope)?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(status_error("GET", url, resp)),
        }
        let header_digest = header_digest(resp.headers())?;
        let content_type = header(resp.headers(), "content-type").map(media_type_of);
        let body = self.inner.read_manifest_body(resp, url)?;
        let digest = match reference.digest().or(header_digest.as_ref()) {
            Some(d) if Digest::of(&body) == *d => *d,
            Some(d) => bail!(
                "manifest of {reference} from {} does not match its digest {d}",
                redact_url(url)
            ),
            None => Digest::of(&body),
        };
        let media_type = match content_type.filter(|t| media_type_known(t)) {
            Some(t) => t,
            None => body_media_type(&body).with_context(|| {
                format!("manifest of {reference} has no media type (Content-Type or mediaType)")
            })?,
        };
        Ok(Some(Descriptor::new(media_type, digest, body.len() as u64)))
    }

    /// Fetch a manifest or index by its descriptor, checked against its size and digest.
    pub fn fetch_manifest(&self, repo: &Repository, desc: &Descriptor) -> Result<Vec<u8>> {
        if desc.size > self.inner.max_manifest_size {
            bail!(
                "manifest {} is {} bytes, over the limit of {} bytes",
                desc.digest,
                desc.size,
                self.inner.max_manifest_size
            );
        }
        let scope = repository_scope(&repo.name, false);
        let mut first_err: Option<anyhow::Error> = None;
        for ep in self
            .inner
            .endpoints(&repo.namespace, Operation::Pull)?
            .iter()
        {
            let url = ep.url(&repo.name, &format!("manifests/{}", desc.digest));
            let mut get = HttpRequest::new("GET", url.clone());
            get.headers
                .push(("Accept".into(), format!("{}, */*", desc.media_type)));
            let resp = match self.inner.request(ep, get, &scope) {
                Ok(r) => r,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            match resp.status().as_u16() {
                200 => {}
                404 => continue,
                _ => {
                    first_err.get_or_insert(status_error("GET", &url, resp));
                    continue;
                }
            }
            let body = self.inner.read_manifest_body(resp, &url)?;
            if body.len() as u64 != desc.size {
                bail!(
                    "manifest {} from {}: got {} bytes, its descriptor says {}",
                    desc.digest,
                    redact_url(&url),
                    body.len(),
                    desc.size
                );
            }
            if Digest::of(&body) != desc.digest {
                bail!(
                    "manifest from {} does not match its digest {}",
                    redact_url(&url),
                    desc.digest
                );
            }
            return Ok(body);
        }
        Err(first_err.unwrap_or_else(|| {
            anyhow::Error::new(NotFound(format!(
                "{}/{}@{}",
                repo.namespace, repo.name, desc.digest
            )))
        }))
    }

    /// A streaming reader of a blob (manifests too, from their endpoint), exactly
    /// `desc.size` bytes; a broken connection is resumed with `Range`.
    pub fn fetch_blob(&self, repo: &Repository, desc: &Descriptor) -> Result<BlobReader> {
        self.fetch_blob_at(repo, desc, 0)
    }

    /// As [`Self::fetch_blob`], from byte `offset` on (an ingest that already holds the
    /// bytes before it).
    pub fn fetch_blob_at(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<BlobReader> {
        if offset > desc.size {
            bail!(
                "cannot resume blob {} at {offset}: it has {} bytes",
                desc.digest,
                desc.size
            );
        }
        let endpoints = self.inner.endpoints(&repo.namespace, Operation::Pull)?;
        BlobReader::open(
            self.inner.clone(),
            endpoints,
            repo.clone(),
            desc.clone(),
            offset,
        )
    }
}

impl Inner {
    pub(crate) fn endpoints(
        &self,
        namespace: &str,
        op: Operation,
    ) -> Result<Arc<Vec<HostEndpoint>>> {
        let all = {
            let mut cache = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(namespace) {
                Some(e) => e.clone(),
                None => {
                    let e = Arc::new(endpoints_for(namespace, &self.hosts)?);
                    cache.insert(namespace.to_string(), e.clone());
                    e
                }
            }
        };
        let picked: Vec<HostEndpoint> = all
            .iter()
            .filter(|h| match op {
                Operation::Resolve => h.capabilities.resolve,
                Operation::Pull => h.capabilities.pull,
                Operation::Push => h.capabilities.push,
            })
            .cloned()
            .collect();
        if picked.is_empty() {
            bail!("no host for {namespace} is configured to {op:?}");
        }
        Ok(Arc::new(picked))
    }

    /// Send a request to a host with its headers and authorization, answering one 401 with
    /// what the challenge asks for.
    pub(crate) fn request(
        &self,
        ep: &HostEndpoint,
        mut req: HttpRequest,
        scope: &str,
    ) -> Result<Response<Body>> {
        for (k, v) in &ep.headers {
            req.headers.push((k.clone(), v.clone()));
        }
        let base = req.headers.len();
        let mut refresh = false;
        loop {
            req.headers.truncate(base);
            if let Some(a) =
                self.auth
                    .authorization(&self.transport, &ep.host, &ep.tls, scope, refresh)?
            {
                req.headers.push(("Authorization".into(), a));
            }
            let fallback = ep.http_fallback.then_some(ep.host.as_str());
            let resp = self.transport.send(&ep.tls, fallback, &req)?;
            if resp.status().as_u16() == 401 && !refresh {
                let values: Vec<&str> = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                let challenges = parse_challenges(values);
                if self.auth.learn(&ep.host, &challenges) {
                    refresh = true;
                    let _ = resp
                        .into_body()
                        .with_config()
                        .limit(MAX_ERROR_BODY)
                        .read_to_vec();
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    fn read_manifest_body(&self, resp: Response<Body>, url: &str) -> Result<Vec<u8>> {
        let limit = self.max_manifest_size;
        if let Some(len) =
            header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit {
                bail!(
                    "manifest at {} is {len} bytes, over the limit of {limit} bytes",
                    redact_url(url)
                );
            }
        }
        resp.into_body()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => anyhow!(
                    "manifest at {} is over the limit of {limit} bytes",
                    redact_url(url)
                ),
                e => {
                    anyhow::Error::new(e).context(format!("read manifest from {}", redact_url(url)))
                }
            })
    }
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn header_digest(h: &HeaderMap) -> Result<Option<Digest>> {
    match header(h, "docker-content-digest") {
        Some(v) if !v.is_empty() => v
            .parse::<Digest>()
            .map(Some)
            .context("the registry sent an invalid Docker-Content-Digest"),
        _ => Ok(None),
    }
}

fn check_reference_digest(reference: &Reference, got: &Digest) -> Result<()> {
    match reference.digest() {
        Some(want) if want != got => {
            bail!("{reference}: the registry answered with digest {got}, not the one asked for")
        }
        _ => Ok(()),
    }
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_type_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A Content-Type that says what the manifest is (not a generic JSON or text type).
fn media_type_known(t: &str) -> bool {
    !t.is_empty() && t != "application/json" && t != "text/plain" && t != "application/octet-stream"
}

fn body_media_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
    }
    let p: Probe = serde_json::from_slice(body).ok()?;
    if is_manifest_or_index(&p.media_type) {
        Some(p.media_type)
    } else {
        None
    }
}

/// A status the caller did not expect, with the registry's error message.
pub(crate) fn status_error(method: &str, url: &str, resp: Response<Body>) -> anyhow::Error {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(MAX_ERROR_BODY)
        .read_to_vec()
        .unwrap_or_default();
    anyhow::Error::new(StatusError {
        method: method.to_string(),
        url: redact_url(url).to_string(),
        status,
        detail: error_detail(&body),
    })
}
