//! `linux.resources.devices` rules: parsed once into a checked form, written as v1
//! devices.allow/deny lines, and compiled (for v2) into an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program, built here instruction by instruction.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// A device cgroup rule after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c'.
    pub kind: char,
    /// None is the wildcard "*".
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Subset of "rwm", in that order.
    pub access: String,
}

impl Rule {
    /// One `linux.resources.devices` entry, checked as runc 1.1 checks it: the type is "a",
    /// "b" or "c" (a cgroup cannot filter fifos, and "u" is a node type, not a rule type);
    /// the access must not be empty; characters other than r, w and m are ignored (runc's
    /// v1 device emulator drops them, so "rwa" means "rw"), but an access with none of them
    /// is refused (runc fails later with "resulting devices cgroup doesn't precisely match
    /// target"). `index` is the entry's place in the list, for runc's message.
    pub fn from_spec_at(d: &LinuxDeviceCgroup, index: usize) -> Result<Rule> {
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::C => 'c',
            LinuxDeviceType::U => bail!("invalid cgroup device type \"u\""),
            LinuxDeviceType::P => bail!("invalid cgroup device type \"p\""),
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
                Some(n) => bail!("device cgroup rule: invalid {} number {}", what, n),
            }
        };
        let raw = d.access().as_deref().unwrap_or("");
        if raw.is_empty() {
            bail!("device access at {} field cannot be empty", index);
        }
        let access: String = ['r', 'w', 'm']
            .into_iter()
            .filter(|c| raw.contains(*c))
            .collect();
        if access.is_empty() {
            bail!(
                "device access at {} field: {:?} has none of r, w, m",
                index,
                raw
            );
        }
        Ok(Rule {
            allow: d.allow(),
            kind,
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            access,
        })
    }

    pub fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule> {
        Self::from_spec_at(d, 0)
    }

    /// The v1 devices.allow / devices.deny line, e.g. "c 1:3 rwm" or "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Whether this rule matches every device and every access.
    pub fn matches_all(&self) -> bool {
        self.kind == 'a' && self.major.is_none() && self.minor.is_none() && self.access == "rwm"
    }
}

/// The device cgroup rules runc 1.1 derives from a spec: the spec's own
/// `linux.resources.devices`, then runc's default allowed devices (mknod of any char or block
/// device; null, random, full, tty, zero, urandom, /dev/pts/*, ptmx, /dev/net/tun). Later
/// rules win. The nodes of `linux.devices` are *not* allowed here: runc creates them but
/// leaves access to them to `linux.resources.devices`, so a config that denies everything
/// gets a /dev/kmsg it cannot open. A default device whose path `linux.devices` names is
/// the spec's to define, so its default allow rule is dropped too (as runc does).
pub fn runc_device_rules(
    resources: &[LinuxDeviceCgroup],
    devices: &[oci_spec::runtime::LinuxDevice],
) -> Vec<LinuxDeviceCgroup> {
    let mk = |t: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(t));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    use LinuxDeviceType::{B, C};
    let named = |path: &str| devices.iter().any(|d| d.path().as_os_str() == path);
    let mut out = resources.to_vec();
    out.push(mk(C, None, None, "m"));
    out.push(mk(B, None, None, "m"));
    for (path, major, minor) in [
        ("/dev/null", 1, 3),
        ("/dev/random", 1, 8),
        ("/dev/full", 1, 7),
        ("/dev/tty", 5, 0),
        ("/dev/zero", 1, 5),
        ("/dev/urandom", 1, 9),
    ] {
        if !named(path) {
            out.push(mk(C, Some(major), Some(minor), "rwm"));
        }
    }
    out.push(mk(C, Some(136), None, "rwm"));
    out.push(mk(C, Some(5), Some(2), "rwm"));
    out.push(mk(C, Some(10), Some(200), "rwm"));
    out
}

pub fn parse_rules(devs: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    devs.iter()
        .enumerate()
        .map(|(i, d)| Rule::from_spec_at(d, i))
        .collect()
}

/// One eBPF instruction as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes (class | op | source).
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x04 | 0x50;
const ALU32_RSH_K: u8 = 0x04 | 0x70;
const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08;
const ALU64_MOV_K: u8 = 0x07 | 0xb0;
const JMP_JNE_K: u8 = 0x05 | 0x50;
const JMP_JNE_X: u8 = 0x05 | 0x50 | 0x08;
const JMP_EXIT: u8 = 0x05 | 0x90;

