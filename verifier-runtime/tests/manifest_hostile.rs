//! Hostile and malformed manifests, keys and signatures are refused with a clear reason.
#![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding};
use midcore_verifier::crypto::{KeyError, PublicKey, TrustedKeys, sha256};
use midcore_verifier::launch::{self, LaunchError, LaunchOptions, Mode};
use midcore_verifier::manifest::{self, FileRecord, Manifest, ManifestError, Product};

/// Throwaway test key, generated per test run and never written to the repository.
struct TestKey {
    pair: KeyPair,
    public: PublicKey,
}

impl TestKey {
    fn new() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
        let spki = pair.public_key().as_der().expect("encode SPKI");
        let public = PublicKey::from_spki_der(spki.as_ref()).expect("parse SPKI");
        Self { pair, public }
    }

    fn sign_with(&self, encoding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(encoding, &rng, message, &mut signature)
            .expect("sign");
        signature
    }
}

fn sample_manifest(key: &TestKey, files: &[(&str, &[u8])]) -> Manifest {
    let mut records = BTreeMap::new();
    for (path, bytes) in files {
        records.insert(
            (*path).to_owned(),
            FileRecord {
                sha256: sha256(bytes),
                size: bytes.len() as u64,
            },
        );
    }
    Manifest {
        product: Product {
            name: "test".to_owned(),
            version: "1.0.0".to_owned(),
        },
        key_id: key.public.key_id(),
        source_date_epoch: None,
        files: records,
        archives: BTreeMap::new(),
    }
}

fn write_bundle(root: &Path, key: &TestKey, files: &[(&str, &[u8])], manifest_bytes: &[u8]) {
    for (path, bytes) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join(manifest::PUBLIC_KEY_PATH), key.public.to_pem()).unwrap();
    std::fs::write(root.join(manifest::MANIFEST_PATH), manifest_bytes).unwrap();
}

fn trust(key: &TestKey) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    trusted.pin_id(key.public.key_id());
    trusted
}

fn refusal(result: Result<launch::VerifiedBundle, LaunchError>) -> String {
    match result {
        Err(LaunchError::Refused(report)) => report
            .refusal
            .unwrap_or_else(|| format!("{:?}", report.drift)),
        Err(other) => panic!("expected a refusal, got an error: {other}"),
        Ok(_) => panic!("expected a refusal, got a verified bundle"),
    }
}

const FILES: &[(&str, &[u8])] = &[("main.js", b"console.log(1)\n"), ("lib/a.txt", b"alpha")];

#[test]
fn signed_bundle_verifies() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let signature = key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    write_bundle(dir.path(), &key, FILES, &manifest.encode_signed(&signature));

    let verified = launch::check_bundle(dir.path(), &trust(&key), &LaunchOptions::default())
        .expect("verified");
    assert_eq!(verified.report().files_checked, 2);
    assert_eq!(verified.report().bytes_hashed, 20);
}

#[test]
fn pkcs1_v15_signature_refused() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let signature = key.sign_with(&RSA_PKCS1_SHA256, &manifest.signed_bytes());
    write_bundle(dir.path(), &key, FILES, &manifest.encode_signed(&signature));

    let reason = refusal(launch::check_bundle(
        dir.path(),
        &trust(&key),
        &LaunchOptions::default(),
    ));
    assert!(reason.contains("does not verify"), "{reason}");
}

#[test]
fn untrusted_key_refused() {
    let key = TestKey::new();
    let other = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let signature = key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    write_bundle(dir.path(), &key, FILES, &manifest.encode_signed(&signature));

    let reason = refusal(launch::check_bundle(
        dir.path(),
        &trust(&other),
        &LaunchOptions::default(),
    ));
    assert!(reason.contains("is not trusted"), "{reason}");
    assert!(
        reason.contains(&key.public.key_id().to_string()),
        "{reason}"
    );
}

