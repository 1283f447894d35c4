//! `linux.seccomp` of the OCI runtime spec → one classic BPF seccomp program.
//!
//! Semantics follow runc on top of libseccomp:
//! - `defaultAction`/`defaultErrnoRet`; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` without an errno
//!   return EPERM (runc's choice). `errnoRet` on any other action is ignored, as runc does.
//! - Architectures: the native x86_64 ABI is always in the filter (libseccomp's filter starts
//!   with it); `SCMP_ARCH_X86` and `SCMP_ARCH_X32` add the i386 and x32 ABIs, each with its own
//!   syscall numbers. A syscall from an ABI not in the filter gets libseccomp's default "bad
//!   arch" action, SCMP_ACT_KILL (kill the thread). Non-x86 architectures in the list are
//!   accepted and leave no code: an x86_64 kernel never reports them in `seccomp_data.arch`.
//! - Syscall names unknown to an ABI are skipped for that ABI (runc skips names libseccomp
//!   cannot resolve); a rule whose action equals the default action is dropped (libseccomp
//!   refuses such rules with EACCES and runc ignores them).
//! - Conditions of one entry are AND-ed, unless two of them test the same argument: then, as
//!   runc does (libseccomp cannot AND two conditions on one argument), every condition of that
//!   entry becomes a rule of its own and they are OR-ed, including those on other arguments.
//! - Several rules for one syscall combine as libseccomp's rule tree combines them: an
//!   unconditional rule takes the whole syscall; conditional ones are tried in the tree's order
//!   (see `syscall_block`); a syscall none matches gets the default action.
//! - Conditions compare the full 64-bit argument on x86_64 and x32 (high word, then low word);
//!   on i386 arguments are 32 bits wide and only the low words are compared, as libseccomp does.
//!   `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`.
//! - runc's -ENOSYS stub (libcontainer/seccomp/patchbpf): a syscall numbered above every
//!   syscall the profile names for its ABI returns ENOSYS instead of the default action, so
//!   that libc falls back from syscalls newer than the profile (e.g. fchmodat2, clone3) rather
//!   than failing with EPERM. As in runc, only for the ABIs the profile's `architectures` lists
//!   (none listed: no stub at all), and not when the default action lets syscalls through
//!   (ALLOW, LOG, TRACE) or `defaultErrnoRet` is already ENOSYS.
//! - Not done: libseccomp's rewriting of i386 `socket`-family rules into `socketcall`
//!   multiplexer rules (profiles that allow the family usually allow `socketcall` itself).
//!
//! Code shape: per ABI the syscall-number space is cut into intervals (adjacent numbers with the
//! same code are merged) and searched with a balanced tree of `jge` jumps, so containerd's
//! default profile costs about ten comparisons per syscall instead of hundreds.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};

use super::abi::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::bpf::{self, branch, jump, load, ret, stmt, Insn};
use super::Program;

/// SECCOMP_RET_* action values.
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// libseccomp's default action for a syscall from an architecture not in the filter.
pub const RET_BAD_ARCH: u32 = RET_KILL_THREAD;

/// SECCOMP_FILTER_FLAG_* bits the spec can ask for.
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;

/// Limit on conditions in one entry; keeps every jump inside an entry's code short.
const MAX_CONDITIONS: usize = 16;
/// seccomp_data holds six arguments.
const MAX_ARGS: usize = 6;

/// One entry of the spec, resolved to its return value.
struct Rule<'a> {
    ret: u32,
    conds: &'a [LinuxSeccompArg],
}

