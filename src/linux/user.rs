//! The container process's user: resolving `user[:group]` against the container's
//! `/etc/passwd` and `/etc/group`, and switching the process to that user.
//!
//! Lookup follows runc's rules (`libcontainer/user`, `GetExecUser`):
//! - `""` keeps the current uid; `"name"` or `"uid"` picks the first matching passwd line and,
//!   when a passwd line matched, takes its gid, home, and every group that lists the user's name
//!   as a member as supplementary groups;
//! - `"user:group"` forms set the gid explicitly and then no supplementary groups are looked up;
//! - a numeric user or group with no matching line is used as is (range 0..=2147483647), a name
//!   with no matching line is an error ("unable to find user NAME: no matching entries in passwd
//!   file"); a missing passwd or group file is the same as an empty one.
//!
//! Malformed lines (a uid or gid that is not a number) are skipped rather than read as 0, so a
//! broken image cannot turn a user into root by accident.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

/// The largest uid or gid runc accepts (`math.MaxInt32`).
const MAX_ID: u64 = 2_147_483_647;

/// /etc/passwd and /etc/group larger than this are refused instead of read.
const MAX_DB_FILE_SIZE: u64 = 16 << 20;

/// Who the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups found in /etc/group (only for the implicit `user` form).
    pub sgids: Vec<u32>,
    /// Home directory from passwd, `/` when the user has no passwd entry.
    pub home: String,
}

/// One line of a passwd file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of a group file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, mixed) inside the rootfs `root`
/// (`/` after pivot_root). The default for an empty user part is the caller's current uid.
pub fn lookup_user(root: &Path, user: &str) -> Result<ExecUser> {
    let passwd = read_db_file(root, "etc/passwd")?;
    let group = read_db_file(root, "etc/group")?;
    let current = ExecUser {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        sgids: Vec::new(),
        home: "/".to_string(),
    };
    resolve_user(user, &current, passwd.as_deref(), group.as_deref())
}

/// Resolve `additionalGids`-style group names or numbers (runc `GetAdditionalGroups`) against
/// `root/etc/group`. Duplicates are dropped, the first appearance keeps its place.
pub fn additional_gids_from_names(root: &Path, groups: &[String]) -> Result<Vec<u32>> {
    let group = read_db_file(root, "etc/group")?;
    resolve_additional_groups(groups, group.as_deref())
}

/// The value for `HOME` when the process environment has none: the user's passwd home.
/// Returns `None` when `env` already sets HOME (even to an empty value runc replaces it, so an
/// empty HOME counts as unset).
pub fn default_home(env: &[String], user: &ExecUser) -> Option<String> {
    let has_home = env
        .iter()
        .any(|kv| kv.strip_prefix("HOME=").is_some_and(|v| !v.is_empty()));
    if has_home {
        None
    } else {
        Some(user.home.clone())
    }
}

/// Switch the calling (single-threaded) process to `uid`/`gid` with `additional_gids` as the
/// supplementary groups.
///
/// Order as runc: setgroups (skipped when `setgroups_allowed` is false, e.g. a user namespace
/// whose /proc/self/setgroups says "deny"), setresgid, setresuid. PR_SET_KEEPCAPS is set for
/// the uid change and cleared afterwards, so the permitted capabilities survive a switch away
/// from uid 0; `capabilities::set_after_setuid` must be called next to restore the effective
/// set (the kernel clears it on the switch).
pub fn apply_user(
    uid: u32,
    gid: u32,
    additional_gids: &[u32],
    setgroups_allowed: bool,
) -> Result<()> {
    if setgroups_allowed {
        let groups: Vec<nix::unistd::Gid> = additional_gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups)
            .with_context(|| format!("setgroups to {additional_gids:?}"))?;
    } else if !additional_gids.is_empty() {
        bail!("cannot set additional groups {additional_gids:?}: setgroups is denied in this user namespace");
    }
    let g = nix::unistd::Gid::from_raw(gid);
    // A seccomp profile may be in force already (without no_new_privs it is loaded before the
    // user switch) and allow only setgid/setuid, which runc uses: for a process holding
    // CAP_SETGID/CAP_SETUID they set real, effective and saved ids alike, so they serve when
    // setresgid/setresuid are denied (EPERM or ENOSYS from the filter).
    nix::unistd::setresgid(g, g, g)
        .or_else(|e| match e {
            Errno::EPERM | Errno::ENOSYS => nix::unistd::setgid(g),
            e => Err(e),
        })
        .map_err(|e| id_error(e, "gid", gid))?;

    set_keep_caps(true)?;
    let u = nix::unistd::Uid::from_raw(uid);
    let switched = nix::unistd::setresuid(u, u, u)
        .or_else(|e| match e {
            Errno::EPERM | Errno::ENOSYS => nix::unistd::setuid(u),
            e => Err(e),
        })
        .map_err(|e| id_error(e, "uid", uid));
    let cleared = set_keep_caps(false);
    switched?;
    cleared
}

