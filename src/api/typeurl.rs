//! `google.protobuf.Any` as containerd's `typeurl` packs it: the type URL is the message's
//! full proto name without a host (`containerd.types.transfer.Progress`), and either form
//! (`type.googleapis.com/…`, `/…`, bare) is accepted when unpacking, as Go's protobuf
//! registry resolves a URL by what follows its last `/`.

use anyhow::{bail, Context, Result};
use prost::{Message, Name};
use prost_types::Any;

/// The full name `google.protobuf.Empty` packs under.
pub const EMPTY: &str = "google.protobuf.Empty";

/// `m` packed as containerd's `typeurl.MarshalAny` packs it.
pub fn pack<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::full_name(),
        value: m.encode_to_vec(),
    }
}

/// An empty message (`google.protobuf.Empty`).
pub fn empty() -> Any {
    Any {
        type_url: EMPTY.to_string(),
        value: Vec::new(),
    }
}

/// The full proto name a type URL names.
pub fn name_of(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// True when `a` holds an `M`.
pub fn is<M: Name>(a: &Any) -> bool {
    name_of(&a.type_url) == M::full_name()
}

/// The `M` in `a`; an error naming both types when `a` holds something else.
pub fn unpack<M: Message + Name + Default>(a: &Any) -> Result<M> {
    if !is::<M>(a) {
        bail!(
            "expected {}, got {:?}",
            M::full_name(),
            name_of(&a.type_url)
        );
    }
    M::decode(a.value.as_slice()).with_context(|| format!("decode {}", M::full_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::transfer::Progress;

    #[test]
    fn packs_bare_names_and_accepts_every_url_form() {
        let p = Progress {
            event: "waiting".into(),
            ..Default::default()
        };
        let a = pack(&p);
        assert_eq!(a.type_url, "containerd.types.transfer.Progress");
        assert_eq!(unpack::<Progress>(&a).unwrap(), p);
        for url in [
            "type.googleapis.com/containerd.types.transfer.Progress",
            "/containerd.types.transfer.Progress",
        ] {
            let a = Any {
                type_url: url.into(),
                value: a.value.clone(),
            };
            assert_eq!(unpack::<Progress>(&a).unwrap(), p);
        }
        let err = unpack::<Progress>(&empty()).unwrap_err().to_string();
        assert!(err.contains("google.protobuf.Empty"), "{err}");
    }
}
