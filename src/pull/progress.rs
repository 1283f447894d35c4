//! Per-blob progress of a fetch or a pull, in the terms ctr's display shows (`cmd/ctr/commands/
//! content/fetch.go`): one line per ref (the reference itself while it resolves, then
//! `index-sha256:…`, `manifest-sha256:…`, `config-sha256:…`, `layer-sha256:…`), each with a
//! status and, while downloading, offset and total.

use crate::content::Digest;

/// A line's state, as ctr words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressStatus {
    /// The reference is being resolved.
    Resolving,
    /// The reference resolved (the event's digest says to what).
    Resolved,
    /// Known, not started (waiting for a download slot).
    Waiting,
    /// Downloading: `offset` of `total` bytes are in the ingest.
    Downloading,
    /// Downloaded, verified and committed by this fetch.
    Done,
    /// Already in the store; nothing fetched.
    Exists,
    /// A layer is being unpacked into its snapshot directory (a pull streams it as it
    /// downloads, so this line may come before its `downloading` ones end).
    Unpacking,
    /// A layer's snapshot is committed (under its chain ID).
    Unpacked,
}

impl ProgressStatus {
    /// ctr's word for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressStatus::Resolving => "resolving",
            ProgressStatus::Resolved => "resolved",
            ProgressStatus::Waiting => "waiting",
            ProgressStatus::Downloading => "downloading",
            ProgressStatus::Done => "done",
            ProgressStatus::Exists => "exists",
            ProgressStatus::Unpacking => "unpacking",
            ProgressStatus::Unpacked => "unpacked",
        }
    }
}

impl std::fmt::Display for ProgressStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    /// The line's key: the reference while resolving, else the blob's ingest ref
    /// (containerd's `remotes.MakeRefKey`: `layer-sha256:…`).
    pub ref_: String,
    /// Its status.
    pub status: ProgressStatus,
    /// Bytes in the store so far (a resumed download starts at what the ingest held).
    pub offset: u64,
    /// The blob's size (0 while resolving).
    pub total: u64,
    /// The blob's digest (for `Resolved`, what the reference resolved to).
    pub digest: Option<Digest>,
}

/// Where a fetch sends its events; called from the download threads too.
pub type ProgressFn<'a> = &'a (dyn Fn(&ProgressEvent) + Sync);

/// A progress sink that drops everything.
pub fn ignore(_: &ProgressEvent) {}
