//! Signing and key information through the Key Vault backend against the emulator.

mod support;

use support::{Fixture, KEY, json, probe, stderr, verify_all};

#[test]
fn batch_signatures_verify_with_vault_key() {
    let fixture = Fixture::new();
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "20"],
        &fixture.client_secret_env(),
    );
    let result = json(&output);
    let pem = result["public_pem"].as_str().expect("pem");
    assert_eq!(verify_all(&result, pem), 21);
}

#[test]
fn signing_records_versioned_kid() {
    let fixture = Fixture::new();
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "3"],
        &fixture.client_secret_env(),
    ));
    let kid = result["kid"].as_str().expect("kid");
    let prefix = format!("{}/keys/{KEY}/", fixture.info().vault_url);
    assert!(kid.starts_with(&prefix), "{kid}");
    assert_eq!(kid.len(), prefix.len() + 32, "{kid}");
}

#[test]
fn one_client_answers_one_challenge() {
    let fixture = Fixture::new();
    json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "30"],
        &fixture.client_secret_env(),
    ));
    let stats = fixture.emulator.stats();
    assert_eq!(stats.challenges_401, 1);
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.signatures, 31);
}

#[test]
fn pinned_version_is_used_after_rotation() {
    let fixture = Fixture::new();
    let first = json(&probe(
        &["info", &fixture.reference(KEY), "client-secret"],
        &fixture.client_secret_env(),
    ));
    let first_kid = first["versioned_kid"].as_str().expect("kid").to_owned();
    fixture
        .emulator
        .create_key(KEY, 3072, &["sign", "verify"])
        .expect("new version");
    let version = first_kid.rsplit('/').next().expect("version");
    let pinned = format!("{}/{version}", fixture.reference(KEY));
    let result = json(&probe(
        &["sign", &pinned, "client-secret", "2"],
        &fixture.client_secret_env(),
    ));
    assert_eq!(result["kid"].as_str(), Some(first_kid.as_str()));
    assert_eq!(result["key_id"], first["key_id"]);
}

#[test]
fn key_info_reports_size_and_state() {
    let fixture = Fixture::new();
    let info = json(&probe(
        &["info", &fixture.reference(KEY), "client-secret"],
        &fixture.client_secret_env(),
    ));
    assert_eq!(info["bits"], 3072);
    assert_eq!(info["enabled"], true);
    assert!(
        info["key_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{info}"
    );
    assert!(
        info["versioned_kid"]
            .as_str()
            .is_some_and(|kid| kid.contains("/keys/release/")),
        "{info}"
    );
}

#[test]
fn missing_auth_lists_every_mode() {
    let fixture = Fixture::new();
    let output = probe(
        &["info", &fixture.reference(KEY), "-"],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    for mode in [
        "client-secret",
        "github-oidc",
        "azure-pipelines",
        "workload-identity",
        "managed-identity",
        "azure-cli",
    ] {
        assert!(message.contains(mode), "{mode} missing from: {message}");
    }
    assert_eq!(fixture.emulator.stats().key_vault_requests, 0);
}

#[test]
fn missing_secret_is_named() {
    let fixture = Fixture::new();
    let env: Vec<_> = fixture
        .client_secret_env()
        .into_iter()
        .filter(|(name, _)| name != "AZURE_CLIENT_SECRET")
        .collect();
    let output = probe(&["info", &fixture.reference(KEY), "client-secret"], &env);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("AZURE_CLIENT_SECRET"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wrong_secret_fails_without_signing() {
    let fixture = Fixture::new();
    let mut env = fixture.client_secret_env();
    env.retain(|(name, _)| name != "AZURE_CLIENT_SECRET");
    env.push((
        "AZURE_CLIENT_SECRET".to_owned(),
        "not-the-secret".to_owned(),
    ));
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "1"],
        &env,
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("7000215"), "{message}");
    assert!(
        !message.contains("not-the-secret"),
        "the secret leaked: {message}"
    );
    assert_eq!(fixture.emulator.stats().signatures, 0);
}

#[test]
fn unknown_key_is_not_found_once() {
    let fixture = Fixture::new();
    let output = probe(
        &["info", &fixture.reference("absent"), "client-secret"],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("absent"), "{message}");
    assert!(message.contains("midcore.vault.test"), "{message}");
    assert!(message.contains("404"), "{message}");
    assert_eq!(fixture.emulator.stats().key_vault_requests, 1);
}

#[test]
fn untrusted_ca_is_rejected() {
    let fixture = Fixture::new();
    let other = tempfile::tempdir().expect("temporary directory");
    let stranger = midcore_e2e::emulator::Emulator::start(
        midcore_e2e::emulator::EmulatorConfig::loopback(other.path()),
    )
    .expect("second emulator");
    let mut env = fixture.client_secret_env();
    env.retain(|(name, _)| name != "MIDCORE_AZURE_CA_FILE");
    env.push((
        "MIDCORE_AZURE_CA_FILE".to_owned(),
        stranger.info().ca_cert.display().to_string(),
    ));
    let output = probe(&["info", &fixture.reference(KEY), "client-secret"], &env);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("MIDCORE_AZURE_CA_FILE"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fixture.emulator.stats().key_vault_requests, 0);
}

#[test]
fn trace_log_hides_secret_and_tokens() {
    let fixture = Fixture::new();
    let mut env = fixture.client_secret_env();
    env.push(("MIDCORE_LOG".to_owned(), "trace".to_owned()));
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "2"],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "no log output to check"
    );
    assert!(
        !log.contains(&fixture.info().client_secret),
        "client secret in the log"
    );
    // Every access token the emulator issues starts with this encoded JWT header.
    assert!(
        !log.contains("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIs"),
        "access token in the log"
    );
}

#[test]
fn key_without_sign_operation_is_rejected() {
    let fixture = Fixture::new();
    fixture
        .emulator
        .create_key("verify-only", 2048, &["verify"])
        .expect("key created");
    fixture.emulator.reset_stats();
    let output = probe(
        &[
            "sign",
            &fixture.reference("verify-only"),
            "client-secret",
            "1",
        ],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not allow the sign operation"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fixture.emulator.stats().sign_requests, 0);
}
