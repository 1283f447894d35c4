//! HTTP(S) for the registry client: one ureq agent per TLS setting (rustls with the ring
//! provider; roots = the system CA bundle plus a host's `ca` files), retries with backoff on
//! 5xx, 429 and connection errors, and plain HTTP where asked or, for a loopback host named
//! without a scheme, after HTTPS failed (learned once per host).
//!
//! Redirects (to blob storage) are followed by ureq; `Authorization` is kept only when the
//! redirect stays on the same host and scheme, so a registry token never reaches a storage
//! host.

use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ureq::config::RedirectAuthHeaders;
use ureq::http::{Response, StatusCode};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Body, SendBody};

use super::hosts::TlsSettings;

pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all (1 = no retry).
    pub attempts: u32,
    /// The first wait; doubled after every failure up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Something a request body can be read from, again for every retry.
pub trait BlobSource: Send + Sync {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>>;
}

impl BlobSource for Vec<u8> {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(self.clone())))
    }
}

impl BlobSource for std::path::PathBuf {
    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(self)?))
    }
}

pub enum RequestBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    Source {
        source: &'a dyn BlobSource,
        size: u64,
    },
}

pub struct HttpRequest<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody<'a>,
}

impl HttpRequest<'_> {
    pub fn new(method: &'static str, url: String) -> HttpRequest<'static> {
        HttpRequest {
            method,
            url,
            headers: Vec::new(),
            body: RequestBody::Empty,
        }
    }
}

pub struct Transport {
    retry: RetryPolicy,
    user_agent: String,
    agents: Mutex<HashMap<TlsSettings, Agent>>,
    /// Loopback hosts that answered plain HTTP after HTTPS failed.
    plain_http_hosts: Mutex<HashSet<String>>,
}

/// The system CA bundle, read once; a missing bundle is an empty one (a host with its own
/// `ca` still works; any other HTTPS host fails verification with a clear error).
fn system_roots() -> &'static Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let certs = std::fs::read(SYSTEM_CA_BUNDLE)
            .map(|pem| pem_certificates(&pem))
            .unwrap_or_default();
        Arc::new(certs)
    })
}

fn pem_certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

fn load_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("read CA file {}", path.display()))?;
    let certs = pem_certificates(&pem);
    if certs.is_empty() {
        anyhow::bail!("CA file {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

impl Transport {
    pub fn new(retry: RetryPolicy, user_agent: String) -> Transport {
        Transport {
            retry,
            user_agent,
            agents: Mutex::new(HashMap::new()),
            plain_http_hosts: Mutex::new(HashSet::new()),
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    fn agent(&self, tls: &TlsSettings) -> Result<Agent> {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = agents.get(tls) {
            return Ok(a.clone());
        }
        let mut roots: Vec<Certificate<'static>> = system_roots().as_ref().clone();
        for f in &tls.ca_files {
            roots.extend(load_ca_file(f)?);
        }
        let tls_config = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .disable_verification(tls.skip_verify)
            .build();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .redirect_auth_headers(RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(self.user_agent.as_str())
            .tls_config(tls_config)
            .build()
            .into();
        agents.insert(tls.clone(), agent.clone());
        Ok(agent)
    }

    fn run_once(
        &self,
        agent: &Agent,
        req: &HttpRequest,
        url: &str,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut b = ureq::http::Request::builder().method(req.method).uri(url);
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        match &req.body {
            RequestBody::Empty if req.method == "GET" || req.method == "HEAD" => {
                agent.run(b.body(())?)
            }
            RequestBody::Empty => agent.run(b.header("Content-Length", "0").body(&[][..])?),
            RequestBody::Bytes(data) => agent.run(
                b.header("Content-Length", data.len().to_string())
                    .body(*data)?,
            ),
            RequestBody::Source { source, size } => {
                let reader = source.open()?;
                agent.run(
                    b.header("Content-Length", size.to_string())
                        .body(SendBody::from_owned_reader(reader))?,
                )
            }
        }
    }

    /// Send `req` with retries. `fallback_host` names the endpoint's host when it may fall
    /// back from HTTPS to HTTP. A status is not an error here: callers judge it.
    pub fn send(
        &self,
        tls: &TlsSettings,
        fallback_host: Option<&str>,
        req: &HttpRequest,
    ) -> Result<Response<Body>> {
        let agent = self.agent(tls)?;
        let mut url = req.url.clone();
        let mut failures = 0u32;
        loop {
            if let Some(h) = fallback_host {
                let plain = self
                    .plain_http_hosts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if plain.contains(h) {
                    if let Some(rest) = url.strip_prefix("https://") {
                        url = format!("http://{rest}");
                    }
                }
            }
            let result = self.run_once(&agent, req, &url);
            let retryable = match &result {
                Ok(resp) => is_retryable_status(resp.status()),
                Err(e) => {
                    if fallback_host.is_some() && url.starts_with("https://") && is_tls_failure(e) {
                        let h = fallback_host.unwrap_or_default().to_string();
                        self.plain_http_hosts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(h);
                        continue;
                    }
                    is_retryable_error(e)
                }
            };
            failures += 1;
            if !retryable || failures >= self.retry.attempts {
                return result.with_context(|| format!("{} {}", req.method, redact_url(&url)));
            }
            if let Ok(resp) = result {
                // Drain a small error body so the connection can be reused.
                let _ = resp.into_body().with_config().limit(64 << 10).read_to_vec();
            }
            std::thread::sleep(self.retry.delay(failures - 1));
        }
    }
}

fn is_retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn is_retryable_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Protocol(_)
    )
}

/// HTTPS spoken to a plain HTTP server: the answer is not a TLS record (rustls reads an
/// HTTP status line as a corrupt message), or the server drops the connection. A certificate
/// that does not verify is *not* a reason to try plain HTTP: that error is the answer.
fn is_tls_failure(e: &ureq::Error) -> bool {
    // ureq hands rustls' handshake errors over wrapped in an io::Error.
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match (rustls_error, e) {
        (Some(r), _) => matches!(r, rustls::Error::InvalidMessage(_)),
        (None, ureq::Error::Io(io)) => matches!(
            io.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        _ => false,
    }
}

/// A URL for an error message: a blob storage redirect's signed query stays out of logs.
pub fn redact_url(url: &str) -> &str {
    url.split_once('?').map(|(u, _)| u).unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let d: Vec<_> = (0..4).map(|i| p.delay(i).as_millis()).collect();
        assert_eq!(d, [100, 200, 350, 350]);
        assert_eq!(p.delay(u32::MAX), Duration::from_millis(350));
    }

    #[test]
    fn the_system_bundle_is_read() {
        if Path::new(SYSTEM_CA_BUNDLE).exists() {
            assert!(!system_roots().is_empty());
        }
    }
}
