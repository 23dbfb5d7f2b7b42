#![cfg(feature = "sandbox")]
//! Published WASI modules, signed into a test bundle. Fetch them first with
//! `scripts/fetch-real-modules.sh`; without them these tests skip, unless
//! `MIDCORE_REQUIRE_REAL_MODULES=1` is set.

mod sandbox_support;

use midcore_verifier::sandbox::{LoadError, PoolConfig, RunnerPool, Task, WasmFeature};
use sandbox_support::{BundleBuilder, TestKey, real_module};

fn load(
    name: &str,
    module: &[u8],
) -> (
    RunnerPool,
    Result<midcore_verifier::sandbox::Runner, LoadError>,
) {
    let key = TestKey::generate();
    let bundle = BundleBuilder::new().runner(name, module, &key).sign(&key);
    let manifest = bundle.verify(&key);
    let pool = RunnerPool::new(PoolConfig {
        workers: 1,
        ..PoolConfig::default()
    })
    .expect("pool starts");
    let runner = pool.load(&manifest, name);
    (pool, runner)
}

#[test]
fn flite_prints_version_under_empty_context() {
    let Some(module) = real_module("flite.wasm") else {
        return;
    };
    let (pool, runner) = load("flite", &module);
    let runner = runner.expect("flite loads");
    let task = Task {
        request: Vec::new(),
        args: vec!["--version".into()],
    };
    let output = pool.run(&runner, task).expect("flite runs");
    // flite's main returns 1 after printing its version; that is its own status.
    assert_eq!(
        output.exit_code,
        1,
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("version: flite-2.3"), "stdout: {stdout}");
}

#[test]
fn graphviz_instantiates() {
    let Some(module) = real_module("graphviz.wasm") else {
        return;
    };
    let (pool, runner) = load("graphviz", &module);
    let runner = runner.expect("graphviz loads");
    pool.check_instantiates(&runner)
        .expect("graphviz instantiates");
}

#[test]
fn ffmpeg_core_is_rejected_naming_threads() {
    let Some(module) = real_module("ffmpeg-core.wasm") else {
        return;
    };
    let (_pool, runner) = load("ffmpeg-core", &module);
    let error = runner.expect_err("ffmpeg-core needs atomics");
    assert!(
        matches!(&error, LoadError::UnsupportedFeature { features, .. } if features.contains(&WasmFeature::Threads)),
        "error: {error}"
    );
    assert!(error.to_string().contains("threads"), "message: {error}");
}

#[test]
fn tree_sitter_is_rejected_naming_its_imports() {
    let Some(module) = real_module("web-tree-sitter.wasm") else {
        return;
    };
    let (_pool, runner) = load("web-tree-sitter", &module);
    let error = runner.expect_err("web-tree-sitter imports env functions");
    assert!(matches!(&error, LoadError::Link { .. }), "error: {error}");
    assert!(error.to_string().contains("env::"), "message: {error}");
}