// include/uapi/linux/bpf.h
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// Compile rules into a device program. Semantics match v1: start from "deny everything", each
/// rule in order overrides what came before, so the program tests the rules last-first and the
/// first match decides; nothing matching is denied.
///
/// Registers: R2 = device type, R3 = requested access, R4 = major, R5 = minor, read from
/// `struct bpf_cgroup_dev_ctx { u32 access_type /* access<<16 | type */; u32 major; u32 minor; }`.
pub fn device_program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        // Jumps are emitted with off 0 and patched to "skip to the end of this block".
        let mut jumps = Vec::new();
        match rule.kind {
            'b' | 'c' => {
                let t = if rule.kind == 'b' {
                    BPF_DEVCG_DEV_BLOCK
                } else {
                    BPF_DEVCG_DEV_CHAR
                };
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, 2, 0, 0, t));
            }
            _ => {}
        }
        if rule.access != "rwm" {
            let mut acc = 0;
            for c in rule.access.chars() {
                acc |= match c {
                    'r' => BPF_DEVCG_ACC_READ,
                    'w' => BPF_DEVCG_ACC_WRITE,
                    _ => BPF_DEVCG_ACC_MKNOD,
                };
            }
            // Allowed only if every requested bit is in the rule: (R3 & acc) == R3.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, acc));
            jumps.push(block.len());
            block.push(insn(JMP_JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = rule.major {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
        if rule.matches_all() {
            // Nothing after an unconditional return is reachable; the verifier rejects
            // unreachable instructions.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Rule {
        Rule::from_spec(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn v1_lines() {
        assert_eq!(
            rule(r#"{"allow":false,"access":"rwm"}"#).v1_line(),
            "a *:* rwm"
        );
        assert_eq!(
            rule(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"mwr"}"#).v1_line(),
            "c 1:3 rwm"
        );
        assert_eq!(
            rule(r#"{"allow":true,"type":"c","major":136,"access":"rw"}"#).v1_line(),
            "c 136:* rw"
        );
        // runc ignores characters other than r, w, m…
        assert_eq!(
            rule(r#"{"allow":true,"type":"c","major":1,"minor":11,"access":"rwa"}"#).v1_line(),
            "c 1:11 rw"
        );
        // …but refuses an access with none of them, an empty one, and non-rule types.
        let err = |json: &str| {
            Rule::from_spec_at(&serde_json::from_str(json).unwrap(), 1)
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"allow":true,"access":"x"}"#).contains("none of r, w, m"));
        assert_eq!(
            err(r#"{"allow":true,"access":""}"#),
            "device access at 1 field cannot be empty"
        );
        assert_eq!(
            err(r#"{"allow":true}"#),
            "device access at 1 field cannot be empty"
        );
        assert_eq!(
            err(r#"{"allow":true,"type":"p","access":"rw"}"#),
            "invalid cgroup device type \"p\""
        );
    }

    /// A tiny interpreter for the instructions we emit, to check the program's decisions.
    fn run(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                JMP_JNE_X => {
                    if r[dst] != r[src] {
                        pc += i.off as usize
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {:#x}", c),
            }
        }
    }

    #[test]
    fn program_decisions() {
        let rules = parse_rules(
            &serde_json::from_str::<Vec<LinuxDeviceCgroup>>(
                r#"[{"allow":false,"access":"rwm"},
                    {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                    {"allow":true,"type":"c","major":136,"access":"rw"},
                    {"allow":false,"type":"c","major":136,"minor":5,"access":"w"}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        let p = device_program(&rules);
        let (r, w, m) = (2, 4, 1);
        let c = 2;
        assert_eq!(run(&p, c, r | w, 1, 3), 1); // /dev/null rw
        assert_eq!(run(&p, c, m, 1, 3), 1);
        assert_eq!(run(&p, c, r, 1, 5), 0); // /dev/zero not allowed
        assert_eq!(run(&p, 1, r, 1, 3), 0); // block 1:3 not allowed
        assert_eq!(run(&p, c, r | w, 136, 0), 1); // pts rw
        assert_eq!(run(&p, c, m, 136, 0), 0); // pts mknod not allowed
        assert_eq!(run(&p, c, r, 136, 5), 1); // pts/5 read ok
        assert_eq!(run(&p, c, w, 136, 5), 0); // pts/5 write denied by the last rule
                                              // Exact encoding of the prologue and of a "c 1:3 rwm" allow block.
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[1],
            Insn {
                code: 0x54,
                regs: 0x02,
                off: 0,
                imm: 0xffff
            }
        );
        assert_eq!(
            p[3],
            Insn {
                code: 0x74,
                regs: 0x03,
                off: 0,
                imm: 16
            }
        );
        assert_eq!(
            *p.last().unwrap(),
            Insn {
                code: 0x95,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
    }

    #[test]
    fn runc_defaults_follow_the_spec_rules() {
        let spec: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":false,"access":"rwm"}]"#).unwrap();
        let devs: Vec<oci_spec::runtime::LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/fuse","type":"c","major":10,"minor":229},
                {"path":"/dev/full","type":"c","major":1,"minor":7}]"#,
        )
        .unwrap();
        let lines: Vec<String> = parse_rules(&runc_device_rules(&spec, &devs))
            .unwrap()
            .iter()
            .map(Rule::v1_line)
            .collect();
        assert_eq!(lines[0], "a *:* rwm");
        assert_eq!(lines[1], "c *:* m");
        assert!(lines.contains(&"c 1:3 rwm".to_string()));
        assert!(lines.contains(&"c 136:* rwm".to_string()));
        assert!(lines.contains(&"b *:* m".to_string()));
        // Neither /dev/fuse nor the /dev/full the spec defines itself is allowed.
        assert!(!lines
            .iter()
            .any(|l| l.contains("10:229") || l.contains("1:7")));
        assert_eq!(lines.len(), 1 + 10);
    }

    #[test]
    fn allow_all_stops_the_program() {
        let rules = parse_rules(
            &serde_json::from_str::<Vec<LinuxDeviceCgroup>>(
                r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        let p = device_program(&rules);
        // prologue (6) + deny block for 1:3 (jne type, jne major, jne minor, mov, exit) + allow-all (mov, exit)
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(run(&p, 2, 2, 1, 3), 0);
        assert_eq!(run(&p, 2, 2, 1, 5), 1);
        assert_eq!(run(&p, 1, 2, 8, 0), 1);
    }
}
