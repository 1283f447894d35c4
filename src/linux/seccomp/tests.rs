//! Compiler tests run the generated BPF in a small interpreter; kernel tests install real
//! filters in a re-executed copy of this test binary (a filter cannot be removed, so each
//! lives in a process of its own).

use std::time::Instant;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator as Op};
use serde_json::json;

use super::abi::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use super::bpf::interp::{run, Data};
use super::bpf::{self, Insn};
use super::compile::*;
use super::*;

const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

fn spec(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test spec parses")
}

fn containerd_profile() -> LinuxSeccomp {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seccomp/containerd-default.json"
    );
    let text = std::fs::read_to_string(path).expect("read containerd profile fixture");
    serde_json::from_str(&text).expect("containerd profile parses")
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.syscall_nr(name)
        .unwrap_or_else(|| panic!("{name} in {abi:?}"))
}

/// Runs the program for one syscall of `abi`.
fn eval(p: &Program, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    eval_nr(p, abi, nr(abi, name), args)
}

fn eval_nr(p: &Program, abi: Abi, nr: u32, args: [u64; 6]) -> u32 {
    let arch = match abi {
        Abi::I386 => AUDIT_ARCH_I386,
        _ => AUDIT_ARCH_X86_64,
    };
    run(
        p.instructions(),
        &Data {
            nr,
            arch,
            ip: 0x1234,
            args,
        },
    )
}

/// Every jump stays inside the program and the last instruction is a `ret`.
fn check_jumps(prog: &[Insn]) {
    assert!(prog.len() <= bpf::MAX_INSNS);
    assert_eq!(prog.last().map(|i| i.code), Some(bpf::RET));
    for (pc, i) in prog.iter().enumerate() {
        let targets: Vec<usize> = match i.code {
            bpf::JA => vec![pc + 1 + i.k as usize],
            bpf::JEQ | bpf::JGT | bpf::JGE => {
                vec![pc + 1 + i.jt as usize, pc + 1 + i.jf as usize]
            }
            _ => vec![],
        };
        for t in targets {
            assert!(t < prog.len(), "jump at {pc} to {t} leaves the program");
        }
    }
}

#[test]
fn tables_are_sorted_and_know_the_abis() {
    for t in [syscalls::X86_64, syscalls::I386, syscalls::X32] {
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "table sorted");
    }
    assert_eq!(nr(Abi::X86_64, "mkdir"), 83);
    assert_eq!(nr(Abi::I386, "mkdir"), 39);
    assert_eq!(nr(Abi::X32, "mkdir"), 0x4000_0053);
    assert_eq!(nr(Abi::X32, "rt_sigaction"), 0x4000_0200);
    assert_eq!(nr(Abi::I386, "chown32"), 212);
    assert_eq!(Abi::X86_64.syscall_nr("chown32"), None);
    assert_eq!(nr(Abi::X86_64, "fchmodat2"), 452);
}

#[test]
fn default_action_errno_ret_and_native_arch_only() {
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    check_jumps(p.instructions());
    assert_eq!(eval(&p, Abi::X86_64, "mkdir", [0; 6]), EPERM);
    assert_eq!(eval(&p, Abi::X86_64, "getpid", [0; 6]), RET_ALLOW);
    // i386 and x32 are not in the filter: libseccomp's bad-arch action.
    assert_eq!(eval(&p, Abi::I386, "getpid", [0; 6]), RET_BAD_ARCH);
    assert_eq!(eval(&p, Abi::X32, "getpid", [0; 6]), RET_BAD_ARCH);
    let foreign = Data {
        nr: 1,
        arch: AUDIT_ARCH_AARCH64,
        ..Data::default()
    };
    assert_eq!(run(p.instructions(), &foreign), RET_BAD_ARCH);
    assert!(!p.uses_notify());

    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["getpid", "chown32"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 123}]
    })))
    .unwrap();
    check_jumps(p.instructions());
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        assert_eq!(eval(&p, abi, "getpid", [0; 6]), RET_ALLOW, "{abi:?}");
        assert_eq!(eval(&p, abi, "mkdir", [0; 6]), RET_ERRNO | 123, "{abi:?}");
        assert_eq!(eval(&p, abi, "read", [0; 6]), RET_ERRNO | 38, "{abi:?}");
    }
    assert_eq!(eval(&p, Abi::I386, "chown32", [0; 6]), RET_ALLOW);
    // Listed but foreign to this kernel: still the bad-arch action.
    assert_eq!(run(p.instructions(), &foreign), RET_BAD_ARCH);
}

