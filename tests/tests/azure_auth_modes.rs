//! Every `--auth` mode against the emulator's token, OIDC and managed-identity endpoints.

mod support;

use midcore_e2e::emulator::Faults;
use support::{Fixture, KEY, json, probe, stderr, write_script};

fn federated_env(fixture: &Fixture) -> Vec<(String, String)> {
    let info = fixture.info();
    let mut env = fixture.base_env();
    env.push(("AZURE_TENANT_ID".to_owned(), info.tenant_id.clone()));
    env.push(("AZURE_CLIENT_ID".to_owned(), info.client_id.clone()));
    env
}

fn github_env(fixture: &Fixture) -> Vec<(String, String)> {
    let info = fixture.info();
    let mut env = federated_env(fixture);
    env.push((
        "ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(),
        info.github_oidc_url.clone(),
    ));
    env.push((
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
        info.github_oidc_token.clone(),
    ));
    env
}

#[test]
fn github_oidc_signs() {
    let fixture = Fixture::new();
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "github-oidc", "5"],
        &github_env(&fixture),
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(6));
    assert_eq!(fixture.emulator.stats().assertion_requests, 1);
}

#[test]
fn github_oidc_fetches_assertion_per_token() {
    // Tokens that live 2 s are renewed on every request, and each renewal
    // must present a new GitHub assertion, never a cached one.
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        token_lifetime_secs: Some(2),
        assertion_lifetime_secs: Some(60),
        ..Faults::default()
    });
    let mut env = github_env(&fixture);
    env.push(("MIDCORE_KV_CONCURRENCY".to_owned(), "1".to_owned()));
    json(&probe(
        &["sign", &fixture.reference(KEY), "github-oidc", "3"],
        &env,
    ));
    let stats = fixture.emulator.stats();
    assert!(stats.token_requests > 1, "{stats:?}");
    assert_eq!(stats.assertion_requests, stats.token_requests);
}

#[test]
fn github_oidc_without_permission_is_explained() {
    let fixture = Fixture::new();
    let env: Vec<_> = github_env(&fixture)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("ACTIONS_"))
        .collect();
    let output = probe(&["info", &fixture.reference(KEY), "github-oidc"], &env);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("ACTIONS_ID_TOKEN_REQUEST_URL"),
        "{message}"
    );
    assert!(message.contains("id-token: write"), "{message}");
}

#[test]
fn github_oidc_request_token_stays_secret() {
    let fixture = Fixture::new();
    let mut env: Vec<_> = github_env(&fixture)
        .into_iter()
        .filter(|(name, _)| name != "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .collect();
    env.push((
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
        "wrong-request-token".to_owned(),
    ));
    env.push(("MIDCORE_LOG".to_owned(), "trace".to_owned()));
    let output = probe(&["info", &fixture.reference(KEY), "github-oidc"], &env);
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "no log output to check: {log}"
    );
    assert!(!log.contains("wrong-request-token"), "{log}");
}

/// The variables an Azure DevOps agent sets for `azure-pipelines`, with the OIDC URL given.
fn pipelines_env(fixture: &Fixture, oidc_url: &str) -> Vec<(String, String)> {
    let info = fixture.info();
    let mut env = federated_env(fixture);
    env.push((
        "AZURE_SERVICE_CONNECTION_ID".to_owned(),
        info.ado_service_connection_id.clone(),
    ));
    env.push((
        "SYSTEM_ACCESSTOKEN".to_owned(),
        info.ado_access_token.clone(),
    ));
    env.push(("SYSTEM_OIDCREQUESTURI".to_owned(), oidc_url.to_owned()));
    env
}

#[test]
fn azure_pipelines_signs() {
    let fixture = Fixture::new();
    let env = pipelines_env(&fixture, &fixture.info().ado_oidc_url);
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "azure-pipelines", "2"],
        &env,
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(3));
    assert_eq!(fixture.emulator.stats().assertion_requests, 1);
}

