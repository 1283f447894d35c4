//! The one place error kinds become ttrpc status codes (as containerd's
//! `errdefs.ToGRPC`, ttrpc using gRPC's codes). Handlers never build codes by hand.

use containerd_shim_protos::ttrpc::{self, Code};

use crate::errdefs::{kind_of, ErrorKind};

/// The ttrpc code of a kind.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Unknown => Code::UNKNOWN,
        ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
        ErrorKind::Unavailable => Code::UNAVAILABLE,
        ErrorKind::NotImplemented => Code::UNIMPLEMENTED,
        ErrorKind::Aborted => Code::ABORTED,
        ErrorKind::Canceled => Code::CANCELLED,
        ErrorKind::DeadlineExceeded => Code::DEADLINE_EXCEEDED,
        ErrorKind::ResourceExhausted => Code::RESOURCE_EXHAUSTED,
        ErrorKind::PermissionDenied => Code::PERMISSION_DENIED,
    }
}

/// A ttrpc status error of `kind` with `message`.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code(kind), message.into()))
}

/// An error as a ttrpc status: the code of its kind ([`kind_of`]: Unknown when it has
/// none), the whole chain as the message.
pub fn from_error(e: anyhow::Error) -> ttrpc::Error {
    error(kind_of(&e), format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kinds_map_to_their_codes_through_context() {
        let e = Err::<(), _>(ErrorKind::NotFound.err("gone"))
            .context("kill")
            .unwrap_err();
        match from_error(e) {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.code(), Code::NOT_FOUND);
                assert_eq!(s.message, "kill: gone");
            }
            other => panic!("{other:?}"),
        }
        match from_error(anyhow::anyhow!("boom")) {
            ttrpc::Error::RpcStatus(s) => assert_eq!(s.code(), Code::UNKNOWN),
            other => panic!("{other:?}"),
        }
        assert_eq!(code(ErrorKind::NotImplemented), Code::UNIMPLEMENTED);
    }
}
