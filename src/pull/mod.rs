//! Pulling an image, the half below unpack: [`fetch`] resolves a reference and downloads
//! the index, the platform's manifests, configs and layers into the content store, in
//! parallel and resumable, as `ctr content fetch` (and the first half of `ctr image pull`)
//! do; [`progress`] is what it reports per blob for ctr's display; [`gc_labels`] are the
//! `containerd.io/gc.ref.content.*` labels that keep an image's blobs alive.

pub mod fetch;
pub mod gc_labels;
pub mod progress;

pub use fetch::{fetch, FetchOptions, Fetched};
pub use progress::{ProgressEvent, ProgressStatus};
