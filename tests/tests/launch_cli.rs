//! End-to-end: sign real Electron archives with `midcore-sign` and check them
//! with `midcore-verify launch`, through the real binaries.
#![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Folder with the workspace's built binaries (`target/<profile>`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // The test binary is target/<profile>/deps/<name>.
    exe.parent().unwrap().parent().unwrap().to_owned()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("TF_BUILD")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn fixtures() -> PathBuf {
    midcore_e2e::asar_fixtures()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_tree(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).unwrap();
            make_writable(&target);
        }
    }
}

#[allow(
    clippy::permissions_set_readonly_false,
    reason = "fixtures are read-only; tests edit their copies"
)]
fn make_writable(path: &Path) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
}

struct Signed {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    public_key: PathBuf,
    private_key: PathBuf,
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let private_key = dir.join("dev.key.pem");
    let public_key = dir.join("dev.pub.pem");
    let output = run(
        "midcore-sign",
        &[
            "keygen",
            "--private",
            private_key.to_str().unwrap(),
            "--public",
            public_key.to_str().unwrap(),
            "--bits",
            "2048",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    (private_key, public_key)
}

fn sign(bundle: &Path, private_key: &Path) -> Output {
    let key = format!("local:{}", private_key.display());
    run(
        "midcore-sign",
        &[
            "sign",
            bundle.to_str().unwrap(),
            "--key",
            &key,
            "--product",
            "e2e",
            "--version",
            "1.0.0",
        ],
    )
}

/// A signed copy of the committed example bundle (`examples/bundle`).
fn signed_example_bundle() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("resources");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bundle"),
        &bundle,
    );
    let (private_key, public_key) = keygen(dir.path());
    let output = sign(&bundle, &private_key);
    assert!(output.status.success(), "{}", text(&output));
    Signed {
        _dir: dir,
        bundle,
        public_key,
        private_key,
    }
}

