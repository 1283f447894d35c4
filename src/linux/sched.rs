//! Per-process kernel attributes from the spec that are one syscall each: `oomScoreAdj`,
//! `ioPriority`, `scheduler`, `linux.personality` and `noNewPrivileges`. All apply to the
//! calling process and are inherited across execve.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

/// Write `v` to the real /proc/self/oom_score_adj (lowering it needs CAP_SYS_RESOURCE).
pub fn set_oom_score_adj(v: i32) -> Result<()> {
    if !(-1000..=1000).contains(&v) {
        bail!("invalid oomScoreAdj {v}: must be in range -1000..1000");
    }
    // Through the verified procfs handle, never a path of the container's.
    crate::linux::procfs::get()?
        .write_self("oom_score_adj", v.to_string().as_bytes())
        .with_context(|| format!("write {v} to /proc/self/oom_score_adj"))
}

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// The ioprio value (class << 13 | priority) for a spec I/O priority.
pub fn io_priority_value(p: &LinuxIOPriority) -> Result<libc::c_int> {
    let class: u32 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = p.priority();
    if !(0..=7).contains(&prio) {
        bail!("invalid ioPriority.priority {prio}: must be in range 0..7");
    }
    Ok(((class << IOPRIO_CLASS_SHIFT) | prio as u32) as libc::c_int)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, class/priority), as runc does.
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<()> {
    let value = io_priority_value(p)?;
    // SAFETY: ioprio_set takes integers only.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if rc != 0 {
        return Err(Errno::last())
            .with_context(|| format!("failed to set io priority {} {}", p.class(), p.priority()));
    }
    Ok(())
}

/// runc's validation of `process.scheduler`.
pub fn validate_scheduler(s: &Scheduler) -> Result<()> {
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("invalid scheduler.nice: {nice}");
    }
    let rt = matches!(
        s.policy(),
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    if s.priority().unwrap_or(0) != 0 && !rt {
        bail!("scheduler.priority can only be specified for SchedFIFO or SchedRR policy");
    }
    let deadline_params = s.runtime().unwrap_or(0) != 0
        || s.deadline().unwrap_or(0) != 0
        || s.period().unwrap_or(0) != 0;
    if deadline_params && *s.policy() != LinuxSchedulerPolicy::SchedDeadline {
        bail!("scheduler runtime/deadline/period can only be specified for SchedDeadline policy");
    }
    Ok(())
}

fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    }
}

fn flag_bits(f: LinuxSchedulerFlag) -> u64 {
    let bits = match f {
        LinuxSchedulerFlag::SchedResetOnFork => libc::SCHED_FLAG_RESET_ON_FORK,
        LinuxSchedulerFlag::SchedFlagReclaim => libc::SCHED_FLAG_RECLAIM,
        LinuxSchedulerFlag::SchedFlagDLOverrun => libc::SCHED_FLAG_DL_OVERRUN,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => libc::SCHED_FLAG_KEEP_POLICY,
        LinuxSchedulerFlag::SchedFlagKeepParams => libc::SCHED_FLAG_KEEP_PARAMS,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => libc::SCHED_FLAG_UTIL_CLAMP_MIN,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => libc::SCHED_FLAG_UTIL_CLAMP_MAX,
    };
    bits as u64
}

/// sched_setattr(2) on the calling process with the spec's policy, nice, priority, flags and
/// deadline parameters (validated first, see [`validate_scheduler`]).
pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    validate_scheduler(s)?;
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: policy_number(*s.policy()),
        sched_flags: s
            .flags()
            .iter()
            .flatten()
            .fold(0, |acc, f| acc | flag_bits(*f)),
        sched_nice: s.nice().unwrap_or(0),
        sched_priority: s.priority().unwrap_or(0).max(0) as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr reads `attr` (its size is in attr.size) for pid 0 (ourselves).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
    if rc != 0 {
        return Err(Errno::last()).context("error setting scheduler");
    }
    Ok(())
}

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// personality(2) with the spec's execution domain (LINUX or LINUX32); the spec's flags are
/// not defined by the runtime-spec and ignored, as runc does.
pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality takes an integer only.
    let rc = unsafe { libc::personality(domain) };
    if rc < 0 {
        return Err(Errno::last()).with_context(|| format!("set personality {}", p.domain()));
    }
    Ok(())
}

