//! Key references given on the command line, and opening the backend they name.
//!
//! `local:FILE` is a PKCS#8 PEM file (development and tests only);
//! `azure-kv://VAULT_HOST[:PORT]/keys/NAME[/VERSION]` is a Key Vault key,
//! available when the signer is built with the `azure` feature.

use std::path::Path;

use midcore_verifier::crypto::KeyId;

use crate::backend::SigningBackend;
use crate::local::{LocalKey, LocalKeyError};

/// Errors from opening a key reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The reference has no known scheme.
    #[error(
        "invalid key reference {reference:?}: expected local:FILE or azure-kv://VAULT_HOST[:PORT]/keys/NAME[/VERSION]"
    )]
    UnknownScheme {
        /// The rejected reference.
        reference: String,
    },
    /// A local key could not be loaded.
    #[error(transparent)]
    Local(#[from] LocalKeyError),
    /// The reference needs a backend this build does not include.
    #[error(
        "key reference {reference:?} needs the {feature:?} feature, which this build of midcore-sign does not include; rebuild with: cargo build --release --locked -p midcore-signer --features {feature}"
    )]
    NotBuilt {
        /// The reference.
        reference: String,
        /// Cargo feature that adds the backend.
        feature: &'static str,
    },
    /// `--auth` was given for a backend that takes no credentials.
    #[error("--auth {auth} does not apply to {reference}: local keys need no credentials")]
    AuthNotApplicable {
        /// The reference.
        reference: String,
        /// The auth mode given.
        auth: String,
    },
    /// A cloud backend failed; the message names the vault, key and cause.
    #[error("{0}")]
    Cloud(String),
}

/// Facts about a key, as `midcore-sign key info` prints them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// The reference as given.
    pub reference: String,
    /// Key id of the public key (what the verifier pins).
    pub key_id: String,
    /// Modulus size in bits.
    pub bits: u32,
    /// Versioned key identifier in the backend (Key Vault `kid`), if any.
    pub versioned_kid: Option<String>,
    /// Whether the backend reports the key as enabled, if it reports it.
    pub enabled: Option<bool>,
    /// Expiry as RFC 3339 UTC, if the backend sets one.
    pub expires: Option<String>,
    /// Start of validity as RFC 3339 UTC, if the backend sets one.
    pub not_before: Option<String>,
}

impl KeyInfo {
    /// Builds the facts a local key can report.
    pub fn of_backend(reference: &str, backend: &dyn SigningBackend) -> Self {
        let key = backend.public_key();
        let key_id: KeyId = key.key_id();
        Self {
            reference: reference.to_owned(),
            key_id: key_id.to_string(),
            bits: key.bits(),
            versioned_kid: None,
            enabled: None,
            expires: None,
            not_before: None,
        }
    }
}

/// Opens the backend a key reference names. `auth` is the `--auth` value, if given.
pub fn open_backend(
    reference: &str,
    auth: Option<&str>,
) -> Result<Box<dyn SigningBackend>, OpenError> {
    if let Some(path) = reference.strip_prefix("local:") {
        if let Some(auth) = auth {
            return Err(OpenError::AuthNotApplicable {
                reference: reference.to_owned(),
                auth: auth.to_owned(),
            });
        }
        return Ok(Box::new(LocalKey::load(Path::new(path))?));
    }
    if reference.starts_with("azure-kv://") {
        return open_key_vault(reference, auth);
    }
    Err(OpenError::UnknownScheme {
        reference: reference.to_owned(),
    })
}

/// Returns what the backend reports about the key.
pub fn key_info(reference: &str, auth: Option<&str>) -> Result<KeyInfo, OpenError> {
    if reference.starts_with("azure-kv://") {
        return key_vault_info(reference, auth);
    }
    let backend = open_backend(reference, auth)?;
    Ok(KeyInfo::of_backend(reference, backend.as_ref()))
}

#[cfg(feature = "azure")]
fn open_key_vault(
    reference: &str,
    auth: Option<&str>,
) -> Result<Box<dyn SigningBackend>, OpenError> {
    crate::azure::open(reference, auth)
}

#[cfg(feature = "azure")]
fn key_vault_info(reference: &str, auth: Option<&str>) -> Result<KeyInfo, OpenError> {
    crate::azure::info(reference, auth)
}

#[cfg(not(feature = "azure"))]
fn open_key_vault(
    reference: &str,
    _auth: Option<&str>,
) -> Result<Box<dyn SigningBackend>, OpenError> {
    Err(OpenError::NotBuilt {
        reference: reference.to_owned(),
        feature: "azure",
    })
}

#[cfg(not(feature = "azure"))]
fn key_vault_info(reference: &str, _auth: Option<&str>) -> Result<KeyInfo, OpenError> {
    Err(OpenError::NotBuilt {
        reference: reference.to_owned(),
        feature: "azure",
    })
}