/// A bundle with a real archive and its `.unpacked` folder, a loose file and
/// a WASM module, signed with a throwaway key generated for this test.
fn signed_bundle(archive: &str) -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("resources");
    std::fs::create_dir_all(bundle.join("local-compute/runners")).unwrap();
    std::fs::copy(
        fixtures().join("expected").join(archive),
        bundle.join("app.asar"),
    )
    .unwrap();
    make_writable(&bundle.join("app.asar"));
    let unpacked = fixtures()
        .join("expected")
        .join(format!("{archive}.unpacked"));
    if unpacked.exists() {
        copy_tree(&unpacked, &bundle.join("app.asar.unpacked"));
    }
    std::fs::write(bundle.join("loose.txt"), b"loose file\n").unwrap();
    std::fs::write(
        bundle.join("local-compute/runners/echo.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();

    let (private_key, public_key) = keygen(dir.path());
    let output = sign(&bundle, &private_key);
    assert!(output.status.success(), "{}", text(&output));
    Signed {
        _dir: dir,
        bundle,
        public_key,
        private_key,
    }
}

fn launch(signed: &Signed, extra: &[&str]) -> Output {
    let mut args = vec![
        "launch",
        signed.bundle.to_str().unwrap(),
        "--trust",
        signed.public_key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run("midcore-verify", &args)
}

fn listed_files(bundle: &Path) -> Vec<String> {
    let bytes = std::fs::read(bundle.join("build/integrity.json")).unwrap();
    let parsed = midcore_verifier::manifest::parse_manifest(&bytes).unwrap();
    parsed.manifest.files.keys().cloned().collect()
}

#[test]
fn fixture_archives_sign_and_verify() {
    for archive in [
        "packthis.asar",
        "packthis-unpack.asar",
        "packthis-unpack-dir.asar",
        "packthis-all-unpacked.asar",
        "packthis-unicode-path.asar",
        "packthis-object-prototype.asar",
        "packthis-transformed.asar",
    ] {
        let signed = signed_bundle(archive);
        for mode in ["full", "lazy"] {
            let output = launch(&signed, &["--mode", mode]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{archive} ({mode}): {}",
                text(&output)
            );
        }
    }
}

#[test]
fn any_changed_byte_refused_naming_file() {
    let signed = signed_bundle("packthis-unpack.asar");
    for path in listed_files(&signed.bundle) {
        let full = signed.bundle.join(&path);
        let original = std::fs::read(&full).unwrap();
        for position in [0, original.len() / 2, original.len().saturating_sub(1)] {
            if original.is_empty() {
                break;
            }
            let mut changed = original.clone();
            changed[position] ^= 0x01;
            std::fs::write(&full, &changed).unwrap();
            let output = launch(&signed, &[]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{path} byte {position}: {}",
                text(&output)
            );
            assert!(
                text(&output).contains(&format!("modified: {path}")),
                "{path}: {}",
                text(&output)
            );
        }
        std::fs::write(&full, &original).unwrap();
    }
    assert_eq!(launch(&signed, &[]).status.code(), Some(0));
}

#[test]
fn example_bundle_any_change_refused() {
    let signed = signed_example_bundle();
    for mode in ["full", "lazy"] {
        let output = launch(&signed, &["--mode", mode]);
        assert_eq!(output.status.code(), Some(0), "{mode}: {}", text(&output));
    }
    let files = listed_files(&signed.bundle);
    assert!(
        files
            .iter()
            .any(|path| path.starts_with("app.asar.unpacked/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|path| path.ends_with(".wasm.sig")),
        "{files:?}"
    );
    for path in files {
        let full = signed.bundle.join(&path);
        let original = std::fs::read(&full).unwrap();
        for position in [0, original.len() / 2, original.len() - 1] {
            let mut changed = original.clone();
            changed[position] = !changed[position];
            std::fs::write(&full, &changed).unwrap();
            let output = launch(&signed, &["--json"]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{path} byte {position}: {}",
                text(&output)
            );
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let named = report["drift"]
                .as_array()
                .unwrap()
                .iter()
                .any(|drift| drift["path"] == path.as_str());
            assert!(named, "{path} byte {position}: {report}");
        }
        std::fs::write(&full, &original).unwrap();
    }
}

#[test]
fn every_byte_of_archive_checked() {
    // Flip each byte of the archive in turn, through the library to keep it fast.
    let signed = signed_bundle("packthis-unpack.asar");
    let mut trusted = midcore_verifier::crypto::TrustedKeys::new();
    trusted
        .pin_text(&std::fs::read(&signed.public_key).unwrap())
        .unwrap();
    let archive = signed.bundle.join("app.asar");
    let original = std::fs::read(&archive).unwrap();
    let options = midcore_verifier::launch::LaunchOptions {
        mode: midcore_verifier::launch::Mode::Full,
        threads: Some(1),
    };
    for position in 0..original.len() {
        let mut changed = original.clone();
        changed[position] ^= 0x80;
        std::fs::write(&archive, &changed).unwrap();
        let result = midcore_verifier::launch::check_bundle(&signed.bundle, &trusted, &options);
        assert!(
            result.is_err(),
            "a change at byte {position} of app.asar was not detected"
        );
    }
    std::fs::write(&archive, &original).unwrap();
}

#[test]
fn deleted_file_refused_as_missing() {
    let signed = signed_bundle("packthis-unpack.asar");
    for path in listed_files(&signed.bundle) {
        let full = signed.bundle.join(&path);
        let original = std::fs::read(&full).unwrap();
        std::fs::remove_file(&full).unwrap();
        let output = launch(&signed, &["--mode", "lazy"]);
        assert_eq!(output.status.code(), Some(1), "{path}: {}", text(&output));
        assert!(
            text(&output).contains(&format!("missing: {path}")),
            "{path}: {}",
            text(&output)
        );
        std::fs::write(&full, &original).unwrap();
    }
}

#[test]
fn added_file_refused_as_unexpected() {
    let signed = signed_bundle("packthis.asar");
    for path in [
        "extra.js",
        "app.asar.unpacked/injected.node",
        "local-compute/runners/evil.wasm",
        "build/other.json",
    ] {
        let full = signed.bundle.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, b"payload").unwrap();
        let output = launch(&signed, &["--mode", "lazy"]);
        assert_eq!(output.status.code(), Some(1), "{path}: {}", text(&output));
        assert!(
            text(&output).contains(&format!("unexpected: {path}")),
            "{path}: {}",
            text(&output)
        );
        std::fs::remove_file(&full).unwrap();
    }
}

#[test]
fn missing_sidecar_refused() {
    let signed = signed_bundle("packthis.asar");
    std::fs::remove_file(signed.bundle.join("local-compute/runners/echo.wasm.sig")).unwrap();
    let output = launch(&signed, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("missing: local-compute/runners/echo.wasm.sig"),
        "{}",
        text(&output)
    );
}

#[cfg(unix)]
#[test]
fn symlink_leaving_bundle_refused() {
    let signed = signed_bundle("packthis.asar");
    std::os::unix::fs::symlink("/etc/passwd", signed.bundle.join("escape.js")).unwrap();
    let output = launch(&signed, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("unexpected: escape.js"),
        "{}",
        text(&output)
    );

    let output = sign(&signed.bundle, &signed.private_key);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("escape.js: symbolic links are not supported"),
        "{}",
        text(&output)
    );
}

#[test]
fn json_report_lists_drift() {
    let signed = signed_bundle("packthis-unpack.asar");
    std::fs::write(signed.bundle.join("loose.txt"), b"LOOSE FILE\n").unwrap();
    let output = launch(&signed, &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "refused");
    assert!(report["key_id"].as_str().unwrap().starts_with("sha256:"));
    assert!(report["files_checked"].as_u64().unwrap() > 0);
    assert!(report["bytes_hashed"].as_u64().unwrap() > 0);
    let drift = report["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{report}");
    assert_eq!(drift[0]["path"], "loose.txt");
    assert_eq!(drift[0]["kind"], "modified");
    assert!(drift[0]["expected"].is_string());
    assert!(drift[0]["actual"].is_string());
}

#[test]
fn development_mode_reports_and_continues() {
    let signed = signed_bundle("packthis.asar");
    std::fs::write(signed.bundle.join("loose.txt"), b"changed\n").unwrap();
    let output = launch(
        &signed,
        &["--development", "--", "sh", "-c", "echo shell-started"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("size_mismatch: loose.txt"));
    assert!(text(&output).contains("shell-started"));
}

#[test]
fn command_runs_only_when_verified() {
    let signed = signed_bundle("packthis.asar");
    let output = launch(&signed, &["--", "sh", "-c", "echo shell-started; exit 7"]);
    assert_eq!(output.status.code(), Some(7), "{}", text(&output));
    assert!(text(&output).contains("shell-started"));

    std::fs::write(signed.bundle.join("loose.txt"), b"changed!!!!\n").unwrap();
    let output = launch(&signed, &["--", "sh", "-c", "echo shell-started"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!text(&output).contains("shell-started"));
}

#[test]
fn key_id_trust_accepted_and_wrong_key_refused() {
    let signed = signed_bundle("packthis.asar");
    let key =
        midcore_verifier::crypto::PublicKey::from_pem(&std::fs::read(&signed.public_key).unwrap())
            .unwrap();
    let by_id = run(
        "midcore-verify",
        &[
            "launch",
            signed.bundle.to_str().unwrap(),
            "--trust",
            &key.key_id().to_string(),
        ],
    );
    assert_eq!(by_id.status.code(), Some(0), "{}", text(&by_id));

    let other = format!("sha256:{}", "ab".repeat(32));
    let refused = run(
        "midcore-verify",
        &["launch", signed.bundle.to_str().unwrap(), "--trust", &other],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).contains("is not trusted"),
        "{}",
        text(&refused)
    );
}

#[test]
fn usage_and_io_errors_exit_two() {
    let any_key = format!("sha256:{}", "00".repeat(32));
    let missing = run(
        "midcore-verify",
        &["launch", "/nonexistent/bundle", "--trust", &any_key],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let no_trust = run("midcore-verify", &["launch", "/tmp"]);
    assert_eq!(no_trust.status.code(), Some(2));
    let bad_trust = run(
        "midcore-verify",
        &["launch", "/tmp", "--trust", "sha256:xyz"],
    );
    assert_eq!(bad_trust.status.code(), Some(2));
    assert!(
        text(&bad_trust).contains("invalid key id"),
        "{}",
        text(&bad_trust)
    );
}

#[test]
fn invalid_options_exit_two() {
    let signed = signed_bundle("packthis.asar");
    for (extra, expected) in [
        (&["--threads", "0"][..], "--threads"),
        (&["--log", "nonsense==="][..], "not a valid log filter"),
    ] {
        let output = launch(&signed, extra);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(expected), "{}", text(&output));
    }
}

/// Runs `launch --json` on a bundle that does not exist, so it exits 2, with `extra` after.
fn launch_missing_bundle_json(extra: &[&str]) -> Output {
    let any_key = format!("sha256:{}", "00".repeat(32));
    let mut args = vec![
        "launch",
        "/nonexistent/bundle",
        "--trust",
        &any_key,
        "--json",
    ];
    args.extend_from_slice(extra);
    run("midcore-verify", &args)
}

#[test]
fn json_io_error_prints_object() {
    let output = launch_missing_bundle_json(&[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["verdict"].is_null(), "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/bundle"),
        "{report}"
    );
}

#[test]
fn lazy_mode_rejects_command() {
    let signed = signed_bundle("packthis.asar");
    let output = launch(
        &signed,
        &["--mode", "lazy", "--", "sh", "-c", "echo shell-started"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!text(&output).contains("shell-started"));
    assert!(
        text(&output).contains("--mode lazy cannot guard a COMMAND"),
        "{}",
        text(&output)
    );

    let lazy = launch(&signed, &["--mode", "lazy"]);
    assert_eq!(lazy.status.code(), Some(0), "{}", text(&lazy));
    assert!(
        text(&lazy).contains("packed ASAR entries and runner modules were not hashed"),
        "{}",
        text(&lazy)
    );
}

#[test]
fn lazy_mode_hashes_unloadable_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("resources");
    let runners = bundle.join("local-compute/runners");
    std::fs::create_dir_all(runners.join("grammars")).unwrap();
    let module = b"\0asm\x01\0\0\0";
    for name in [
        "echo.wasm",
        "grammars/lang.wasm",
        "my runner.wasm",
        ".hidden.wasm",
    ] {
        std::fs::write(runners.join(name), module).unwrap();
    }
    let (private_key, public_key) = keygen(dir.path());
    let output = sign(&bundle, &private_key);
    assert!(output.status.success(), "{}", text(&output));
    let signed = Signed {
        _dir: dir,
        bundle,
        public_key,
        private_key,
    };

    // Same-size changes: only a hash can see them.
    for name in [
        "echo.wasm",
        "grammars/lang.wasm",
        "my runner.wasm",
        ".hidden.wasm",
    ] {
        std::fs::write(runners.join(name), b"\0asm\x01\0\0\x01").unwrap();
    }
    let output = launch(&signed, &["--mode", "lazy", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let drifted: Vec<&str> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        drifted,
        [
            "local-compute/runners/.hidden.wasm",
            "local-compute/runners/grammars/lang.wasm",
            "local-compute/runners/my runner.wasm",
        ],
        "a loadable runner is checked when loaded; every other module is hashed"
    );
}

#[test]
fn command_stdout_carries_no_report() {
    let signed = signed_bundle("packthis.asar");
    let output = launch(&signed, &["--json", "--", "sh", "-c", "echo shell-started"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "shell-started\n");
    let report: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(report["verdict"], "verified");
}

#[test]
fn drift_report_says_what_to_do() {
    let signed = signed_bundle("packthis.asar");
    std::fs::write(signed.bundle.join("extra.txt"), b"added\n").unwrap();
    let output = launch(&signed, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("unexpected: extra.txt"), "{stdout}");
    assert!(
        stdout.contains("reinstall the app from a trusted release"),
        "{stdout}"
    );
}

#[test]
fn wasm_command_checks_sidecar_and_manifest() {
    let signed = signed_bundle("packthis.asar");
    let module = signed.bundle.join("local-compute/runners/echo.wasm");
    let module_arg = module.to_str().unwrap();
    let trust = signed.public_key.to_str().unwrap();
    let bundle = signed.bundle.to_str().unwrap();

    let alone = run("midcore-verify", &["wasm", module_arg, "--trust", trust]);
    assert_eq!(alone.status.code(), Some(0), "{}", text(&alone));
    let in_bundle = run(
        "midcore-verify",
        &["wasm", module_arg, "--trust", trust, "--bundle", bundle],
    );
    assert_eq!(in_bundle.status.code(), Some(0), "{}", text(&in_bundle));

    std::fs::write(&module, b"\0asm\x01\0\0\0\0").unwrap();
    let changed = run("midcore-verify", &["wasm", module_arg, "--trust", trust]);
    assert_eq!(changed.status.code(), Some(1));
    assert!(
        text(&changed).contains("does not verify"),
        "{}",
        text(&changed)
    );
    let changed_in_bundle = run(
        "midcore-verify",
        &["wasm", module_arg, "--trust", trust, "--bundle", bundle],
    );
    assert_eq!(changed_in_bundle.status.code(), Some(1));
    assert!(
        text(&changed_in_bundle).contains("differs from the signed manifest"),
        "{}",
        text(&changed_in_bundle)
    );
}

#[test]
fn resigning_gives_identical_signed_bytes() {
    let signed = signed_bundle("packthis-unpack-dir.asar");
    let first = std::fs::read(signed.bundle.join("build/integrity.json")).unwrap();
    let output = sign(&signed.bundle, &signed.private_key);
    assert!(output.status.success(), "{}", text(&output));
    let second = std::fs::read(signed.bundle.join("build/integrity.json")).unwrap();
    let first = midcore_verifier::manifest::parse_manifest(&first).unwrap();
    let second = midcore_verifier::manifest::parse_manifest(&second).unwrap();
    // Sidecars are re-signed with a fresh PSS salt, so their own hashes differ; all else is identical.
    let strip = |mut manifest: midcore_verifier::manifest::Manifest| {
        manifest
            .files
            .retain(|path, _| !path.ends_with(".wasm.sig"));
        manifest.signed_bytes()
    };
    assert_eq!(strip(first.manifest), strip(second.manifest));
}

#[test]
fn hostile_fixture_archives_not_signed() {
    for archive in [
        "input/bad-symlink.asar",
        "electron-spec/cyclic-link.asar",
        "electron-spec/cyclic-link2.asar",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("resources");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::copy(fixtures().join(archive), bundle.join("app.asar")).unwrap();
        let (private_key, _) = keygen(dir.path());
        let output = sign(&bundle, &private_key);
        assert!(!output.status.success(), "{archive} was signed");
        assert!(
            text(&output).contains("app.asar"),
            "{archive}: {}",
            text(&output)
        );
        assert!(
            text(&output).to_lowercase().contains("link"),
            "{archive}: {}",
            text(&output)
        );
        assert!(!bundle.join("build/integrity.json").exists());
    }
}

#[cfg(unix)]
#[test]
fn keygen_writes_private_key_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (private_key, public_key) = keygen(dir.path());
    let mode = std::fs::metadata(&private_key)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let again = run_keygen(&private_key, &public_key);
    assert!(
        !again.status.success(),
        "keygen overwrote an existing private key"
    );

    let small_private = dir.path().join("s.pem");
    let small_public = dir.path().join("s.pub");
    let small = run(
        "midcore-sign",
        &[
            "keygen",
            "--private",
            small_private.to_str().unwrap(),
            "--public",
            small_public.to_str().unwrap(),
            "--bits",
            "1024",
        ],
    );
    assert_eq!(small.status.code(), Some(2), "{}", text(&small));
    assert!(
        text(&small).contains("--bits 1024 is not supported"),
        "{}",
        text(&small)
    );
}

#[test]
fn sign_rejects_empty_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (private_key, _) = keygen(dir.path());
    let bundle = dir.path().join("resources");
    std::fs::create_dir_all(bundle.join("empty-folder")).unwrap();
    let output = sign(&bundle, &private_key);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("the bundle has no files to sign"),
        "{}",
        text(&output)
    );
    assert!(!bundle.join("build").exists());
}

#[test]
fn sign_rejects_sidecar_without_module() {
    let signed = signed_bundle("packthis.asar");
    std::fs::remove_file(signed.bundle.join("local-compute/runners/echo.wasm")).unwrap();
    let manifest_before = std::fs::read(signed.bundle.join("build/integrity.json")).unwrap();
    let output = sign(&signed.bundle, &signed.private_key);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = text(&output);
    assert!(
        message.contains("local-compute/runners/echo.wasm.sig"),
        "{message}"
    );
    assert!(message.contains("delete the stale sidecar"), "{message}");
    assert_eq!(
        std::fs::read(signed.bundle.join("build/integrity.json")).unwrap(),
        manifest_before
    );
}

#[test]
fn failed_resign_leaves_bundle_verified() {
    let signed = signed_bundle("packthis.asar");
    let runners = signed.bundle.join("local-compute/runners");
    let sidecar_before = std::fs::read(runners.join("echo.wasm.sig")).unwrap();
    let manifest_before = std::fs::read(signed.bundle.join("build/integrity.json")).unwrap();

    // An archive whose bytes disagree with its own header's integrity hash is
    // rejected after the modules are signed, so the new sidecars must not land.
    let archive = signed.bundle.join("app.asar");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    let output = sign(&signed.bundle, &signed.private_key);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    assert_eq!(
        std::fs::read(runners.join("echo.wasm.sig")).unwrap(),
        sidecar_before
    );
    assert_eq!(
        std::fs::read(signed.bundle.join("build/integrity.json")).unwrap(),
        manifest_before
    );
    for folder in [&runners, &signed.bundle.join("build")] {
        for entry in std::fs::read_dir(folder).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().contains(".tmp-"),
                "temporary file {name:?} left in {folder:?}"
            );
        }
    }
    bytes[last] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    let output = launch(&signed, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// Runs `scripts/key-rotation.sh` with the binaries under test.
fn key_rotation(args: &[&Path]) -> Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/key-rotation.sh"))
        .args(args)
        .env("SIGN", binary("midcore-sign"))
        .env("VERIFY", binary("midcore-verify"))
        .output()
        .unwrap()
}

#[test]
fn key_rotation_reads_trust_files_strictly() {
    let signed = signed_bundle("packthis.asar");
    let dir = signed.bundle.parent().unwrap().to_path_buf();
    let trust_set = dir.join("trust.txt");
    let output = key_rotation(&[Path::new("trust-set"), &trust_set, &signed.public_key]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let key_id = std::fs::read_to_string(&trust_set)
        .unwrap()
        .trim()
        .to_owned();
    assert!(key_id.starts_with("sha256:"), "{key_id}");

    let accepted = [key_id.clone(), format!("# release key\n\n  {key_id} \r\n")];
    for contents in &accepted {
        let file = dir.join("accepted.txt");
        std::fs::write(&file, contents).unwrap();
        let output = key_rotation(&[Path::new("check"), &signed.bundle, &file]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{contents:?}: {}",
            text(&output)
        );
    }

    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "sha256:zz\n").unwrap();
    let output = key_rotation(&[Path::new("check"), &signed.bundle, &bad]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("is not a key id"),
        "{}",
        text(&output)
    );

    let partial = dir.join("partial.txt");
    let missing = dir.join("missing.pub.pem");
    let output = key_rotation(&[
        Path::new("trust-set"),
        &partial,
        &signed.public_key,
        &missing,
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!partial.exists(), "trust-set wrote a partial list");
}

/// Runs `midcore-sign keygen` with the default key size.
fn run_keygen(private_key: &Path, public_key: &Path) -> Output {
    run(
        "midcore-sign",
        &[
            "keygen",
            "--private",
            private_key.to_str().unwrap(),
            "--public",
            public_key.to_str().unwrap(),
        ],
    )
}

#[test]
fn keygen_never_overwrites_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public_key) = keygen(dir.path());
    let pinned = std::fs::read(&public_key).unwrap();
    let new_private = dir.path().join("new.key.pem");
    let output = run_keygen(&new_private, &public_key);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(std::fs::read(&public_key).unwrap(), pinned);
    assert!(!new_private.exists(), "keygen left a private key behind");
    let message = text(&output);
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(message.matches("already exists").count(), 1, "{message}");
}

