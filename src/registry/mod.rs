//! The registry client: the OCI distribution spec (Docker registry API v2) as `ctr image
//! pull/push` and containerd's resolver speak it.
//!
//! - [`client::RegistryClient`]: resolve a tag to a descriptor, fetch manifests and blobs
//!   (streaming, size-limited, resumed with `Range` after a broken connection), push blobs
//!   and manifests; hosts tried in the order `hosts.toml` gives.
//! - [`transport`]: one ureq agent per TLS setting, retries with backoff, plain HTTP.
//! - [`auth`]: the `WWW-Authenticate` challenge answered with Basic or a Bearer token
//!   ([`token`]), credentials from `--user` or a docker `config.json` ([`credentials`]).
//! - [`hosts`]: containerd's per-registry `hosts.toml` directories ([`toml_subset`] reads them).
//! - [`download_limit`]: the bound on parallel blob downloads a pull shares.
//!
//! References, digests, descriptors and media types are the image modules' and the content
//! store's ([`crate::image`], [`crate::content::Digest`]); [`repository`] says where a
//! reference's content lives on a registry.

pub mod auth;
pub mod base64;
pub mod blob_reader;
pub mod challenge;
pub mod client;
pub mod credentials;
pub mod download_limit;
pub mod error;
pub mod hosts;
pub mod push;
pub mod repository;
pub mod token;
pub mod toml_subset;
pub mod transport;

pub use client::{ClientOptions, RegistryClient};
pub use credentials::Credentials;
pub use repository::Repository;
