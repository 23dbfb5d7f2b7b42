//! Builds signed test bundles in a temporary folder: RSA-PSS keys made at test
//! time, a manifest listing every file, and a sidecar for every runner.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helpers"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use midcore_verifier::crypto::{KeyId, PublicKey, TrustedKeys, encode_pem, sha256};
use midcore_verifier::launch::{VerifiedManifest, verify_manifest};
use midcore_verifier::manifest::{FileRecord, Manifest, Product};
use midcore_verifier::sidecar::Sidecar;

/// Reads a WAT file from `tests/wat/` and assembles it.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/wat")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A throwaway signing key.
pub struct TestKey {
    pair: KeyPair,
    pub public: PublicKey,
}

impl TestKey {
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der = pair.public_key().as_der().expect("public key DER");
        let public = PublicKey::from_spki_der(der.as_ref()).expect("generated key is valid");
        Self { pair, public }
    }

    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RSA-PSS signing");
        signature
    }

    pub fn sidecar(&self, module: &[u8]) -> Vec<u8> {
        Sidecar {
            key_id: self.key_id(),
            signature: self.sign(module),
        }
        .encode()
    }

    pub fn trusted(&self) -> TrustedKeys {
        let mut trusted = TrustedKeys::new();
        trusted.pin_key(self.public.clone());
        trusted
    }
}

/// Files of a bundle before signing, by bundle-relative path.
pub struct BundleBuilder {
    pub dir: tempfile::TempDir,
    files: BTreeMap<String, Vec<u8>>,
}

impl Default for BundleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleBuilder {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            files: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Adds a file that the manifest will list.
    pub fn file(mut self, path: &str, bytes: &[u8]) -> Self {
        self.files.insert(path.to_owned(), bytes.to_vec());
        self
    }

    /// Adds `local-compute/runners/NAME.wasm` and its sidecar signed by `key`.
    pub fn runner(self, name: &str, module: &[u8], key: &TestKey) -> Self {
        let path = format!("local-compute/runners/{name}.wasm");
        let sidecar = key.sidecar(module);
        self.file(&path, module)
            .file(&format!("{path}.sig"), &sidecar)
    }

    /// Writes every file, then the manifest signed by `key` and its public key.
    pub fn sign(self, key: &TestKey) -> SignedBundle {
        let root = self.root();
        let mut records = BTreeMap::new();
        for (path, bytes) in &self.files {
            let target = root.join(path);
            std::fs::create_dir_all(target.parent().expect("file has a parent"))
                .expect("create folders");
            std::fs::write(&target, bytes).expect("write bundle file");
            records.insert(
                path.clone(),
                FileRecord {
                    sha256: sha256(bytes),
                    size: bytes.len() as u64,
                },
            );
        }
        let manifest = Manifest {
            product: Product {
                name: "sandbox-test".into(),
                version: "1.0.0".into(),
            },
            key_id: key.key_id(),
            source_date_epoch: None,
            files: records,
            archives: BTreeMap::new(),
        };
        let signature = key.sign(&manifest.signed_bytes());
        std::fs::create_dir_all(root.join("build")).expect("create build folder");
        std::fs::write(
            root.join("build/integrity.json"),
            manifest.encode_signed(&signature),
        )
        .expect("write manifest");
        std::fs::write(root.join("build/integrity.pub.pem"), key.public.to_pem())
            .expect("write public key");
        SignedBundle { dir: self.dir }
    }
}

/// A bundle on disk whose manifest is signed.
pub struct SignedBundle {
    pub dir: tempfile::TempDir,
}

impl SignedBundle {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn verify(&self, key: &TestKey) -> VerifiedManifest {
        verify_manifest(self.root(), &key.trusted()).expect("manifest verifies")
    }
}

/// Writes a PEM public key file for `--trust`.
pub fn write_public_pem(dir: &Path, key: &TestKey) -> PathBuf {
    let path = dir.join("trusted.pub.pem");
    std::fs::write(&path, encode_pem("PUBLIC KEY", key.public.spki_der())).expect("write PEM");
    path
}

/// Real modules fetched by `scripts/fetch-real-modules.sh`; `None` skips the
/// test unless `MIDCORE_REQUIRE_REAL_MODULES=1` demands the module.
pub fn real_module(file: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("MIDCORE_REAL_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/real-modules"));
    match std::fs::read(dir.join(file)) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            assert!(
                std::env::var_os("MIDCORE_REQUIRE_REAL_MODULES").is_none(),
                "{file} missing in {}: {error}; run scripts/fetch-real-modules.sh",
                dir.display()
            );
            eprintln!(
                "skipped: {file} not in {}; run scripts/fetch-real-modules.sh",
                dir.display()
            );
            None
        }
    }
}
