//! Link settings for the ocibox binary.
//!
//! `-z pack-relative-relocs` (DT_RELR): a static-pie binary carries one relocation for
//! every pointer in its data (vtables, string tables, `&'static` data), 24 bytes each as
//! RELA; packed as RELR they take a few bits each. glibc's static-pie start code applies
//! RELR since 2.36 and GNU ld writes it since 2.38; an older ld ignores the option.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
