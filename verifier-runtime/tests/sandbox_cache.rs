#![cfg(feature = "sandbox")]
//! The authenticated compiled-code cache: hits, and tampered entries that are
//! never executed.

mod sandbox_support;

use std::path::{Path, PathBuf};

use midcore_verifier::sandbox::{CacheConfig, CacheKey, LoadError, PoolConfig, RunnerPool, Task};
use sandbox_support::{BundleBuilder, SignedBundle, TestKey, wasm};

fn pool_with_cache(dir: &Path, key: CacheKey) -> RunnerPool {
    let config = PoolConfig {
        workers: 1,
        cache: Some(CacheConfig {
            dir: dir.to_owned(),
            key,
        }),
        ..PoolConfig::default()
    };
    RunnerPool::new(config).expect("pool starts")
}

fn echo_bundle(key: &TestKey) -> SignedBundle {
    BundleBuilder::new()
        .runner("echo", &wasm("echo"), key)
        .runner("exit7", &wasm("exit_code"), key)
        .sign(key)
}

fn entry_for(dir: &Path, module: &[u8]) -> PathBuf {
    dir.join(format!(
        "{}.cwasm",
        hex::encode(midcore_verifier::crypto::sha256(module))
    ))
}

fn echo_once(pool: &RunnerPool, runner: &midcore_verifier::sandbox::Runner) -> Vec<u8> {
    pool.run(
        runner,
        Task {
            request: b"hello".to_vec(),
            args: Vec::new(),
        },
    )
    .expect("echo runs")
    .stdout
}

#[test]
fn second_load_comes_from_cache() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let cache = tempfile::tempdir().expect("cache folder");
    let cache_key = CacheKey::generate().expect("cache key");

    let first = pool_with_cache(cache.path(), cache_key.clone())
        .load(&manifest, "echo")
        .expect("first load");
    assert!(!first.from_cache());
    let pool = pool_with_cache(cache.path(), cache_key);
    let second = pool.load(&manifest, "echo").expect("second load");
    assert!(second.from_cache());
    assert_eq!(echo_once(&pool, &second), b"hello");
}

#[test]
fn flipped_byte_in_entry_is_a_miss() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let cache = tempfile::tempdir().expect("cache folder");
    let cache_key = CacheKey::generate().expect("cache key");
    pool_with_cache(cache.path(), cache_key.clone())
        .load(&manifest, "echo")
        .expect("fill cache");

    let entry = entry_for(cache.path(), &wasm("echo"));
    let mut bytes = std::fs::read(&entry).expect("read entry");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&entry, &bytes).expect("tamper entry");

    let pool = pool_with_cache(cache.path(), cache_key);
    let runner = pool.load(&manifest, "echo").expect("load recompiles");
    assert!(!runner.from_cache(), "a tampered entry must not be used");
    assert_eq!(echo_once(&pool, &runner), b"hello");
}

#[test]
fn swapped_compiled_code_is_a_miss() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let cache = tempfile::tempdir().expect("cache folder");
    let cache_key = CacheKey::generate().expect("cache key");
    let pool = pool_with_cache(cache.path(), cache_key.clone());
    pool.load(&manifest, "echo").expect("fill echo");
    pool.load(&manifest, "exit7").expect("fill exit7");
    drop(pool);

    // Keep echo's header and MAC but put exit7's compiled code behind them.
    let echo_entry = entry_for(cache.path(), &wasm("echo"));
    let exit_entry =
        std::fs::read(entry_for(cache.path(), &wasm("exit_code"))).expect("read exit7");
    let mut forged = std::fs::read(&echo_entry).expect("read echo")[..104].to_vec();
    forged.extend_from_slice(&exit_entry[104..]);
    std::fs::write(&echo_entry, forged).expect("write forged entry");

    let pool = pool_with_cache(cache.path(), cache_key);
    let runner = pool.load(&manifest, "echo").expect("load recompiles");
    assert!(!runner.from_cache(), "a forged entry must not be used");
    assert_eq!(
        echo_once(&pool, &runner),
        b"hello",
        "echo's own code must run, not exit7's"
    );
}

#[test]
fn renamed_entry_of_other_module_is_a_miss() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let cache = tempfile::tempdir().expect("cache folder");
    let cache_key = CacheKey::generate().expect("cache key");
    let pool = pool_with_cache(cache.path(), cache_key.clone());
    pool.load(&manifest, "exit7").expect("fill exit7");
    drop(pool);

    std::fs::copy(
        entry_for(cache.path(), &wasm("exit_code")),
        entry_for(cache.path(), &wasm("echo")),
    )
    .expect("copy entry");
    let pool = pool_with_cache(cache.path(), cache_key);
    let runner = pool.load(&manifest, "echo").expect("load recompiles");
    assert!(!runner.from_cache());
    assert_eq!(echo_once(&pool, &runner), b"hello");
}

#[test]
fn entry_made_under_other_key_is_a_miss() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let cache = tempfile::tempdir().expect("cache folder");
    pool_with_cache(cache.path(), CacheKey::generate().expect("key A"))
        .load(&manifest, "echo")
        .expect("fill");

    let pool = pool_with_cache(cache.path(), CacheKey::generate().expect("key B"));
    let runner = pool.load(&manifest, "echo").expect("load recompiles");
    assert!(!runner.from_cache());
}

#[test]
fn cache_inside_bundle_is_rejected() {
    let key = TestKey::generate();
    let bundle = echo_bundle(&key);
    let manifest = bundle.verify(&key);
    let pool = pool_with_cache(&bundle.path("cache"), CacheKey::generate().expect("key"));
    let error = pool
        .load(&manifest, "echo")
        .expect_err("cache inside the bundle must be rejected");
    assert!(
        matches!(error, LoadError::CacheInsideBundle { .. }),
        "error: {error}"
    );
}

#[test]
fn cache_key_file_is_created_then_reused() {
    let dir = tempfile::tempdir().expect("key folder");
    let path = dir.path().join("cache.key");
    CacheKey::load_or_create(&path).expect("create key");
    let first = std::fs::read(&path).expect("read key");
    CacheKey::load_or_create(&path).expect("reuse key");
    assert_eq!(std::fs::read(&path).expect("read key again"), first);
    assert_eq!(first.len(), 32);
}

#[test]
fn short_cache_key_file_is_rejected() {
    let dir = tempfile::tempdir().expect("key folder");
    let path = dir.path().join("cache.key");
    std::fs::write(&path, b"short").expect("write key");
    let error = CacheKey::load_or_create(&path).expect_err("5-byte key must be rejected");
    assert!(
        error.to_string().contains("expected 32"),
        "message: {error}"
    );
}