#[test]
fn every_action() {
    let cases = [
        ("SCMP_ACT_KILL", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", RET_TRAP),
        ("SCMP_ACT_ERRNO", EPERM),
        ("SCMP_ACT_TRACE", RET_TRACE | libc::EPERM as u32),
        ("SCMP_ACT_LOG", RET_LOG),
        ("SCMP_ACT_NOTIFY", RET_USER_NOTIF),
    ];
    for (action, want) in cases {
        let p = compile(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": action}]
        })))
        .unwrap();
        assert_eq!(eval(&p, Abi::X86_64, "mkdir", [0; 6]), want, "{action}");
        assert_eq!(p.uses_notify(), action == "SCMP_ACT_NOTIFY");
        // As the default action too (NOTIFY cannot be one).
        if action != "SCMP_ACT_NOTIFY" {
            let p = compile(&spec(json!({"defaultAction": action}))).unwrap();
            assert_eq!(
                eval(&p, Abi::X86_64, "mkdir", [0; 6]),
                want,
                "default {action}"
            );
        }
    }
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]
    })))
    .unwrap();
    assert_eq!(eval(&p, Abi::X86_64, "mkdir", [0; 6]), RET_TRACE | 7);
}

#[test]
fn flags() {
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    })))
    .unwrap();
    assert_eq!(p.filter_flags(), 1 | 2 | 4);
}

#[test]
fn errors_name_the_problem() {
    let bad = [
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                   "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "write syscall",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "argument index 6",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
            "16 bits",
        ),
    ];
    for (v, want) in bad {
        let err = format!("{:#}", compile(&spec(v.clone())).unwrap_err());
        assert!(err.contains(want), "{v}: {err}");
    }
    // Unknown action / arch / operator names are rejected when the spec is parsed.
    for v in [
        json!({"defaultAction": "SCMP_ACT_FOO"}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
               "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}),
    ] {
        assert!(serde_json::from_value::<LinuxSeccomp>(v).is_err());
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::ScmpCmpNe => "SCMP_CMP_NE",
        Op::ScmpCmpLt => "SCMP_CMP_LT",
        Op::ScmpCmpLe => "SCMP_CMP_LE",
        Op::ScmpCmpEq => "SCMP_CMP_EQ",
        Op::ScmpCmpGe => "SCMP_CMP_GE",
        Op::ScmpCmpGt => "SCMP_CMP_GT",
        Op::ScmpCmpMaskedEq => "SCMP_CMP_MASKED_EQ",
    }
}

fn reference(op: Op, arg: u64, v: u64, v2: u64, wide: bool) -> bool {
    let (a, v, v2) = if wide {
        (arg, v, v2)
    } else {
        (arg as u32 as u64, v as u32 as u64, v2 as u32 as u64)
    };
    match op {
        Op::ScmpCmpNe => a != v,
        Op::ScmpCmpLt => a < v,
        Op::ScmpCmpLe => a <= v,
        Op::ScmpCmpEq => a == v,
        Op::ScmpCmpGe => a >= v,
        Op::ScmpCmpGt => a > v,
        Op::ScmpCmpMaskedEq => a & v == v2,
    }
}

const VALUES: [u64; 12] = [
    0,
    1,
    2,
    0x2_0000,
    0x7e02_0000,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x2_0000_0003,
    0xffff_ffff_0000_0000,
    u64::MAX,
];

