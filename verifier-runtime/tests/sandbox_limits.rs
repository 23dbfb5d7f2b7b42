#![cfg(feature = "sandbox")]
//! Every denial and limit through signed runners, with the pool still serving
//! after each failed run.

mod sandbox_support;

use std::time::Duration;

use midcore_verifier::sandbox::{Limit, Limits, MIB, PoolConfig, RunError, RunnerPool, Task};
use sandbox_support::{BundleBuilder, TestKey, wasm};

const RUNNERS: [&str; 9] = [
    "echo",
    "environ",
    "open_file",
    "socket",
    "spin",
    "grow_memory",
    "recurse",
    "flood_stdout",
    "args",
];

struct Fixture {
    pool: RunnerPool,
    runners: std::collections::HashMap<&'static str, midcore_verifier::sandbox::Runner>,
    _bundle: sandbox_support::SignedBundle,
}

fn fixture() -> Fixture {
    let key = TestKey::generate();
    let mut builder = BundleBuilder::new();
    for name in RUNNERS {
        builder = builder.runner(name, &wasm(name), &key);
    }
    let bundle = builder.sign(&key);
    let manifest = bundle.verify(&key);
    let limits = Limits {
        max_memory_bytes: 32 * MIB,
        timeout: Duration::from_millis(500),
        max_stdout_bytes: 256 * 1024,
        ..Limits::default()
    };
    let pool = RunnerPool::new(PoolConfig {
        limits,
        workers: 2,
        ..PoolConfig::default()
    })
    .expect("pool starts");
    let runners = RUNNERS
        .into_iter()
        .map(|name| (name, pool.load(&manifest, name).expect(name)))
        .collect();
    Fixture {
        pool,
        runners,
        _bundle: bundle,
    }
}

impl Fixture {
    fn run(
        &self,
        name: &str,
        args: &[&str],
    ) -> Result<midcore_verifier::sandbox::RunOutput, RunError> {
        let task = Task {
            request: b"ping".to_vec(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        self.pool.run(&self.runners[name], task)
    }

    fn assert_serving(&self) {
        let output = self.run("echo", &[]).expect("echo still runs");
        assert_eq!(output.stdout, b"ping");
    }
}

#[test]
fn denials_hold_for_signed_runners() {
    let fixture = fixture();
    assert_eq!(
        fixture.run("environ", &[]).expect("environ").exit_code,
        0,
        "environment must be empty"
    );
    assert_eq!(
        fixture.run("open_file", &[]).expect("open_file").exit_code,
        8,
        "path_open must fail with EBADF"
    );
    assert_eq!(
        fixture.run("socket", &[]).expect("socket").exit_code,
        52,
        "sock_accept must fail with ENOSYS"
    );
    assert_eq!(
        fixture.run("args", &["a"]).expect("args").stdout,
        b"args\na\n",
        "argv[0] is the runner name"
    );
}

#[test]
fn each_limit_stops_its_run_and_pool_keeps_serving() {
    let fixture = fixture();
    let cases = [
        (
            "spin",
            Limit::Timeout {
                timeout: Duration::from_millis(500),
            },
        ),
        (
            "grow_memory",
            Limit::Memory {
                max_bytes: 32 * MIB,
            },
        ),
        (
            "recurse",
            Limit::WasmStack {
                max_bytes: Limits::default().max_wasm_stack_bytes,
            },
        ),
        (
            "flood_stdout",
            Limit::Stdout {
                max_bytes: 256 * 1024,
            },
        ),
    ];
    for (name, limit) in cases {
        let error = fixture.run(name, &[]).expect_err(name);
        assert_eq!(
            error,
            RunError::Limit {
                runner: name.to_owned(),
                limit
            },
            "runner {name}"
        );
        assert!(
            error.to_string().contains(name),
            "message names the runner: {error}"
        );
        fixture.assert_serving();
    }
}

#[test]
fn concurrent_spinners_all_stop() {
    let fixture = fixture();
    let pending: Vec<_> = (0..4)
        .map(|_| {
            fixture
                .pool
                .submit(&fixture.runners["spin"], Task::default())
                .expect("queued")
        })
        .collect();
    for run in pending {
        assert!(matches!(
            run.wait(),
            Err(RunError::Limit {
                limit: Limit::Timeout { .. },
                ..
            })
        ));
    }
    fixture.assert_serving();
}
