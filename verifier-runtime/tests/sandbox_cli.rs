#![cfg(feature = "sandbox")]
#![cfg(feature = "cli")]
//! `midcore-verify run` through the real binary.

mod sandbox_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sandbox_support::{BundleBuilder, SignedBundle, TestKey, wasm, write_public_pem};

fn bundle(key: &TestKey) -> SignedBundle {
    BundleBuilder::new()
        .runner("echo", &wasm("echo"), key)
        .runner("exit7", &wasm("exit_code"), key)
        .runner("spin", &wasm("spin"), key)
        .runner("args", &wasm("args"), key)
        .sign(key)
}

fn run(bundle: &SignedBundle, key: &TestKey, runner: &str, extra: &[&str], stdin: &[u8]) -> Output {
    let keys = tempfile::tempdir().expect("key folder");
    let pem = write_public_pem(keys.path(), key);
    let mut child = Command::new(env!("CARGO_BIN_EXE_midcore-verify"))
        .arg("run")
        .arg(bundle.root())
        .arg(runner)
        .arg("--trust")
        .arg(&pem)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start midcore-verify");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write request");
    child.wait_with_output().expect("wait for midcore-verify")
}

#[test]
fn run_answers_request() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let output = run(&bundle, &key, "echo", &[], b"hello runner");
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"hello runner");
}

#[test]
fn run_passes_arguments_after_separator() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let output = run(&bundle, &key, "args", &["--", "--version", "x"], b"");
    assert_eq!(output.stdout, b"args\n--version\nx\n");
}

#[test]
fn runner_exit_status_maps_to_1() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let output = run(&bundle, &key, "exit7", &[], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("exited with status 7"));
}

#[test]
fn time_limit_maps_to_4() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let output = run(&bundle, &key, "spin", &["--timeout-ms", "200"], b"");
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("time limit of 200 ms"));
}

#[test]
fn modified_runner_maps_to_3() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    std::fs::write(bundle.path("local-compute/runners/echo.wasm"), wasm("spin"))
        .expect("replace runner");
    let output = run(&bundle, &key, "echo", &[], b"");
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("modified after signing"));
}

#[test]
fn untrusted_key_maps_to_3() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let other = TestKey::generate();
    let output = run(&bundle, &other, "echo", &[], b"");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn unreadable_trust_file_maps_to_2() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let output = Command::new(env!("CARGO_BIN_EXE_midcore-verify"))
        .arg("run")
        .arg(bundle.root())
        .arg("echo")
        .arg("--trust")
        .arg(bundle.root().join("no-such-key.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("run midcore-verify");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the key file"), "{stderr}");
}

#[test]
fn cache_folder_inside_bundle_maps_to_2() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let keys = tempfile::tempdir().expect("key folder");
    let cache_dir = bundle.root().join("compiled-cache");
    let cache_key = keys.path().join("cache.key");
    let output = run(
        &bundle,
        &key,
        "echo",
        &[
            "--cache-dir",
            cache_dir.to_str().expect("UTF-8 path"),
            "--cache-key",
            cache_key.to_str().expect("UTF-8 path"),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is inside the bundle"), "{stderr}");
    assert!(!cache_dir.exists(), "the rejected cache folder was created");
    assert!(
        !cache_key.exists(),
        "the cache key was created for a rejected run"
    );
}