/// runc's fixStdioPermissions: make fds 0, 1 and 2 owned by `uid` (keeping their group) so the
/// user can use its console, skipping /dev/null. Call before [`apply_user`].
pub fn fix_stdio_permissions(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").context("stat /dev/null")?;
    for fd in 0..=2 {
        let st = match nix::sys::stat::fstat(fd) {
            Ok(st) => st,
            Err(Errno::EBADF) => continue,
            Err(e) => return Err(e).with_context(|| format!("fstat stdio fd {fd}")),
        };
        let is_null = st.st_rdev == null.st_rdev && (st.st_mode & libc::S_IFMT) == libc::S_IFCHR;
        if is_null || st.st_uid == uid {
            continue;
        }
        // SAFETY: fd 0..=2 is open (fstat succeeded); fchown does not retain it.
        let rc = unsafe { libc::fchown(fd, uid, st.st_gid) };
        if rc != 0 {
            let err = Errno::last();
            // Unmapped gid (EINVAL), owner not mapped in our user namespace (EPERM) or a
            // read-only /dev (EROFS): runc leaves such stdio alone rather than fail.
            if matches!(err, Errno::EINVAL | Errno::EPERM | Errno::EROFS) {
                continue;
            }
            return Err(err).with_context(|| format!("fchown stdio fd {fd} to uid {uid}"));
        }
    }
    Ok(())
}

fn id_error(e: Errno, what: &str, id: u32) -> anyhow::Error {
    if e == Errno::EINVAL {
        anyhow::anyhow!("cannot set {what} to unmapped user in user namespace: {what} {id}")
    } else {
        anyhow::Error::new(e).context(format!("set{what} to {id}"))
    }
}

fn set_keep_caps(on: bool) -> Result<()> {
    // SAFETY: prctl(PR_SET_KEEPCAPS) takes plain integers and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if rc != 0 {
        return Err(Errno::last())
            .with_context(|| format!("prctl PR_SET_KEEPCAPS {}", u8::from(on)));
    }
    Ok(())
}

