//! Regression tests for hostile inputs found by attacking the binaries and library.
#![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use midcore_verifier::ledger::Ledger;
use midcore_verifier::tamper::probe_debug_endpoint;

#[test]
fn debug_probe_stops_trickling_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
        // One header byte every 50 ms for 3 s: each read returns before its own timeout.
        for _ in 0..60 {
            if stream.write_all(b"X").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let started = Instant::now();
    let found = probe_debug_endpoint(address, Duration::from_millis(300));
    let elapsed = started.elapsed();
    assert!(found.is_none());
    assert!(
        elapsed < Duration::from_secs(2),
        "the probe ran for {elapsed:?}"
    );
    server.join().unwrap();
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn ledger_creation_ignores_planted_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"ORIGINAL").unwrap();
    let ledger = dir.path().join("project.ledger");
    std::os::unix::fs::symlink(&victim, dir.path().join("project.ledger.creating")).unwrap();

    let mut opened = Ledger::open(&ledger, "p1").unwrap();
    opened
        .append_evidence("test-kind", midcore_verifier::json::Value::Null)
        .unwrap();
    drop(opened);
    assert_eq!(std::fs::read(&victim).unwrap(), b"ORIGINAL");
    assert!(
        !std::fs::symlink_metadata(&ledger)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[cfg(unix)]
#[test]
fn ledger_lock_symlink_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    let ledger = dir.path().join("project.ledger");
    std::os::unix::fs::symlink(&target, dir.path().join("project.ledger.lock")).unwrap();
    assert!(Ledger::open(&ledger, "p1").is_err());
    assert!(!target.exists(), "the lock symlink's target was created");
}

#[cfg(unix)]
#[test]
fn fifo_ledger_rejected_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("project.ledger");
    mkfifo(&ledger);
    let started = Instant::now();
    let error = Ledger::open(&ledger, "p1").unwrap_err().to_string();
    assert!(error.contains("not a regular file"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[cfg(unix)]
#[test]
fn fifo_files_read_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("integrity.json");
    mkfifo(&fifo);
    let started = Instant::now();
    let error = midcore_verifier::bundle::read_limited(&fifo, 1024).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    let error = midcore_verifier::bundle::open_regular(&fifo).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
