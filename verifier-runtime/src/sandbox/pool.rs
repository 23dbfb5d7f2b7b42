//! The runner pool: worker threads with large native stacks, a bounded queue,
//! and a fresh store per task instantiated from a pre-instantiated template.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use wasmtime::{Engine, InstancePre, Linker, Module, ResourceLimiter, Store, Trap};

use super::cache::CompiledCache;
use super::engine::{
    EpochTicker, build_engine, deadline_ticks, feature_in_compile_error, scan_module,
};
use super::limits::{Limit, Limits};
use super::wasi::{self, LimitHit, ProcExit, WasiState};
use super::{LoadError, PoolError, RunError};
use crate::crypto::{KeyId, Sha256Digest};

/// Settings of a [`RunnerPool`].
#[derive(Debug, Clone, Default)]
pub struct PoolConfig {
    /// Limits applied to every run.
    pub limits: Limits,
    /// Number of worker threads; 0 means one per available core.
    pub workers: usize,
    /// Number of tasks that may wait in the queue; 0 means 16 per worker.
    /// [`RunnerPool::submit`] fails with [`RunError::QueueFull`] beyond it.
    pub queue_capacity: usize,
    /// Compiled-code cache; `None` (the default) compiles every runner on load.
    pub cache: Option<super::cache::CacheConfig>,
}

/// A task for a runner: the request for its stdin and the arguments that follow
/// `argv[0]`.
#[derive(Debug, Clone, Default)]
pub struct Task {
    /// Bytes the runner reads from stdin.
    pub request: Vec<u8>,
    /// Arguments after `argv[0]`, which is always the runner's name.
    pub args: Vec<String>,
}

/// What a finished run produced. A non-zero `exit_code` is the runner's own
/// verdict, not a sandbox error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// The status passed to `proc_exit`, or 0 when `_start` returned.
    pub exit_code: i32,
    /// Everything the runner wrote to stdout.
    pub stdout: Vec<u8>,
    /// The first [`Limits::max_stderr_bytes`] bytes the runner wrote to stderr.
    pub stderr: Vec<u8>,
    /// Bytes of stderr dropped past the limit.
    pub stderr_dropped: u64,
}

/// Store data of one run.
#[derive(Debug)]
pub(crate) struct TaskState {
    pub(crate) wasi: WasiState,
    limiter: RunLimiter,
}

/// Ends a run when linear memory or a table would grow past its limit.
#[derive(Debug)]
struct RunLimiter {
    max_memory_bytes: u64,
    max_table_elements: usize,
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.max_memory_bytes {
            return Err(wasmtime::Error::new(LimitHit(Limit::Memory {
                max_bytes: self.max_memory_bytes,
            })));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            return Err(wasmtime::Error::new(LimitHit(Limit::TableElements {
                max_elements: self.max_table_elements,
            })));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }
}

/// A verified, compiled runner ready to be instantiated. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<RunnerInner>,
}

struct RunnerInner {
    name: String,
    module_sha256: Sha256Digest,
    key_id: Option<KeyId>,
    from_cache: bool,
    template: InstancePre<TaskState>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.inner.name)
            .field("module_sha256", &hex::encode(self.inner.module_sha256))
            .field("key_id", &self.inner.key_id)
            .field("from_cache", &self.inner.from_cache)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// The runner's name, as passed to [`RunnerPool::load`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SHA-256 of the module bytes that were verified and compiled.
    pub fn module_sha256(&self) -> &Sha256Digest {
        &self.inner.module_sha256
    }

    /// Key id of the sidecar signature that was verified.
    pub fn key_id(&self) -> Option<&KeyId> {
        self.inner.key_id.as_ref()
    }

    /// Whether the compiled code came from the authenticated cache.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }
}

type Reply = SyncSender<Result<RunOutput, RunError>>;

struct Job {
    runner: Runner,
    task: Task,
    reply: Reply,
}

/// State shared by the pool's handle and its workers.
#[derive(Debug)]
pub(crate) struct PoolShared {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    pub(crate) pooled: bool,
    pub(crate) cache: Option<CompiledCache>,
}

