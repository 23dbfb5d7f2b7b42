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
fn cache_inside_bundle_maps_to_2() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let outside = tempfile::tempdir().expect("folder outside the bundle");
    let root = bundle.root().to_path_buf();
    let outside_key = outside.path().join("cache.key");
    let outside_dir = outside.path().join("cache");
    // (cache folder, cache key): in each pair one of the two ends up inside the bundle.
    let cases = [
        (root.join("compiled-cache"), outside_key.clone()),
        (root.join("missing/../cache"), outside_key.clone()),
        (root.join("a/b/../../c/d"), outside_key.clone()),
        (
            through_missing_folder(outside.path(), &root.join("e")),
            outside_key.clone(),
        ),
        (outside_dir.clone(), root.join("cache.key")),
        (outside_dir.clone(), root.join("missing/../cache.key")),
    ];
    let before = bundle_listing(&root);
    for (cache_dir, cache_key) in &cases {
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{cache_dir:?} {cache_key:?}: {stderr}"
        );
        assert!(stderr.contains("is inside the bundle"), "{stderr}");
        assert_eq!(bundle_listing(&root), before, "{cache_dir:?} {cache_key:?}");
        assert!(
            !outside_key.exists(),
            "the cache key was created for a rejected run"
        );
        assert!(
            !outside_dir.exists(),
            "the cache folder was created for a rejected run"
        );
    }
}

/// Lists every path under `root`, sorted, to show that a rejected run created nothing.
fn bundle_listing(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("list bundle folder") {
            let path = entry.expect("bundle entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

/// Spells `target` as a path that starts at `from`, enters a folder that does
/// not exist, and climbs back to `/` with `..` before descending to `target`.
fn through_missing_folder(from: &std::path::Path, target: &std::path::Path) -> std::path::PathBuf {
    let mut path = from.join("missing");
    for _ in 0..=from.components().count() {
        path.push("..");
    }
    path.join(target.strip_prefix("/").expect("absolute target"))
}

#[cfg(unix)]
#[test]
fn fifo_cache_key_rejected_without_hanging() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let outside = tempfile::tempdir().expect("folder outside the bundle");
    let fifo = outside.path().join("cache.key");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let pem = write_public_pem(outside.path(), &key);

    let mut child = Command::new(env!("CARGO_BIN_EXE_midcore-verify"))
        .arg("run")
        .arg(bundle.root())
        .arg("echo")
        .arg("--trust")
        .arg(&pem)
        .arg("--cache-dir")
        .arg(outside.path().join("cache"))
        .arg("--cache-key")
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start midcore-verify");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("poll midcore-verify").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("midcore-verify blocked on a FIFO given as --cache-key");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let output = child.wait_with_output().expect("collect output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn unusable_cache_folder_leaves_no_key() {
    let key = TestKey::generate();
    let bundle = bundle(&key);
    let outside = tempfile::tempdir().expect("folder outside the bundle");
    let blocker = outside.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").expect("write file");
    let cache_key = outside.path().join("cache.key");
    let output = run(
        &bundle,
        &key,
        "echo",
        &[
            "--cache-dir",
            blocker.join("cache").to_str().expect("UTF-8 path"),
            "--cache-key",
            cache_key.to_str().expect("UTF-8 path"),
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot create the compiled-code cache folder"),
        "{stderr}"
    );
    assert!(!cache_key.exists(), "a key was created for a rejected run");
}