#[test]
fn argument_operators_match_64_and_32_bit_semantics() {
    let ops = [
        Op::ScmpCmpNe,
        Op::ScmpCmpLt,
        Op::ScmpCmpLe,
        Op::ScmpCmpEq,
        Op::ScmpCmpGe,
        Op::ScmpCmpGt,
        Op::ScmpCmpMaskedEq,
    ];
    for op in ops {
        for &v in &VALUES {
            for &v2 in &[0u64, 0x2_0000, 0x1_0000_0000] {
                let p = compile(&spec(json!({
                    "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                    "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 3, "value": v, "valueTwo": v2, "op": op_name(op)}]}]
                })))
                .unwrap();
                check_jumps(p.instructions());
                for &a in &VALUES {
                    let args = [7, 7, 7, a, 7, 7];
                    for abi in [Abi::X86_64, Abi::I386] {
                        let want = if reference(op, a, v, v2, abi.wide_args()) {
                            EPERM
                        } else {
                            RET_ALLOW
                        };
                        assert_eq!(
                            eval(&p, abi, "ioctl", args),
                            want,
                            "{abi:?} arg {a:#x} {op:?} {v:#x} ({v2:#x})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn conditions_on_different_arguments_are_anded_and_entries_for_one_syscall_combine() {
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GE"},
                      {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            // Same as the default action: dropped, as runc drops it.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
        ]
    })))
    .unwrap();
    check_jumps(p.instructions());
    let x = Abi::X86_64;
    // As in libseccomp, the unconditional rule takes the whole syscall.
    assert_eq!(eval(&p, x, "socket", [40, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&p, x, "socket", [2, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&p, x, "kill", [5, 15, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&p, x, "kill", [0, 15, 0, 0, 0, 0]), EPERM);
    assert_eq!(eval(&p, x, "kill", [5, 14, 0, 0, 0, 0]), EPERM);
    assert_eq!(eval(&p, x, "kill", [0, 9, 0, 0, 0, 0]), RET_LOG);
    assert_eq!(eval(&p, x, "kill", [0, 2, 0, 0, 0, 0]), EPERM);
}

/// runc's seccomp_linux.go: an entry with two conditions on one argument becomes one rule per
/// condition (OR), also for its conditions on other arguments; otherwise conditions are AND-ed.
/// The cases of runc's tests/integration/testdata/seccomp_syscall_test1 plus a mixed one.
#[test]
fn conditions_on_one_argument_are_ored_like_runc() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW",
             "args": [eq(0, 100), eq(0, 9001)]},
            {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
             "args": [eq(0, 1337), eq(0, 2020)]},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 0), eq(1, 1337)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
             "args": [eq(0, 7), eq(0, 8), eq(1, 9)]},
        ]
    })))
    .unwrap();
    check_jumps(p.instructions());
    let enoano = RET_ERRNO | libc::ENOANO as u32;
    for abi in [Abi::X86_64, Abi::I386] {
        let e = |name, a0, a1| eval(&p, abi, name, [a0, a1, 0, 0, 0, 0]);
        assert_eq!(e("process_vm_readv", 100, 0), RET_ALLOW, "{abi:?}");
        assert_eq!(e("process_vm_readv", 9001, 0), RET_ALLOW, "{abi:?}");
        assert_eq!(e("process_vm_readv", 0, 0), EPERM, "{abi:?}");
        assert_eq!(e("process_vm_writev", 1337, 0), enoano, "{abi:?}");
        assert_eq!(e("process_vm_writev", 2020, 0), enoano, "{abi:?}");
        assert_eq!(e("process_vm_writev", 0, 0), EPERM, "{abi:?}");
        // Different arguments: AND.
        assert_eq!(e("kcmp", 0, 1337), RET_ALLOW, "{abi:?}");
        assert_eq!(e("kcmp", 0, 0), EPERM, "{abi:?}");
        assert_eq!(e("kcmp", 500, 1337), EPERM, "{abi:?}");
        // Mixed: OR mode takes in the condition on arg1 too.
        for (a0, a1) in [(7, 0), (8, 0), (0, 9), (7, 9)] {
            assert_eq!(e("getpriority", a0, a1), enoano, "{abi:?} {a0} {a1}");
        }
        assert_eq!(e("getpriority", 0, 0), EPERM, "{abi:?}");
    }
}