/// A run that was queued; [`PendingRun::wait`] blocks until it finishes.
#[derive(Debug)]
pub struct PendingRun {
    runner: String,
    reply: Receiver<Result<RunOutput, RunError>>,
}

impl PendingRun {
    /// Blocks until the run finishes and returns its output or error.
    pub fn wait(self) -> Result<RunOutput, RunError> {
        self.reply.recv().unwrap_or(Err(RunError::WorkerLost {
            runner: self.runner,
        }))
    }
}

/// Worker threads that run verified runners under [`Limits`].
#[derive(Debug)]
pub struct RunnerPool {
    shared: Arc<PoolShared>,
    queue: Option<SyncSender<Job>>,
    queue_capacity: usize,
    workers: Vec<thread::JoinHandle<()>>,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("runner", &self.runner.name())
            .finish_non_exhaustive()
    }
}

impl RunnerPool {
    /// Builds the engine, starts the epoch ticker and the worker threads.
    pub fn new(config: PoolConfig) -> Result<Self, PoolError> {
        let workers = match config.workers {
            0 => thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let queue_capacity = match config.queue_capacity {
            0 => workers.saturating_mul(16),
            n => n,
        };
        // One instance slot per worker, plus room for instantiation checks made
        // from other threads.
        let slots = u32::try_from(workers.saturating_mul(2).saturating_add(2)).unwrap_or(u32::MAX);
        let choice = build_engine(&config.limits, slots).map_err(|source| PoolError::Engine {
            detail: format!("{source:#}"),
        })?;
        let cache = match config.cache {
            Some(cache) => Some(CompiledCache::open(cache, &choice.engine)?),
            None => None,
        };
        let shared = Arc::new(PoolShared {
            engine: choice.engine,
            limits: config.limits,
            pooled: choice.pooled,
            cache,
        });
        let ticker = EpochTicker::start(shared.engine.clone())
            .map_err(|source| PoolError::Thread { source })?;

        let (queue, jobs) = mpsc::sync_channel::<Job>(queue_capacity);
        let jobs = Arc::new(Mutex::new(jobs));
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let shared = Arc::clone(&shared);
            let jobs = Arc::clone(&jobs);
            let handle = thread::Builder::new()
                .name(format!("midcore-runner-{index}"))
                .stack_size(shared.limits.native_stack_bytes())
                .spawn(move || worker_loop(&shared, &jobs))
                .map_err(|source| PoolError::Thread { source })?;
            handles.push(handle);
        }
        tracing::debug!(
            workers,
            queue_capacity,
            pooled = shared.pooled,
            "runner pool started"
        );
        Ok(Self {
            shared,
            queue: Some(queue),
            queue_capacity,
            workers: handles,
            _ticker: ticker,
        })
    }

    /// The limits every run gets.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Whether instances come from the pooling allocator (otherwise on demand).
    pub fn is_pooled(&self) -> bool {
        self.shared.pooled
    }

    /// Queues `task` for `runner` without waiting for a free worker. Fails with
    /// [`RunError::QueueFull`] when the queue is already full, so
    /// the caller can slow down or shed load.
    pub fn submit(&self, runner: &Runner, task: Task) -> Result<PendingRun, RunError> {
        let Some(queue) = &self.queue else {
            return Err(RunError::PoolClosed {
                runner: runner.name().to_owned(),
            });
        };
        let (reply, receiver) = mpsc::sync_channel(1);
        let job = Job {
            runner: runner.clone(),
            task,
            reply,
        };
        match queue.try_send(job) {
            Ok(()) => Ok(PendingRun {
                runner: runner.name().to_owned(),
                reply: receiver,
            }),
            Err(TrySendError::Full(_)) => Err(RunError::QueueFull {
                runner: runner.name().to_owned(),
                capacity: self.queue_capacity,
            }),
            Err(TrySendError::Disconnected(_)) => Err(RunError::PoolClosed {
                runner: runner.name().to_owned(),
            }),
        }
    }