/// Compiles the spec's seccomp section. Errors name the entry and the problem.
pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let default_ret =
        action_ret(s.default_action(), s.default_errno_ret()).context("seccomp defaultAction")?;
    if s.default_action() == Act::ScmpActNotify {
        bail!("seccomp defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
    }

    let mut abis = vec![Abi::X86_64];
    // The ABIs the profile names, which get runc's ENOSYS stub; the native one may be absent.
    let mut listed = Vec::new();
    for arch in s.architectures().iter().flatten() {
        match arch {
            Arch::ScmpArchX86 => listed.push(Abi::I386),
            Arch::ScmpArchX32 => listed.push(Abi::X32),
            // runc refuses SCMP_ARCH_NATIVE; ocibox takes it for what it means here.
            Arch::ScmpArchX86_64 | Arch::ScmpArchNative => listed.push(Abi::X86_64),
            // Others never reach an x86_64 kernel's filter.
            _ => {}
        }
    }
    abis.extend(&listed);
    abis.sort();
    abis.dedup();

    let empty = Vec::new();
    let syscalls = s.syscalls().as_ref().unwrap_or(&empty);
    let mut rules: BTreeMap<Abi, BTreeMap<u32, Vec<Rule>>> = BTreeMap::new();
    let mut highest: BTreeMap<Abi, u32> = BTreeMap::new();
    let mut notify = false;
    for (i, sc) in syscalls.iter().enumerate() {
        let what = || format!("seccomp syscalls[{i}] ({})", sc.names().join(","));
        let ret = action_ret(sc.action(), sc.errno_ret()).with_context(what)?;
        let conds: &[LinuxSeccompArg] = sc.args().as_deref().unwrap_or(&[]);
        check_conditions(conds).with_context(what)?;
        if sc.action() == Act::ScmpActNotify && sc.names().iter().any(|n| n == "write") {
            // runc's rule: the runtime itself writes after the filter is in place.
            bail!(
                "{}: SCMP_ACT_NOTIFY cannot be used for the write syscall",
                what()
            );
        }
        let keep = ret != default_ret;
        // runc (seccomp_linux.go): two conditions on one argument turn the entry into one
        // rule per condition, OR-ed; otherwise one rule with all conditions AND-ed.
        let or_mode = conds
            .iter()
            .enumerate()
            .any(|(i, c)| conds[..i].iter().any(|d| d.index() == c.index()));
        let entry_rules: Vec<&[LinuxSeccompArg]> = if or_mode {
            conds.iter().map(std::slice::from_ref).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            for &abi in &abis {
                let Some(nr) = abi.syscall_nr(name) else {
                    continue;
                };
                let h = highest.entry(abi).or_insert(nr);
                *h = (*h).max(nr);
                if keep {
                    notify |= sc.action() == Act::ScmpActNotify;
                    let per_abi = rules.entry(abi).or_default().entry(nr).or_default();
                    per_abi.extend(entry_rules.iter().map(|&conds| Rule { ret, conds }));
                }
            }
        }
    }
    if notify && s.listener_path().is_none() {
        bail!("seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set");
    }

    // runc's generatePatch: no stub when the default already lets syscalls through (a tracer
    // handles ENOSYS itself) or already answers ENOSYS.
    let stub = !matches!(
        s.default_action(),
        Act::ScmpActAllow | Act::ScmpActLog | Act::ScmpActTrace
    ) && s.default_errno_ret() != Some(libc::ENOSYS as u32);
    let no_rules = BTreeMap::new();
    let abi_code = |abi: Abi| -> Result<Vec<Insn>> {
        let enosys_above = if stub && listed.contains(&abi) {
            highest.get(&abi).copied()
        } else {
            None
        };
        let r = rules.get(&abi).unwrap_or(&no_rules);
        abi_tree(abi, r, default_ret, enosys_above).with_context(|| format!("seccomp {abi:?}"))
    };

    let x32 = if abis.contains(&Abi::X32) {
        abi_code(Abi::X32)?
    } else {
        vec![ret(RET_BAD_ARCH)]
    };
    let mut amd64 = vec![load(bpf::OFF_NR)];
    amd64.extend(branch(
        bpf::JGE,
        X32_SYSCALL_BIT,
        x32,
        abi_code(Abi::X86_64)?,
    ));
    let others = if abis.contains(&Abi::I386) {
        let mut i386 = vec![load(bpf::OFF_NR)];
        i386.extend(abi_code(Abi::I386)?);
        branch(bpf::JEQ, AUDIT_ARCH_I386, i386, vec![ret(RET_BAD_ARCH)])
    } else {
        vec![ret(RET_BAD_ARCH)]
    };
    let mut insns = vec![load(bpf::OFF_ARCH)];
    insns.extend(branch(bpf::JEQ, AUDIT_ARCH_X86_64, amd64, others));
    if insns.len() > bpf::MAX_INSNS {
        bail!(
            "seccomp: the profile compiles to {} BPF instructions, more than the kernel's limit of {}",
            insns.len(),
            bpf::MAX_INSNS
        );
    }

    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        };
    }
    Ok(Program {
        insns,
        flags,
        notify,
    })
}

/// The SECCOMP_RET_* value of an action.
fn action_ret(act: Act, errno: Option<u32>) -> Result<u32> {
    let data = || -> Result<u32> {
        let e = errno.unwrap_or(libc::EPERM as u32);
        if e > 0xffff {
            bail!("errno {e} does not fit in the 16 bits seccomp returns");
        }
        Ok(e)
    };
    Ok(match act {
        Act::ScmpActKill | Act::ScmpActKillThread => RET_KILL_THREAD,
        Act::ScmpActKillProcess => RET_KILL_PROCESS,
        Act::ScmpActTrap => RET_TRAP,
        Act::ScmpActErrno => RET_ERRNO | data()?,
        Act::ScmpActTrace => RET_TRACE | data()?,
        Act::ScmpActNotify => RET_USER_NOTIF,
        Act::ScmpActLog => RET_LOG,
        Act::ScmpActAllow => RET_ALLOW,
    })
}

