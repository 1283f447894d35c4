//! Image archives: what `ctr image import` reads and `ctr image export` writes.
//!
//! - [`import`]: an OCI image-layout tar or a `docker save` tar, read once and streamed
//!   into the content store, its images named as ctr 1.6 names them;
//! - [`export`]: images as an OCI image-layout tar with containerd's annotations and the
//!   Docker-compatible `manifest.json`;
//! - [`entry_names`]: the names an archive may hold (the path checks);
//! - [`docker_save`]: a docker archive's `manifest.json` turned into schema 2 manifests;
//! - [`compress_layer`]: `--compress-blobs`, plain docker layers stored gzip'd;
//! - [`image_names`]: ref names, `--base-name`, `--digests`, RepoTags normalisation;
//! - [`header_budget`]: the bound on what the tar parser buffers for headers;
//! - [`store`]: what both need of a content store, so they run over the daemon's own store
//!   and over containerd's Content and Images services alike.

pub mod compress_layer;
pub mod docker_save;
pub mod entry_names;
pub mod export;
pub mod header_budget;
pub mod image_names;
pub mod import;
pub mod store;

pub use export::{export, export_from, ExportOptions};
pub use image_names::Naming;
pub use import::{import, import_to, ImportOptions, Imported};
pub use store::{ArchiveStore, IngestWriter};
