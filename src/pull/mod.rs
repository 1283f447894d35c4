//! Pulling an image, the half below unpack: [`fetch`] resolves a reference and downloads
//! the index, the platform's manifests, configs and layers into the content store, in
//! parallel and resumable, as `ctr content fetch` (and the first half of `ctr image pull`)
//! do; [`progress`] is what it reports per blob for ctr's display; [`gc_labels`] are the
//! `containerd.io/gc.ref.content.*` labels that keep an image's blobs alive.
//! [`image_pull`] is the whole `ctr image pull`: fetch with every layer streamed through
//! its ingest into its own snapshot directory as it arrives ([`tee`]), snapshots committed
//! by chain ID, all under a lease; [`root`] opens the stores of a root in containerd's
//! layout.

pub mod fetch;
pub mod gc_labels;
pub mod image_pull;
pub mod progress;
pub mod root;
pub(crate) mod tee;

pub use fetch::{fetch, FetchOptions, Fetched};
pub use image_pull::{pull, PullOptions, PullTarget, Pulled, PulledImage};
pub use progress::{ProgressEvent, ProgressStatus};
pub use root::ImageRoot;
