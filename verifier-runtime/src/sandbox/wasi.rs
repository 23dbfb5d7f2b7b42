//! A minimal `wasi_snapshot_preview1` host: the request on stdin, bounded
//! stdout and stderr buffers, the caller's arguments, and nothing else.
//!
//! Granted: `args_*` (the runner's name, then the caller's arguments),
//! `environ_*` (always empty), `fd_read` on fd 0, `fd_write` on fds 1 and 2,
//! `fd_fdstat_get`, `fd_filestat_get`, `fd_close`, `fd_seek` and `fd_tell` on
//! fds 0 to 2 (seeking fails with `ESPIPE`), `clock_*` (a virtual clock that
//! advances 1 µs per read, so runs are deterministic and time cannot be used as
//! a side channel), `random_get` (a deterministic SHA-256 stream, not secret),
//! `sched_yield` and `proc_exit`.
//!
//! Denied: `fd_prestat_get` reports no preopened directories (`EBADF`),
//! `path_open` fails with `EBADF` on any descriptor other than 0 to 2 and with
//! `ENOTDIR` on those, and every other preview 1 function the module imports
//! (sockets, `poll_oneoff`, the remaining `path_*` and `fd_*` calls, `proc_raise`)
//! returns `ENOSYS`. No call blocks, so the epoch deadline always fires.

use wasmtime::{Caller, Extern, ExternType, Linker, Memory, Module, Val, ValType};

use super::limits::Limit;
use super::pool::TaskState;
use crate::crypto::Sha256;

/// The import module name of WASI preview 1.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

// Errno values from the preview 1 witx definitions.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOSYS: i32 = 52;
const ERRNO_NOTDIR: i32 = 54;
const ERRNO_NOTSUP: i32 = 58;
const ERRNO_SPIPE: i32 = 70;

const FILETYPE_UNKNOWN: u8 = 0;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

/// Nanoseconds the virtual clock advances on every read.
const CLOCK_STEP_NANOS: u64 = 1_000;

/// The exit status a guest passed to `proc_exit`; carried as the call's error.
#[derive(Debug, thiserror::Error)]
#[error("runner called proc_exit({0})")]
pub(crate) struct ProcExit(pub(crate) i32);

/// A limit hit inside a host call; carried as the call's error.
#[derive(Debug, thiserror::Error)]
#[error("runner hit the {0}")]
pub(crate) struct LimitHit(pub(crate) Limit);

/// Per-run WASI state: the request, the output buffers and the arguments.
#[derive(Debug)]
pub(crate) struct WasiState {
    /// Null-terminated arguments, `argv[0]` first.
    args: Vec<Vec<u8>>,
    stdin: Vec<u8>,
    stdin_offset: usize,
    pub(crate) stdout: Vec<u8>,
    max_stdout: usize,
    pub(crate) stderr: Vec<u8>,
    max_stderr: usize,
    /// Bytes of stderr dropped once the buffer was full.
    pub(crate) stderr_dropped: u64,
    closed: [bool; 3],
    clock_nanos: u64,
    random_counter: u64,
}

impl WasiState {
    pub(crate) fn new(
        runner: &str,
        args: &[String],
        stdin: Vec<u8>,
        max_stdout: usize,
        max_stderr: usize,
    ) -> Self {
        let mut argv = Vec::with_capacity(args.len() + 1);
        for arg in std::iter::once(runner).chain(args.iter().map(String::as_str)) {
            let mut bytes = arg.as_bytes().to_vec();
            bytes.push(0);
            argv.push(bytes);
        }
        Self {
            args: argv,
            stdin,
            stdin_offset: 0,
            stdout: Vec::new(),
            max_stdout,
            stderr: Vec::new(),
            max_stderr,
            stderr_dropped: 0,
            closed: [false; 3],
            clock_nanos: 0,
            random_counter: 0,
        }
    }

    fn is_open_stdio(&self, fd: i32) -> bool {
        usize::try_from(fd)
            .ok()
            .and_then(|fd| self.closed.get(fd))
            .is_some_and(|closed| !closed)
    }
}

type Ctx<'a> = Caller<'a, TaskState>;

/// The preview 1 functions [`define_granted`] implements.
const GRANTED: &[&str] = &[
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "fd_read",
    "fd_write",
    "fd_close",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_filestat_get",
    "fd_seek",
    "fd_tell",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_open",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "sched_yield",
    "proc_exit",
];

