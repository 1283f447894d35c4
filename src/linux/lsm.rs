//! AppArmor and SELinux labels of the container's process, applied as runc applies them:
//! written to the init's own `exec` attribute so the kernel puts the process under the
//! profile (label) at its next execve, the user's program.
//!
//! - AppArmor: `exec <profile>` to `/proc/self/attr/apparmor/exec` (kernels ≥ 5.8, where
//!   each LSM has its own directory), else `/proc/self/attr/exec` (aa_change_onexec).
//! - SELinux: the label to `/proc/self/attr/exec` (setexeccon).
//!
//! Whether the host has the LSM is decided by the runtime on the host ([`check_labels`]
//! in `create` and `exec`, before anything is made): after pivot_root the init sees the
//! container's /sys, which may not be mounted at all. runc 1.1 refuses an SELinux label
//! early ("selinux label is specified in config, but selinux is disabled or not
//! supported") but lets an AppArmor profile fail in the init ("apparmor failed to apply
//! profile: write /proc/self/attr/exec: invalid argument"); ocibox refuses both early,
//! AppArmor with a message that says what is wrong.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the LSM state is read and written: the host's `/sys` and `/proc`, or a fake tree
/// in tests.
#[derive(Debug, Clone)]
pub struct Lsm {
    sys: PathBuf,
    proc: PathBuf,
    /// The exec attributes are written through the verified procfs handle
    /// ([`crate::linux::procfs`]), never through `proc`, which after pivot_root is the
    /// container's /proc (a bind or a symlink there must not take the label).
    verified_proc: bool,
}

impl Default for Lsm {
    fn default() -> Self {
        let mut l = Lsm::at(Path::new("/sys"), Path::new("/proc"));
        l.verified_proc = true;
        l
    }
}

impl Lsm {
    /// An LSM view rooted at `sys` (for `/sys`) and `proc` (for `/proc`).
    pub fn at(sys: &Path, proc: &Path) -> Lsm {
        Lsm {
            sys: sys.to_path_buf(),
            proc: proc.to_path_buf(),
            verified_proc: false,
        }
    }

    /// runc's test: securityfs shows AppArmor and the module parameter says enabled.
    pub fn apparmor_enabled(&self) -> bool {
        self.sys.join("kernel/security/apparmor").exists()
            && std::fs::read(self.sys.join("module/apparmor/parameters/enabled"))
                .is_ok_and(|v| v.first() == Some(&b'Y'))
    }

    /// selinuxfs is mounted (its `enforce` file exists only then).
    pub fn selinux_enabled(&self) -> bool {
        self.sys.join("fs/selinux/enforce").exists()
    }

    /// Refuse labels that this host cannot apply.
    pub fn check_labels(&self, apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
        if let Some(p) = nonempty(apparmor) {
            if !self.apparmor_enabled() {
                bail!("apparmor profile {p} requested but AppArmor is not enabled on this host");
            }
        }
        if nonempty(selinux).is_some() && !self.selinux_enabled() {
            bail!("selinux label is specified in config, but selinux is disabled or not supported");
        }
        Ok(())
    }

    /// Write the exec attributes; None or empty leaves each LSM alone.
    pub fn apply_exec_labels(&self, apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
        if let Some(p) = nonempty(apparmor) {
            let attr = if self.attr_exists("apparmor/exec") {
                "apparmor/exec"
            } else {
                "exec"
            };
            if let Err(e) = self.write_attr(attr, &format!("exec {p}")) {
                // The runtime checked the host already; this view may be the container's.
                return Err(e).with_context(|| {
                    if self.apparmor_enabled() {
                        format!("apply apparmor profile {p}")
                    } else {
                        format!("apparmor profile {p} requested but AppArmor is not enabled on this host")
                    }
                });
            }
        }
        if let Some(l) = nonempty(selinux) {
            self.write_attr("exec", l)
                .with_context(|| format!("set selinux exec label {l}"))?;
        }
        Ok(())
    }

    /// Whether `/proc/self/attr/<name>` exists.
    fn attr_exists(&self, name: &str) -> bool {
        if self.verified_proc {
            return crate::linux::procfs::get()
                .is_ok_and(|p| p.self_exists(&format!("attr/{name}")));
        }
        self.proc.join("self/attr").join(name).exists()
    }

    /// One write(2) of `value` to `/proc/self/attr/<name>`.
    fn write_attr(&self, name: &str, value: &str) -> Result<()> {
        if self.verified_proc {
            return crate::linux::procfs::get()?
                .write_self(&format!("attr/{name}"), value.as_bytes());
        }
        write_attr(&self.proc.join("self/attr").join(name), value)
    }
}

/// AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    Lsm::default().apparmor_enabled()
}

/// SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Lsm::default().selinux_enabled()
}

/// The runtime's early check on the host: a profile or label the host cannot apply is an
/// error before anything is made.
pub fn check_labels(apparmor_profile: Option<&str>, selinux_label: Option<&str>) -> Result<()> {
    Lsm::default().check_labels(apparmor_profile, selinux_label)
}