/// prctl(PR_SET_NO_NEW_PRIVS, 1): execve can never grant privileges (setuid bits, file caps).
pub fn set_no_new_privileges() -> Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(Errno::last()).context("prctl PR_SET_NO_NEW_PRIVS");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::test_child::{status_field, with_child};
    use oci_spec::runtime::{LinuxIOPriorityBuilder, LinuxPersonalityBuilder, SchedulerBuilder};

    /// Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat.
    fn stat_field(pid: nix::unistd::Pid, n: usize) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_comm = &text[text.rfind(')').unwrap() + 2..];
        after_comm
            .split_whitespace()
            .nth(n - 3)
            .unwrap()
            .to_string()
    }

    #[test]
    fn oom_score_adj_in_child() {
        with_child(
            // Raising needs no privilege (lowering needs CAP_SYS_RESOURCE, which this host's
            // root may lack).
            || set_oom_score_adj(517),
            |pid, res| {
                res.unwrap();
                let v = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
                assert_eq!(v.trim(), "517");
            },
        );
        assert!(set_oom_score_adj(1001).is_err());
    }

    #[test]
    fn io_priority_in_child() {
        let p = LinuxIOPriorityBuilder::default()
            .class(IOPriorityClass::IoprioClassBe)
            .priority(6)
            .build()
            .unwrap();
        let expected = io_priority_value(&p).unwrap();
        assert_eq!(expected, (2 << 13) | 6);
        with_child(
            move || set_io_priority(&p),
            |pid, res| {
                res.unwrap();
                // SAFETY: ioprio_get takes integers only.
                let got = unsafe {
                    libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, pid.as_raw())
                };
                assert_eq!(got as i32, expected);
            },
        );
        let bad = LinuxIOPriorityBuilder::default()
            .priority(8)
            .build()
            .unwrap();
        assert!(set_io_priority(&bad).is_err());
    }

    #[test]
    fn scheduler_in_child() {
        let s = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedBatch)
            .nice(7)
            .flags(vec![LinuxSchedulerFlag::SchedResetOnFork])
            .build()
            .unwrap();
        with_child(
            move || set_scheduler(&s),
            |pid, res| {
                res.unwrap();
                assert_eq!(stat_field(pid, 19), "7", "nice");
                assert_eq!(stat_field(pid, 41), "3", "policy SCHED_BATCH");
            },
        );
    }

    #[test]
    fn scheduler_validation_matches_runc() {
        let prio_on_other = SchedulerBuilder::default().priority(5).build().unwrap();
        assert!(format!("{:#}", set_scheduler(&prio_on_other).unwrap_err())
            .contains("only be specified for SchedFIFO"));
        let bad_nice = SchedulerBuilder::default().nice(20).build().unwrap();
        assert!(validate_scheduler(&bad_nice).is_err());
        let runtime_on_rr = SchedulerBuilder::default()
            .policy(LinuxSchedulerPolicy::SchedRr)
            .runtime(10u64)
            .build()
            .unwrap();
        assert!(validate_scheduler(&runtime_on_rr).is_err());
    }

    #[test]
    fn personality_in_child() {
        let p = LinuxPersonalityBuilder::default()
            .domain(LinuxPersonalityDomain::PerLinux32)
            .build()
            .unwrap();
        with_child(
            move || set_personality(&p),
            |pid, res| {
                res.unwrap();
                let v = std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap();
                assert_eq!(v.trim(), "00000008");
            },
        );
    }

    #[test]
    fn no_new_privileges_in_child() {
        with_child(set_no_new_privileges, |pid, res| {
            res.unwrap();
            assert_eq!(status_field(pid, "NoNewPrivs"), "1");
        });
    }
}
