//! The registry's answers that callers tell apart: a status the client did not expect,
//! carried with the distribution spec's error codes from the body, so the pull can say "not
//! found" or "unauthorized" and the daemon can map it to its error kinds.

use std::fmt;

#[derive(Debug, Clone)]
pub struct StatusError {
    /// `HEAD`, `GET`, ...
    pub method: String,
    pub url: String,
    pub status: u16,
    /// The distribution spec error codes and messages from the body (`MANIFEST_UNKNOWN:
    /// manifest unknown`), when the body had them.
    pub detail: String,
}

impl StatusError {
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401 || self.status == 403
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // containerd's wording: "unexpected status from HEAD request to URL: 404 Not Found".
        write!(
            f,
            "unexpected status from {} request to {}: {} {}",
            self.method,
            self.url,
            self.status,
            reason(self.status)
        )?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

/// No host had the object: `docker.io/library/x:latest: not found` (containerd's words).
#[derive(Debug, Clone)]
pub struct NotFound(pub String);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: not found", self.0)
    }
}

impl std::error::Error for NotFound {}

/// Whether an error chain says "not found" (no host had it, or a registry's 404).
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<NotFound>().is_some()
            || e.downcast_ref::<StatusError>()
                .is_some_and(|s| s.is_not_found())
    })
}

/// The `errors` array of a distribution spec error body as `CODE: message` lines.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::new(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        416 => "Requested Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
