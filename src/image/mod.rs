//! Image references, media types, manifests, platforms and chain IDs.
