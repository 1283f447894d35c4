//! The container process's capability sets (bounding, effective, permitted, inheritable,
//! ambient), applied in runc's order.
//!
//! Call order in the init (runc `finalizeNamespace`):
//! 1. [`drop_bounding`] — while still root with every capability (CAP_SETPCAP is needed);
//! 2. `user::apply_user` — it sets PR_SET_KEEPCAPS around the uid change so the permitted set
//!    survives a switch away from uid 0 (the kernel clears the effective set);
//! 3. [`set_after_setuid`] — one capset(2) for effective, permitted and inheritable, then the
//!    ambient set is cleared and each ambient capability raised.
//!
//! [`apply_capabilities`] does 1 and 3 back to back for callers that do not change user.
//!
//! Capabilities the running kernel does not know (above /proc/sys/kernel/cap_last_cap) are
//! ignored with a warning, as runc does ("ignoring unknown or unavailable capabilities");
//! [`parse_capability_names`] does the same for names oci-spec does not know, for a spec loader
//! that wants runc's leniency. Warnings are returned for the caller to log.

use anyhow::{Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// _LINUX_CAPABILITY_VERSION_3: 64-bit sets as two 32-bit words.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// The kernel's number for a capability (include/uapi/linux/capability.h).
pub fn capability_number(cap: Capability) -> u8 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The spec's name of a capability, e.g. `CAP_SYS_ADMIN`.
pub fn capability_name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// Parse capability names as runc does: case-insensitive, `CAP_` prefix optional; names that
/// are not capabilities are left out and reported in the returned warnings.
pub fn parse_capability_names(names: &[String]) -> (Capabilities, Vec<String>) {
    let mut set = Capabilities::new();
    let mut unknown = Vec::new();
    for name in names {
        match serde_json::from_value::<Capability>(serde_json::Value::String(name.clone())) {
            Ok(c) => {
                set.insert(c);
            }
            Err(_) => unknown.push(name.clone()),
        }
    }
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "ignoring unknown or unavailable capabilities: {unknown:?}"
        )]
    };
    (set, warnings)
}

/// The highest capability number the running kernel knows (cap_last_cap), found by probing
/// PR_CAPBSET_READ so it works without /proc.
pub fn last_cap() -> u8 {
    let mut last = 0u8;
    for n in 0..64u8 {
        // SAFETY: PR_CAPBSET_READ takes an integer and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(n), 0, 0, 0) };
        if rc < 0 {
            break;
        }
        last = n;
    }
    last
}

/// The five sets as bit masks, limited to what the kernel supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapMasks {
    /// Masks for `c` (an absent set is empty, as runc treats it); capabilities above `last`
    /// are dropped and named in the warnings.
    pub fn from_spec(c: &LinuxCapabilities, last: u8) -> (CapMasks, Vec<String>) {
        let mut unavailable: Vec<String> = Vec::new();
        let mut mask = |set: &Option<Capabilities>| -> u64 {
            let mut m = 0u64;
            for cap in set.iter().flatten() {
                let n = capability_number(*cap);
                if n > last {
                    let name = capability_name(*cap);
                    if !unavailable.contains(&name) {
                        unavailable.push(name);
                    }
                } else {
                    m |= 1u64 << n;
                }
            }
            m
        };
        let masks = CapMasks {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted: mask(c.permitted()),
            inheritable: mask(c.inheritable()),
            ambient: mask(c.ambient()),
        };
        unavailable.sort();
        let warnings = if unavailable.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "ignoring unknown or unavailable capabilities: {unavailable:?}"
            )]
        };
        (masks, warnings)
    }
}

/// Step 1: drop every capability not in the spec's bounding set from the bounding set.
/// Needs CAP_SETPCAP, so call it before the user switch. Returns warnings.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<Vec<String>> {
    let last = last_cap();
    let (masks, warnings) = CapMasks::from_spec(c, last);
    drop_bounding_mask(masks.bounding, last)?;
    Ok(warnings)
}

