//! The spec options of `ctr run` / `ctr container create` beyond the image's config, one
//! concept each, as containerd's `oci` and `contrib` packages name them; the order ctr
//! applies them in lives in [`crate::ctl::spec_from_image::build`].

pub mod apparmor;
pub mod capabilities;
pub mod config_file;
pub mod devices;
pub mod seccomp;
pub mod userns;
