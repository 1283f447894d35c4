//! Image references, media types, manifests, platforms and chain IDs: the vocabulary the
//! registry client, unpacker, importer and daemon share.

pub mod reference;

pub use reference::{AnyReference, Reference};