    /// Queues `task`, waiting for room in the queue, then waits for the result.
    pub fn run(&self, runner: &Runner, task: Task) -> Result<RunOutput, RunError> {
        let Some(queue) = &self.queue else {
            return Err(RunError::PoolClosed {
                runner: runner.name().to_owned(),
            });
        };
        let (reply, receiver) = mpsc::sync_channel(1);
        let job = Job {
            runner: runner.clone(),
            task,
            reply,
        };
        if queue.send(job).is_err() {
            return Err(RunError::PoolClosed {
                runner: runner.name().to_owned(),
            });
        }
        PendingRun {
            runner: runner.name().to_owned(),
            reply: receiver,
        }
        .wait()
    }

    /// Instantiates `runner` in a fresh store under the pool's limits, runs its
    /// `_initialize` export when it has one, and drops the instance. Proves a
    /// library-style module (one without `_start`) can be instantiated.
    pub fn check_instantiates(&self, runner: &Runner) -> Result<(), RunError> {
        let mut store = new_store(&self.shared, runner, Task::default());
        let instance = runner
            .inner
            .template
            .instantiate(&mut store)
            .map_err(|error| classify_error(runner.name(), &self.shared.limits, error))?;
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            initialize
                .call(&mut store, ())
                .map_err(|error| classify_error(runner.name(), &self.shared.limits, error))?;
        }
        Ok(())
    }

    /// Compiles verified module bytes (or loads them from the cache) and builds
    /// the instantiation template with the WASI host linked in.
    pub(crate) fn prepare(
        &self,
        name: &str,
        module_bytes: &[u8],
        module_sha256: Sha256Digest,
        key_id: Option<KeyId>,
    ) -> Result<Runner, LoadError> {
        let limits = &self.shared.limits;

        // 1. Name every feature the sandbox lacks before spending time compiling.
        let shape = scan_module(module_bytes);
        if !shape.unsupported.is_empty() {
            return Err(LoadError::UnsupportedFeature {
                runner: name.to_owned(),
                features: shape.unsupported,
            });
        }
        if shape.max_initial_memory_bytes > limits.max_memory_bytes {
            return Err(LoadError::Limit {
                runner: name.to_owned(),
                limit: Limit::Memory {
                    max_bytes: limits.max_memory_bytes,
                },
            });
        }

        // 2. Compile exactly the verified bytes, or load authenticated code.
        let cached = match &self.shared.cache {
            Some(cache) => cache.load(&self.shared.engine, name, &module_sha256),
            None => None,
        };
        let from_cache = cached.is_some();
        let module = match cached {
            Some(module) => module,
            None => {
                let module = compile(&self.shared.engine, name, module_bytes)?;
                if let Some(cache) = &self.shared.cache {
                    cache.store(&self.shared.engine, name, &module_sha256, &module);
                }
                module
            }
        };

        // 3. Link the WASI host; an import it does not provide fails here.
        let mut linker = Linker::new(&self.shared.engine);
        wasi::add_to_linker(&mut linker, &module).map_err(|error| LoadError::Link {
            runner: name.to_owned(),
            detail: format!("{error:#}"),
        })?;
        let template = linker
            .instantiate_pre(&module)
            .map_err(|error| LoadError::Link {
                runner: name.to_owned(),
                detail: format!("{error:#}"),
            })?;
        tracing::debug!(runner = name, from_cache, "runner ready");
        Ok(Runner {
            inner: Arc::new(RunnerInner {
                name: name.to_owned(),
                module_sha256,
                key_id,
                from_cache,
                template,
            }),
        })
    }

    pub(crate) fn shared(&self) -> &PoolShared {
        &self.shared
    }
}

