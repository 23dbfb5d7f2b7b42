//! Persistent state of the emulator: identities, secrets and RSA keys with their versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// One version of a key. The private key is PKCS#8 DER in standard base64.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyVersion {
    pub version: String,
    pub kty: String,
    pub key_ops: Vec<String>,
    pub pkcs8: String,
    pub enabled: bool,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("kty", &self.kty)
            .finish_non_exhaustive()
    }
}

impl KeyVersion {
    /// Parses the private key.
    pub fn key_pair(&self) -> anyhow::Result<KeyPair> {
        let der = STANDARD
            .decode(&self.pkcs8)
            .context("stored key is not base64")?;
        KeyPair::from_pkcs8(&der).map_err(|err| anyhow::anyhow!("stored key is invalid: {err}"))
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> anyhow::Result<usize> {
        Ok(self.key_pair()?.public_modulus_len() * 8)
    }

    /// The JSON Web Key of the public part, as Key Vault returns it.
    pub fn jwk(&self, kid: &str) -> anyhow::Result<serde_json::Value> {
        let pair = self.key_pair()?;
        let public = pair.public_key();
        Ok(serde_json::json!({
            "kid": kid,
            "kty": self.kty,
            "key_ops": self.key_ops,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }))
    }

    /// Builds the `attributes` object of a key bundle.
    pub fn attributes(&self) -> serde_json::Value {
        let mut attributes = serde_json::json!({
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
            "exportable": false,
        });
        if let Some(nbf) = self.not_before {
            attributes["nbf"] = nbf.into();
        }
        if let Some(exp) = self.expires {
            attributes["exp"] = exp.into();
        }
        attributes
    }
}

/// Everything the emulator keeps in `--state-dir/state.json`.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredState {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub github_request_token: String,
    pub ado_access_token: String,
    pub identity_header: String,
    /// Vault host name, then key name, then versions oldest first.
    pub vaults: BTreeMap<String, BTreeMap<String, Vec<KeyVersion>>>,
}

impl std::fmt::Debug for StoredState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredState")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Random lowercase hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer).expect("the system random generator failed");
    hex::encode(buffer)
}

fn random_guid() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

impl StoredState {
    fn fresh() -> Self {
        Self {
            tenant_id: random_guid(),
            client_id: random_guid(),
            client_secret: format!("emu~{}", random_hex(20)),
            github_request_token: random_hex(24),
            ado_access_token: random_hex(24),
            identity_header: random_hex(16),
            vaults: BTreeMap::new(),
        }
    }

    /// Loads `state.json` from `dir`, or creates a fresh state there.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let path = dir.join("state.json");
        if path.exists() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let state = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            return Ok((state, path));
        }
        let state = Self::fresh();
        state.save(&path)?;
        Ok((state, path))
    }

    /// Writes the state atomically, readable by the owner only.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("serialising the emulator state")?;
        super::tls::write_private_file(path, &bytes)
    }

    /// Adds a new version of `name` in `vault` and returns it.
    pub fn add_version(
        &mut self,
        vault: &str,
        name: &str,
        kty: &str,
        bits: usize,
        key_ops: Vec<String>,
        attributes: &serde_json::Value,
    ) -> anyhow::Result<KeyVersion> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => anyhow::bail!("unsupported RSA key size {other}"),
        };
        let pair =
            KeyPair::generate(size).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| anyhow::anyhow!("PKCS#8 encoding failed"))?;
        let now = now_unix();
        let version = KeyVersion {
            version: random_hex(16),
            kty: kty.to_owned(),
            key_ops,
            pkcs8: STANDARD.encode(pkcs8.as_ref()),
            enabled: attributes
                .get("enabled")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
            not_before: attributes.get("nbf").and_then(serde_json::Value::as_i64),
            expires: attributes.get("exp").and_then(serde_json::Value::as_i64),
            created: now,
            updated: now,
            tags: BTreeMap::new(),
        };
        self.vaults
            .entry(vault.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default()
            .push(version.clone());
        Ok(version)
    }
}
