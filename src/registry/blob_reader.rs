//! A blob download as a `Read`: exactly the descriptor's size (more is an error, less is a
//! broken download), resumed with `Range: bytes=N-` when the connection breaks or the body
//! ends early, and startable at an offset for an ingest that already holds a prefix.
//! The digest is checked by whoever stores the bytes (the content store hashes the whole
//! ingest, prefix included).

use anyhow::{anyhow, bail, Result};
use std::io::{self, Read};
use std::sync::Arc;

use ureq::BodyReader;

use crate::image::media_types::is_manifest_or_index;
use crate::image::Descriptor;

use super::auth::repository_scope;
use super::client::{header, status_error, Inner};
use super::error::NotFound;
use super::hosts::HostEndpoint;
use super::repository::Repository;
use super::transport::{redact_url, HttpRequest};

pub struct BlobReader {
    inner: Arc<Inner>,
    endpoints: Arc<Vec<HostEndpoint>>,
    /// The host that served the last part; resumes go there first.
    current: usize,
    repo: Repository,
    desc: Descriptor,
    offset: u64,
    body: Option<BodyReader<'static>>,
    /// Resumes since the last byte arrived.
    failures: u32,
    /// How the last body broke, said again if resuming fails.
    last_break: Option<String>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("desc", &self.desc)
            .field("offset", &self.offset)
            .finish()
    }
}

impl BlobReader {
    pub(crate) fn open(
        inner: Arc<Inner>,
        endpoints: Arc<Vec<HostEndpoint>>,
        repo: Repository,
        desc: Descriptor,
        offset: u64,
    ) -> Result<BlobReader> {
        let mut r = BlobReader {
            inner,
            endpoints,
            current: 0,
            repo,
            desc,
            offset,
            body: None,
            failures: 0,
            last_break: None,
        };
        if r.offset < r.desc.size {
            r.connect()?;
        }
        Ok(r)
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Bytes of the blob delivered so far, counting a starting offset.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Open the body at `self.offset`, trying the current host first, then the others.
    fn connect(&mut self) -> Result<()> {
        let n = self.endpoints.len();
        let mut first_err = None;
        for i in 0..n {
            let idx = (self.current + i) % n;
            match self.connect_to(idx) {
                Ok(Some(body)) => {
                    self.current = idx;
                    self.body = Some(body);
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| {
            anyhow::Error::new(NotFound(format!(
                "{}/{}@{}",
                self.repo.namespace, self.repo.name, self.desc.digest
            )))
        }))
    }

    fn connect_to(&self, idx: usize) -> Result<Option<BodyReader<'static>>> {
        let ep = &self.endpoints[idx];
        let kind = if is_manifest_or_index(&self.desc.media_type) {
            "manifests"
        } else {
            "blobs"
        };
        let url = ep.url(&self.repo.name, &format!("{kind}/{}", self.desc.digest));
        let mut req = HttpRequest::new("GET", url.clone());
        if kind == "manifests" {
            req.headers
                .push(("Accept".into(), format!("{}, */*", self.desc.media_type)));
        }
        if self.offset > 0 {
            req.headers
                .push(("Range".into(), format!("bytes={}-", self.offset)));
        }
        let scope = repository_scope(&self.repo.name, false);
        let resp = self.inner.request(ep, req, &scope)?;
        let status = resp.status().as_u16();
        let length = header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        let skip = match status {
            404 => return Ok(None),
            200 => {
                if let Some(len) = length.filter(|&l| l != self.desc.size) {
                    bail!(
                        "blob {} from {}: the registry sends {len} bytes, its descriptor says {}",
                        self.desc.digest,
                        redact_url(&url),
                        self.desc.size
                    );
                }
                // A registry that ignores Range sends it all: skip what is already here.
                self.offset
            }
            206 if self.offset > 0 => {
                let range = header(resp.headers(), "content-range").unwrap_or_default();
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(self.offset) {
                    bail!(
                        "blob {} from {}: asked for bytes from {}, got range {range:?}",
                        self.desc.digest,
                        redact_url(&url),
                        self.offset
                    );
                }
                0
            }
            _ => return Err(status_error("GET", &url, resp)),
        };
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        if skip > 0 {
            let copied = io::copy(&mut (&mut body).take(skip), &mut io::sink())?;
            if copied != skip {
                bail!(
                    "blob {}: body ended while skipping to the resume offset",
                    self.desc.digest
                );
            }
        }
        Ok(Some(body))
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            let remaining = self.desc.size - self.offset;
            if remaining == 0 {
                // Anything past the size is a registry lying about the blob.
                if let Some(body) = self.body.as_mut() {
                    let mut one = [0u8; 1];
                    if matches!(body.read(&mut one), Ok(n) if n > 0) {
                        bail!(
                            "blob {} is longer than its descriptor's {} bytes",
                            self.desc.digest,
                            self.desc.size
                        );
                    }
                    self.body = None;
                }
                return Ok(0);
            }
            if self.body.is_none() {
                if let Err(e) = self.connect() {
                    return Err(match self.last_break.take() {
                        Some(b) => e.context(format!("{b}; resuming failed")),
                        None => e,
                    });
                }
            }
            let want = remaining.min(buf.len() as u64) as usize;
            let body = self.body.as_mut().ok_or_else(|| anyhow!("no body"))?;
            let err = match body.read(&mut buf[..want]) {
                Ok(0) => anyhow!(
                    "blob {}: connection closed after {} of {} bytes",
                    self.desc.digest,
                    self.offset,
                    self.desc.size
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    self.failures = 0;
                    self.last_break = None;
                    return Ok(n);
                }
                Err(e) => anyhow::Error::new(e).context(format!(
                    "blob {}: read failed after {} of {} bytes",
                    self.desc.digest, self.offset, self.desc.size
                )),
            };
            self.body = None;
            if self.failures >= self.inner.blob_resumes {
                return Err(err);
            }
            self.last_break = Some(format!("{err:#}"));
            std::thread::sleep(self.inner.transport.retry_policy().delay(self.failures));
            self.failures += 1;
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_inner(buf)
            .map_err(|e| io::Error::other(format!("{e:#}")))
    }
}