fn check_conditions(conds: &[LinuxSeccompArg]) -> Result<()> {
    if conds.len() > MAX_CONDITIONS {
        bail!(
            "{} argument conditions, at most {MAX_CONDITIONS} are supported",
            conds.len()
        );
    }
    for c in conds {
        if c.index() >= MAX_ARGS {
            bail!("argument index {} out of range (0..=5)", c.index());
        }
    }
    Ok(())
}

/// The closed code deciding a syscall of `abi`, with the syscall number in A.
fn abi_tree(
    abi: Abi,
    rules: &BTreeMap<u32, Vec<Rule>>,
    default_ret: u32,
    enosys_above: Option<u32>,
) -> Result<Vec<Insn>> {
    let (lo, hi) = abi.nr_domain();
    // Distinct blocks of code; 0 and 1 are the default action and ENOSYS.
    let mut blocks: Vec<Vec<Insn>> = vec![
        vec![ret(default_ret)],
        vec![ret(RET_ERRNO | libc::ENOSYS as u32)],
    ];
    // (first syscall number, block): each interval runs to the next one's start.
    let mut intervals: Vec<(u32, usize)> = Vec::new();
    let mut push = |start: u32, block: usize| {
        if intervals.last().map(|&(_, b)| b) != Some(block) {
            intervals.push((start, block));
        }
    };
    let mut next = Some(lo);
    for (&nr, rs) in rules {
        if let Some(n) = next {
            if nr > n {
                push(n, 0);
            }
        }
        let code = syscall_block(rs, default_ret, abi.wide_args())
            .with_context(|| format!("syscall number {nr:#x}"))?;
        let idx = match blocks.iter().position(|b| *b == code) {
            Some(i) => i,
            None => {
                blocks.push(code);
                blocks.len() - 1
            }
        };
        push(nr, idx);
        next = nr.checked_add(1);
    }
    if let Some(n) = next.filter(|&n| n <= hi) {
        match enosys_above {
            Some(max) if max < hi => {
                if n <= max {
                    push(n, 0);
                }
                push(max + 1, 1);
            }
            _ => push(n, 0),
        }
    }
    Ok(search_tree(&intervals, &blocks))
}

/// A balanced tree of `jge` over the interval starts; the leaves are the blocks.
fn search_tree(intervals: &[(u32, usize)], blocks: &[Vec<Insn>]) -> Vec<Insn> {
    match intervals {
        [] => vec![ret(RET_BAD_ARCH)],
        [(_, b)] => blocks[*b].clone(),
        _ => {
            let mid = intervals.len() / 2;
            branch(
                bpf::JGE,
                intervals[mid].0,
                search_tree(&intervals[mid..], blocks),
                search_tree(&intervals[..mid], blocks),
            )
        }
    }
}

/// The closed code for one syscall number, decided as libseccomp's rule tree decides it
/// (observed with runc 1.1.5 + libseccomp 2.5.4, see tests/runtime_seccomp.rs):
/// - an unconditional rule takes the whole syscall, whatever conditional rules it has, before
///   or after it; of several, the first;
/// - otherwise conditional rules are tried in the order of [`tree_order`]; the first whose
///   conditions all hold decides, else the default action. (Where libseccomp refuses a rule
///   with "file exists", a prefix of an earlier rule's conditions with another action, ocibox
///   keeps the order above instead of failing.)
fn syscall_block(rules: &[Rule], default_ret: u32, wide: bool) -> Result<Vec<Insn>> {
    if let Some(r) = rules.iter().find(|r| r.conds.is_empty()) {
        return Ok(vec![ret(r.ret)]);
    }
    let mut conditional: Vec<&Rule> = rules.iter().collect();
    conditional.sort_by_key(|r| tree_order(r));
    // Trailing entries that end where the default would are dead weight.
    while conditional.last().is_some_and(|r| r.ret == default_ret) {
        conditional.pop();
    }
    let mut out = Vec::new();
    for r in conditional {
        out.extend(rule_code(r, wide)?);
    }
    out.push(ret(default_ret));
    Ok(out)
}

