//! Push (what `ctr image push` needs): blobs by monolithic upload (`POST
//! /blobs/uploads/` → `PUT <location>?digest=`), skipped when the registry already has them
//! (`HEAD /blobs/<digest>`), then manifests by `PUT /manifests/<tag or digest>`.
//! Chunked (`PATCH`) uploads and cross-repository mounts are not used yet.

use anyhow::{bail, Context, Result};

use crate::content::Digest;
use crate::image::Descriptor;

use super::auth::repository_scope;
use super::client::{header, status_error, Operation, RegistryClient};
use super::hosts::HostEndpoint;
use super::repository::Repository;
use super::transport::{redact_url, BlobSource, HttpRequest, RequestBody};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Uploaded,
    /// The registry had it already.
    Exists,
}

impl RegistryClient {
    fn push_endpoint(&self, repo: &Repository) -> Result<HostEndpoint> {
        let eps = self.inner.endpoints(&repo.namespace, Operation::Push)?;
        // Push goes to the first push-capable host only: a blob half-pushed to a mirror and
        // half to the upstream helps no one.
        Ok(eps[0].clone())
    }

    /// Upload a blob unless the registry has it.
    pub fn push_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        source: &dyn BlobSource,
    ) -> Result<PushOutcome> {
        let ep = self.push_endpoint(repo)?;
        let scope = repository_scope(&repo.name, true);
        let url = ep.url(&repo.name, &format!("blobs/{}", desc.digest));
        let resp = self
            .inner
            .request(&ep, HttpRequest::new("HEAD", url.clone()), &scope)?;
        match resp.status().as_u16() {
            200 => return Ok(PushOutcome::Exists),
            404 => {}
            _ => return Err(status_error("HEAD", &url, resp)),
        }

        let start_url = ep.url(&repo.name, "blobs/uploads/");
        let resp = self
            .inner
            .request(&ep, HttpRequest::new("POST", start_url.clone()), &scope)?;
        if resp.status().as_u16() != 202 {
            return Err(status_error("POST", &start_url, resp))
                .context(format!("start the upload of {}", desc.digest));
        }
        let location = header(resp.headers(), "location")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "the registry started an upload without a Location ({})",
                    redact_url(&start_url)
                )
            })?;
        let upload = absolute_url(&ep, &location)?;
        let sep = if upload.contains('?') { '&' } else { '?' };
        let put_url = format!("{upload}{sep}digest={}", desc.digest);
        let mut put = HttpRequest::new("PUT", put_url.clone());
        put.headers
            .push(("Content-Type".into(), "application/octet-stream".into()));
        put.body = RequestBody::Source {
            source,
            size: desc.size,
        };
        let resp = self.inner.request(&ep, put, &scope)?;
        match resp.status().as_u16() {
            201 | 204 => {}
            _ => {
                return Err(status_error("PUT", &put_url, resp))
                    .context(format!("upload blob {}", desc.digest))
            }
        }
        if let Some(d) = header(resp.headers(), "docker-content-digest") {
            if d != desc.digest.to_string() {
                bail!("the registry stored blob {} as {d}", desc.digest);
            }
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Put a manifest under a tag (or its digest); returns the digest the registry stored.
    pub fn push_manifest(
        &self,
        repo: &Repository,
        tag_or_digest: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Digest> {
        let ep = self.push_endpoint(repo)?;
        let scope = repository_scope(&repo.name, true);
        let url = ep.url(&repo.name, &format!("manifests/{tag_or_digest}"));
        let mut put = HttpRequest::new("PUT", url.clone());
        put.headers.push(("Content-Type".into(), media_type.into()));
        put.body = RequestBody::Bytes(manifest);
        let resp = self.inner.request(&ep, put, &scope)?;
        match resp.status().as_u16() {
            200 | 201 | 202 | 204 => {}
            _ => return Err(status_error("PUT", &url, resp)).context("push manifest"),
        }
        let digest = Digest::of(manifest);
        if let Some(d) = header(resp.headers(), "docker-content-digest") {
            if d != digest.to_string() {
                bail!("the registry stored the manifest as {d}, not {digest}");
            }
        }
        Ok(digest)
    }
}

/// An upload `Location` may be absolute or relative to the registry host.
fn absolute_url(ep: &HostEndpoint, location: &str) -> Result<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Ok(location.to_string())
    } else if location.starts_with('/') {
        Ok(format!("{}://{}{location}", ep.scheme.as_str(), ep.host))
    } else {
        bail!("the registry sent an upload location that is not a URL: {location:?}")
    }
}
