#![cfg(feature = "sandbox")]
//! Loading runners from signed bundles: what is accepted and what is rejected.

mod sandbox_support;

use midcore_verifier::sandbox::{Limit, Limits, LoadError, PoolConfig, RunnerPool, Task};
use sandbox_support::{BundleBuilder, TestKey, wasm};

fn pool() -> RunnerPool {
    RunnerPool::new(PoolConfig {
        workers: 1,
        ..PoolConfig::default()
    })
    .expect("pool starts")
}

#[test]
fn signed_runner_answers_request() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("echo", &wasm("echo"), &key)
        .sign(&key);
    let manifest = bundle.verify(&key);
    let pool = pool();
    let runner = pool.load(&manifest, "echo").expect("signed runner loads");
    let output = pool
        .run(
            &runner,
            Task {
                request: b"ping".to_vec(),
                args: Vec::new(),
            },
        )
        .expect("runs");
    assert_eq!(output.stdout, b"ping");
    assert_eq!(runner.key_id(), Some(&key.key_id()));
}

#[test]
fn modified_runner_is_rejected() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("echo", &wasm("echo"), &key)
        .sign(&key);
    std::fs::write(
        bundle.path("local-compute/runners/echo.wasm"),
        wasm("exit_code"),
    )
    .expect("replace runner");
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("modified runner must be rejected");
    assert!(
        matches!(error, LoadError::ManifestMismatch { .. }),
        "error: {error}"
    );
    assert!(
        error.to_string().contains("modified after signing"),
        "message: {error}"
    );
}

#[test]
fn unsigned_runner_is_rejected() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .file("local-compute/runners/echo.wasm", &wasm("echo"))
        .sign(&key);
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("unsigned runner must be rejected");
    assert!(
        matches!(error, LoadError::Unsigned { .. }),
        "error: {error}"
    );
    assert!(error.to_string().contains("unsigned"), "message: {error}");
}

#[test]
fn sidecar_from_untrusted_key_is_rejected() {
    let key = TestKey::generate();
    let stranger = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("echo", &wasm("echo"), &stranger)
        .sign(&key);
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("stranger's sidecar must be rejected");
    assert!(matches!(error, LoadError::Sidecar { .. }), "error: {error}");
}

#[test]
fn sidecar_for_other_module_is_rejected() {
    let key = TestKey::generate();
    let module = wasm("echo");
    let wrong_sidecar = key.sidecar(&wasm("exit_code"));
    let bundle = BundleBuilder::new()
        .file("local-compute/runners/echo.wasm", &module)
        .file("local-compute/runners/echo.wasm.sig", &wrong_sidecar)
        .sign(&key);
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("mismatched sidecar must be rejected");
    assert!(matches!(error, LoadError::Sidecar { .. }), "error: {error}");
}

#[test]
fn runner_missing_from_manifest_is_rejected() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("echo", &wasm("echo"), &key)
        .sign(&key);
    let extra = wasm("exit_code");
    std::fs::write(bundle.path("local-compute/runners/extra.wasm"), &extra).expect("add runner");
    std::fs::write(
        bundle.path("local-compute/runners/extra.wasm.sig"),
        key.sidecar(&extra),
    )
    .expect("add sidecar");
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "extra")
        .expect_err("unlisted runner must be rejected");
    assert!(
        matches!(error, LoadError::NotInManifest { .. }),
        "error: {error}"
    );
}

#[cfg(unix)]
#[test]
fn symlinked_runner_is_rejected() {
    let key = TestKey::generate();
    let module = wasm("echo");
    // The link target is signed and listed too, so only the link itself is wrong.
    let bundle = BundleBuilder::new()
        .runner("echo", &module, &key)
        .file("elsewhere/echo.wasm", &module)
        .sign(&key);
    let link = bundle.path("local-compute/runners/echo.wasm");
    std::fs::remove_file(&link).expect("remove runner");
    std::os::unix::fs::symlink(bundle.path("elsewhere/echo.wasm"), &link).expect("make link");
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("symlinked runner must be rejected");
    assert!(matches!(error, LoadError::Symlink { .. }), "error: {error}");
    assert!(
        error.to_string().contains("symbolic link"),
        "message: {error}"
    );
}

#[cfg(unix)]
#[test]
fn runners_folder_outside_bundle_is_rejected() {
    let key = TestKey::generate();
    let module = wasm("echo");
    let bundle = BundleBuilder::new()
        .runner("echo", &module, &key)
        .sign(&key);
    // Move the runners folder out of the bundle and leave a link in its place.
    let outside = tempfile::tempdir().expect("outside folder");
    let moved = outside.path().join("runners");
    std::fs::rename(bundle.path("local-compute/runners"), &moved).expect("move runners");
    std::os::unix::fs::symlink(&moved, bundle.path("local-compute/runners")).expect("make link");
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "echo")
        .expect_err("runner outside the bundle must be rejected");
    assert!(
        matches!(error, LoadError::RunnersFolder { .. }),
        "error: {error}"
    );
    assert!(
        error.to_string().contains("outside the bundle"),
        "message: {error}"
    );
}

#[test]
fn path_like_names_are_rejected() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("echo", &wasm("echo"), &key)
        .file("local-compute/escape.wasm", &wasm("echo"))
        .sign(&key);
    let manifest = bundle.verify(&key);
    let pool = pool();
    for name in ["../escape", "runners/echo", "..", "/etc/passwd", ""] {
        let error = pool.load(&manifest, name).expect_err(name);
        assert!(
            matches!(error, LoadError::InvalidName { .. }),
            "name {name:?}: {error}"
        );
    }
}

#[test]
fn oversized_module_is_rejected() {
    let key = TestKey::generate();
    let module = wasm("echo");
    let bundle = BundleBuilder::new()
        .runner("echo", &module, &key)
        .sign(&key);
    let manifest = bundle.verify(&key);
    let limits = Limits {
        max_module_bytes: 64,
        ..Limits::default()
    };
    let pool = RunnerPool::new(PoolConfig {
        limits,
        workers: 1,
        ..PoolConfig::default()
    })
    .expect("pool");
    let error = pool
        .load(&manifest, "echo")
        .expect_err("module over 64 bytes must be rejected");
    assert!(
        matches!(
            error,
            LoadError::Limit {
                limit: Limit::ModuleSize { max_bytes: 64 },
                ..
            }
        ),
        "error: {error}"
    );
}

#[test]
fn signed_module_needing_threads_is_rejected() {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new()
        .runner("shared", &wasm("shared_memory"), &key)
        .sign(&key);
    let manifest = bundle.verify(&key);
    let error = pool()
        .load(&manifest, "shared")
        .expect_err("threads must be rejected");
    assert!(error.to_string().contains("threads"), "message: {error}");
}