#[test]
fn azure_pipelines_requires_https_oidc_url() {
    let fixture = Fixture::new();
    let plain_http = fixture
        .info()
        .ado_oidc_url
        .replacen("https://", "http://", 1);
    let env = pipelines_env(&fixture, &plain_http);
    let output = probe(&["info", &fixture.reference(KEY), "azure-pipelines"], &env);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("SYSTEM_OIDCREQUESTURI must use https"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fixture.emulator.stats().assertion_requests, 0);
}

#[test]
fn azure_pipelines_without_access_token_is_explained() {
    let fixture = Fixture::new();
    let info = fixture.info();
    let mut env = federated_env(&fixture);
    env.push((
        "AZURE_SERVICE_CONNECTION_ID".to_owned(),
        info.ado_service_connection_id.clone(),
    ));
    env.push((
        "SYSTEM_OIDCREQUESTURI".to_owned(),
        info.ado_oidc_url.clone(),
    ));
    let output = probe(&["info", &fixture.reference(KEY), "azure-pipelines"], &env);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("$(System.AccessToken)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn workload_identity_signs() {
    let fixture = Fixture::new();
    let token_file = fixture.dir.path().join("federated-token");
    std::fs::write(
        &token_file,
        fixture
            .emulator
            .issue_assertion("system:serviceaccount:release:signer"),
    )
    .expect("token file");
    let mut env = federated_env(&fixture);
    env.push((
        "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
        token_file.display().to_string(),
    ));
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "workload-identity", "2"],
        &env,
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(3));
}

#[test]
fn expired_federated_token_is_reported() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        assertion_lifetime_secs: Some(0),
        ..Faults::default()
    });
    let token_file = fixture.dir.path().join("federated-token");
    std::fs::write(
        &token_file,
        fixture
            .emulator
            .issue_assertion("system:serviceaccount:release:signer"),
    )
    .expect("token file");
    let mut env = federated_env(&fixture);
    env.push((
        "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
        token_file.display().to_string(),
    ));
    let output = probe(
        &["info", &fixture.reference(KEY), "workload-identity"],
        &env,
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("700024"), "{}", stderr(&output));
}

#[test]
fn managed_identity_signs() {
    let fixture = Fixture::new();
    let info = fixture.info();
    let mut env = fixture.base_env();
    env.push((
        "IDENTITY_ENDPOINT".to_owned(),
        info.identity_endpoint.clone(),
    ));
    env.push(("IDENTITY_HEADER".to_owned(), info.identity_header.clone()));
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "managed-identity", "2"],
        &env,
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(3));
}

#[test]
fn managed_identity_never_uses_imds() {
    let fixture = Fixture::new();
    let output = probe(
        &["info", &fixture.reference(KEY), "managed-identity"],
        &fixture.base_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("IDENTITY_ENDPOINT"), "{message}");
    assert!(message.contains("never used"), "{message}");
    assert_eq!(fixture.emulator.stats().key_vault_requests, 0);
}

#[test]
fn azure_cli_signs() {
    let fixture = Fixture::new();
    let resource = format!("https://vault.test:{}", fixture.info().listen.port());
    let (token, lifetime) = fixture.emulator.issue_access_token(&resource);
    let bin = fixture.dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin directory");
    let expires_on = midcore_e2e::emulator::now_unix() + lifetime;
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *\"account get-access-token\"*\"--scope {resource}/.default\"*)\n    printf '%s' '{{\"accessToken\":\"{token}\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":{expires_on},\"tokenType\":\"Bearer\"}}' ;;\n  *) echo \"unexpected az call: $*\" >&2; exit 2 ;;\nesac\n"
    );
    write_script(&bin.join("az"), &script);
    let mut env: Vec<_> = fixture
        .base_env()
        .into_iter()
        .filter(|(name, _)| name != "PATH")
        .collect();
    env.push((
        "PATH".to_owned(),
        format!("{}:/usr/bin:/bin", bin.display()),
    ));
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "azure-cli", "2"],
        &env,
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(3));
    assert_eq!(fixture.emulator.stats().token_requests, 0);
}