#[test]
fn swapped_public_key_refused() {
    // An attacker re-signs with their own key and puts their public key beside
    // the manifest: the pinned set does not contain it.
    let key = TestKey::new();
    let attacker = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&attacker, FILES);
    let signature = attacker.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    write_bundle(
        dir.path(),
        &attacker,
        FILES,
        &manifest.encode_signed(&signature),
    );

    let reason = refusal(launch::check_bundle(
        dir.path(),
        &trust(&key),
        &LaunchOptions::default(),
    ));
    assert!(reason.contains("is not trusted"), "{reason}");
}

#[test]
fn edited_signed_field_refused() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let signature = key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    let mut edited = manifest.clone();
    edited.product.version = "9.9.9".to_owned();
    write_bundle(dir.path(), &key, FILES, &edited.encode_signed(&signature));

    let reason = refusal(launch::check_bundle(
        dir.path(),
        &trust(&key),
        &LaunchOptions::default(),
    ));
    assert!(reason.contains("does not verify"), "{reason}");
}

#[test]
fn truncated_manifest_refused() {
    let key = TestKey::new();
    let manifest = sample_manifest(&key, FILES);
    let encoded = manifest.encode_signed(&key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes()));
    for cut in [
        0,
        1,
        encoded.len() / 2,
        encoded.len() - 2,
        encoded.len() - 1,
    ] {
        let result = manifest::parse_manifest(&encoded[..cut]);
        assert!(result.is_err(), "a manifest cut at byte {cut} was accepted");
    }
}

#[test]
fn non_canonical_manifest_refused() {
    let key = TestKey::new();
    let manifest = sample_manifest(&key, FILES);
    let encoded = manifest.encode_signed(&key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes()));
    let text = String::from_utf8(encoded).unwrap();
    let spaced = text.replacen("{\"archives\"", "{ \"archives\"", 1);
    let error = manifest::parse_manifest(spaced.as_bytes()).unwrap_err();
    assert!(
        matches!(error, ManifestError::NotCanonical { offset: 1 }),
        "{error}"
    );

    let without_newline = text.trim_end();
    assert!(matches!(
        manifest::parse_manifest(without_newline.as_bytes()),
        Err(ManifestError::NotCanonical { .. })
    ));
}

#[test]
fn replaced_or_reformatted_manifest_named_as_such() {
    let key = TestKey::new();
    let manifest = sample_manifest(&key, FILES);
    let encoded = manifest.encode_signed(&key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes()));
    let text = String::from_utf8(encoded).unwrap();
    let body = text.trim_end();
    let pretty = text.replacen("{\"archives\"", "{\n  \"archives\"", 1);
    let spaced = text.replacen("\":", "\": ", 1);
    let crlf = format!("{body}\r\n");
    let trailing_space = format!("{body} \n");
    let cases: [(&[u8], String); 6] = [
        (b"garbage\n", "(first difference at byte 0)".to_owned()),
        (b"", "(first difference at byte 0)".to_owned()),
        (pretty.as_bytes(), "(first difference at byte 1)".to_owned()),
        (
            spaced.as_bytes(),
            format!(
                "(first difference at byte {})",
                text.find("\":").unwrap() + 2
            ),
        ),
        (
            crlf.as_bytes(),
            format!("(first difference at byte {})", body.len()),
        ),
        (
            trailing_space.as_bytes(),
            format!("(first difference at byte {})", body.len()),
        ),
    ];
    for (bytes, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), &key, FILES, bytes);
        let reason = refusal(launch::check_bundle(
            dir.path(),
            &trust(&key),
            &LaunchOptions::default(),
        ));
        assert!(reason.contains(&expected), "{expected}: {reason}");
        assert!(reason.contains("reinstall the app"), "{reason}");
    }
}