/// Read `root/rel`, resolved inside `root` (symlinks in the image cannot lead out).
/// A missing file is `None`.
fn read_db_file(root: &Path, rel: &str) -> Result<Option<String>> {
    let path = root.join(rel);
    let file = match open_in_root(root, rel) {
        Ok(f) => f,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    let mut text = String::new();
    let read = file
        .take(MAX_DB_FILE_SIZE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    if read as u64 > MAX_DB_FILE_SIZE {
        bail!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_DB_FILE_SIZE
        );
    }
    Ok(Some(text))
}

fn open_in_root(root: &Path, rel: &str) -> std::result::Result<File, Errno> {
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let rel_c = CString::new(rel).map_err(|_| Errno::EINVAL)?;
    // SAFETY: root_c is a valid NUL-terminated string; the returned fd is owned below.
    let dirfd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dirfd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: dirfd was just opened by us and is owned by nobody else.
    let dir = unsafe { OwnedFd::from_raw_fd(dirfd) };
    // SAFETY: open_how is plain data; all-zero is its valid empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads `how` (size passed) and the NUL-terminated path; both outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel returned a new fd that nothing else owns.
        return Ok(unsafe { File::from_raw_fd(fd as i32) });
    }
    let err = Errno::last();
    if err != Errno::ENOSYS {
        return Err(err);
    }
    // Kernels before 5.6 have no openat2; fall back to a plain open below the root.
    File::open(root.join(rel)).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Split `user[:group]` like runc's parseLine: at most the first two ':'-separated fields count.
fn split_user_spec(spec: &str) -> (&str, &str) {
    let mut it = spec.split(':');
    let user = it.next().unwrap_or("");
    let group = it.next().unwrap_or("");
    (user, group)
}

fn parse_id(s: &str) -> Option<u64> {
    // Go's strconv.Atoi accepts a sign; ids with a sign are out of range or the same number.
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().or(Some(u64::MAX))
}

fn checked_id(id: u64) -> Result<u32> {
    if id > MAX_ID {
        bail!("uids and gids must be in range 0-{MAX_ID}");
    }
    Ok(id as u32)
}

fn db_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    db_lines(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    db_lines(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn resolve_user(
    spec: &str,
    defaults: &ExecUser,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser> {
    let mut user = defaults.clone();
    let (user_arg, group_arg) = split_user_spec(spec);
    let uid_arg = parse_id(user_arg);
    let gid_arg = parse_id(group_arg);

    let users = passwd.map(parse_passwd).unwrap_or_default();
    let matched = users.iter().find(|u| {
        if user_arg.is_empty() {
            u64::from(u.uid) == u64::from(defaults.uid)
        } else if let Some(uid) = uid_arg {
            u64::from(u.uid) == uid
        } else {
            u.name == user_arg
        }
    });

    let mut matched_name: Option<&str> = None;
    if let Some(entry) = matched {
        matched_name = Some(&entry.name);
        user.uid = entry.uid;
        user.gid = entry.gid;
        user.home = entry.home.clone();
    } else if !user_arg.is_empty() {
        match uid_arg {
            Some(uid) => user.uid = checked_id(uid)?,
            None => bail!("unable to find user {user_arg}: no matching entries in passwd file"),
        }
    }

    if group_arg.is_empty() && matched_name.is_none() {
        return Ok(user);
    }
    let groups = group.map(parse_group).unwrap_or_default();
    if !group_arg.is_empty() {
        let found = groups.iter().find(|g| match gid_arg {
            Some(gid) => u64::from(g.gid) == gid,
            None => g.name == group_arg,
        });
        user.gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => checked_id(gid)?,
            (None, None) => {
                bail!("unable to find group {group_arg}: no matching entries in group file")
            }
        };
    } else if let Some(name) = matched_name {
        let sgids: Vec<u32> = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.gid)
            .collect();
        if !sgids.is_empty() {
            user.sgids = sgids;
        }
    }
    Ok(user)
}

fn resolve_additional_groups(wanted: &[String], group: Option<&str>) -> Result<Vec<u32>> {
    let groups = group.map(parse_group).unwrap_or_default();
    let mut out: Vec<u32> = Vec::new();
    for ag in wanted {
        let found = groups
            .iter()
            .find(|g| g.name == *ag || g.gid.to_string() == *ag)
            .map(|g| g.gid);
        let gid = match found {
            Some(gid) => gid,
            None => match parse_id(ag) {
                Some(id) => checked_id(id)?,
                None => bail!("unable to find group {ag}: no matching entries in group file"),
            },
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken:x:notanumber:0::/:/bin/sh
alice:x:1001:1001:second alice:/home/alice2:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
daemon:x:1:
wheel:x:10:alice,bob
alice:x:1000:
audio:x:29:bob, alice
staff:x:50:
";

    fn defaults() -> ExecUser {
        ExecUser {
            uid: 0,
            gid: 0,
            sgids: vec![],
            home: "/".into(),
        }
    }

    fn res(spec: &str) -> Result<ExecUser> {
        resolve_user(spec, &defaults(), Some(PASSWD), Some(GROUP))
    }

    fn err(r: Result<ExecUser>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    /// A rootfs in a fresh temp dir, removed on drop.
    struct TempRoot(std::path::PathBuf);
    impl TempRoot {
        fn new(tag: &str, passwd: Option<&str>, group: Option<&str>) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "ocibox-user-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("etc")).unwrap();
            if let Some(p) = passwd {
                std::fs::write(dir.join("etc/passwd"), p).unwrap();
            }
            if let Some(g) = group {
                std::fs::write(dir.join("etc/group"), g).unwrap();
            }
            TempRoot(dir)
        }
    }
    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn name_form_takes_passwd_and_member_groups() {
        let u = res("alice").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/alice"));
        assert_eq!(u.sgids, vec![10, 29]);
    }

    #[test]
    fn first_match_wins() {
        assert_eq!(res("alice").unwrap().uid, 1000);
    }

    #[test]
    fn uid_form_with_entry_uses_entry_and_its_groups() {
        let u = res("1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.sgids, vec![10, 29]);
        let u = res("1").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1, 1, "/usr/sbin"));
        assert!(u.sgids.is_empty());
    }

    #[test]
    fn uid_form_without_entry_is_used_as_is() {
        let u = res("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(u.sgids.is_empty());
    }

    #[test]
    fn explicit_group_forms() {
        let u = res("alice:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert!(u.sgids.is_empty(), "explicit group form has no sgids");
        let u = res("1000:50").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = res("4242:4343").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        let u = res("4242:staff").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 50));
        let u = res("daemon:").unwrap();
        assert_eq!((u.uid, u.gid), (1, 1));
    }

    #[test]
    fn empty_spec_keeps_current_user() {
        let u = res("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn errors_name_what_is_missing() {
        assert_eq!(
            err(res("nobody")),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            err(res("alice:nogroup")),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(err(res("2147483648")).contains("must be in range"));
        assert!(err(res("1:99999999999999999999")).contains("must be in range"));
    }

    #[test]
    fn malformed_lines_never_map_to_root() {
        assert!(res("broken").is_err());
    }

    #[test]
    fn missing_files_fine_for_numbers_error_for_names() {
        let root = TempRoot::new("missing", None, None);
        let u = lookup_user(&root.0, "1234:5678").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 5678, "/"));
        assert_eq!(
            format!("{:#}", lookup_user(&root.0, "alice").unwrap_err()),
            "unable to find user alice: no matching entries in passwd file"
        );
        assert!(lookup_user(&root.0, "1:wheel").is_err());
    }

    #[test]
    fn lookup_reads_files_in_root() {
        let root = TempRoot::new("files", Some(PASSWD), Some(GROUP));
        let u = lookup_user(&root.0, "alice").unwrap();
        assert_eq!((u.uid, u.gid, u.sgids.clone()), (1000, 1000, vec![10, 29]));
        let gids = additional_gids_from_names(
            &root.0,
            &["wheel".into(), "29".into(), "10".into(), "777".into()],
        )
        .unwrap();
        assert_eq!(gids, vec![10, 29, 777]);
        assert!(additional_gids_from_names(&root.0, &["nosuch".into()]).is_err());
    }

    #[test]
    fn symlinked_db_files_stay_inside_root() {
        let root = TempRoot::new("symlink", None, None);
        // Both links name files that exist only inside the rootfs: resolved on the host they
        // would miss (or read the host's files), resolved in the root they are found.
        std::fs::write(root.0.join("etc/ocibox-real-passwd"), PASSWD).unwrap();
        std::fs::write(root.0.join("etc/ocibox-real-group"), GROUP).unwrap();
        std::os::unix::fs::symlink("/etc/ocibox-real-passwd", root.0.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../etc/ocibox-real-group",
            root.0.join("etc/group"),
        )
        .unwrap();
        let u = lookup_user(&root.0, "alice").unwrap();
        assert_eq!((u.uid, u.sgids), (1000, vec![10, 29]));
    }

    #[test]
    fn default_home_only_when_unset() {
        let u = res("alice").unwrap();
        assert_eq!(
            default_home(&["PATH=/bin".into()], &u).as_deref(),
            Some("/home/alice")
        );
        assert_eq!(
            default_home(&["HOME=".into()], &u).as_deref(),
            Some("/home/alice")
        );
        assert_eq!(default_home(&["HOME=/x".into()], &u), None);
    }
}