#[test]
fn keygen_rejects_one_path_for_both() {
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("key.pem");
    let output = run_keygen(&both, &both);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--private and --public both name"),
        "{}",
        text(&output)
    );
    assert!(!both.exists());
}

#[test]
fn keygen_failure_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let private_key = dir.path().join("k.pem");
    let public_key = dir.path().join("missing-folder/k.pub.pem");
    let output = run_keygen(&private_key, &public_key);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!private_key.exists(), "keygen left a private key behind");
    let message = text(&output);
    assert!(message.contains("missing-folder"), "{message}");
    assert_eq!(message.matches("(os error 2)").count(), 1, "{message}");
}

#[test]
fn lazy_reader_fails_on_changed_block() {
    use std::io::Read;
    let signed = signed_bundle("packthis.asar");
    let mut trusted = midcore_verifier::crypto::TrustedKeys::new();
    trusted
        .pin_text(&std::fs::read(&signed.public_key).unwrap())
        .unwrap();
    let options = midcore_verifier::launch::LaunchOptions {
        mode: midcore_verifier::launch::Mode::Lazy,
        threads: None,
    };

    let verified =
        midcore_verifier::launch::check_bundle(&signed.bundle, &trusted, &options).unwrap();
    let mut good = String::new();
    verified
        .open_packed("app.asar", "file0.txt")
        .unwrap()
        .read_to_string(&mut good)
        .unwrap();
    assert_eq!(good.trim_end(), "file0 content");
    drop(verified);

    // Change the last byte of the archive, which belongs to a packed entry's
    // data: lazy mode still starts, but reading that entry fails.
    let archive_path = signed.bundle.join("app.asar");
    let mut bytes = std::fs::read(&archive_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&archive_path, &bytes).unwrap();
    let verified =
        midcore_verifier::launch::check_bundle(&signed.bundle, &trusted, &options).unwrap();
    let manifest = verified.manifest().manifest();
    let mut failures = 0;
    for (entry_path, record) in manifest.archives["app.asar"].entries().unwrap() {
        if !matches!(
            record,
            midcore_verifier::manifest::ArchiveEntryRecord::File {
                unpacked: false,
                ..
            }
        ) {
            continue;
        }
        let mut content = Vec::new();
        if let Err(error) = verified
            .open_packed("app.asar", entry_path)
            .unwrap()
            .read_to_end(&mut content)
        {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
            assert!(error.to_string().contains(entry_path), "{error}");
            failures += 1;
        }
    }
    assert_eq!(failures, 1, "exactly the changed entry fails to read");
}