#[test]
fn duplicate_key_manifest_refused() {
    let key = TestKey::new();
    let manifest = sample_manifest(&key, FILES);
    let encoded = manifest.encode_signed(&key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes()));
    let text = String::from_utf8(encoded).unwrap();
    let duplicated = text.replacen("\"key_id\":", "\"key_id\":\"x\",\"key_id\":", 1);
    let error = manifest::parse_manifest(duplicated.as_bytes()).unwrap_err();
    assert!(
        error.to_string().contains("duplicate key \"key_id\""),
        "{error}"
    );
}

#[test]
fn unknown_field_refused() {
    let text = "{\"archives\":{},\"extra\":1,\"files\":{},\"key_id\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"product\":{\"name\":\"a\",\"version\":\"1\"},\"schema_version\":1,\"signature\":{\"algorithm\":\"rsa-pss-sha256\",\"value\":\"\"}}\n";
    let error = manifest::parse_manifest(text.as_bytes()).unwrap_err();
    assert!(
        error.to_string().contains("extra: unknown field"),
        "{error}"
    );
}

fn manifest_with_path(path: &str) -> String {
    format!(
        "{{\"archives\":{{}},\"files\":{{{}:{{\"sha256\":\"{}\",\"size\":1}}}},\"key_id\":\"sha256:{}\",\"product\":{{\"name\":\"a\",\"version\":\"1\"}},\"schema_version\":1,\"signature\":{{\"algorithm\":\"rsa-pss-sha256\",\"value\":\"\"}}}}\n",
        serde_like_quote(path),
        "0".repeat(64),
        "0".repeat(64)
    )
}

fn serde_like_quote(text: &str) -> String {
    let value = midcore_verifier::json::Value::String(text.to_owned());
    String::from_utf8(midcore_verifier::json::to_canonical(&value)).unwrap()
}

#[test]
fn hostile_manifest_paths_refused() {
    for path in [
        "../etc/passwd",
        "a/../b",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\b",
        "C:/x",
        "",
        "a/",
        "a\u{1}b",
    ] {
        let error = manifest::parse_manifest(manifest_with_path(path).as_bytes());
        assert!(error.is_err(), "path {path:?} was accepted");
        let message = error.unwrap_err().to_string();
        assert!(
            message.contains("files["),
            "message does not name the field: {message}"
        );
    }
}

#[test]
fn case_collision_in_manifest_refused() {
    let text = format!(
        "{{\"archives\":{{}},\"files\":{{\"App.js\":{{\"sha256\":\"{z}\",\"size\":1}},\"app.js\":{{\"sha256\":\"{z}\",\"size\":1}}}},\"key_id\":\"sha256:{z}\",\"product\":{{\"name\":\"a\",\"version\":\"1\"}},\"schema_version\":1,\"signature\":{{\"algorithm\":\"rsa-pss-sha256\",\"value\":\"\"}}}}\n",
        z = "0".repeat(64)
    );
    let message = manifest::parse_manifest(text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(message.contains("only in letter case"), "{message}");
}

#[test]
fn small_rsa_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("k1024.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
        ])
        .arg(&private)
        .status()
        .expect("run openssl");
    assert!(status.success());
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(public.status.success());
    let error = PublicKey::from_pem(&public.stdout).unwrap_err();
    assert!(
        matches!(error, KeyError::UnsupportedKeySize { bits: 1024 }),
        "{error}"
    );
}

#[test]
fn pkcs1_public_key_encoding_refused() {
    let key = TestKey::new();
    let pkcs1 = key.pair.public_key().as_ref().to_vec();
    let error = PublicKey::from_spki_der(&pkcs1).unwrap_err();
    assert!(
        matches!(error, KeyError::InvalidPublicKey { .. }),
        "{error}"
    );
}

#[test]
fn missing_manifest_refused() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.js"), b"x").unwrap();
    let reason = refusal(launch::check_bundle(
        dir.path(),
        &trust(&key),
        &LaunchOptions::default(),
    ));
    assert!(reason.contains("the bundle is not signed"), "{reason}");
}

