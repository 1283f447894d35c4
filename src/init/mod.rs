//! The container init: bootstrap protocol and the init sequence.

/// True when this process was spawned by the runtime as a container init.
pub fn is_init_process() -> bool {
    false
}

/// Run the init sequence; returns the exit code on failure (success never returns).
pub fn main() -> u8 {
    1
}