/// Adds the granted preview 1 functions to `linker`, then an `ENOSYS` stub for
/// every other preview 1 function that `module` imports. Imports from any
/// other module are left undefined, so instantiation fails naming them.
pub(crate) fn add_to_linker(
    linker: &mut Linker<TaskState>,
    module: &Module,
) -> wasmtime::Result<()> {
    define_granted(linker)?;

    for import in module.imports() {
        if import.module() != WASI_MODULE || GRANTED.contains(&import.name()) {
            continue;
        }
        let ExternType::Func(func_type) = import.ty() else {
            continue;
        };
        let returns_errno = func_type.results().len() == 1
            && func_type.results().all(|ty| matches!(ty, ValType::I32));
        if !returns_errno {
            // Not a preview 1 signature: leave it undefined so instantiation
            // fails with wasmtime's "unknown import" message.
            continue;
        }
        let name = import.name().to_owned();
        linker.func_new(
            WASI_MODULE,
            import.name(),
            func_type,
            move |_caller, _params, results| {
                tracing::debug!(function = %name, "denied WASI call");
                results[0] = Val::I32(ERRNO_NOSYS);
                Ok(())
            },
        )?;
    }
    Ok(())
}

fn define_granted(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI_MODULE,
        "args_sizes_get",
        |mut caller: Ctx<'_>, argc: i32, size: i32| {
            let args = &caller.data().wasi.args;
            let count = args.len();
            let bytes: usize = args.iter().map(Vec::len).sum();
            Ok(write_u32_pair(&mut caller, argc, count, size, bytes))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "args_get",
        |mut caller: Ctx<'_>, argv: i32, buf: i32| {
            Ok(write_strings(&mut caller, argv, buf, |state| {
                &state.wasi.args
            }))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "environ_sizes_get",
        |mut caller: Ctx<'_>, count: i32, size: i32| {
            Ok(write_u32_pair(&mut caller, count, 0, size, 0))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "environ_get",
        |_caller: Ctx<'_>, _environ: i32, _buf: i32| Ok(ERRNO_SUCCESS),
    )?;

    linker.func_wrap(WASI_MODULE, "fd_read", fd_read)?;
    linker.func_wrap(WASI_MODULE, "fd_write", fd_write)?;
    linker.func_wrap(WASI_MODULE, "fd_close", |mut caller: Ctx<'_>, fd: i32| {
        let wasi = &mut caller.data_mut().wasi;
        if !wasi.is_open_stdio(fd) {
            return Ok(ERRNO_BADF);
        }
        if let Some(closed) = usize::try_from(fd)
            .ok()
            .and_then(|fd| wasi.closed.get_mut(fd))
        {
            *closed = true;
        }
        Ok(ERRNO_SUCCESS)
    })?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_fdstat_get",
        |mut caller: Ctx<'_>, fd: i32, out: i32| {
            if !caller.data().wasi.is_open_stdio(fd) {
                return Ok(ERRNO_BADF);
            }
            let rights = if fd == 0 {
                RIGHT_FD_READ
            } else {
                RIGHT_FD_WRITE
            };
            // fdstat: filetype u8 at 0, flags u16 at 2, rights_base u64 at 8,
            // rights_inheriting u64 at 16; 24 bytes.
            let mut fdstat = [0u8; 24];
            fdstat[0] = FILETYPE_UNKNOWN;
            fdstat[8..16].copy_from_slice(&rights.to_le_bytes());
            Ok(write_bytes(&mut caller, out, &fdstat))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_fdstat_set_flags",
        |caller: Ctx<'_>, fd: i32, _flags: i32| {
            Ok(if caller.data().wasi.is_open_stdio(fd) {
                ERRNO_NOTSUP
            } else {
                ERRNO_BADF
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_filestat_get",
        |mut caller: Ctx<'_>, fd: i32, out: i32| {
            if !caller.data().wasi.is_open_stdio(fd) {
                return Ok(ERRNO_BADF);
            }
            // filestat is 64 bytes; all zero describes an empty stream of unknown type.
            Ok(write_bytes(&mut caller, out, &[0u8; 64]))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_seek",
        |caller: Ctx<'_>, fd: i32, _offset: i64, _whence: i32, _out: i32| {
            Ok(if caller.data().wasi.is_open_stdio(fd) {
                ERRNO_SPIPE
            } else {
                ERRNO_BADF
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_tell",
        |caller: Ctx<'_>, fd: i32, _out: i32| {
            Ok(if caller.data().wasi.is_open_stdio(fd) {
                ERRNO_SPIPE
            } else {
                ERRNO_BADF
            })
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_prestat_get",
        |_caller: Ctx<'_>, _fd: i32, _out: i32| Ok(ERRNO_BADF),
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "fd_prestat_dir_name",
        |_caller: Ctx<'_>, _fd: i32, _path: i32, _len: i32| Ok(ERRNO_BADF),
    )?;
    linker.func_wrap(WASI_MODULE, "path_open", path_open)?;

    linker.func_wrap(
        WASI_MODULE,
        "clock_res_get",
        |mut caller: Ctx<'_>, id: i32, out: i32| {
            if !(0..=3).contains(&id) {
                return Ok(ERRNO_INVAL);
            }
            Ok(write_bytes(
                &mut caller,
                out,
                &CLOCK_STEP_NANOS.to_le_bytes(),
            ))
        },
    )?;
    linker.func_wrap(
        WASI_MODULE,
        "clock_time_get",
        |mut caller: Ctx<'_>, id: i32, _precision: i64, out: i32| {
            if !(0..=3).contains(&id) {
                return Ok(ERRNO_INVAL);
            }
            let wasi = &mut caller.data_mut().wasi;
            wasi.clock_nanos = wasi.clock_nanos.saturating_add(CLOCK_STEP_NANOS);
            let now = wasi.clock_nanos;
            Ok(write_bytes(&mut caller, out, &now.to_le_bytes()))
        },
    )?;
    linker.func_wrap(WASI_MODULE, "random_get", random_get)?;
    linker.func_wrap(WASI_MODULE, "sched_yield", |_caller: Ctx<'_>| {
        Ok(ERRNO_SUCCESS)
    })?;
    linker.func_wrap(
        WASI_MODULE,
        "proc_exit",
        |_caller: Ctx<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;
    Ok(())
}