#[test]
fn lazy_mode_verifies_signed_bundle() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let signature = key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    write_bundle(dir.path(), &key, FILES, &manifest.encode_signed(&signature));
    let options = LaunchOptions {
        mode: Mode::Lazy,
        threads: Some(1),
    };
    assert!(launch::check_bundle(dir.path(), &trust(&key), &options).is_ok());
}

/// Writes a bundle whose manifest is `text` with its signature replaced by a
/// real signature over the bytes the verifier will treat as signed.
fn write_resigned(root: &Path, key: &TestKey, text: &str) {
    use base64::Engine as _;
    let placeholder = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 256]);
    let parts = manifest::split_signature(text.as_bytes()).unwrap();
    let signature = key.sign_with(&RSA_PSS_SHA256, &parts.signed_bytes);
    let signed = text.replace(
        &placeholder,
        &base64::engine::general_purpose::STANDARD.encode(signature),
    );
    write_bundle(root, key, FILES, signed.as_bytes());
}

fn both_modes_refuse(root: &Path, key: &TestKey) {
    for mode in [Mode::Full, Mode::Lazy] {
        let options = LaunchOptions {
            mode,
            threads: Some(1),
        };
        let reason = refusal(launch::check_bundle(root, &trust(key), &options));
        assert!(reason.contains("canonical"), "{mode:?}: {reason}");
    }
}

#[test]
fn signed_non_canonical_manifest_refused_in_both_modes() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample_manifest(&key, FILES);
    let mut text = String::from_utf8(manifest.encode_signed(&[0u8; 256])).unwrap();
    text.insert(1, ' ');
    write_resigned(dir.path(), &key, &text);
    both_modes_refuse(dir.path(), &key);
}

#[test]
fn signature_after_epoch_refused_in_both_modes() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = sample_manifest(&key, FILES);
    manifest.source_date_epoch = Some(1_700_000_000);
    let text = String::from_utf8(manifest.encode_signed(&[0u8; 256])).unwrap();
    let start = text.find(",\"signature\":").unwrap();
    let end = start + text[start..].find('}').unwrap() + 1;
    let member = text[start..end].to_owned();
    let mut moved = text.replacen(&member, "", 1);
    let close = moved.rfind('}').unwrap();
    moved.insert_str(close, &member);
    // The signed bytes are unchanged, so only the canonical-position check can refuse it.
    let signature = key.sign_with(&RSA_PSS_SHA256, &manifest.signed_bytes());
    use base64::Engine as _;
    let placeholder = base64::engine::general_purpose::STANDARD.encode([0u8; 256]);
    let moved = moved.replace(
        &placeholder,
        &base64::engine::general_purpose::STANDARD.encode(signature),
    );
    write_bundle(dir.path(), &key, FILES, moved.as_bytes());
    both_modes_refuse(dir.path(), &key);
}

#[test]
fn signed_unsorted_entries_refused_when_read() {
    // A trusted key signed an archive entry list that is not canonical: lazy
    // mode defers the list, and refuses it when it is first parsed.
    let raw = r#"{"b":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000","size":1,"type":"file"},"a":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000","size":1,"type":"file"}}"#;
    let zeros = "0".repeat(64);
    let signed = format!(
        "{{\"archives\":{{\"app.asar\":{{\"entries\":{raw},\"header_sha256\":\"{zeros}\",\"header_size\":2}}}},\"files\":{{\"app.asar\":{{\"sha256\":\"{zeros}\",\"size\":1}}}},\"key_id\":\"sha256:{zeros}\",\"product\":{{\"name\":\"a\",\"version\":\"1\"}},\"schema_version\":1}}"
    );
    let parsed = manifest::parse_verified_deferring_entries(signed.as_bytes()).unwrap();
    let error = parsed.archives["app.asar"]
        .entries()
        .unwrap_err()
        .to_string();
    assert!(error.contains("canonical"), "{error}");
}