/// runc's patchbpf stub: ENOSYS above the highest syscall the profile names, per ABI, only for
/// the ABIs `architectures` lists, and not for ALLOW/LOG/TRACE defaults or an ENOSYS default.
#[test]
fn enosys_stub_follows_runc() {
    let with = |extra: serde_json::Value| {
        let mut v = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write", "openat2"], "action": "SCMP_ACT_ALLOW"}]
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        let p = compile(&spec(v)).unwrap();
        check_jumps(p.instructions());
        p
    };
    let openat2 = nr(Abi::X86_64, "openat2");
    let (above, below) = (openat2 + 1, nr(Abi::X86_64, "kcmp"));
    let x = Abi::X86_64;

    let p = with(json!({"architectures": ["SCMP_ARCH_X86_64"]}));
    assert_eq!(eval_nr(&p, x, above, [0; 6]), ENOSYS);
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), ENOSYS);
    assert_eq!(eval_nr(&p, x, below, [0; 6]), EPERM);
    assert_eq!(eval_nr(&p, x, openat2, [0; 6]), RET_ALLOW);

    // No architectures: runc builds no stub at all.
    let p = with(json!({}));
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), EPERM);
    // Only i386 listed: x86_64 syscalls keep the default, i386 ones get the stub.
    let p = with(json!({"architectures": ["SCMP_ARCH_X86"]}));
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), EPERM);
    assert_eq!(eval_nr(&p, Abi::I386, 1000, [0; 6]), ENOSYS);
    assert_eq!(
        eval_nr(&p, Abi::I386, nr(Abi::I386, "openat2") + 1, [0; 6]),
        ENOSYS
    );
    assert_eq!(eval(&p, Abi::I386, "kcmp", [0; 6]), EPERM);
    // x32 has its own highest number (with the x32 bit).
    let p = with(json!({"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]}));
    let x32_above = nr(Abi::X32, "openat2") + 1;
    assert_eq!(eval_nr(&p, Abi::X32, x32_above, [0; 6]), ENOSYS);
    assert_eq!(eval(&p, Abi::X32, "kcmp", [0; 6]), EPERM);

    let archs = json!(["SCMP_ARCH_X86_64"]);
    // A killing default gets the stub too...
    let p = with(json!({"architectures": archs, "defaultAction": "SCMP_ACT_KILL_PROCESS"}));
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), ENOSYS);
    assert_eq!(eval_nr(&p, x, below, [0; 6]), RET_KILL_PROCESS);
    // ...unless defaultErrnoRet is ENOSYS (runc's generatePatch skips it then).
    let p = with(
        json!({"architectures": archs, "defaultAction": "SCMP_ACT_KILL_PROCESS",
                        "defaultErrnoRet": 38}),
    );
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), RET_KILL_PROCESS);
    // ENOANO as the default errno reaches the caller; newer syscalls still get ENOSYS.
    let p = with(json!({"architectures": archs, "defaultErrnoRet": 55}));
    assert_eq!(eval_nr(&p, x, below, [0; 6]), RET_ERRNO | 55);
    assert_eq!(eval_nr(&p, x, 1000, [0; 6]), ENOSYS);
    // Defaults that let syscalls through: no stub.
    for (act, ret) in [
        ("SCMP_ACT_TRACE", RET_TRACE | libc::EPERM as u32),
        ("SCMP_ACT_LOG", RET_LOG),
    ] {
        let p = with(json!({"architectures": archs, "defaultAction": act}));
        assert_eq!(eval_nr(&p, x, 1000, [0; 6]), ret, "{act}");
    }
}

