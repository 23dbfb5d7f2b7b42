//! Per-run limits and the errors that name them.

use std::fmt;
use std::time::Duration;

/// One mebibyte, the unit of the command line's memory option.
pub const MIB: u64 = 1024 * 1024;

/// Limits applied to every run of every runner in a pool.
///
/// The defaults match the shell's worker limits: 1 GiB of linear memory and a
/// 30 s wall-clock deadline. Every field can be changed before the pool is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of one linear memory, in bytes.
    pub max_memory_bytes: u64,
    /// Wall-clock deadline for one run, instantiation included.
    pub timeout: Duration,
    /// Maximum WebAssembly stack, in bytes. Worker threads get a native stack of
    /// this size plus [`Limits::HOST_STACK_HEADROOM`].
    pub max_wasm_stack_bytes: usize,
    /// Maximum size of a runner's `.wasm` file, in bytes, checked before it is read.
    pub max_module_bytes: u64,
    /// Maximum bytes a run may write to stdout; one byte more ends the run.
    pub max_stdout_bytes: usize,
    /// Maximum bytes of stderr kept for the log; the rest is dropped and counted.
    pub max_stderr_bytes: usize,
    /// Maximum size of the request handed to a run on stdin.
    pub max_stdin_bytes: usize,
    /// Maximum number of elements in one table.
    pub max_table_elements: usize,
}

impl Limits {
    /// Native stack reserved for host code on top of the WebAssembly stack.
    pub const HOST_STACK_HEADROOM: usize = 4 * 1024 * 1024;

    /// Native stack size of a thread that runs guests under these limits.
    pub fn native_stack_bytes(&self) -> usize {
        self.max_wasm_stack_bytes
            .saturating_add(Self::HOST_STACK_HEADROOM)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 1024 * MIB,
            timeout: Duration::from_secs(30),
            max_wasm_stack_bytes: 1024 * 1024,
            max_module_bytes: 64 * MIB,
            max_stdout_bytes: 16 * 1024 * 1024,
            max_stderr_bytes: 64 * 1024,
            max_stdin_bytes: 16 * 1024 * 1024,
            max_table_elements: 1_000_000,
        }
    }
}

/// A limit that ended a run or refused a module, with the configured value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Linear memory would have grown past `max_bytes`.
    Memory { max_bytes: u64 },
    /// A table would have grown past `max_elements`.
    TableElements { max_elements: usize },
    /// The run was still executing after `timeout`.
    Timeout { timeout: Duration },
    /// The WebAssembly stack was exhausted.
    WasmStack { max_bytes: usize },
    /// The runner wrote more than `max_bytes` to stdout.
    Stdout { max_bytes: usize },
    /// The request was larger than `max_bytes`.
    Stdin { max_bytes: usize },
    /// The module file was larger than `max_bytes`.
    ModuleSize { max_bytes: u64 },
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Memory { max_bytes } => write!(f, "memory limit of {max_bytes} bytes"),
            Limit::TableElements { max_elements } => {
                write!(f, "table limit of {max_elements} elements")
            }
            Limit::Timeout { timeout } => write!(f, "time limit of {} ms", timeout.as_millis()),
            Limit::WasmStack { max_bytes } => write!(f, "wasm stack limit of {max_bytes} bytes"),
            Limit::Stdout { max_bytes } => write!(f, "stdout limit of {max_bytes} bytes"),
            Limit::Stdin { max_bytes } => write!(f, "request size limit of {max_bytes} bytes"),
            Limit::ModuleSize { max_bytes } => write!(f, "module size limit of {max_bytes} bytes"),
        }
    }
}
