#![cfg(feature = "sandbox")]
//! Sandbox benchmark, run by `scripts/bench/sandbox.sh` in release mode:
//! `cargo test --release -p midcore-verifier --features sandbox --test sandbox_bench -- --ignored --nocapture`.
//! It prints figures and checks nothing about timing.

mod sandbox_support;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use midcore_verifier::sandbox::{CacheConfig, CacheKey, PoolConfig, RunError, RunnerPool, Task};
use sandbox_support::{BundleBuilder, TestKey, real_module, wasm};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[test]
#[ignore = "benchmark; run through scripts/bench/sandbox.sh"]
fn sandbox_benchmark() {
    let key = TestKey::generate();
    let echo_module = wasm("echo");
    if let Some(path) = std::env::var_os("SANDBOX_BENCH_ECHO_OUT") {
        std::fs::write(path, &echo_module).expect("write echo module for the Node baseline");
    }
    let mut builder = BundleBuilder::new().runner("echo", &echo_module, &key);
    let flite = real_module("flite.wasm");
    let ffmpeg = real_module("ffmpeg-core.wasm");
    if let Some(module) = &flite {
        builder = builder.runner("flite", module, &key);
    }
    if let Some(module) = &ffmpeg {
        builder = builder.runner("ffmpeg-core", module, &key);
    }
    let bundle = builder.sign(&key);
    let manifest = bundle.verify(&key);
    let cache_dir = tempfile::tempdir().expect("cache folder");
    let cache_key = CacheKey::generate().expect("cache key");
    let cached_pool = || {
        RunnerPool::new(PoolConfig {
            workers: 1,
            cache: Some(CacheConfig {
                dir: cache_dir.path().to_owned(),
                key: cache_key.clone(),
            }),
            ..PoolConfig::default()
        })
        .expect("pool")
    };

    // 1. Verify and compile, cold (no cache), then load from the cache.
    if flite.is_some() {
        let pool = cached_pool();
        let start = Instant::now();
        let runner = pool.load(&manifest, "flite").expect("flite loads");
        let cold = start.elapsed();
        assert!(!runner.from_cache());
        let mut warm = Vec::new();
        for _ in 0..5 {
            let pool = cached_pool();
            let start = Instant::now();
            let runner = pool
                .load(&manifest, "flite")
                .expect("flite loads from cache");
            warm.push(start.elapsed());
            assert!(runner.from_cache());
        }
        println!(
            "BENCH flite.wasm (21.5 MB) verify+compile cold: {:.0} ms",
            ms(cold)
        );
        println!(
            "BENCH flite.wasm verify+load from authenticated cache (median of 5): {:.1} ms",
            ms(median(warm))
        );
    }
    if ffmpeg.is_some() {
        let pool = cached_pool();
        let mut samples = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let error = pool
                .load(&manifest, "ffmpeg-core")
                .expect_err("ffmpeg-core is rejected");
            samples.push(start.elapsed());
            assert!(error.to_string().contains("threads"));
        }
        println!(
            "BENCH ffmpeg-core.wasm (32 MB) read+hash+sidecar+feature rejection (median of 5): {:.1} ms",
            ms(median(samples))
        );
    }

    // 2. Instantiate per task from the pre-instantiated template (fresh store each).
    let pool = RunnerPool::new(PoolConfig::default()).expect("pool");
    let echo = pool.load(&manifest, "echo").expect("echo loads");
    for _ in 0..1000 {
        pool.check_instantiates(&echo).expect("instantiates");
    }
    let rounds = 20_000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        pool.check_instantiates(&echo).expect("instantiates");
    }
    let per_instance = start.elapsed() / rounds;
    println!(
        "BENCH echo instantiate per task (fresh store + instance, pooled={}): {:.2} us",
        pool.is_pooled(),
        per_instance.as_secs_f64() * 1e6
    );

    // 3. Throughput: echo with a 64-byte request on every worker.
    let tasks = 100_000usize;
    let request = vec![b'x'; 64];
    let mut pending = VecDeque::new();
    let start = Instant::now();
    let mut submitted = 0;
    let mut completed = 0;
    while completed < tasks {
        while submitted < tasks {
            match pool.submit(
                &echo,
                Task {
                    request: request.clone(),
                    args: Vec::new(),
                },
            ) {
                Ok(run) => {
                    pending.push_back(run);
                    submitted += 1;
                }
                Err(RunError::QueueFull { .. }) => break,
                Err(error) => panic!("submit failed: {error}"),
            }
        }
        let run = pending.pop_front().expect("a run is pending");
        assert_eq!(run.wait().expect("echo runs").stdout.len(), 64);
        completed += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "BENCH echo throughput on {} workers: {:.0} tasks/s ({} tasks in {:.2} s)",
        pool.workers(),
        tasks as f64 / elapsed.as_secs_f64(),
        tasks,
        elapsed.as_secs_f64()
    );
}
