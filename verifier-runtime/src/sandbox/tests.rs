//! Tests of the pool, the WASI host and the limits on modules built from the
//! WAT files in `tests/wat/`. They call the crate-private `prepare` step, which
//! follows the manifest and sidecar checks; the signed path through
//! [`RunnerPool::load`] is covered by `tests/sandbox_*.rs`.

use std::time::Duration;

use super::*;
use crate::crypto::sha256;

macro_rules! wat {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/wat/",
            $name,
            ".wat"
        ))
    };
}

fn small_limits() -> Limits {
    Limits {
        max_memory_bytes: 16 * MIB,
        timeout: Duration::from_millis(300),
        max_stdout_bytes: 1024 * 1024,
        max_stderr_bytes: 4096,
        ..Limits::default()
    }
}

fn pool() -> RunnerPool {
    RunnerPool::new(PoolConfig {
        limits: small_limits(),
        workers: 2,
        ..PoolConfig::default()
    })
    .expect("pool starts")
}

fn prepare(pool: &RunnerPool, name: &str, wat: &str) -> Result<Runner, LoadError> {
    let bytes = wat::parse_str(wat).expect("test module parses");
    pool.prepare(name, &bytes, sha256(&bytes), None)
}

fn request(bytes: &[u8]) -> Task {
    Task {
        request: bytes.to_vec(),
        args: Vec::new(),
    }
}

/// Proves the pool still serves after a failed run.
fn assert_still_serves(pool: &RunnerPool) {
    let echo = prepare(pool, "echo", wat!("echo")).expect("echo loads");
    let output = pool.run(&echo, request(b"still here")).expect("echo runs");
    assert_eq!(output.stdout, b"still here");
}

#[test]
fn echo_copies_request_to_response() {
    let pool = pool();
    let echo = prepare(&pool, "echo", wat!("echo")).expect("echo loads");
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let output = pool.run(&echo, request(&body)).expect("echo runs");
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, body);
}

#[test]
fn args_start_with_runner_name() {
    let pool = pool();
    let runner = prepare(&pool, "args", wat!("args")).expect("args loads");
    let task = Task {
        request: Vec::new(),
        args: vec!["--version".into(), "x y".into()],
    };
    let output = pool.run(&runner, task).expect("args runs");
    assert_eq!(output.stdout, b"args\n--version\nx y\n");
}

#[test]
fn environment_is_empty() {
    let pool = pool();
    let runner = prepare(&pool, "environ", wat!("environ")).expect("environ loads");
    let output = pool.run(&runner, Task::default()).expect("environ runs");
    assert_eq!(output.exit_code, 0);
}

#[test]
fn file_open_is_denied() {
    let pool = pool();
    let runner = prepare(&pool, "open-file", wat!("open_file")).expect("open_file loads");
    let output = pool.run(&runner, Task::default()).expect("open_file runs");
    assert_eq!(
        output.stdout,
        [8],
        "fd_prestat_get(3) must report EBADF: no preopened directory"
    );
    assert_eq!(
        output.exit_code, 8,
        "path_open through fd 3 must fail with EBADF"
    );
}

#[test]
fn socket_accept_is_denied() {
    let pool = pool();
    let runner = prepare(&pool, "socket", wat!("socket")).expect("socket loads");
    let output = pool.run(&runner, Task::default()).expect("socket runs");
    assert_eq!(output.exit_code, 52, "sock_accept must fail with ENOSYS");
}

#[test]
fn spin_hits_time_limit() {
    let pool = pool();
    let runner = prepare(&pool, "spin", wat!("spin")).expect("spin loads");
    let error = pool
        .run(&runner, Task::default())
        .expect_err("spin must be stopped");
    assert_eq!(
        error,
        RunError::Limit {
            runner: "spin".into(),
            limit: Limit::Timeout {
                timeout: Duration::from_millis(300)
            }
        }
    );
    assert_still_serves(&pool);
}

#[test]
fn memory_growth_hits_memory_limit() {
    let pool = pool();
    let runner = prepare(&pool, "grow", wat!("grow_memory")).expect("grow loads");
    let error = pool
        .run(&runner, Task::default())
        .expect_err("growth must be stopped");
    assert_eq!(
        error,
        RunError::Limit {
            runner: "grow".into(),
            limit: Limit::Memory {
                max_bytes: 16 * MIB
            }
        }
    );
    assert_still_serves(&pool);
}

#[test]
fn recursion_hits_stack_limit() {
    let pool = pool();
    let runner = prepare(&pool, "recurse", wat!("recurse")).expect("recurse loads");
    let error = pool
        .run(&runner, Task::default())
        .expect_err("recursion must be stopped");
    assert_eq!(
        error,
        RunError::Limit {
            runner: "recurse".into(),
            limit: Limit::WasmStack {
                max_bytes: Limits::default().max_wasm_stack_bytes
            }
        }
    );
    assert_still_serves(&pool);
}

#[test]
fn stdout_flood_hits_output_limit() {
    let pool = pool();
    let runner = prepare(&pool, "flood", wat!("flood_stdout")).expect("flood loads");
    let error = pool
        .run(&runner, Task::default())
        .expect_err("flood must be stopped");
    assert_eq!(
        error,
        RunError::Limit {
            runner: "flood".into(),
            limit: Limit::Stdout {
                max_bytes: 1024 * 1024
            }
        }
    );
    assert_still_serves(&pool);
}