/// Builds an archive from a JSON header and a data section, with the pickle prefix Electron writes.
fn archive_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let json_len = u32::try_from(header.len()).unwrap();
    let padded = json_len.div_ceil(4) * 4;
    let header_size = 8 + padded;
    let mut bytes = Vec::new();
    for field in [4, header_size, header_size - 4, json_len] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(16 + padded as usize, 0);
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn multi_block_entries_sign_and_read() {
    use std::io::Read;
    const MIB: usize = 1024 * 1024;
    let exact: Vec<u8> = (0..4 * MIB)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    let big: Vec<u8> = (0..9 * MIB + 7)
        .map(|i| u8::try_from(i % 241).unwrap())
        .collect();
    let header = format!(
        r#"{{"files":{{"empty":{{"size":0,"offset":"0"}},"exact.bin":{{"size":{},"offset":"0"}},"big.bin":{{"size":{},"offset":"{}"}}}}}}"#,
        exact.len(),
        big.len(),
        exact.len()
    );
    let mut data = exact.clone();
    data.extend_from_slice(&big);

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("resources");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("app.asar"), archive_bytes(&header, &data)).unwrap();
    let (private_key, public_key) = keygen(dir.path());
    let output = sign(&bundle, &private_key);
    assert!(output.status.success(), "{}", text(&output));
    let signed = Signed {
        _dir: dir,
        bundle,
        public_key,
        private_key,
    };
    for mode in ["full", "lazy"] {
        assert_eq!(
            launch(&signed, &["--mode", mode]).status.code(),
            Some(0),
            "{mode}"
        );
    }

    let mut trusted = midcore_verifier::crypto::TrustedKeys::new();
    trusted
        .pin_text(&std::fs::read(&signed.public_key).unwrap())
        .unwrap();
    let options = midcore_verifier::launch::LaunchOptions {
        mode: midcore_verifier::launch::Mode::Lazy,
        threads: None,
    };
    let verified =
        midcore_verifier::launch::check_bundle(&signed.bundle, &trusted, &options).unwrap();
    for (entry, expected) in [
        ("exact.bin", &exact),
        ("big.bin", &big),
        ("empty", &Vec::new()),
    ] {
        let mut content = Vec::new();
        verified
            .open_packed("app.asar", entry)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert!(content == *expected, "{entry} read back differently");
    }
    drop(verified);

    // Change one byte in the third block of big.bin: the first two blocks read, then the read fails.
    let archive_path = signed.bundle.join("app.asar");
    let mut bytes = std::fs::read(&archive_path).unwrap();
    let data_start = bytes.len() - data.len();
    bytes[data_start + exact.len() + 8 * MIB + 3] ^= 1;
    std::fs::write(&archive_path, &bytes).unwrap();
    let verified =
        midcore_verifier::launch::check_bundle(&signed.bundle, &trusted, &options).unwrap();
    let mut reader = verified.open_packed("app.asar", "big.bin").unwrap();
    let mut first_blocks = vec![0u8; 8 * MIB];
    reader.read_exact(&mut first_blocks).unwrap();
    assert!(first_blocks[..] == big[..8 * MIB]);
    let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("big.bin"), "{error}");

    let full = launch(&signed, &[]);
    assert_eq!(full.status.code(), Some(1));
    assert!(
        text(&full).contains("modified: app.asar/big.bin"),
        "{}",
        text(&full)
    );
}

