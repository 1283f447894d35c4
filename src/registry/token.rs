//! The Bearer token flow of the distribution spec's token auth: `GET realm?service=..&scope=..`
//! (anonymous, or with Basic credentials), answered `{"token": .., "expires_in": ..}`; tokens
//! cached per (realm, service, scope) until shortly before they expire.
//!
//! containerd POSTs an OAuth2 form when it holds a refresh token or a password and falls back
//! to this GET; the GET with Basic credentials is what every registry's token server accepts,
//! so ocibox sends only the GET (no refresh tokens / identity tokens yet).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::credentials::Credentials;
use super::error::{error_detail, StatusError};
use super::hosts::TlsSettings;
use super::transport::{redact_url, HttpRequest, Transport};

/// The distribution spec: a token without `expires_in` lasts 60 seconds.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);
/// Renew this long before the expiry, so a token does not die in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub realm: String,
    pub service: String,
    pub scope: String,
}

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

impl TokenCache {
    pub fn get(&self, key: &TokenKey) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    pub fn put(&self, key: TokenKey, token: String, lifetime: Duration) {
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(key, (token, until));
    }

    pub fn remove(&self, key: &TokenKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

/// Ask the token server for a token for `key.scope` (space-separated scopes).
pub fn fetch_token(
    transport: &Transport,
    tls: &TlsSettings,
    key: &TokenKey,
    credentials: Option<&Credentials>,
) -> Result<(String, Duration)> {
    let mut url = key.realm.clone();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if !key.service.is_empty() {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&query_escape(&key.service));
        sep = '&';
    }
    for scope in key.scope.split(' ').filter(|s| !s.is_empty()) {
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&query_escape(scope));
        sep = '&';
    }
    let what = if credentials.is_some() {
        "failed to fetch oauth token"
    } else {
        "failed to fetch anonymous token"
    };
    let mut req = HttpRequest::new("GET", url.clone());
    if let Some(c) = credentials {
        req.headers
            .push(("Authorization".to_string(), c.basic_header()));
    }
    let resp = transport.send(tls, None, &req).context(what)?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(MAX_TOKEN_RESPONSE)
        .read_to_vec()
        .with_context(|| format!("{what}: read the answer of {}", redact_url(&url)))?;
    if status != 200 {
        return Err(StatusError {
            method: "GET".to_string(),
            url: redact_url(&url).to_string(),
            status,
            detail: error_detail(&body),
        })
        .context(what);
    }
    let t: TokenResponse = serde_json::from_slice(&body)
        .with_context(|| format!("{what}: the token server's answer is not a token"))?;
    let token = if t.token.is_empty() {
        t.access_token
    } else {
        t.token
    };
    if token.is_empty() || token.len() > 64 << 10 || token.bytes().any(|b| b.is_ascii_control()) {
        bail!("{what}: the token server sent no usable token");
    }
    let lifetime = if t.expires_in == 0 {
        DEFAULT_EXPIRY
    } else {
        Duration::from_secs(t.expires_in.min(86400))
    };
    Ok((token, lifetime))
}

/// Percent-encode a query value (RFC 3986 unreserved kept).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires_and_escapes() {
        let c = TokenCache::default();
        let k = TokenKey {
            realm: "r".into(),
            service: "s".into(),
            scope: "repository:a:pull".into(),
        };
        c.put(k.clone(), "t".into(), Duration::from_secs(300));
        assert_eq!(c.get(&k).as_deref(), Some("t"));
        let other = TokenKey {
            scope: "repository:b:pull".into(),
            ..k.clone()
        };
        assert_eq!(c.get(&other), None);
        // A lifetime inside the margin is already expired.
        c.put(k.clone(), "t2".into(), Duration::from_secs(5));
        assert_eq!(c.get(&k), None);
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