/// Several rules for one syscall combine as libseccomp's tree does (each case checked against
/// runc 1.1.5 + libseccomp 2.5.4 in tests/runtime_seccomp.rs).
#[test]
fn rules_for_one_syscall_combine_like_libseccomp() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let errno = |e: u32, args: serde_json::Value| json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": e, "args": args});
    let compile_rules = |rules: serde_json::Value| {
        let p = compile(&spec(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}),
        ))
        .unwrap();
        check_jumps(p.instructions());
        p
    };
    let e = |p: &Program, a0: u64, a1: u64| match eval(
        p,
        Abi::X86_64,
        "getpriority",
        [a0, a1, 0, 0, 0, 0],
    ) {
        RET_ALLOW => 0,
        r => r & 0xffff,
    };
    // Unconditional before or after conditional rules: it decides alone; the first of two.
    let allow = json!({"names": ["getpriority"], "action": "SCMP_ACT_ALLOW"});
    let p = compile_rules(json!([allow, errno(55, json!([eq(0, 7)]))]));
    assert_eq!((e(&p, 7, 0), e(&p, 1, 0)), (0, 0));
    let p = compile_rules(json!([
        errno(55, json!([eq(0, 7)])),
        errno(56, json!(null))
    ]));
    assert_eq!((e(&p, 7, 0), e(&p, 1, 0)), (56, 56));
    let p = compile_rules(json!([errno(55, json!(null)), errno(56, json!(null))]));
    assert_eq!(e(&p, 1, 0), 55);
    // Conditions on a higher argument are tried first, whatever the spec order.
    for rules in [
        json!([errno(55, json!([eq(0, 7)])), errno(56, json!([eq(1, 9)]))]),
        json!([errno(56, json!([eq(1, 9)])), errno(55, json!([eq(0, 7)]))]),
    ] {
        let p = compile_rules(rules);
        assert_eq!(
            (e(&p, 7, 0), e(&p, 7, 9), e(&p, 0, 9), e(&p, 0, 0)),
            (55, 56, 56, 1)
        );
    }
    let p = compile_rules(json!([
        errno(55, json!([eq(0, 7), eq(1, 9)])),
        errno(56, json!([eq(1, 9)]))
    ]));
    assert_eq!((e(&p, 7, 9), e(&p, 7, 0)), (56, 1));
    // On one argument EQ comes before GT.
    let gt = json!([{"index": 0, "value": 5, "op": "SCMP_CMP_GT"}]);
    let p = compile_rules(json!([errno(55, gt), errno(56, json!([eq(0, 7)]))]));
    assert_eq!((e(&p, 7, 0), e(&p, 6, 0), e(&p, 1, 0)), (56, 55, 1));
    // On one argument larger values first, whatever the operator; NE is EQ swapped.
    let cmp = |op: &str, value: u64| json!([{"index": 0, "value": value, "op": format!("SCMP_CMP_{op}")}]);
    let p = compile_rules(json!([errno(55, cmp("GE", 3)), errno(56, cmp("GE", 5))]));
    assert_eq!((e(&p, 6, 0), e(&p, 4, 0), e(&p, 2, 0)), (56, 55, 1));
    let p = compile_rules(json!([errno(56, cmp("EQ", 6)), errno(55, cmp("NE", 7))]));
    assert_eq!((e(&p, 6, 0), e(&p, 7, 0)), (55, 1));
    let p = compile_rules(json!([errno(55, cmp("LE", 7)), errno(56, cmp("GE", 5))]));
    assert_eq!((e(&p, 6, 0), e(&p, 9, 0), e(&p, 2, 0)), (55, 56, 55));
    let p = compile_rules(json!([errno(56, cmp("EQ", 6)), errno(55, cmp("GE", 6))]));
    assert_eq!((e(&p, 6, 0), e(&p, 7, 0)), (56, 55));
    // Same first condition: spec order (the shorter rule first absorbs the longer one).
    let p = compile_rules(json!([
        errno(56, json!([eq(0, 7)])),
        errno(55, json!([eq(0, 7), eq(1, 9)]))
    ]));
    assert_eq!((e(&p, 7, 9), e(&p, 7, 0)), (56, 56));
}

