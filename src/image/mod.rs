//! Image references, media types, manifests, platforms and chain IDs: the vocabulary the
//! registry client, unpacker, importer and daemon share.
//!
//! - [`reference`]: `docker.io/library/busybox:latest` normalisation;
//! - [`descriptor`]: the content descriptor (media type, digest, size, platform…);
//! - [`media_types`]: OCI and Docker schema 2 media types and what each names;
//! - [`manifest`]: manifest / index / config parsing with limits, platform selection;
//! - [`platform`]: platform specifiers, normalisation and matching;
//! - [`chain_id`]: chain IDs from diff IDs (snapshot names).

pub mod chain_id;
pub mod descriptor;
pub mod manifest;
pub mod media_types;
pub mod platform;
pub mod reference;

pub use descriptor::Descriptor;
pub use platform::{Matcher, Platform};
pub use reference::{AnyReference, Reference};