/// Where libseccomp's tree puts a conditional rule among the others for its syscall, from its
/// condition on the lowest argument: higher arguments first, then larger values (valueTwo for
/// MASKED_EQ), then the operator as libseccomp stores it (NE, LT and LE are EQ, GE and GT
/// with the branches swapped: EQ before GE before GT before MASKED_EQ); ties keep spec order.
fn tree_order(r: &Rule) -> (Reverse<usize>, Reverse<u64>, u8) {
    let Some(first) = r.conds.iter().min_by_key(|c| c.index()) else {
        return (Reverse(usize::MAX), Reverse(0), 0);
    };
    let (op, datum) = match first.op() {
        Op::ScmpCmpEq | Op::ScmpCmpNe => (4, first.value()),
        Op::ScmpCmpGe | Op::ScmpCmpLt => (5, first.value()),
        Op::ScmpCmpGt | Op::ScmpCmpLe => (6, first.value()),
        Op::ScmpCmpMaskedEq => (7, first.value_two().unwrap_or(0)),
    };
    (Reverse(first.index()), Reverse(datum), op)
}

/// One conditional entry: returns its action when every condition holds, else falls through
/// to the instruction after it. Built back to front so each failure jump knows its distance.
fn rule_code(r: &Rule, wide: bool) -> Result<Vec<Insn>> {
    let mut code = vec![ret(r.ret)];
    for c in r.conds.iter().rev() {
        let mut cond = condition(c, wide, code.len())?;
        cond.extend(code);
        code = cond;
    }
    Ok(code)
}

/// Where a jump in a condition goes.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// The end of this condition: it holds.
    Holds,
    /// The end of the entry: it does not apply.
    Fails,
}

/// Code for one condition: falls through when it holds, jumps `fail_skip` instructions past
/// its own end when it does not.
fn condition(c: &LinuxSeccompArg, wide: bool, fail_skip: usize) -> Result<Vec<Insn>> {
    use To::*;
    let i = c.index() as u32;
    let (value, value_two) = (c.value(), c.value_two().unwrap_or(0));
    let (vhi, vlo) = ((value >> 32) as u32, value as u32);
    let (dhi, dlo) = ((value_two >> 32) as u32, value_two as u32);
    // (instruction, where true goes, where false goes); targets only matter for jumps.
    let mut ops: Vec<(Insn, To, To)> = Vec::new();
    let ld = |off| (load(off), Next, Next);
    let j = |code, k, t, f| (jump(code, k, 0, 0), t, f);
    let and = |k| (stmt(bpf::AND_K, k), Next, Next);
    if wide {
        ops.push(ld(bpf::off_arg_hi(i)));
        match c.op() {
            Op::ScmpCmpEq => ops.push(j(bpf::JEQ, vhi, Next, Fails)),
            Op::ScmpCmpNe => ops.push(j(bpf::JEQ, vhi, Next, Holds)),
            Op::ScmpCmpGt | Op::ScmpCmpGe => {
                ops.push(j(bpf::JGT, vhi, Holds, Next));
                ops.push(j(bpf::JEQ, vhi, Next, Fails));
            }
            Op::ScmpCmpLt | Op::ScmpCmpLe => {
                ops.push(j(bpf::JGE, vhi, Next, Holds));
                ops.push(j(bpf::JEQ, vhi, Next, Fails));
            }
            Op::ScmpCmpMaskedEq => {
                ops.push(and(vhi));
                ops.push(j(bpf::JEQ, dhi, Next, Fails));
            }
        }
    }
    ops.push(ld(bpf::off_arg_lo(i)));
    match c.op() {
        Op::ScmpCmpEq => ops.push(j(bpf::JEQ, vlo, Holds, Fails)),
        Op::ScmpCmpNe => ops.push(j(bpf::JEQ, vlo, Fails, Holds)),
        Op::ScmpCmpGt => ops.push(j(bpf::JGT, vlo, Holds, Fails)),
        Op::ScmpCmpGe => ops.push(j(bpf::JGE, vlo, Holds, Fails)),
        Op::ScmpCmpLt => ops.push(j(bpf::JGE, vlo, Fails, Holds)),
        Op::ScmpCmpLe => ops.push(j(bpf::JGT, vlo, Fails, Holds)),
        Op::ScmpCmpMaskedEq => {
            ops.push(and(vlo));
            ops.push(j(bpf::JEQ, dlo, Holds, Fails));
        }
    }
    let len = ops.len();
    let mut out = Vec::with_capacity(len);
    for (pos, (mut insn, t, f)) in ops.into_iter().enumerate() {
        let to_end = len - pos - 1;
        let offset = |to: To| -> Result<u8> {
            let d = match to {
                Next => 0,
                Holds => to_end,
                Fails => to_end + fail_skip,
            };
            u8::try_from(d).context("argument condition jump too long")
        };
        if insn.code != bpf::LD_ABS && insn.code != bpf::AND_K {
            insn.jt = offset(t)?;
            insn.jf = offset(f)?;
        }
        out.push(insn);
    }
    Ok(out)
}
