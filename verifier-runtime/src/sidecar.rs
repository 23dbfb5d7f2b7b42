//! WASM sidecars (`MODULE.wasm.sig`).
//!
//! A sidecar is the canonical JSON encoding of
//! `{"algorithm": "rsa-pss-sha256", "key_id": "sha256:...", "schema_version": 1, "signature": BASE64}`
//! followed by a line feed. The signature is RSA-PSS-SHA256 (salt 32) over the
//! exact module bytes, so `openssl dgst -sha256 -sigopt rsa_padding_mode:pss
//! -sigopt rsa_pss_saltlen:32 -verify` checks it too. A sidecar alone does not
//! let a module load: the module must also be listed in the verified manifest,
//! which binds it to its path.

use base64::Engine as _;

use crate::crypto::{KeyId, SIGNATURE_ALGORITHM, Sha256Digest, TrustedKeys, sha256};
use crate::json::{self, FieldError, Fields, Object, Value};

/// File name suffix of a sidecar, appended to the module's file name.
pub const SIDECAR_SUFFIX: &str = ".sig";
/// Sidecar schema version.
pub const SIDECAR_SCHEMA_VERSION: u64 = 1;
/// Largest sidecar accepted, in bytes (an 8192-bit signature is 1 KiB).
pub const MAX_SIDECAR_LEN: usize = 16 * 1024;

/// Errors from checking a sidecar.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// The sidecar is malformed.
    #[error("invalid sidecar: {reason}; re-sign the module with midcore-sign")]
    Invalid {
        /// Reason the sidecar is invalid.
        reason: String,
    },
    /// The sidecar names an algorithm other than the one the verifier accepts.
    #[error("sidecar algorithm {found:?} is not accepted; only {SIGNATURE_ALGORITHM:?} is")]
    UnsupportedAlgorithm {
        /// Algorithm named in the sidecar.
        found: String,
    },
    /// The sidecar's key is not pinned, or its public key is not available.
    #[error(
        "sidecar key {key_id} is not trusted: pin its public key (PEM) with --trust, or verify through the bundle's manifest"
    )]
    UntrustedKey {
        /// Key named in the sidecar.
        key_id: KeyId,
    },
    /// The signature does not verify.
    #[error(
        "sidecar signature does not verify over the module bytes: the module or its sidecar was changed after signing"
    )]
    BadSignature(#[source] crate::crypto::SignatureError),
}

impl From<FieldError> for SidecarError {
    fn from(error: FieldError) -> Self {
        Self::Invalid {
            reason: error.to_string(),
        }
    }
}

/// A parsed sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// Key that made the signature.
    pub key_id: KeyId,
    /// Signature over the module bytes.
    pub signature: Vec<u8>,
}

impl Sidecar {
    /// Parses a sidecar strictly: canonical form, known fields, the one accepted algorithm.
    pub fn parse(bytes: &[u8]) -> Result<Self, SidecarError> {
        if bytes.len() > MAX_SIDECAR_LEN {
            return Err(SidecarError::Invalid {
                reason: format!("{} bytes is larger than {MAX_SIDECAR_LEN}", bytes.len()),
            });
        }
        let value = json::parse(bytes).map_err(|e| SidecarError::Invalid {
            reason: e.to_string(),
        })?;
        let mut canonical = json::to_canonical(&value);
        canonical.push(b'\n');
        if canonical != bytes {
            return Err(SidecarError::Invalid {
                reason: "not in canonical form".to_owned(),
            });
        }

        let mut fields = Fields::new(&value, "")?;
        let algorithm = fields.string("algorithm")?;
        if algorithm != SIGNATURE_ALGORITHM {
            return Err(SidecarError::UnsupportedAlgorithm {
                found: algorithm.to_owned(),
            });
        }
        let key_id_text = fields.string("key_id")?;
        let key_id: KeyId = key_id_text
            .parse()
            .map_err(|e: crate::crypto::KeyError| fields.error("key_id", e.to_string()))?;
        let version = fields.u64("schema_version")?;
        if version != SIDECAR_SCHEMA_VERSION {
            return Err(fields
                .error(
                    "schema_version",
                    format!(
                        "version {version} is not supported (expected {SIDECAR_SCHEMA_VERSION})"
                    ),
                )
                .into());
        }
        let encoded = fields.string("signature")?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| {
                fields.error(
                    "signature",
                    format!("not standard base64 with padding ({e})"),
                )
            })?;
        fields.finish()?;
        Ok(Self { key_id, signature })
    }

    /// Encodes the sidecar file.
    pub fn encode(&self) -> Vec<u8> {
        let mut object = Object::new();
        object.insert(
            "algorithm".to_owned(),
            Value::String(SIGNATURE_ALGORITHM.to_owned()),
        );
        object.insert("key_id".to_owned(), Value::String(self.key_id.to_string()));
        object.insert(
            "schema_version".to_owned(),
            json::number_u64(SIDECAR_SCHEMA_VERSION),
        );
        object.insert(
            "signature".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(&self.signature)),
        );
        let mut out = json::to_canonical(&Value::Object(object));
        out.push(b'\n');
        out
    }
}

/// Checks a module's sidecar against the trusted keys and returns the key id
/// that signed it. `trusted` must hold the public key itself (pinned from a PEM,
/// or added by the launch check after it verified the bundle's key).
pub fn verify_module(
    module: &[u8],
    sidecar: &[u8],
    trusted: &TrustedKeys,
) -> Result<KeyId, SidecarError> {
    verify_module_digest(&sha256(module), sidecar, trusted)
}

/// Checks a sidecar like [`verify_module`], given the SHA-256 of the module bytes.
pub fn verify_module_digest(
    digest: &Sha256Digest,
    sidecar: &[u8],
    trusted: &TrustedKeys,
) -> Result<KeyId, SidecarError> {
    let sidecar = Sidecar::parse(sidecar)?;
    let key = trusted
        .key(&sidecar.key_id)
        .ok_or(SidecarError::UntrustedKey {
            key_id: sidecar.key_id,
        })?;
    key.verify_digest(digest, &sidecar.signature)
        .map_err(SidecarError::BadSignature)?;
    Ok(sidecar.key_id)
}