#[test]
fn refused_launch_recorded_in_ledger() {
    let signed = signed_bundle("packthis.asar");
    let ledger = signed._dir.path().join("project.ledger");
    std::fs::write(signed.bundle.join("loose.txt"), b"tampered!!!\n").unwrap();
    let ledger_arg = ledger.to_str().unwrap();
    let output = launch(
        &signed,
        &["--ledger", ledger_arg, "--project", "demo-project"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("recorded the refusal as evidence entry"),
        "{}",
        text(&output)
    );

    // The chain replays, and its evidence entry names the drifted file.
    let verify = run(
        "midcore-verify",
        &[
            "ledger",
            "verify",
            ledger_arg,
            "--receipt-key",
            signed.public_key.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let export = signed._dir.path().join("export.jsonl");
    let exported = run(
        "midcore-verify",
        &[
            "ledger",
            "export",
            ledger_arg,
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let lines = std::fs::read_to_string(&export).unwrap();
    assert!(lines.contains("integrity-drift"), "{lines}");
    assert!(lines.contains("loose.txt"), "{lines}");

    // A verified launch adds nothing.
    std::fs::write(signed.bundle.join("loose.txt"), b"loose file\n").unwrap();
    let before = std::fs::metadata(&ledger).unwrap().len();
    assert_eq!(
        launch(
            &signed,
            &["--ledger", ledger_arg, "--project", "demo-project"]
        )
        .status
        .code(),
        Some(0)
    );
    assert_eq!(std::fs::metadata(&ledger).unwrap().len(), before);
}

#[cfg(unix)]
#[test]
fn fifo_manifest_refused_without_hanging() {
    let signed = signed_bundle("packthis.asar");
    for file in ["build/integrity.json", "build/integrity.pub.pem"] {
        let path = signed.bundle.join(file);
        let original = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        let started = std::time::Instant::now();
        let output = launch(&signed, &[]);
        assert_eq!(output.status.code(), Some(1), "{file}: {}", text(&output));
        assert!(
            text(&output).contains("not a regular file"),
            "{file}: {}",
            text(&output)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, original).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_name_refused_as_unexpected() {
    use std::os::unix::ffi::OsStrExt;
    let signed = signed_bundle("packthis.asar");
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff-name.js");
    std::fs::write(signed.bundle.join(name), b"x").unwrap();
    let output = launch(&signed, &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["drift"][0]["kind"], "unexpected", "{report}");
}

#[test]
fn small_private_key_refused_by_signer() {
    let dir = tempfile::tempdir().unwrap();
    let private_key = dir.path().join("k1024.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
        ])
        .arg(&private_key)
        .status()
        .unwrap();
    assert!(status.success());
    let bundle = dir.path().join("resources");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("main.js"), b"x").unwrap();
    let output = sign(&bundle, &private_key);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("smaller than 2048 bits"),
        "{}",
        text(&output)
    );
    assert!(!bundle.join("build").exists());
}

#[test]
fn invalid_midcore_log_variable_only_warns() {
    let signed = signed_bundle("packthis.asar");
    let output = Command::new(binary("midcore-verify"))
        .args([
            "launch",
            signed.bundle.to_str().unwrap(),
            "--trust",
            signed.public_key.to_str().unwrap(),
        ])
        .env("MIDCORE_LOG", "nonsense===")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("TF_BUILD")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("MIDCORE_LOG=\"nonsense===\" is not a valid log filter"),
        "{}",
        text(&output)
    );
}

#[test]
fn json_error_goes_to_stderr_with_command() {
    let output = launch_missing_bundle_json(&["--", "echo", "hi"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(output.stdout.is_empty(), "{}", text(&output));
    let first_line = output.stderr.split(|&b| b == b'\n').next().unwrap();
    let report: serde_json::Value = serde_json::from_slice(first_line).unwrap();
    assert!(report["verdict"].is_null(), "{report}");
}

#[test]
fn file_names_cannot_inject_ci_commands() {
    let signed = signed_bundle("packthis.asar");
    let hostile = "##vso[task.complete result=Succeeded]done.txt";
    std::fs::write(signed.bundle.join(hostile), b"added\n").unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let output = launch(&signed, extra);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let all = text(&output);
        assert!(!all.contains("##vso["), "{all}");
        assert!(
            all.contains("task.complete result=Succeeded]done.txt"),
            "{all}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("resources\n::stop-commands::x");
    copy_tree(&signed.bundle, &bundle);
    let output = sign(&bundle, &signed.private_key);
    assert!(output.status.success(), "{}", text(&output));
    let all = text(&output);
    assert!(
        !all.lines().any(|line| line.starts_with("::")),
        "a path started a line: {all}"
    );
}
