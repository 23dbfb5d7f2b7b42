#![cfg(all(feature = "cli", not(feature = "sandbox")))]
//! `midcore-verify` built without the `sandbox` feature: `run` names the rebuild command.

use std::process::Command;

#[test]
fn run_names_sandbox_feature() {
    let output = Command::new(env!("CARGO_BIN_EXE_midcore-verify"))
        .args(["run", "bundle", "echo", "--trust", "key.pem"])
        .output()
        .expect("run midcore-verify");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--features sandbox"), "{stderr}");
}
