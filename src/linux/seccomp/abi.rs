//! The syscall ABIs an x86_64 kernel runs, as seccomp tells them apart: by
//! `seccomp_data.arch` (the AUDIT_ARCH token) and, for x32, by the 0x4000_0000 bit of the
//! syscall number. Each has its own syscall number table.

use super::syscalls;

/// AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE); x32 shares it.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_I386 (EM_386 | __AUDIT_ARCH_LE).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// __X32_SYSCALL_BIT: set in every x32 syscall number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    /// The syscall number of `name` in this ABI, if the ABI has it.
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        let table = match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::I386 => syscalls::I386,
            Abi::X32 => syscalls::X32,
        };
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }

    /// Whether syscall arguments are 64 bits wide. i386 arguments are 32-bit registers
    /// (the kernel zero-extends them), so, as libseccomp does for 32-bit ABIs, only the low
    /// word of an argument is compared. x32 passes 64-bit registers: compared in full.
    pub fn wide_args(self) -> bool {
        !matches!(self, Abi::I386)
    }

    /// The syscall numbers this ABI owns: (first, last), inclusive.
    pub fn nr_domain(self) -> (u32, u32) {
        match self {
            Abi::X86_64 => (0, X32_SYSCALL_BIT - 1),
            Abi::X32 => (X32_SYSCALL_BIT, u32::MAX),
            Abi::I386 => (0, u32::MAX),
        }
    }
}
