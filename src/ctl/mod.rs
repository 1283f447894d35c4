//! The ctl's library half: what `ctr` does beyond parsing its command line (which lives in
//! applets/ctl/). Each module is one concept of ctr's behaviour.

pub mod progress;
pub mod spec_from_image;