fn drop_bounding_mask(keep: u64, last: u8) -> Result<()> {
    for n in 0..=last {
        if keep & (1u64 << n) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n), 0, 0, 0) };
        if rc != 0 {
            return Err(Errno::last())
                .with_context(|| format!("drop capability {n} from the bounding set"));
        }
    }
    Ok(())
}

/// Step 3: set effective, permitted and inheritable in one capset(2), then make the ambient
/// set exactly the spec's. Returns warnings (unavailable capabilities, and ambient
/// capabilities the kernel refused to raise — runc only warns about those too).
pub fn set_after_setuid(c: &LinuxCapabilities) -> Result<Vec<String>> {
    let last = last_cap();
    let (masks, mut warnings) = CapMasks::from_spec(c, last);
    capset(masks.effective, masks.permitted, masks.inheritable)?;
    warnings.extend(set_ambient(masks.ambient, last)?);
    Ok(warnings)
}

/// Steps 1 and 3 together, for a process that keeps its uid. Returns warnings.
pub fn apply_capabilities(c: &LinuxCapabilities) -> Result<Vec<String>> {
    let mut warnings = drop_bounding(c)?;
    let after = set_after_setuid(c)?;
    for w in after {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Ok(warnings)
}

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let mut header = CapUserHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let word = |m: u64, i: u32| (m >> (32 * i)) as u32;
    let data = [0u32, 1].map(|i| CapUserData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    });
    // SAFETY: capset reads the header and two data structs (version 3 layout); both live
    // until the call returns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(Errno::last()).with_context(|| {
            format!(
                "capset effective {effective:#x} permitted {permitted:#x} inheritable {inheritable:#x}"
            )
        });
    }
    Ok(())
}

fn set_ambient(ambient: u64, last: u8) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        let e = Errno::last();
        if ambient != 0 {
            warnings.push(format!("failed to apply ambient capabilities: {e}"));
        }
        return Ok(warnings);
    }
    let mut refused = Vec::new();
    for n in 0..=last {
        if ambient & (1u64 << n) == 0 {
            continue;
        }
        // SAFETY: PR_CAP_AMBIENT_RAISE takes integers only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(n),
                0,
                0,
            )
        };
        if rc != 0 {
            refused.push(format!("{n} ({})", Errno::last()));
        }
    }
    if !refused.is_empty() {
        warnings.push(format!(
            "failed to apply ambient capabilities: {}",
            refused.join(", ")
        ));
    }
    Ok(warnings)
}

/// The set of every capability oci-spec knows, handy for tests and privileged defaults.
pub fn all_capabilities() -> Capabilities {
    let (set, _) = parse_capability_names(
        &(0..=40u8)
            .filter_map(name_of_number)
            .collect::<Vec<String>>(),
    );
    set
}

