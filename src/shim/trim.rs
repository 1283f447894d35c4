//! Idle trim: when the serving shim has been idle for a moment it stops mapping what it
//! touched while busy, so an idle shim's RSS is what it needs while idle.
//!
//! Most of a busy shim's RSS is its own binary: the kernel maps file pages 64 KiB around
//! every page fault (fault-around), and the startup relocations, Create and Start touch
//! code all over the 3 MB text. Those pages are page cache shared with every other shim
//! and runtime process of the same binary; an idle shim runs none of that code. So the
//! trim drops this process's mappings of every *clean, read-only* mapping of the binary
//! (`MADV_DONTNEED`; the pages stay in the page cache and fault back in when used), and
//! hands free heap back to the kernel (`malloc_trim`).
//!
//! Only mappings that can never differ from the file are dropped: not writable and with no
//! anonymous (copy-on-write) pages. The RELRO part is read-only too but holds the
//! relocated copy of `.data.rel.ro`; its anonymous pages keep it out.

use std::io::Read;

/// One mapping line of `/proc/self/smaps` and what follows it, reduced to what decides.
struct Mapping {
    start: usize,
    end: usize,
    read_only_of_exe: bool,
    anonymous_kb: u64,
}

/// The mappings of `/proc/self/smaps` text that belong to `exe` and are never written.
fn clean_exe_mappings(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<Mapping> = None;
    let finish = |m: Option<Mapping>, out: &mut Vec<(usize, usize)>| {
        if let Some(m) = m {
            if m.read_only_of_exe && m.anonymous_kb == 0 && m.end > m.start {
                out.push((m.start, m.end));
            }
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((s, e)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(s, 16), usize::from_str_radix(e, 16))
            {
                finish(cur.take(), &mut out);
                let perms = fields.next().unwrap_or("");
                // offset, device, inode, then the path (may hold spaces).
                let path = fields.skip(3).collect::<Vec<_>>().join(" ");
                cur = Some(Mapping {
                    start,
                    end,
                    read_only_of_exe: path == exe && !perms.contains('w'),
                    // Unknown until the Anonymous: line; treat as dirty if it is missing.
                    anonymous_kb: u64::MAX,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(m) = cur.as_mut() {
                m.anonymous_kb = fields
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
            }
        }
    }
    finish(cur.take(), &mut out);
    out
}

/// At most this many mappings are dropped (a static-pie binary has two clean ones).
const MAX_RANGES: usize = 8;

/// Trims the heap and drops the clean read-only mappings of the binary. Best effort:
/// anything unreadable means nothing is dropped.
///
/// The drop comes last and nothing is allocated or freed after it: every code page run
/// from then on, until the thread blocks, is mapped again (with fault-around, 64 KiB).
pub fn trim_idle() {
    let mut ranges = [(0usize, 0usize); MAX_RANGES];
    let mut n = 0;
    if let (Ok(exe), Ok(mut f)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::File::open("/proc/self/smaps"),
    ) {
        let mut smaps = String::new();
        if f.read_to_string(&mut smaps).is_ok() {
            for r in clean_exe_mappings(&smaps, &exe.to_string_lossy()) {
                if n < MAX_RANGES {
                    ranges[n] = r;
                    n += 1;
                }
            }
        }
    }
    // SAFETY: malloc_trim takes an integer and only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    for &(start, end) in &ranges[..n] {
        // SAFETY: the range is a whole private mapping of our binary that is not writable
        // and holds no anonymous pages, so every page in it equals the file;
        // MADV_DONTNEED only unmaps the pages, the next access maps the same content
        // again. No Rust object lives in it.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d000000000-55d000121000 r--p 00000000 00:2a 42 /usr/bin/ocibox
Rss:                 400 kB
Anonymous:             0 kB
55d000122000-55d00041e000 r-xp 00121000 00:2a 42 /usr/bin/ocibox
Anonymous:             0 kB
55d00041e000-55d00045a000 r--p 0041c000 00:2a 42 /usr/bin/ocibox
Anonymous:           240 kB
55d00045a000-55d00045d000 rw-p 00457000 00:2a 42 /usr/bin/ocibox
Anonymous:             0 kB
7f0000000000-7f0000001000 r-xp 00000000 00:2a 43 /usr/lib/other
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xp 00000000 00:2a 44 /usr/bin/ocibox (deleted)
Anonymous:             0 kB
7f0000004000-7f0000005000 r--p 00000000 00:2a 42 /usr/bin/ocibox
";

    #[test]
    fn only_clean_read_only_mappings_of_the_binary() {
        let got = clean_exe_mappings(SMAPS, "/usr/bin/ocibox");
        assert_eq!(
            got,
            vec![
                (0x55d000000000, 0x55d000121000),
                (0x55d000122000, 0x55d00041e000)
            ]
        );
    }

    #[test]
    fn trim_keeps_the_process_working() {
        trim_idle();
        // Code and read-only data fault back in.
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v[42], "42");
    }
}
