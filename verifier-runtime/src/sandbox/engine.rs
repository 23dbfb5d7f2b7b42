//! The wasmtime engine every runner shares, the epoch ticker that enforces
//! deadlines, and the check that names a WebAssembly feature the sandbox lacks.

use std::fmt;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wasmtime::wasmparser::{Encoding, Operator, Parser, Payload, TypeRef};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::Limits;

/// Interval between two epoch increments. A run overshoots its deadline by at
/// most one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory a 32-bit WebAssembly module can address.
const MAX_32BIT_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

/// A WebAssembly proposal that the sandbox's engine does not enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WasmFeature {
    /// The threads proposal: shared memories and atomic instructions.
    Threads,
    /// 64-bit linear memories.
    Memory64,
    /// The exception-handling proposal (tags, `try_table`).
    Exceptions,
    /// The legacy exception-handling instructions (`try`, `catch`, `rethrow`).
    LegacyExceptions,
    /// Garbage-collected types.
    Gc,
    /// A component rather than a core module.
    ComponentModel,
}

impl fmt::Display for WasmFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WasmFeature::Threads => "threads (shared memory and atomics)",
            WasmFeature::Memory64 => "memory64",
            WasmFeature::Exceptions => "exception handling",
            WasmFeature::LegacyExceptions => "legacy exceptions",
            WasmFeature::Gc => "garbage collection",
            WasmFeature::ComponentModel => "component model",
        })
    }
}

/// Engine settings derived from the limits and the number of workers.
#[derive(Debug)]
pub(crate) struct EngineChoice {
    pub(crate) engine: Engine,
    pub(crate) pooled: bool,
}

/// Builds the engine: Cranelift, epoch interruption, a bounded wasm stack, and
/// every proposal that no runner needs switched off. Uses the pooling allocator
/// sized to `instance_slots` and falls back to on-demand allocation when the
/// pool's address-space reservation fails.
pub(crate) fn build_engine(
    limits: &Limits,
    instance_slots: u32,
) -> Result<EngineChoice, wasmtime::Error> {
    let memory_bytes = limits.max_memory_bytes.min(MAX_32BIT_MEMORY);

    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_core_instances(instance_slots)
        .total_memories(instance_slots)
        .total_tables(instance_slots)
        .table_elements(limits.max_table_elements)
        .max_memory_size(usize::try_from(memory_bytes).unwrap_or(usize::MAX));

    match Engine::new(
        base_config(limits).allocation_strategy(InstanceAllocationStrategy::Pooling(pooling)),
    ) {
        Ok(engine) => Ok(EngineChoice {
            engine,
            pooled: true,
        }),
        Err(error) => {
            tracing::warn!(%error, "pooling allocator unavailable, using on-demand allocation");
            let engine = Engine::new(&base_config(limits))?;
            Ok(EngineChoice {
                engine,
                pooled: false,
            })
        }
    }
}

fn base_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack_bytes)
        .wasm_memory64(false)
        .wasm_gc(false)
        .wasm_stack_switching(false)
        .parallel_compilation(true);
    config
}

/// Size of a WebAssembly page; the custom-page-sizes proposal is off.
const WASM_PAGE_BYTES: u64 = 65_536;

/// What the section headers of a module declare, read without compiling it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ModuleShape {
    /// Declared features the sandbox does not enable, each once, in the order found.
    pub(crate) unsupported: Vec<WasmFeature>,
    /// The largest initial size of a declared or imported memory, in bytes.
    pub(crate) max_initial_memory_bytes: u64,
}

