//! End-to-end: `midcore-sign sign` through Key Vault on the emulator, then
//! `midcore-verify launch` with the exported public key pinned.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Fixture, KEY, stderr};

/// Folder with the workspace's built binaries (`target/<profile>`); the test binary is in its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target folder")
        .to_owned()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build -p midcore-signer --features azure --bins` and `cargo build -p midcore-verifier --bins` first",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str], env: &[(String, String)]) -> Output {
    let mut command = Command::new(binary(name));
    command.args(args).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    )
}

/// Creates a bundle with a real Electron archive, a loose file and `modules` WASM modules.
fn bundle(root: &Path, modules: usize) -> PathBuf {
    let bundle = root.join("resources");
    let runners = bundle.join("local-compute/runners");
    std::fs::create_dir_all(&runners).expect("bundle folders");
    let archive = midcore_e2e::asar_fixtures().join("expected/packthis.asar");
    std::fs::write(
        bundle.join("app.asar"),
        std::fs::read(archive).expect("fixture archive"),
    )
    .expect("archive copied");
    std::fs::write(bundle.join("loose.txt"), b"loose file\n").expect("loose file");
    for index in 0..modules {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        // A custom section makes every module distinct.
        let name = format!("m{index}");
        module.push(0);
        module.push(u8::try_from(name.len() + 1).expect("short name"));
        module.push(u8::try_from(name.len()).expect("short name"));
        module.extend_from_slice(name.as_bytes());
        std::fs::write(runners.join(format!("runner-{index}.wasm")), module)
            .expect("module written");
    }
    bundle
}

#[test]
fn key_vault_bundle_passes_launch_check() {
    let fixture = Fixture::new();
    let env = fixture.client_secret_env();
    let reference = fixture.reference(KEY);
    let bundle = bundle(fixture.dir.path(), 12);

    // 1. Sign through Key Vault.
    let signed = run(
        "midcore-sign",
        &[
            "sign",
            bundle.to_str().expect("utf-8 path"),
            "--key",
            &reference,
            "--auth",
            "client-secret",
            "--product",
            "e2e",
            "--version",
            "1.0.0",
        ],
        &env,
    );
    assert!(signed.status.success(), "{}", text(&signed));
    assert_eq!(fixture.emulator.stats().signatures, 13);

    // 2. Export the public key the verifier pins.
    let pinned = fixture.dir.path().join("release.pub.pem");
    let exported = run(
        "midcore-sign",
        &[
            "key",
            "export-public",
            "--key",
            &reference,
            "--auth",
            "client-secret",
            "--out",
            pinned.to_str().expect("utf-8 path"),
        ],
        &env,
    );
    assert!(exported.status.success(), "{}", text(&exported));

    // 3. The launch check accepts the bundle with that key pinned.
    let launched = run(
        "midcore-verify",
        &[
            "launch",
            bundle.to_str().expect("utf-8 path"),
            "--trust",
            pinned.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert_eq!(launched.status.code(), Some(0), "{}", text(&launched));
}

#[test]
fn key_vault_bundle_fails_with_other_key_pinned() {
    let fixture = Fixture::new();
    let env = fixture.client_secret_env();
    fixture
        .emulator
        .create_key("other", 2048, &["sign", "verify"])
        .expect("second key");
    let bundle = bundle(fixture.dir.path(), 2);
    let signed = run(
        "midcore-sign",
        &[
            "sign",
            bundle.to_str().expect("utf-8 path"),
            "--key",
            &fixture.reference(KEY),
            "--auth",
            "client-secret",
        ],
        &env,
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let pinned = fixture.dir.path().join("other.pub.pem");
    let exported = run(
        "midcore-sign",
        &[
            "key",
            "export-public",
            "--key",
            &fixture.reference("other"),
            "--auth",
            "client-secret",
            "--out",
            pinned.to_str().expect("utf-8 path"),
        ],
        &env,
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let launched = run(
        "midcore-verify",
        &[
            "launch",
            bundle.to_str().expect("utf-8 path"),
            "--trust",
            pinned.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert_ne!(launched.status.code(), Some(0), "{}", text(&launched));
}

#[test]
fn key_info_json_names_versioned_kid() {
    let fixture = Fixture::new();
    let output = run(
        "midcore-sign",
        &[
            "key",
            "info",
            "--key",
            &fixture.reference(KEY),
            "--auth",
            "client-secret",
            "--json",
        ],
        &fixture.client_secret_env(),
    );
    assert!(output.status.success(), "{}", text(&output));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let kid = info["versioned_kid"].as_str().expect("versioned kid");
    assert!(
        kid.starts_with(&format!("{}/keys/{KEY}/", fixture.info().vault_url)),
        "{kid}"
    );
}
