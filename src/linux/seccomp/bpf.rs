//! Classic BPF as seccomp uses it: the instruction type, the few opcodes the compiler emits,
//! the `seccomp_data` offsets, and position-independent fragment builders.
//!
//! Every fragment the compiler builds is *closed*: all of its paths end in a `ret`, except
//! where a builder says otherwise. Jumps are relative, so a closed fragment can be pasted
//! anywhere; a conditional jump reaches at most 255 instructions, and [`branch`] falls back to
//! an unconditional `ja` (32-bit offset) when a target is farther.

/// One classic BPF instruction (the layout of `struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `BPF_LD | BPF_W | BPF_ABS`: A = 32-bit word of seccomp_data at offset k.
pub const LD_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: A &= k.
pub const AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`: pc += k.
pub const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JEQ: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K` (unsigned).
pub const JGT: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K` (unsigned).
pub const JGE: u16 = 0x35;
/// `BPF_RET | BPF_K`.
pub const RET: u16 = 0x06;

/// Offsets into `struct seccomp_data` (little-endian x86).
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Low 32 bits of syscall argument `i`.
pub const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
/// High 32 bits of syscall argument `i`.
pub const fn off_arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

pub const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

pub const fn load(off: u32) -> Insn {
    stmt(LD_ABS, off)
}

pub const fn ret(action: u32) -> Insn {
    stmt(RET, action)
}

/// `if (A <op> k) then_code else else_code`; `then_code` must be closed (it never falls
/// through into `else_code`). The result falls through wherever `else_code` does.
pub fn branch(op: u16, k: u32, then_code: Vec<Insn>, else_code: Vec<Insn>) -> Vec<Insn> {
    let mut out = Vec::with_capacity(then_code.len() + else_code.len() + 2);
    match u8::try_from(then_code.len()) {
        Ok(skip) => out.push(jump(op, k, 0, skip)),
        Err(_) => {
            // True skips the `ja`; false takes it, over the whole then-part.
            out.push(jump(op, k, 1, 0));
            out.push(stmt(JA, then_code.len() as u32));
        }
    }
    out.extend(then_code);
    out.extend(else_code);
    out
}

/// A tiny interpreter of the subset above, for tests: runs `prog` on one `seccomp_data`.
#[cfg(test)]
pub mod interp {
    use super::*;

    /// The input a filter sees.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Data {
        pub nr: u32,
        pub arch: u32,
        pub ip: u64,
        pub args: [u64; 6],
    }

    impl Data {
        fn word(&self, off: u32) -> u32 {
            match off {
                0 => self.nr,
                4 => self.arch,
                8 => self.ip as u32,
                12 => (self.ip >> 32) as u32,
                16..=63 if off % 4 == 0 => {
                    let a = self.args[((off - 16) / 8) as usize];
                    if off % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                _ => panic!("load from bad seccomp_data offset {off}"),
            }
        }
    }

    /// Runs the program; panics on anything the kernel's verifier would reject at run time
    /// (falling off the end, jumping out of the program, unknown opcodes).
    pub fn run(prog: &[Insn], d: &Data) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog
                .get(pc)
                .unwrap_or_else(|| panic!("fell off the program at {pc}"));
            pc += 1;
            match i.code {
                LD_ABS => a = d.word(i.k),
                AND_K => a &= i.k,
                RET => return i.k,
                JA => pc += i.k as usize,
                JEQ | JGT | JGE => {
                    let t = match i.code {
                        JEQ => a == i.k,
                        JGT => a > i.k,
                        _ => a >= i.k,
                    };
                    pc += if t { i.jt } else { i.jf } as usize;
                }
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }
}
