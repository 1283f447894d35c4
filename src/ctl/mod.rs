//! The ctl's library half: what `ctr` does beyond parsing its command line (which lives in
//! applets/ctl/). Each module is one concept of ctr's behaviour.

pub mod go_json;
pub mod progress;
pub mod pull_client;
pub mod run;
pub mod shim_cmd;
pub mod spec_from_image;
pub mod task_io;
pub mod task_tables;
