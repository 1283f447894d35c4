//! Metadata of the image stack in one redb database, namespaced as containerd's:
//! namespaces (with labels), images, the content each namespace holds (with its labels),
//! leases and their resources, snapshot records and containers. Every change runs in one
//! ACID transaction ([`db::Database::update`]); errors carry containerd's kinds
//! ([`crate::errdefs::ErrorKind`]).
//!
//! [`namespaced_content::NamespacedContent`] is the content store as one namespace sees it;
//! [`gc`] collects what no image, container, lease or root label reaches.
//!
//! Each resource module has the same typed shape: `get`, `list` (with containerd
//! [`filter`]s), `create`, `update` (with field paths), `delete`.

pub mod containers;
pub mod content;
pub mod db;
pub mod encoding;
pub mod filter;
pub mod filter_regex;
pub mod gc;
pub mod images;
pub mod leases;
pub mod namespaced_content;
pub mod namespaces;
pub mod snapshots;
pub mod temp_lease;

pub use crate::errdefs::{kind_of, Error, ErrorKind};
pub use db::{Database, Read, Tx, View};

#[cfg(test)]
mod tests;