/// Called by the init right before execve: the profile and label take effect on exec.
pub fn apply_exec_labels(
    apparmor_profile: Option<&str>,
    selinux_label: Option<&str>,
) -> Result<()> {
    Lsm::default().apply_exec_labels(apparmor_profile, selinux_label)
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// One write(2) of the whole value, as the kernel parses it per write.
fn write_attr(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let n = f
        .write(value.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    if n != value.len() {
        bail!(
            "write {}: short write ({n} of {})",
            path.display(),
            value.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /sys and /proc under a temp dir, removed on drop.
    struct Fake(PathBuf);

    impl Fake {
        fn new(name: &str) -> Fake {
            let d = std::env::temp_dir().join(format!("ocibox-lsm-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(d.join("sys")).unwrap();
            std::fs::create_dir_all(d.join("proc/self/attr")).unwrap();
            std::fs::write(d.join("proc/self/attr/exec"), "").unwrap();
            Fake(d)
        }
        fn lsm(&self) -> Lsm {
            Lsm::at(&self.0.join("sys"), &self.0.join("proc"))
        }
        fn file(&self, rel: &str, content: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        fn read(&self, rel: &str) -> String {
            std::fs::read_to_string(self.0.join(rel)).unwrap()
        }
        fn apparmor(&self, enabled: &str) {
            std::fs::create_dir_all(self.0.join("sys/kernel/security/apparmor")).unwrap();
            self.file("sys/module/apparmor/parameters/enabled", enabled);
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn apparmor_enabled_needs_securityfs_and_the_module_parameter() {
        let f = Fake::new("aa-detect");
        assert!(!f.lsm().apparmor_enabled());
        f.file("sys/module/apparmor/parameters/enabled", "Y\n");
        assert!(!f.lsm().apparmor_enabled(), "securityfs entry missing");
        f.apparmor("N\n");
        assert!(!f.lsm().apparmor_enabled(), "module says disabled");
        f.apparmor("Y\n");
        assert!(f.lsm().apparmor_enabled());
    }

    #[test]
    fn selinux_enabled_when_selinuxfs_is_mounted() {
        let f = Fake::new("se-detect");
        assert!(!f.lsm().selinux_enabled());
        f.file("sys/fs/selinux/enforce", "1");
        assert!(f.lsm().selinux_enabled());
    }

    #[test]
    fn labels_the_host_cannot_apply_are_refused() {
        let f = Fake::new("check");
        let l = f.lsm();
        l.check_labels(None, None).unwrap();
        l.check_labels(Some(""), Some("")).unwrap();
        let e = l.check_labels(Some("myprof"), None).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "apparmor profile myprof requested but AppArmor is not enabled on this host"
        );
        let e = l
            .check_labels(None, Some("system_u:system_r:container_t:s0"))
            .unwrap_err();
        assert!(format!("{e:#}").contains("selinux is disabled"), "{e:#}");
        f.apparmor("Y");
        f.file("sys/fs/selinux/enforce", "1");
        l.check_labels(Some("myprof"), Some("system_u:system_r:container_t:s0"))
            .unwrap();
    }

    #[test]
    fn apparmor_profile_goes_to_the_per_lsm_attr_when_there_is_one() {
        let f = Fake::new("aa-write");
        f.apparmor("Y");
        f.file("proc/self/attr/apparmor/exec", "");
        f.lsm().apply_exec_labels(Some("myprof"), None).unwrap();
        assert_eq!(f.read("proc/self/attr/apparmor/exec"), "exec myprof");
        assert_eq!(f.read("proc/self/attr/exec"), "");
    }

    #[test]
    fn apparmor_profile_falls_back_to_the_old_attr() {
        let f = Fake::new("aa-fallback");
        f.apparmor("Y");
        f.lsm().apply_exec_labels(Some("myprof"), None).unwrap();
        assert_eq!(f.read("proc/self/attr/exec"), "exec myprof");
    }

    #[test]
    fn empty_labels_write_nothing() {
        let f = Fake::new("empty");
        f.lsm().apply_exec_labels(None, None).unwrap();
        f.lsm().apply_exec_labels(Some(""), Some("")).unwrap();
        assert_eq!(f.read("proc/self/attr/exec"), "");
    }

    #[test]
    fn selinux_label_goes_to_attr_exec() {
        let f = Fake::new("se-write");
        f.lsm()
            .apply_exec_labels(None, Some("system_u:system_r:container_t:s0"))
            .unwrap();
        assert_eq!(
            f.read("proc/self/attr/exec"),
            "system_u:system_r:container_t:s0"
        );
    }

    #[test]
    fn a_failed_apparmor_write_without_apparmor_says_so() {
        let f = Fake::new("aa-fail");
        std::fs::remove_file(f.0.join("proc/self/attr/exec")).unwrap();
        let e = f.lsm().apply_exec_labels(Some("myprof"), None).unwrap_err();
        assert!(
            format!("{e:#}").starts_with(
                "apparmor profile myprof requested but AppArmor is not enabled on this host: open "
            ),
            "{e:#}"
        );
        f.apparmor("Y");
        let e = f.lsm().apply_exec_labels(Some("myprof"), None).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("apply apparmor profile myprof: open "),
            "{e:#}"
        );
    }

    #[test]
    fn this_host_writes_are_refused_by_the_kernel_without_an_lsm() {
        // On a host without AppArmor the real attr refuses the write (nothing changes)
        // and the message is the clear one.
        if apparmor_enabled() {
            return;
        }
        let e = apply_exec_labels(Some("ocibox-test-profile"), None).unwrap_err();
        assert!(
            format!("{e:#}").contains("AppArmor is not enabled on this host"),
            "{e:#}"
        );
    }
}
