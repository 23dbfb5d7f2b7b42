//! Shared set-up for the Azure tests: an in-process emulator with one key, and
//! the probe binary run in a clean environment that trusts only the emulator.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use midcore_e2e::emulator::{Emulator, EmulatorConfig, StartupInfo};
use midcore_verifier::crypto::PublicKey;

/// Name of the key every fixture creates.
pub const KEY: &str = "release";

/// An emulator with a 3072-bit RSA-HSM key named [`KEY`] in a temporary state directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub emulator: Emulator,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let emulator = Emulator::start(EmulatorConfig::loopback(&dir.path().join("state")))
            .expect("emulator starts");
        emulator
            .create_key(KEY, 3072, &["sign", "verify"])
            .expect("key created");
        emulator.reset_stats();
        Self { dir, emulator }
    }

    pub fn info(&self) -> &StartupInfo {
        self.emulator.info()
    }

    /// `azure-kv://` reference of `name` in the emulated vault.
    pub fn reference(&self, name: &str) -> String {
        format!("{}{name}", self.info().key_reference_prefix)
    }

    /// Variables every run needs: trust only the emulator CA and map its host names to loopback.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let info = self.info();
        let resolve = info
            .resolve
            .iter()
            .map(|host| format!("{host}={}", info.listen.ip()))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            (
                "MIDCORE_AZURE_CA_FILE".to_owned(),
                info.ca_cert.display().to_string(),
            ),
            ("MIDCORE_AZURE_RESOLVE".to_owned(), resolve),
            (
                "AZURE_AUTHORITY_HOST".to_owned(),
                info.authority_url.clone(),
            ),
            ("MIDCORE_KV_BACKOFF_BASE_MS".to_owned(), "20".to_owned()),
            ("NO_PROXY".to_owned(), "*".to_owned()),
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
        ]
    }

    /// Variables of `--auth client-secret`.
    pub fn client_secret_env(&self) -> Vec<(String, String)> {
        let info = self.info();
        let mut env = self.base_env();
        env.push(("AZURE_TENANT_ID".to_owned(), info.tenant_id.clone()));
        env.push(("AZURE_CLIENT_ID".to_owned(), info.client_id.clone()));
        env.push(("AZURE_CLIENT_SECRET".to_owned(), info.client_secret.clone()));
        env
    }
}

/// Runs the probe with exactly `env` (nothing inherited) and returns its output.
pub fn probe(args: &[&str], env: &[(String, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_midcore-kv-probe"));
    command.args(args).env_clear();
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("probe runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses the JSON line a successful probe printed.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "probe failed: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("probe prints JSON")
}

/// Checks every signature of a `sign` result against `public_pem` and returns how many there were.
pub fn verify_all(result: &serde_json::Value, public_pem: &str) -> usize {
    let key = PublicKey::from_pem(public_pem.as_bytes()).expect("valid public key");
    let digests = result["digests"].as_array().expect("digests");
    let signatures = result["signatures"].as_array().expect("signatures");
    assert_eq!(digests.len(), signatures.len());
    for (digest, signature) in digests.iter().zip(signatures) {
        let digest: [u8; 32] = hex::decode(digest.as_str().expect("hex"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let signature = STANDARD
            .decode(signature.as_str().expect("base64"))
            .expect("base64");
        key.verify_digest(&digest, &signature)
            .expect("signature verifies");
    }
    signatures.len()
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("script written");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("script made executable");
}