#[test]
fn stderr_flood_is_truncated() {
    let pool = pool();
    let runner = prepare(&pool, "noisy", wat!("flood_stderr")).expect("noisy loads");
    let output = pool.run(&runner, Task::default()).expect("noisy runs");
    assert_eq!(output.stdout, b"done");
    assert_eq!(output.stderr.len(), 4096);
    assert_eq!(output.stderr_dropped, 16 * 65536 - 4096);
}

#[test]
fn oversized_request_hits_request_limit() {
    let pool = pool();
    let echo = prepare(&pool, "echo", wat!("echo")).expect("echo loads");
    let too_big = vec![0u8; Limits::default().max_stdin_bytes + 1];
    let error = pool
        .run(&echo, request(&too_big))
        .expect_err("request must be rejected");
    assert_eq!(
        error,
        RunError::Limit {
            runner: "echo".into(),
            limit: Limit::Stdin {
                max_bytes: Limits::default().max_stdin_bytes
            }
        }
    );
}

#[test]
fn exit_status_is_reported() {
    let pool = pool();
    let runner = prepare(&pool, "exit7", wat!("exit_code")).expect("exit7 loads");
    let output = pool.run(&runner, Task::default()).expect("exit7 runs");
    assert_eq!(output.exit_code, 7);
    assert_eq!(output.stdout, b"partial");
}

#[test]
fn shared_memory_is_rejected_naming_threads() {
    let pool = pool();
    let error = prepare(&pool, "shared", wat!("shared_memory"))
        .expect_err("shared memory must be rejected");
    assert!(
        matches!(&error, LoadError::UnsupportedFeature { features, .. } if features == &[WasmFeature::Threads])
    );
    assert!(error.to_string().contains("threads"), "message: {error}");
}

#[test]
fn atomics_are_rejected_naming_threads() {
    let pool = pool();
    let error = prepare(&pool, "atomics", wat!("atomics")).expect_err("atomics must be rejected");
    assert!(
        matches!(&error, LoadError::UnsupportedFeature { features, .. } if features == &[WasmFeature::Threads])
    );
}

#[test]
fn memory64_is_rejected_naming_memory64() {
    let pool = pool();
    let error = prepare(&pool, "wide", wat!("memory64")).expect_err("memory64 must be rejected");
    assert!(
        matches!(&error, LoadError::UnsupportedFeature { features, .. } if features == &[WasmFeature::Memory64])
    );
    assert!(error.to_string().contains("memory64"), "message: {error}");
}

#[test]
fn legacy_exceptions_are_rejected_by_name() {
    let pool = pool();
    let error = prepare(&pool, "throws", wat!("legacy_exceptions"))
        .expect_err("legacy exceptions must be rejected");
    assert!(
        matches!(&error, LoadError::UnsupportedFeature { features, .. } if features == &[WasmFeature::LegacyExceptions])
    );
    assert!(
        error.to_string().contains("legacy exceptions"),
        "message: {error}"
    );
}

#[test]
fn non_wasi_import_is_rejected() {
    let pool = pool();
    let error =
        prepare(&pool, "secret", wat!("env_import")).expect_err("env import must be rejected");
    assert!(matches!(&error, LoadError::Link { .. }), "error: {error}");
    assert!(
        error.to_string().contains("read_secret"),
        "message: {error}"
    );
}

#[test]
fn large_initial_memory_is_rejected() {
    let pool = pool();
    let error =
        prepare(&pool, "big", wat!("large_initial_memory")).expect_err("64 MiB must exceed 16 MiB");
    assert!(
        matches!(
            &error,
            LoadError::Limit {
                limit: Limit::Memory { .. },
                ..
            }
        ),
        "error: {error}"
    );
}

#[test]
fn library_module_instantiates_but_is_not_a_command() {
    let pool = pool();
    let runner = prepare(&pool, "library", wat!("library")).expect("library loads");
    pool.check_instantiates(&runner)
        .expect("library instantiates");
    let error = pool
        .run(&runner, Task::default())
        .expect_err("library has no _start");
    assert_eq!(
        error,
        RunError::NotACommand {
            runner: "library".into()
        }
    );
}

#[test]
fn full_queue_reports_backpressure() {
    let pool = RunnerPool::new(PoolConfig {
        limits: small_limits(),
        workers: 1,
        queue_capacity: 1,
        ..PoolConfig::default()
    })
    .expect("pool starts");
    let spin = prepare(&pool, "spin", wat!("spin")).expect("spin loads");
    // One task runs, one waits in the queue, the third finds the queue full.
    let mut pending = Vec::new();
    let mut rejected = None;
    for _ in 0..3 {
        match pool.submit(&spin, Task::default()) {
            Ok(run) => pending.push(run),
            Err(error) => rejected = Some(error),
        }
    }
    assert_eq!(
        rejected,
        Some(RunError::QueueFull {
            runner: "spin".into(),
            capacity: 1
        })
    );
    for run in pending {
        assert!(matches!(
            run.wait(),
            Err(RunError::Limit {
                limit: Limit::Timeout { .. },
                ..
            })
        ));
    }
}

#[test]
fn runner_names_with_paths_are_rejected() {
    for name in [
        "",
        "../echo",
        "a/b",
        "a\\b",
        ".hidden",
        "a..b",
        "echo.wasm\0",
        "é",
    ] {
        let error = runner_path(name).expect_err(name);
        assert!(
            matches!(error, LoadError::InvalidName { .. }),
            "name {name:?}"
        );
    }
    assert_eq!(
        runner_path("echo").expect("plain name"),
        "local-compute/runners/echo.wasm"
    );
}