impl Drop for RunnerPool {
    fn drop(&mut self) {
        // Closing the queue ends every worker loop once the queued jobs are done.
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Compiles `bytes` with the pool's engine, naming an unsupported feature when
/// validation reports one.
pub(crate) fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Module, LoadError> {
    Module::from_binary(engine, bytes).map_err(|error| {
        let detail = format!("{error:#}");
        match feature_in_compile_error(&detail) {
            Some(feature) => LoadError::UnsupportedFeature {
                runner: name.to_owned(),
                features: vec![feature],
            },
            None => LoadError::Compile {
                runner: name.to_owned(),
                detail,
            },
        }
    })
}

fn worker_loop(shared: &PoolShared, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(jobs) = jobs.lock() else { return };
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let runner = job.runner.name().to_owned();
        // A panic in host code must not take the worker down with it.
        let result = catch_unwind(AssertUnwindSafe(|| execute(shared, &job.runner, job.task)))
            .unwrap_or_else(|_| {
                tracing::warn!(runner, "runner task panicked in host code");
                Err(RunError::WorkerLost {
                    runner: runner.clone(),
                })
            });
        if let Err(error) = &result {
            tracing::debug!(runner, %error, "runner task failed");
        }
        // The caller may have stopped waiting; the result is then dropped.
        let _ = job.reply.send(result);
    }
}

/// Creates a store for one run: the task's WASI state, the limiter and the
/// epoch deadline.
fn new_store(shared: &PoolShared, runner: &Runner, task: Task) -> Store<TaskState> {
    let limits = &shared.limits;
    let state = TaskState {
        wasi: WasiState::new(
            runner.name(),
            &task.args,
            task.request,
            limits.max_stdout_bytes,
            limits.max_stderr_bytes,
        ),
        limiter: RunLimiter {
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
        },
    };
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(deadline_ticks(limits.timeout));
    store.epoch_deadline_trap();
    store
}

/// Runs one task in a fresh store: instantiate from the template, call `_start`,
/// collect the output.
pub(crate) fn execute(
    shared: &PoolShared,
    runner: &Runner,
    task: Task,
) -> Result<RunOutput, RunError> {
    let limits = &shared.limits;
    if task.request.len() > limits.max_stdin_bytes {
        return Err(RunError::Limit {
            runner: runner.name().to_owned(),
            limit: Limit::Stdin {
                max_bytes: limits.max_stdin_bytes,
            },
        });
    }
    let mut store = new_store(shared, runner, task);

    let instance = runner
        .inner
        .template
        .instantiate(&mut store)
        .map_err(|error| classify_error(runner.name(), limits, error))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|_| RunError::NotACommand {
            runner: runner.name().to_owned(),
        })?;

    let exit_code = match start.call(&mut store, ()) {
        Ok(()) => 0,
        Err(error) => match error.downcast_ref::<ProcExit>() {
            Some(ProcExit(code)) => *code,
            None => return Err(classify_error(runner.name(), limits, error)),
        },
    };

    let state = store.into_data();
    let wasi = state.wasi;
    if !wasi.stderr.is_empty() {
        tracing::info!(
            runner = runner.name(),
            stderr = %String::from_utf8_lossy(&wasi.stderr),
            dropped = wasi.stderr_dropped,
            "runner stderr"
        );
    }
    Ok(RunOutput {
        exit_code,
        stdout: wasi.stdout,
        stderr: wasi.stderr,
        stderr_dropped: wasi.stderr_dropped,
    })
}

/// Turns an error from instantiation or a call into a [`RunError`] that names
/// the runner and, for a limit, the limit.
fn classify_error(runner: &str, limits: &Limits, error: wasmtime::Error) -> RunError {
    let runner = runner.to_owned();
    if let Some(LimitHit(limit)) = error.downcast_ref::<LimitHit>() {
        return RunError::Limit {
            runner,
            limit: limit.clone(),
        };
    }
    if let Some(ProcExit(code)) = error.downcast_ref::<ProcExit>() {
        return RunError::Trap {
            runner,
            detail: format!("proc_exit({code}) during instantiation"),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RunError::Limit {
            runner,
            limit: Limit::Timeout {
                timeout: limits.timeout,
            },
        },
        Some(Trap::StackOverflow) => RunError::Limit {
            runner,
            limit: Limit::WasmStack {
                max_bytes: limits.max_wasm_stack_bytes,
            },
        },
        Some(trap) => RunError::Trap {
            runner,
            detail: trap.to_string(),
        },
        None => RunError::Trap {
            runner,
            detail: format!("{error:#}"),
        },
    }
}
