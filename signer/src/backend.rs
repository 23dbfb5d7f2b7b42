//! The one interface every key backend implements.

use midcore_verifier::crypto::{PublicKey, Sha256Digest};

/// Errors from a signing backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The backend could not produce a signature.
    #[error("signing with {key} failed: {reason}")]
    Backend {
        /// Key reference, e.g. `local:release.pem` or a versioned Key Vault kid.
        key: String,
        /// Cause of the failure, with the fix where one is known.
        reason: String,
    },
    /// A signature came back that does not verify under the backend's public key.
    #[error(
        "signature from {key} does not verify under its own public key {key_id}; nothing was written"
    )]
    SelfCheckFailed {
        /// Key reference.
        key: String,
        /// Id of the public key the signature was checked against.
        key_id: String,
    },
}

/// A source of RSA-PSS-SHA256 signatures (salt 32) whose public key is known up front.
///
/// Implementations sign SHA-256 digests, so large inputs are hashed once,
/// locally, and never leave the machine. Every signature a backend returns
/// has already been checked with [`PublicKey::verify_digest`].
pub trait SigningBackend: Send + Sync + std::fmt::Debug {
    /// Public key whose id the manifest and sidecars name.
    fn public_key(&self) -> &PublicKey;

    /// Human-readable key reference for logs and summaries, never a secret
    /// (for Key Vault, the versioned key id the run resolved).
    fn describe(&self) -> String;

    /// Signs each digest and returns the signatures in the same order.
    fn sign_digests(&self, digests: &[Sha256Digest]) -> Result<Vec<Vec<u8>>, SignError>;
}

/// Verifies `signature` over `digest` with the backend's own key, so nothing
/// unverifiable is ever written.
pub fn check_signature(
    backend_key: &PublicKey,
    key: &str,
    digest: &Sha256Digest,
    signature: &[u8],
) -> Result<(), SignError> {
    backend_key
        .verify_digest(digest, signature)
        .map_err(|_| SignError::SelfCheckFailed {
            key: key.to_owned(),
            key_id: backend_key.key_id().to_string(),
        })
}