#[test]
fn long_jumps_are_correct() {
    // Every syscall its own errno: no interval merges, the search tree is far wider than 255.
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
    let entries: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1}))
        .collect();
    let p = compile(&spec(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": entries}),
    ))
    .unwrap();
    check_jumps(p.instructions());
    assert!(p.instructions().len() > 600);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            eval(&p, Abi::X86_64, n, [0; 6]),
            RET_ERRNO | (i as u32 + 1),
            "{n}"
        );
    }
    assert_eq!(eval_nr(&p, Abi::X86_64, 1000, [0; 6]), RET_ALLOW);

    // One syscall with 200 entries: a block longer than 255 instructions.
    let entries: Vec<_> = (0..200)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                   "args": [{"index": 1, "value": 1000 + i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let p = compile(&spec(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": entries
    })))
    .unwrap();
    check_jumps(p.instructions());
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        for i in 0..200u64 {
            assert_eq!(
                eval(&p, abi, "ioctl", [0, 1000 + i, 0, 0, 0, 0]),
                RET_ERRNO | (i as u32 + 1)
            );
        }
        assert_eq!(eval(&p, abi, "ioctl", [0, 5, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&p, abi, "read", [0; 6]), RET_ALLOW);
    }
}

#[test]
fn containerd_default_profile() {
    let s = containerd_profile();
    let p = compile(&s).unwrap();
    check_jumps(p.instructions());
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(compile(std::hint::black_box(&s)).unwrap());
    }
    eprintln!(
        "containerd default profile: {} BPF instructions, compile() {:?} per run",
        p.instructions().len(),
        t.elapsed() / n
    );

    let x = Abi::X86_64;
    for name in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "execve",
        "exit_group",
        "rt_sigaction",
        "wait4",
        "getdents64",
        "newfstatat",
        "statx",
        "arch_prctl",
        "mkdir",
        "fork",
        "vfork",
        "ptrace",
        "chroot",
        "rseq",
        "futex_waitv",
        "set_tid_address",
        "prlimit64",
    ] {
        assert_eq!(eval(&p, x, name, [0; 6]), RET_ALLOW, "{name}");
    }
    for name in [
        "keyctl",
        "add_key",
        "unshare",
        "mount",
        "setns",
        "bpf",
        "reboot",
        "kexec_load",
    ] {
        assert_eq!(eval(&p, x, name, [0; 6]), EPERM, "{name}");
    }
    assert_eq!(eval(&p, x, "clone3", [0; 6]), ENOSYS);
    // Newer than anything the profile names: ENOSYS, so libc falls back.
    assert_eq!(eval(&p, x, "fchmodat2", [0; 6]), ENOSYS);
    let sigchld = libc::SIGCHLD as u64;
    let thread = (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_THREAD) as u64;
    assert_eq!(eval(&p, x, "clone", [sigchld, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&p, x, "clone", [thread, 0, 0, 0, 0, 0]), RET_ALLOW);
    let newuser = sigchld | libc::CLONE_NEWUSER as u64;
    assert_eq!(eval(&p, x, "clone", [newuser, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(eval(&p, x, "personality", [0x8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        eval(&p, x, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(eval(&p, x, "personality", [0x1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(eval(&p, Abi::I386, "chown32", [0; 6]), RET_ALLOW);
    assert_eq!(eval(&p, Abi::I386, "socketcall", [0; 6]), RET_ALLOW);
    assert_eq!(eval(&p, Abi::I386, "keyctl", [0; 6]), EPERM);
    assert_eq!(eval(&p, Abi::X32, "read", [0; 6]), RET_ALLOW);
    assert_eq!(eval(&p, Abi::X32, "keyctl", [0; 6]), EPERM);
}

mod kernel;
