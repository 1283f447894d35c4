//! Seccomp: the OCI `linux.seccomp` section compiled to classic BPF (no libseccomp) and
//! installed, plus handing an SCMP_ACT_NOTIFY listener to its agent.
//!
//! Use: [`compile`] once (it is pure and fast), then in the container's init, last before
//! execve and after no_new_privs, [`install`]; when it returns a listener fd, pass it to the
//! agent with [`send_to_listener`] (or to a process that will). A program using
//! SCMP_ACT_NOTIFY blocks every matching syscall of the caller until the agent answers, so
//! nothing between `install` and execve may make such a syscall.

mod abi;
mod bpf;
mod compile;
mod install;
mod notify;
mod syscalls;

pub use bpf::Insn;
pub use compile::compile;
pub use install::install;
pub use notify::{process_state_json, send_to_listener, ContainerProcessState};

/// A compiled filter, ready for [`install`]. Compile once and reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_* bits from the spec's `flags`.
    flags: u32,
    /// Whether some rule returns SCMP_ACT_NOTIFY (install then asks for a listener).
    notify: bool,
}

impl Program {
    /// The BPF instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// The SECCOMP_FILTER_FLAG_* bits asked for by the spec.
    pub fn filter_flags(&self) -> u32 {
        self.flags
    }

    /// Whether the program uses SCMP_ACT_NOTIFY, so [`install`] returns a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }
}

#[cfg(test)]
mod tests;
