//! The WebAssembly runner sandbox (cargo feature `sandbox`).
//!
//! A runner is a WASI preview 1 command stored as
//! `BUNDLE/local-compute/runners/NAME.wasm` with its sidecar `NAME.wasm.sig`.
//! [`RunnerPool::load`] resolves the name inside the runners folder, reads the
//! bytes once, checks them against the verified manifest and the sidecar, and
//! compiles exactly those bytes. Each run gets a fresh store with the request
//! on stdin, bounded stdout and stderr, the caller's arguments, and nothing
//! else: no environment, no preopened directories, no sockets, no blocking
//! calls. Memory, time, wasm stack, module size and output are limited per
//! run ([`Limits`]); hitting a limit ends that run with [`RunError::Limit`]
//! and the worker takes the next task.
//!
//! Engine: wasmtime 48 with Cranelift, the pooling allocator and epoch
//! interruption. Threads, memory64, exceptions, GC and the component model are
//! off; modules that need them are rejected with [`LoadError::UnsupportedFeature`].

mod cache;
#[cfg(feature = "cli")]
pub mod cli;
mod engine;
mod limits;
mod loader;
mod pool;
mod wasi;

use std::path::PathBuf;

pub use cache::{CACHE_KEY_LEN, CacheConfig, CacheKey, WASMTIME_VERSION};
pub use engine::{EPOCH_TICK, WasmFeature};
pub use limits::{Limit, Limits, MIB};
pub use loader::{RUNNERS_DIR, runner_path};
pub use pool::{PendingRun, PoolConfig, RunOutput, Runner, RunnerPool, Task};

use crate::crypto::KeyId;

/// Reason a runner was not loaded. Every variant names the runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The name is not a plain runner name.
    #[error("invalid runner name {runner:?}: {reason}; use letters, digits, '-', '_' and '.' only")]
    InvalidName {
        runner: String,
        reason: &'static str,
    },
    /// The runners folder is missing, not a folder, or resolves outside the bundle.
    #[error("runners folder {path} for runner `{runner}` is unusable: {reason}")]
    RunnersFolder {
        runner: String,
        path: PathBuf,
        reason: String,
    },
    /// No module file for the name.
    #[error("runner `{runner}` not found: {path} does not exist")]
    NotFound { runner: String, path: PathBuf },
    /// The module or sidecar path is a symbolic link.
    #[error(
        "runner `{runner}` rejected: {path} is a symbolic link; runners must be regular files inside the runners folder"
    )]
    Symlink { runner: String, path: PathBuf },
    /// The path is not a regular file, or it changed while it was opened.
    #[error("runner `{runner}` rejected: {path} {reason}")]
    NotRegularFile {
        runner: String,
        path: PathBuf,
        reason: &'static str,
    },
    /// The module or sidecar could not be read.
    #[error("cannot read {path} for runner `{runner}`: {source}")]
    Io {
        runner: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A load-time limit (module size, initial memory).
    #[error("runner `{runner}` rejected: it exceeds the {limit}")]
    Limit { runner: String, limit: Limit },
    /// The manifest does not list the module or its sidecar.
    #[error(
        "runner `{runner}` rejected: {path} is not listed in the verified manifest; sign the bundle again"
    )]
    NotInManifest { runner: String, path: String },
    /// The bytes read differ from the manifest's SHA-256 or size.
    #[error(
        "runner `{runner}` rejected: {path} does not match the verified manifest (the file was modified after signing)"
    )]
    ManifestMismatch { runner: String, path: String },
    /// The module has no sidecar signature file.
    #[error(
        "runner `{runner}` rejected: it is unsigned, {path} does not exist; sign the bundle with midcore-sign"
    )]
    Unsigned { runner: String, path: PathBuf },
    /// The sidecar signature did not verify.
    #[error("runner `{runner}` rejected: sidecar signature invalid: {source}")]
    Sidecar {
        runner: String,
        source: crate::sidecar::SidecarError,
    },
    /// The module needs WebAssembly features the sandbox does not enable.
    #[error("runner `{runner}` rejected: it needs {}, which the sandbox does not enable", feature_list(.features))]
    UnsupportedFeature {
        runner: String,
        features: Vec<WasmFeature>,
    },
    /// Compilation failed for another reason (malformed or invalid module).
    #[error("runner `{runner}` rejected: invalid WebAssembly module: {detail}")]
    Compile { runner: String, detail: String },
    /// The module imports something the sandbox does not provide.
    #[error(
        "runner `{runner}` rejected: {detail}; runners may import only wasi_snapshot_preview1 functions"
    )]
    Link { runner: String, detail: String },
    /// The compiled-code cache folder is inside the bundle.
    #[error("compiled-code cache folder {path} is inside the bundle; move it outside the bundle")]
    CacheInsideBundle { path: PathBuf },
}

fn feature_list(features: &[WasmFeature]) -> String {
    features
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl LoadError {
    /// Whether the error is a refusal of the module itself (as opposed to a
    /// missing file or an I/O failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            LoadError::Io { .. } | LoadError::CacheInsideBundle { .. }
        )
    }
}

/// Reason a run did not produce output. Every variant names the runner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A per-run limit was hit; the run was stopped.
    #[error("runner `{runner}` stopped: it hit the {limit}")]
    Limit { runner: String, limit: Limit },
    /// The runner trapped (unreachable, out-of-bounds access, a failed start function).
    #[error("runner `{runner}` trapped: {detail}")]
    Trap { runner: String, detail: String },
    /// The module has no `_start` export, so it is not a WASI command.
    #[error("runner `{runner}` is not a WASI command: it exports no `_start` function")]
    NotACommand { runner: String },
    /// The queue is full; retry later.
    #[error("runner `{runner}` not queued: the queue is full ({capacity} tasks); retry later")]
    QueueFull { runner: String, capacity: usize },
    /// The pool is shutting down.
    #[error("runner `{runner}` not run: the pool is shut down")]
    PoolClosed { runner: String },
    /// The worker failed in host code before replying.
    #[error("runner `{runner}` lost: its worker failed in host code")]
    WorkerLost { runner: String },
}

/// Reason a pool could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The wasmtime engine rejected its configuration.
    #[error("cannot configure the WebAssembly engine: {detail}")]
    Engine { detail: String },
    /// A worker or ticker thread could not be started.
    #[error("cannot start a runner thread: {source}")]
    Thread { source: std::io::Error },
    /// The cache folder could not be created or resolved.
    #[error("compiled-code cache folder {path} is unusable: {detail}")]
    CacheDir { path: PathBuf, detail: String },
    /// The cache key could not be read or created.
    #[error("compiled-code cache key {path} is unusable: {detail}")]
    CacheKey { path: PathBuf, detail: String },
}

/// A runner's module bytes after the manifest and sidecar checks.
#[derive(Debug)]
pub(crate) struct VerifiedModule {
    pub(crate) bytes: Vec<u8>,
    pub(crate) sha256: crate::crypto::Sha256Digest,
    pub(crate) key_id: KeyId,
}

#[cfg(test)]
mod tests;
