//! The local PEM key backend, for development and tests only.
//!
//! Release keys live in Azure Key Vault or Trusted Signing; a private key in a
//! file is as safe as the file system around it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use midcore_verifier::crypto::{
    DEFAULT_RSA_BITS, MAX_RSA_BITS, MIN_RSA_BITS, PublicKey, Sha256Digest, decode_pem, encode_pem,
};

use crate::backend::{SignError, SigningBackend, check_signature};

const PEM_PRIVATE_LABEL: &str = "PRIVATE KEY";

/// Errors from reading, generating or writing a local key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalKeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not a PKCS#8 RSA private key of an accepted size.
    #[error("{path}: {reason}")]
    InvalidKey {
        /// File involved.
        path: PathBuf,
        /// Reason the key file is rejected.
        reason: String,
    },
    /// The requested modulus size is not one aws-lc can generate.
    #[error("--bits {bits} is not supported: choose 2048, 3072, 4096 or 8192")]
    UnsupportedBits {
        /// Requested size.
        bits: u32,
    },
}

/// A PKCS#8 RSA private key loaded from a PEM file.
pub struct LocalKey {
    path: PathBuf,
    key_pair: KeyPair,
    public_key: PublicKey,
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key never appears in Debug output.
        f.debug_struct("LocalKey")
            .field("path", &self.path)
            .field("key_id", &self.public_key.key_id())
            .finish_non_exhaustive()
    }
}

impl LocalKey {
    /// Loads a `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM file.
    pub fn load(path: &Path) -> Result<Self, LocalKeyError> {
        let text = std::fs::read(path).map_err(|source| LocalKeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |reason: String| LocalKeyError::InvalidKey {
            path: path.to_owned(),
            reason,
        };
        let der = decode_pem(&text, PEM_PRIVATE_LABEL).map_err(|e| {
            invalid(format!(
                "{e}; expected an unencrypted PKCS#8 RSA key as written by `midcore-sign keygen`"
            ))
        })?;
        let key_pair = KeyPair::from_pkcs8(&der)
            .map_err(|e| match e.description_() {
                "TooSmall" => invalid(format!(
                    "RSA keys smaller than {MIN_RSA_BITS} bits are not accepted; make a new key with `midcore-sign keygen`"
                )),
                "TooLarge" => invalid(format!("RSA keys larger than {MAX_RSA_BITS} bits are not accepted")),
                _ => invalid(format!("not a valid PKCS#8 RSA private key ({e})")),
            })?;
        Self::from_key_pair(path.to_owned(), key_pair).map_err(invalid)
    }

    /// Generates a new key of `bits` bits (2048, 3072, 4096 or 8192).
    pub fn generate(bits: u32) -> Result<Self, LocalKeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => return Err(LocalKeyError::UnsupportedBits { bits }),
        };
        debug_assert!((MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits));
        let key_pair = KeyPair::generate(size).map_err(|_| LocalKeyError::InvalidKey {
            path: PathBuf::new(),
            reason: "aws-lc failed to generate an RSA key".to_owned(),
        })?;
        Self::from_key_pair(PathBuf::new(), key_pair).map_err(|reason| LocalKeyError::InvalidKey {
            path: PathBuf::new(),
            reason,
        })
    }

    fn from_key_pair(path: PathBuf, key_pair: KeyPair) -> Result<Self, String> {
        let spki = key_pair
            .public_key()
            .as_der()
            .map_err(|_| "the public key cannot be encoded as SubjectPublicKeyInfo".to_owned())?;
        let public_key = PublicKey::from_spki_der(spki.as_ref()).map_err(|e| e.to_string())?;
        Ok(Self {
            path,
            key_pair,
            public_key,
        })
    }

    /// Writes the private key (PKCS#8 PEM, mode 0600 on Unix) and the public
    /// key (SPKI PEM). Both files are created new: an existing file at either
    /// path is an error, and a failure removes whatever this call created, so
    /// the two files are written together or not at all.
    pub fn write(&self, private_path: &Path, public_path: &Path) -> Result<(), LocalKeyError> {
        let pkcs8: Pkcs8V1Der<'static> =
            self.key_pair
                .as_der()
                .map_err(|_| LocalKeyError::InvalidKey {
                    path: private_path.to_owned(),
                    reason: "aws-lc failed to encode the key as PKCS#8".to_owned(),
                })?;
        let private_pem = encode_pem(PEM_PRIVATE_LABEL, pkcs8.as_ref());
        let public_pem = self.public_key.to_pem();

        let private_file = create_new(private_path, 0o600)?;
        let public_file = match create_new(public_path, 0o644) {
            Ok(file) => file,
            Err(error) => {
                drop(private_file);
                let _ = std::fs::remove_file(private_path);
                return Err(error);
            }
        };
        let written = write_and_sync(private_file, private_path, private_pem.as_bytes())
            .and_then(|()| write_and_sync(public_file, public_path, public_pem.as_bytes()));
        if written.is_err() {
            let _ = std::fs::remove_file(private_path);
            let _ = std::fs::remove_file(public_path);
        }
        written
    }
}

/// Creates `path`, failing if anything already exists there; `mode` applies on Unix.
fn create_new(path: &Path, mode: u32) -> Result<std::fs::File, LocalKeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path).map_err(|source| {
        let exists = source.kind() == std::io::ErrorKind::AlreadyExists;
        LocalKeyError::Io {
            path: path.to_owned(),
            source: if exists {
                std::io::Error::new(
                    source.kind(),
                    "the file already exists and is never overwritten; choose another path or remove it first",
                )
            } else {
                source
            },
        }
    })
}

fn write_and_sync(mut file: std::fs::File, path: &Path, bytes: &[u8]) -> Result<(), LocalKeyError> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| LocalKeyError::Io {
            path: path.to_owned(),
            source,
        })
}

impl SigningBackend for LocalKey {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn describe(&self) -> String {
        format!("local:{}", self.path.display())
    }

    fn sign_digests(&self, digests: &[Sha256Digest]) -> Result<Vec<Vec<u8>>, SignError> {
        let key = self.describe();
        let mut signatures = Vec::with_capacity(digests.len());
        for digest in digests {
            let imported =
                Digest::import_less_safe(digest, &SHA256).map_err(|_| SignError::Backend {
                    key: key.clone(),
                    reason: "invalid digest length".to_owned(),
                })?;
            let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
            self.key_pair
                .sign_digest(&RSA_PSS_SHA256, &imported, &mut signature)
                .map_err(|_| SignError::Backend {
                    key: key.clone(),
                    reason: "aws-lc failed to sign".to_owned(),
                })?;
            check_signature(&self.public_key, &key, digest, &signature)?;
            signatures.push(signature);
        }
        Ok(signatures)
    }
}

/// Default modulus size for `keygen`.
pub const DEFAULT_BITS: u32 = DEFAULT_RSA_BITS;
