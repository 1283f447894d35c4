//! Error kinds, as containerd's `errdefs`: what went wrong in a form a caller can act on
//! (retry, create first, give up), independent of the wire. Library code returns a kind
//! inside an ordinary `anyhow::Error` ([`Error`], or [`ErrorKind::err`] to build one); the
//! edges look it up with [`kind_of`] and turn it into their protocol's code in one place:
//! the shim into ttrpc codes (`crate::ttrpc::status`), the daemon into gRPC codes (next).
//!
//! No protocol types here, so this compiles in every feature set.

use std::fmt;

/// The kinds containerd distinguishes (its `errdefs` package), with its meaning of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Nothing more specific is known (containerd: ErrUnknown; also any error without a kind).
    Unknown,
    /// The request is malformed or names something impossible.
    InvalidArgument,
    /// The object does not exist.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// The object is not in the state the operation needs (e.g. signalling a process that
    /// has not started).
    FailedPrecondition,
    /// The service or peer is not reachable now; retrying may help.
    Unavailable,
    /// The operation is not implemented (here or at all).
    NotImplemented,
    /// The operation was aborted (a conflict, e.g. a concurrent change).
    Aborted,
    /// The caller gave up (context cancelled).
    Canceled,
    /// A deadline passed before the operation finished.
    DeadlineExceeded,
    /// A quota or resource is exhausted.
    ResourceExhausted,
    /// The caller lacks permission.
    PermissionDenied,
}

impl ErrorKind {
    /// An `anyhow::Error` of this kind with `message`.
    pub fn err(self, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Error {
            kind: self,
            message: message.into(),
        })
    }

    /// containerd's wording of the kind (its errdefs sentinel texts).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unknown => "unknown",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Canceled => "context canceled",
            ErrorKind::DeadlineExceeded => "context deadline exceeded",
            ErrorKind::ResourceExhausted => "resource exhausted",
            ErrorKind::PermissionDenied => "permission denied",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that carries its kind. Its text is the message alone (the kind is for
/// programs), so wrapping an error in a kind does not change what users read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The kind of `e`: the outermost [`Error`] in its chain (so context added later keeps the
/// kind), else [`ErrorKind::Unknown`].
pub fn kind_of(e: &anyhow::Error) -> ErrorKind {
    e.chain()
        .find_map(|c| c.downcast_ref::<Error>().map(|k| k.kind))
        .unwrap_or(ErrorKind::Unknown)
}

/// An error of `kind` in containerd's message shape, `<message>: <kind>` (its errdefs wrap:
/// "content sha256:…: not found"), as the image stack and the daemon report them.
pub fn err(kind: ErrorKind, message: impl Into<String>) -> anyhow::Error {
    let message = message.into();
    if message.is_empty() {
        kind.err(kind.as_str())
    } else {
        kind.err(format!("{message}: {kind}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kind_survives_context_and_text_is_unchanged() {
        let e = ErrorKind::NotFound.err("process already finished");
        assert_eq!(format!("{e:#}"), "process already finished");
        let e = Err::<(), _>(e).context("kill").unwrap_err();
        assert_eq!(kind_of(&e), ErrorKind::NotFound);
        assert_eq!(format!("{e:#}"), "kill: process already finished");
    }

    #[test]
    fn plain_errors_are_unknown() {
        assert_eq!(kind_of(&anyhow::anyhow!("boom")), ErrorKind::Unknown);
    }
}
