//! Image references as containerd and Docker normalise them (containerd's
//! `reference/docker`, a copy of distribution's `reference`): `[domain/]path[:tag][@digest]`,
//! `docker.io` when no domain is given, `library/` for a single-component Docker Hub name,
//! `latest` when there is neither tag nor digest (`ParseDockerRef`).
//!
//! The grammar is matched by hand, in the regexps' own terms:
//! - path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`;
//! - domain: dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels or a bracketed
//!   IPv6 address `[hex and colons]`, then an optional `:port`;
//! - tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; digest: `sha256:<64 hex>` (the only algorithm
//!   this store writes; sha384/sha512 references are refused as unsupported);
//! - name at most 255 characters.
//!
//! A first path element is a domain when it has a `.` or `:`, is `localhost`, or has an
//! uppercase letter (`Foo/bar` is the domain `Foo`), as containerd's `splitDockerDomain`.

use crate::content::Digest;
use crate::errdefs::{err, ErrorKind};
use std::fmt;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library";
/// The tag a name-only reference gets.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's `NameTotalLengthMax`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed reference: a name (domain and path) with an optional tag and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What `ParseAnyReference` gives: a bare digest (or 64-hex image ID) or a named reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyReference {
    /// `sha256:<hex>` or a bare 64-hex identifier.
    Digest(Digest),
    /// A (normalised) named reference.
    Named(Reference),
}

fn invalid(s: &str, why: impl fmt::Display) -> anyhow::Error {
    err(
        ErrorKind::InvalidArgument,
        format!("parsing reference {s:?}: {why}"),
    )
}

impl Reference {
    /// distribution's `Parse`: no defaults added; the domain is whatever the grammar takes
    /// as one (`foo/bar` has the domain `foo`).
    pub fn parse(s: &str) -> anyhow::Result<Reference> {
        match split_reference(s) {
            Some(r) => r.map_err(|why| invalid(s, why)),
            None if s.is_empty() => Err(invalid(
                s,
                "repository name must have at least one component",
            )),
            None if split_reference(&s.to_lowercase()).is_some() => Err(invalid(
                s,
                "invalid reference format: repository name must be lowercase",
            )),
            None => Err(invalid(s, "invalid reference format")),
        }
    }

    /// containerd's `ParseNormalizedNamed`: the familiar form (`busybox`, `me/app:1`) made
    /// fully qualified (`docker.io/library/busybox`, `docker.io/me/app:1`). No default tag.
    pub fn parse_normalized_named(s: &str) -> anyhow::Result<Reference> {
        if is_identifier(s) {
            return Err(invalid(
                s,
                format!(
                    "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
                ),
            ));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or("");
        if remote.to_lowercase() != remote {
            return Err(invalid(
                s,
                format!("invalid reference format: repository name ({remote}) must be lowercase"),
            ));
        }
        let r = Reference::parse(&format!("{domain}/{remainder}")).map_err(|e| {
            // Report against what the user typed, not the expanded string.
            let msg = e.to_string();
            let why = msg
                .split_once(": ")
                .map(|(_, w)| w.trim_end_matches(": invalid argument"))
                .unwrap_or(&msg);
            invalid(s, why)
        })?;
        Ok(r)
    }

    /// containerd's `ParseDockerRef`: normalised, `latest` added to a bare name, and a
    /// `name:tag@digest` reduced to `name@digest` (the digest is what is pulled).
    pub fn parse_docker_ref(s: &str) -> anyhow::Result<Reference> {
        let mut r = Reference::parse_normalized_named(s)?;
        if r.digest.is_some() {
            r.tag = None;
        } else if r.tag.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// containerd's `ParseAnyReference`: a 64-hex identifier or a digest, else a name.
    pub fn parse_any(s: &str) -> anyhow::Result<AnyReference> {
        if is_identifier(s) {
            return Ok(AnyReference::Digest(Digest::from_encoded(s)?));
        }
        if let Ok(d) = s.parse::<Digest>() {
            return Ok(AnyReference::Digest(d));
        }
        Reference::parse_normalized_named(s).map(AnyReference::Named)
    }

    /// The registry domain (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`); may be empty for
    /// a name parsed with [`Reference::parse`] without one.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The repository path (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// `domain/path` (the name, without tag or digest).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// containerd's reference `Spec.Object`: `tag`, `tag@digest` or `@digest` (empty for a
    /// bare name); the thing a resolver asks the registry's manifests endpoint for.
    pub fn object(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => format!("{t}@{d}"),
            (Some(t), None) => t.clone(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => String::new(),
        }
    }

    /// The same name with `tag` (validated).
    pub fn with_tag(&self, tag: &str) -> anyhow::Result<Reference> {
        if !is_tag(tag) {
            return Err(invalid(tag, "invalid tag format"));
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same name and tag with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The name only, without tag and digest.
    pub fn name_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The name as Docker's UI shows it (`busybox`, `me/app`, `quay.io/x/y`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.split_once('/') {
                Some((OFFICIAL_REPO_PREFIX, rest)) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference in familiar form (`busybox:latest@sha256:…`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for AnyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Digest(d) => d.fmt(f),
            AnyReference::Named(r) => r.fmt(f),
        }
    }
}

/// containerd's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}/{remainder}");
    }
    (domain, remainder)
}

/// `^[a-f0-9]{64}$`.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The whole-reference match. None when the grammar does not match at all; Some(Err) when it
/// matches but a part is refused (name too long, digest not valid).
fn split_reference(s: &str) -> Option<Result<Reference, String>> {
    let (left, digest) = match s.split_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !is_digest_pattern(d) {
            return None;
        }
    }
    let last_slash = left.rfind('/');
    let (name, tag) = match left.rfind(':') {
        Some(c) if last_slash.is_none_or(|sl| c > sl) => (&left[..c], Some(&left[c + 1..])),
        _ => (left, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    let (domain, path) = split_name(name)?;
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Some(Err(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )));
    }
    let digest = match digest.map(str::parse::<Digest>) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            let m = e.to_string();
            return Some(Err(m.trim_end_matches(": invalid argument").to_owned()));
        }
    };
    Some(Ok(Reference {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    }))
}

/// `anchoredNameRegexp`: (domain "/")? path-component ("/" path-component)*.
fn split_name(name: &str) -> Option<(&str, &str)> {
    let is_path = |p: &str| p.split('/').all(is_path_component);
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first) && is_path(rest) {
            return Some((first, rest));
        }
    }
    is_path(name).then_some(("", name))
}

fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            a => match a.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        // Only the bracketed IPv6 form gets here with an empty host.
        return s.starts_with('[');
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
fn is_digest_pattern(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
