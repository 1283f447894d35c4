//! Metadata of the image stack in one redb database.

pub mod errors;
pub mod filter;
