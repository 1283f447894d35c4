//! OS errors in Go's spelling, as runc prints them (`no such file or directory`: strerror
//! with a lower-case first letter and no " (os error N)"), for messages callers grep for.

/// The text of an I/O error; one without an errno keeps its own text.
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_name_text(n),
        None => e.to_string(),
    }
}

/// strerror of `errno`, lower-cased at the start as Go's syscall.Errno strings are.
pub fn errno_name_text(errno: i32) -> String {
    let desc = nix::errno::Errno::from_raw(errno).desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_spelling() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(super::errno_text(&e), "no such file or directory");
        assert_eq!(
            super::errno_name_text(libc::EPERM),
            "operation not permitted"
        );
        let plain = std::io::Error::other("custom");
        assert_eq!(super::errno_text(&plain), "custom");
    }
}