/// Reads a module's imports, memories and tags to name the features the
/// sandbox lacks before compiling. Function bodies are read only when the
/// module declares tags, to tell legacy exceptions (`try`, `catch`) from the
/// current proposal. Atomic instructions elsewhere are found by compilation and
/// named by [`feature_in_compile_error`]. A malformed module yields what was
/// read so far, and the compiler reports the error with its own message.
pub(crate) fn scan_module(module: &[u8]) -> ModuleShape {
    let mut shape = ModuleShape::default();
    let mut has_tags = false;
    let mut has_legacy_exceptions = false;
    let note_memory = |shape: &mut ModuleShape, memory: wasmtime::wasmparser::MemoryType| {
        if memory.shared {
            shape.note(WasmFeature::Threads);
        }
        if memory.memory64 {
            shape.note(WasmFeature::Memory64);
        }
        let bytes = memory.initial.saturating_mul(WASM_PAGE_BYTES);
        shape.max_initial_memory_bytes = shape.max_initial_memory_bytes.max(bytes);
    };
    for payload in Parser::new(0).parse_all(module) {
        let Ok(payload) = payload else { return shape };
        match payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                shape.note(WasmFeature::ComponentModel);
                return shape;
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let Ok(import) = import else { return shape };
                    match import.ty {
                        TypeRef::Memory(memory) => note_memory(&mut shape, memory),
                        TypeRef::Tag(_) => has_tags = true,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let Ok(memory) = memory else { return shape };
                    note_memory(&mut shape, memory);
                }
            }
            Payload::TagSection(_) => has_tags = true,
            // Toolchains list the features they compiled with; "+atomics" (or
            // "+shared-mem") names the threads proposal before a slow compile.
            // A module that leaves the section out is still caught by the compiler.
            Payload::CustomSection(section)
                if section.name() == "target_features" && declares_threads(section.data()) =>
            {
                shape.note(WasmFeature::Threads);
            }
            Payload::CodeSectionEntry(body) if has_tags && !has_legacy_exceptions => {
                has_legacy_exceptions = body_uses_legacy_exceptions(&body);
            }
            _ => {}
        }
    }
    if has_legacy_exceptions {
        shape.note(WasmFeature::LegacyExceptions);
    } else if has_tags {
        shape.note(WasmFeature::Exceptions);
    }
    shape
}

impl ModuleShape {
    fn note(&mut self, feature: WasmFeature) {
        if !self.unsupported.contains(&feature) {
            self.unsupported.push(feature);
        }
    }
}

/// Reads a `target_features` section: a count, then entries of a prefix byte
/// (`+` used, `-` not used, `=` required) and a length-prefixed name.
fn declares_threads(data: &[u8]) -> bool {
    let mut reader = wasmtime::wasmparser::BinaryReader::new(data, 0);
    let Ok(count) = reader.read_var_u32() else {
        return false;
    };
    for _ in 0..count {
        let (Ok(prefix), Ok(name)) = (reader.read_u8(), reader.read_string()) else {
            return false;
        };
        if prefix != b'-' && matches!(name, "atomics" | "shared-mem") {
            return true;
        }
    }
    false
}

fn body_uses_legacy_exceptions(body: &wasmtime::wasmparser::FunctionBody<'_>) -> bool {
    let Ok(mut operators) = body.get_operators_reader() else {
        return false;
    };
    while !operators.eof() {
        match operators.read() {
            Ok(
                Operator::Try { .. }
                | Operator::Catch { .. }
                | Operator::CatchAll
                | Operator::Rethrow { .. }
                | Operator::Delegate { .. },
            ) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Maps a validation message from wasmtime to the feature it is about. The
/// phrases are wasmparser 0.254's "... support is not enabled" messages.
pub(crate) fn feature_in_compile_error(message: &str) -> Option<WasmFeature> {
    let message = message.to_ascii_lowercase();
    if message.contains("legacy exceptions") {
        Some(WasmFeature::LegacyExceptions)
    } else if message.contains("exceptions") {
        Some(WasmFeature::Exceptions)
    } else if message.contains("threads")
        || message.contains("shared memor")
        || message.contains("atomic")
    {
        Some(WasmFeature::Threads)
    } else if message.contains("memory64") || message.contains("64-bit memor") {
        Some(WasmFeature::Memory64)
    } else if message.contains("gc support") || message.contains("reference types support") {
        Some(WasmFeature::Gc)
    } else if message.contains("component") {
        Some(WasmFeature::ComponentModel)
    } else {
        None
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("midcore-epoch".into())
            .spawn(move || {
                // The sender is dropped when the ticker is, which ends the loop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Number of epoch ticks that covers `timeout`, at least one.
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}