fn name_of_number(n: u8) -> Option<String> {
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    NAMES.get(usize::from(n)).map(|s| format!("CAP_{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::test_child::{status_mask, with_child};

    fn caps(names: &[&str]) -> Capabilities {
        let (set, w) =
            parse_capability_names(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(w.is_empty(), "{w:?}");
        set
    }

    /// Spec capabilities with only the given sets present (the builder would fill the others
    /// with oci-spec's defaults).
    fn spec(sets: &[(&str, &[&str])]) -> LinuxCapabilities {
        let mut c: LinuxCapabilities = serde_json::from_str("{}").unwrap();
        for (which, names) in sets {
            let v = Some(caps(names));
            match *which {
                "bounding" => c.set_bounding(v),
                "effective" => c.set_effective(v),
                "permitted" => c.set_permitted(v),
                "inheritable" => c.set_inheritable(v),
                "ambient" => c.set_ambient(v),
                other => panic!("no set {other}"),
            };
        }
        c
    }

    fn mask(names: &[&str]) -> u64 {
        caps(names)
            .into_iter()
            .fold(0, |m, c| m | 1u64 << capability_number(c))
    }

    #[test]
    fn numbers_and_names_agree() {
        for n in 0..=40u8 {
            let name = name_of_number(n).unwrap();
            let (set, w) = parse_capability_names(std::slice::from_ref(&name));
            assert!(w.is_empty());
            let cap = set.into_iter().next().unwrap();
            assert_eq!(capability_number(cap), n, "{name}");
            assert_eq!(capability_name(cap), name);
        }
        assert_eq!(all_capabilities().len(), 41);
    }

    #[test]
    fn unknown_names_are_warned_and_ignored() {
        let (set, w) =
            parse_capability_names(&["CAP_CHOWN".into(), "kill".into(), "CAP_NOT_A_THING".into()]);
        assert_eq!(set, caps(&["CAP_CHOWN", "CAP_KILL"]));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("CAP_NOT_A_THING"), "{}", w[0]);
    }

    #[test]
    fn unavailable_caps_are_warned_and_ignored() {
        let c = spec(&[("bounding", &["CAP_CHOWN", "CAP_BPF"])]);
        let (m, w) = CapMasks::from_spec(&c, 38);
        assert_eq!(m.bounding, 1);
        assert_eq!(m.effective, 0, "absent sets are empty");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("CAP_BPF"));
    }

    #[test]
    fn full_sequence_with_user_switch_in_child() {
        let bounding = &[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_SETUID",
        ];
        let c = spec(&[
            ("bounding", bounding),
            (
                "permitted",
                &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            ),
            ("effective", &["CAP_CHOWN", "CAP_KILL"]),
            ("inheritable", &["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            ("ambient", &["CAP_NET_BIND_SERVICE"]),
        ]);
        let c2 = c.clone();
        with_child(
            move || {
                drop_bounding(&c2)?;
                crate::linux::user::apply_user(1000, 1000, &[1000, 5], true)?;
                let w = set_after_setuid(&c2)?;
                anyhow::ensure!(w.is_empty(), "warnings: {w:?}");
                Ok(())
            },
            |pid, res| {
                res.unwrap();
                assert_eq!(status_mask(pid, "CapBnd"), mask(bounding));
                assert_eq!(status_mask(pid, "CapEff"), mask(&["CAP_CHOWN", "CAP_KILL"]));
                assert_eq!(
                    status_mask(pid, "CapPrm"),
                    mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
                );
                assert_eq!(
                    status_mask(pid, "CapInh"),
                    mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"])
                );
                assert_eq!(status_mask(pid, "CapAmb"), mask(&["CAP_NET_BIND_SERVICE"]));
                let uid = crate::linux::test_child::status_field(pid, "Uid");
                assert_eq!(uid.split_whitespace().collect::<Vec<_>>(), ["1000"; 4]);
                let groups = crate::linux::test_child::status_field(pid, "Groups");
                assert_eq!(groups, "5 1000");
            },
        );
    }

    #[test]
    fn apply_without_user_switch_in_child() {
        let c = spec(&[
            ("bounding", &["CAP_SYS_ADMIN", "CAP_KILL"]),
            ("permitted", &["CAP_SYS_ADMIN", "CAP_KILL"]),
            ("effective", &["CAP_SYS_ADMIN"]),
        ]);
        with_child(
            move || {
                let w = apply_capabilities(&c)?;
                anyhow::ensure!(w.is_empty(), "warnings: {w:?}");
                Ok(())
            },
            |pid, res| {
                res.unwrap();
                assert_eq!(
                    status_mask(pid, "CapBnd"),
                    mask(&["CAP_SYS_ADMIN", "CAP_KILL"])
                );
                assert_eq!(status_mask(pid, "CapEff"), mask(&["CAP_SYS_ADMIN"]));
                assert_eq!(status_mask(pid, "CapInh"), 0);
                assert_eq!(status_mask(pid, "CapAmb"), 0);
            },
        );
    }

    #[test]
    fn effective_outside_permitted_is_an_error() {
        let c = spec(&[
            ("bounding", &["CAP_KILL"]),
            ("permitted", &["CAP_KILL"]),
            ("effective", &["CAP_CHOWN"]),
        ]);
        with_child(
            move || apply_capabilities(&c).map(|_| ()),
            |_, res| {
                let e = res.unwrap_err();
                assert!(e.starts_with("capset effective"), "{e}");
            },
        );
    }
}
