//! The emulator binary as a person or a CI integration starts it: the startup
//! line, the control interface and state kept across restarts.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use midcore_e2e::emulator::StartupInfo;

/// A running emulator process, stopped when dropped.
struct Running {
    child: Child,
    info: StartupInfo,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(state_dir: &Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_midcore-azure-emulator"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("emulator starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let info: StartupInfo = serde_json::from_str(&line).expect("startup line is JSON");
    Running { child, info }
}

/// Sends one request to the emulator with a client that trusts only its CA.
fn call(
    info: &StartupInfo,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let ca = std::fs::read(&info.ca_cert).expect("CA file");
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).expect("CA PEM"))
        .resolve("login.test", info.listen)
        .no_proxy()
        .build()
        .expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut request = client.request(method.parse().expect("method"), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("response");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    })
}

#[test]
fn startup_line_names_every_endpoint() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let running = start(dir.path(), &[]);
    let info = &running.info;
    assert!(info.listen.ip().is_loopback());
    assert!(
        info.vault_url.starts_with("https://midcore.vault.test:"),
        "{}",
        info.vault_url
    );
    assert!(
        info.authority_url.starts_with("https://login.test:"),
        "{}",
        info.authority_url
    );
    assert!(info.ca_cert.exists());
    assert!(!info.client_secret.is_empty());
    assert!(
        info.github_oidc_url.contains("api-version=2.0"),
        "{}",
        info.github_oidc_url
    );
    assert!(!info.github_oidc_token.is_empty());
    assert!(
        info.ado_oidc_url.starts_with("https://"),
        "{}",
        info.ado_oidc_url
    );
}

#[test]
fn non_loopback_listen_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_midcore-azure-emulator"))
        .args(["--listen", "0.0.0.0:0", "--state-dir"])
        .arg(dir.path())
        .output()
        .expect("emulator runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[test]
fn control_faults_merge_and_report() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let running = start(dir.path(), &[]);
    let faults = format!("{}/faults", running.info.control_url);
    let (status, _) = call(
        &running.info,
        "POST",
        &faults,
        Some(r#"{"throttle_next": 2}"#),
    );
    assert_eq!(status, 200);
    let (status, merged) = call(&running.info, "POST", &faults, Some(r#"{"latency_ms": 5}"#));
    assert_eq!(status, 200);
    assert_eq!(merged["throttle_next"], 2);
    assert_eq!(merged["latency_ms"], 5);
}

#[test]
fn control_rejects_unknown_fault() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let running = start(dir.path(), &[]);
    let faults = format!("{}/faults", running.info.control_url);
    let (status, body) = call(
        &running.info,
        "POST",
        &faults,
        Some(r#"{"throttle_nxet": 2}"#),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("throttle_nxet")),
        "{body}"
    );
}

#[test]
fn github_oidc_endpoint_requires_request_token() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let running = start(dir.path(), &[]);
    let url = format!(
        "{}&audience=api://AzureADTokenExchange",
        running.info.github_oidc_url
    );
    let (status, _) = call(&running.info, "GET", &url, None);
    assert_eq!(status, 401);
}

#[test]
fn restart_keeps_ca_and_keys() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = start(dir.path(), &["--key", "release:2048"]);
    let ca_before = std::fs::read(&first.info.ca_cert).expect("CA file");
    let secret_before = first.info.client_secret.clone();
    drop(first);

    let second = start(dir.path(), &[]);
    assert_eq!(
        std::fs::read(&second.info.ca_cert).expect("CA file"),
        ca_before
    );
    assert_eq!(second.info.client_secret, secret_before);
    let state = std::fs::read_to_string(dir.path().join("state.json")).expect("state file");
    assert!(
        state.contains("\"release\""),
        "the key is missing from the saved state"
    );
}
