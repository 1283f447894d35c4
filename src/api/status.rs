//! Errors across the API, as containerd's errdefs carry them: a server turns an error's
//! kind ([`crate::errdefs::ErrorKind`]) into the gRPC code (`errdefs.ToGRPC`) with the
//! error's whole text as the message; a client turns a status back into an error of that
//! kind (`errdefs.FromGRPC`) whose text is the message, so `ctr: image "x": not found`
//! reads the same from either side.

use crate::errdefs::{kind_of, ErrorKind};
use tonic::{Code, Status};

/// The gRPC code of an error kind.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Unknown => Code::Unknown,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::NotImplemented => Code::Unimplemented,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Canceled => Code::Cancelled,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
    }
}

/// The error kind of a gRPC code (codes containerd has no kind for are Unknown).
pub fn kind_of_code(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Unavailable => ErrorKind::Unavailable,
        Code::Unimplemented => ErrorKind::NotImplemented,
        Code::Aborted => ErrorKind::Aborted,
        Code::Cancelled => ErrorKind::Canceled,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Unknown,
    }
}

/// A server's answer for `e`: its kind's code, its whole context chain as the message
/// (`{:#}`, "outer: inner"), as Go's `err.Error()` reads.
pub fn to_status(e: &anyhow::Error) -> Status {
    Status::new(code_of(kind_of(e)), format!("{e:#}"))
}

/// A client's error for `s`: of the code's kind, reading as the server's message.
pub fn from_status(s: &Status) -> anyhow::Error {
    let kind = kind_of_code(s.code());
    let msg = s.message();
    if msg.is_empty() {
        kind.err(kind.as_str())
    } else {
        kind.err(msg.to_string())
    }
}

/// `?` on an anyhow result inside a service method.
pub trait IntoStatus<T> {
    fn status(self) -> Result<T, Status>;
}

impl<T> IntoStatus<T> for anyhow::Result<T> {
    fn status(self) -> Result<T, Status> {
        self.map_err(|e| to_status(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::err;

    #[test]
    fn kinds_round_trip_through_codes() {
        let e = err(ErrorKind::NotFound, "image \"x\"");
        let s = to_status(&e.context("get image"));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "get image: image \"x\": not found");
        let back = from_status(&s);
        assert_eq!(kind_of(&back), ErrorKind::NotFound);
        assert_eq!(back.to_string(), "get image: image \"x\": not found");
        assert_eq!(to_status(&anyhow::anyhow!("plain")).code(), Code::Unknown);
    }
}