fn memory(caller: &mut Ctx<'_>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

fn offset(value: i32) -> usize {
    // WASI pointers and lengths are unsigned 32-bit values passed as i32.
    usize::try_from(value.cast_unsigned()).unwrap_or(usize::MAX)
}

fn write_bytes(caller: &mut Ctx<'_>, at: i32, bytes: &[u8]) -> i32 {
    let Some(memory) = memory(caller) else {
        return ERRNO_FAULT;
    };
    match memory.write(caller, offset(at), bytes) {
        Ok(()) => ERRNO_SUCCESS,
        Err(_) => ERRNO_FAULT,
    }
}

fn write_u32_pair(
    caller: &mut Ctx<'_>,
    first_at: i32,
    first: usize,
    second_at: i32,
    second: usize,
) -> i32 {
    let (Ok(first), Ok(second)) = (u32::try_from(first), u32::try_from(second)) else {
        return ERRNO_INVAL;
    };
    match write_bytes(caller, first_at, &first.to_le_bytes()) {
        ERRNO_SUCCESS => write_bytes(caller, second_at, &second.to_le_bytes()),
        errno => errno,
    }
}

/// Writes a pointer array at `pointers` and the strings themselves at `buf`.
fn write_strings(
    caller: &mut Ctx<'_>,
    pointers: i32,
    buf: i32,
    strings: fn(&TaskState) -> &Vec<Vec<u8>>,
) -> i32 {
    let Some(memory) = memory(caller) else {
        return ERRNO_FAULT;
    };
    let (data, state) = memory.data_and_store_mut(caller);
    let mut pointer_at = offset(pointers);
    let mut string_at = offset(buf);
    for string in strings(state) {
        let Ok(address) = u32::try_from(string_at) else {
            return ERRNO_FAULT;
        };
        let Some(slot) = data.get_mut(pointer_at..pointer_at.saturating_add(4)) else {
            return ERRNO_FAULT;
        };
        slot.copy_from_slice(&address.to_le_bytes());
        let Some(target) = data.get_mut(string_at..string_at.saturating_add(string.len())) else {
            return ERRNO_FAULT;
        };
        target.copy_from_slice(string);
        pointer_at = pointer_at.saturating_add(4);
        string_at = string_at.saturating_add(string.len());
    }
    ERRNO_SUCCESS
}

/// Reads the `(buf, len)` pairs of an iovec array.
fn read_iovecs(data: &[u8], iovs: i32, count: i32) -> Option<Vec<(usize, usize)>> {
    let count = offset(count);
    let start = offset(iovs);
    let table = data.get(start..start.checked_add(count.checked_mul(8)?)?)?;
    let mut vectors = Vec::with_capacity(count);
    for entry in table.chunks_exact(8) {
        let buf = u32::from_le_bytes(entry[0..4].try_into().ok()?);
        let len = u32::from_le_bytes(entry[4..8].try_into().ok()?);
        vectors.push((usize::try_from(buf).ok()?, usize::try_from(len).ok()?));
    }
    Some(vectors)
}

fn fd_read(
    mut caller: Ctx<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    if fd != 0 || !caller.data().wasi.is_open_stdio(fd) {
        return Ok(ERRNO_BADF);
    }
    let Some(memory) = memory(&mut caller) else {
        return Ok(ERRNO_FAULT);
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let Some(vectors) = read_iovecs(data, iovs, iovs_len) else {
        return Ok(ERRNO_FAULT);
    };

    let wasi = &mut state.wasi;
    let mut total = 0usize;
    for (buf, len) in vectors {
        let remaining = &wasi.stdin[wasi.stdin_offset..];
        let take = len.min(remaining.len());
        let Some(target) = data.get_mut(buf..buf.saturating_add(take)) else {
            return Ok(ERRNO_FAULT);
        };
        target.copy_from_slice(&remaining[..take]);
        wasi.stdin_offset += take;
        total += take;
        if take < len {
            break;
        }
    }
    let Ok(total) = u32::try_from(total) else {
        return Ok(ERRNO_INVAL);
    };
    Ok(write_bytes(&mut caller, nread, &total.to_le_bytes()))
}

fn fd_write(
    mut caller: Ctx<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    if !(fd == 1 || fd == 2) || !caller.data().wasi.is_open_stdio(fd) {
        return Ok(ERRNO_BADF);
    }
    let Some(memory) = memory(&mut caller) else {
        return Ok(ERRNO_FAULT);
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let Some(vectors) = read_iovecs(data, iovs, iovs_len) else {
        return Ok(ERRNO_FAULT);
    };

    let wasi = &mut state.wasi;
    let mut total = 0usize;
    for (buf, len) in vectors {
        let Some(source) = data.get(buf..buf.saturating_add(len)) else {
            return Ok(ERRNO_FAULT);
        };
        if fd == 1 {
            // Output past the cap ends the run: a truncated response must never
            // be mistaken for a complete one.
            if wasi.stdout.len().saturating_add(source.len()) > wasi.max_stdout {
                return Err(wasmtime::Error::new(LimitHit(Limit::Stdout {
                    max_bytes: wasi.max_stdout,
                })));
            }
            wasi.stdout.extend_from_slice(source);
        } else {
            // Stderr only feeds the log, so it is truncated rather than fatal.
            let room = wasi.max_stderr.saturating_sub(wasi.stderr.len());
            let keep = room.min(source.len());
            wasi.stderr.extend_from_slice(&source[..keep]);
            wasi.stderr_dropped += u64::try_from(source.len() - keep).unwrap_or(u64::MAX);
        }
        total += len;
    }
    let Ok(total) = u32::try_from(total) else {
        return Ok(ERRNO_INVAL);
    };
    Ok(write_bytes(&mut caller, nwritten, &total.to_le_bytes()))
}

#[allow(
    clippy::too_many_arguments,
    reason = "the preview 1 signature of path_open"
)]
fn path_open(
    caller: Ctx<'_>,
    fd: i32,
    _dirflags: i32,
    _path: i32,
    _path_len: i32,
    _oflags: i32,
    _rights_base: i64,
    _rights_inheriting: i64,
    _fdflags: i32,
    _opened_fd: i32,
) -> wasmtime::Result<i32> {
    // No directory is ever preopened, so there is nothing to resolve a path in.
    tracing::debug!(fd, "denied path_open");
    Ok(if caller.data().wasi.is_open_stdio(fd) {
        ERRNO_NOTDIR
    } else {
        ERRNO_BADF
    })
}

fn random_get(mut caller: Ctx<'_>, buf: i32, len: i32) -> wasmtime::Result<i32> {
    let Some(memory) = memory(&mut caller) else {
        return Ok(ERRNO_FAULT);
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let start = offset(buf);
    let Some(target) = data.get_mut(start..start.saturating_add(offset(len))) else {
        return Ok(ERRNO_FAULT);
    };
    // Deterministic on purpose: SHA-256 over a fixed label and a counter that
    // persists across calls within one run.
    for chunk in target.chunks_mut(32) {
        let mut hasher = Sha256::new();
        hasher.update(b"midcore-runner-random-v1");
        hasher.update(&state.wasi.random_counter.to_le_bytes());
        state.wasi.random_counter += 1;
        let block = hasher.finish();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(ERRNO_SUCCESS)
}
