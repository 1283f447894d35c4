//! Hand-made layer tars for the unpack tests: raw headers, so hostile names (`..`, absolute
//! paths, links out) that a well-behaved tar writer refuses can be written too.
#![allow(dead_code)]

use std::io::Write;

pub struct TarBuilder {
    out: Vec<u8>,
}

pub const REG: u8 = b'0';
pub const LNK: u8 = b'1';
pub const SYM: u8 = b'2';
pub const CHR: u8 = b'3';
pub const BLK: u8 = b'4';
pub const DIR: u8 = b'5';
pub const FIFO: u8 = b'6';

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder { out: Vec::new() }
    }

    /// One entry; `name` and `link` are written byte for byte (at most 100 bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        kind: u8,
        name: &str,
        link: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: &[u8],
        dev: (u32, u32),
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(data.len() as u64);
        if kind == CHR || kind == BLK {
            h.set_device_major(dev.0).unwrap();
            h.set_device_minor(dev.1).unwrap();
        }
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.data(data);
        self
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(REG, name, "", mode, 0, 0, 1_600_000_000, data, (0, 0))
    }
    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(DIR, name, "", mode, 0, 0, 1_600_000_000, b"", (0, 0))
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(SYM, name, target, 0o777, 0, 0, 1_600_000_000, b"", (0, 0))
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(LNK, name, target, 0o644, 0, 0, 1_600_000_000, b"", (0, 0))
    }

    /// A PAX extended header ('x') with these records, applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}=").len() + v.len() + 1;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.raw(b'x', "PaxHeaders/x", "", 0o644, 0, 0, 0, &body, (0, 0))
    }

    /// A header claiming `size` bytes of data of type `kind`, and no data after it.
    pub fn header_only(&mut self, kind: u8, name: &str, size: u64) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> ocibox::content::Digest {
    ocibox::content::Digest::of(data)
}

/// Names in `dir` (to show that nothing was committed or left behind).
pub fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
