//! Signing a bundle: sidecars for every WASM module, then the manifest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use midcore_verifier::asar::{Archive, EntryKind};
use midcore_verifier::bundle::{self, BundleError, WalkEntry};
use midcore_verifier::crypto::{KeyId, TrustedKeys};
use midcore_verifier::manifest::{
    self, ArchiveEntryRecord, ArchiveRecord, FileRecord, MANIFEST_PATH, Manifest, PUBLIC_KEY_PATH,
    Product,
};
use midcore_verifier::sidecar::{self, SIDECAR_SUFFIX, Sidecar};

use crate::backend::{SignError, SigningBackend};

/// Labels and settings for one signing run.
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// Product name recorded in the manifest.
    pub product: String,
    /// Product version recorded in the manifest.
    pub version: String,
    /// `SOURCE_DATE_EPOCH`, recorded if set.
    pub source_date_epoch: Option<u64>,
    /// Hashing threads; `None` uses one per core.
    pub threads: Option<usize>,
}

/// Outcome of one signing run: the files written and what they cover.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SignReport {
    /// Path of the written manifest.
    pub manifest: PathBuf,
    /// Path of the written public key.
    pub public_key: PathBuf,
    /// Id of the signing key.
    pub key_id: String,
    /// The backend's key reference (for Key Vault, the versioned key id).
    pub key: String,
    /// Number of files the manifest covers.
    pub files: usize,
    /// Total size of those files in bytes.
    pub bytes: u64,
    /// Number of ASAR archives recorded entry by entry.
    pub archives: usize,
    /// Number of sidecars written.
    pub sidecars: usize,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
}

/// Errors from signing a bundle. The bundle's files change only after every
/// check has passed: sidecars, the public key and the manifest are first written
/// to temporary files, then renamed into place with the manifest last.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignBundleError {
    /// The bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle contains something the manifest cannot cover safely.
    #[error("{path}: {reason}")]
    Unsupported {
        /// Bundle-relative path.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The bundle folder contains no file to cover.
    #[error(
        "the bundle has no files to sign; pass the folder that holds the packaged app (for Electron, its resources/ folder)"
    )]
    Empty,
    /// An ASAR archive is malformed or hostile.
    #[error(transparent)]
    Archive(#[from] midcore_verifier::asar::AsarError),
    /// The backend failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The written result did not verify with the verifier's own code.
    #[error("self-check failed: {0}; nothing was written to build/")]
    SelfCheck(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// File being written.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Signs the bundle at `root` with `backend`.
pub fn sign_bundle(
    root: &Path,
    backend: &dyn SigningBackend,
    options: &SignOptions,
) -> Result<SignReport, SignBundleError> {
    let started = Instant::now();
    let threads = options.threads.unwrap_or_else(bundle::default_threads);
    let key_id = backend.public_key().key_id();
    let mut trusted = TrustedKeys::new();
    trusted.pin_key(backend.public_key().clone());

    // Step 1: walk the bundle and reject what a manifest cannot cover.
    let found = bundle::walk(root)?;
    let mut sizes = BTreeMap::new();
    for (path, entry) in &found {
        match entry {
            WalkEntry::File { size, .. } => {
                manifest::check_relative_path(path).map_err(|reason| unsupported(path, reason))?;
                sizes.insert(path.clone(), *size);
            }
            WalkEntry::Symlink { target } => {
                return Err(unsupported(
                    path,
                    format!(
                        "symbolic links are not supported in a bundle (this one points to {target}); replace it with the file it names"
                    ),
                ));
            }
            WalkEntry::Special => {
                return Err(unsupported(
                    path,
                    "not a regular file; remove it from the bundle".to_owned(),
                ));
            }
        }
    }
    if let Some((first, second)) = manifest::find_case_collision(sizes.keys().map(String::as_str)) {
        return Err(unsupported(
            &second,
            format!(
                "differs from {first} only in letter case; Windows and macOS would treat them as one file; rename one"
            ),
        ));
    }

    if sizes.is_empty() {
        return Err(SignBundleError::Empty);
    }
    // A sidecar is rewritten only beside its module, so one without a module
    // would be signed as an ordinary file and vouch for a module that is gone.
    for path in sizes.keys() {
        if let Some(module) = path.strip_suffix(SIDECAR_SUFFIX)
            && module.ends_with(".wasm")
            && !sizes.contains_key(module)
        {
            return Err(unsupported(
                path,
                format!(
                    "a WASM sidecar whose module {module} is missing; delete the stale sidecar or restore the module"
                ),
            ));
        }
    }

    // Step 2: sign every WASM module, reading each once and signing exactly those bytes.
    let modules: Vec<String> = sizes
        .keys()
        .filter(|path| path.ends_with(".wasm"))
        .cloned()
        .collect();
    let mut module_digests = Vec::with_capacity(modules.len());
    for module in &modules {
        let bytes = std::fs::read(root.join(module)).map_err(|source| BundleError::Io {
            path: root.join(module),
            source,
        })?;
        module_digests.push(midcore_verifier::crypto::sha256(&bytes));
    }
    let signatures = if module_digests.is_empty() {
        Vec::new()
    } else {
        backend.sign_digests(&module_digests)?
    };
    // The sidecars stay in memory until every check has passed; any sidecar
    // already in the bundle is replaced, so it is not hashed below.
    let mut sidecars = Vec::with_capacity(modules.len());
    for ((module, digest), signature) in modules.iter().zip(&module_digests).zip(signatures) {
        let encoded = Sidecar { key_id, signature }.encode();
        sidecar::verify_module_digest(digest, &encoded, &trusted)
            .map_err(|e| SignBundleError::SelfCheck(format!("sidecar of {module}: {e}")))?;
        let sidecar_path = format!("{module}{SIDECAR_SUFFIX}");
        sizes.remove(&sidecar_path);
        sidecars.push((sidecar_path, encoded));
    }

    // Step 3: hash every file, and re-check each sidecar against the module bytes hashed now.
    let paths: Vec<(String, u64)> = sizes
        .iter()
        .map(|(path, size)| (path.clone(), *size))
        .collect();
    let mut files = BTreeMap::new();
    for (path, encoded) in &sidecars {
        files.insert(
            path.clone(),
            FileRecord {
                sha256: midcore_verifier::crypto::sha256(encoded),
                size: encoded.len() as u64,
            },
        );
    }
    for ((path, _), result) in paths.iter().zip(bundle::hash_files(root, &paths, threads)) {
        let digest = result?;
        files.insert(
            path.clone(),
            FileRecord {
                sha256: digest.sha256,
                size: digest.size,
            },
        );
    }
    for (module, signed_digest) in modules.iter().zip(&module_digests) {
        if files[module.as_str()].sha256 != *signed_digest {
            return Err(SignBundleError::SelfCheck(format!(
                "{module} changed while it was being signed; sign again"
            )));
        }
    }

    // Step 4: record every archive entry by entry.
    let mut archives = BTreeMap::new();
    for path in files.keys().filter(|path| path.ends_with(".asar")) {
        archives.insert(path.clone(), record_archive(root, path, &files)?);
    }

    // Step 5: sign the manifest and check the result with the verifier's parser and key handling.
    let manifest = Manifest {
        product: Product {
            name: options.product.clone(),
            version: options.version.clone(),
        },
        key_id,
        source_date_epoch: options.source_date_epoch,
        files,
        archives,
    };
    let signed_bytes = manifest.signed_bytes();
    let digest = midcore_verifier::crypto::sha256(&signed_bytes);
    let signature = backend
        .sign_digests(&[digest])?
        .into_iter()
        .next()
        .ok_or_else(|| {
            SignBundleError::SelfCheck(
                "the backend returned no signature for the manifest".to_owned(),
            )
        })?;
    let encoded = manifest.encode_signed(&signature);
    self_check_manifest(&encoded, &manifest, backend.public_key().key_id(), &trusted)?;

    // Step 6: write every output to a temporary file, then rename them into
    // place with the manifest last, so a failed write leaves the bundle as it was.
    let public_key_path = root.join(PUBLIC_KEY_PATH);
    let manifest_path = root.join(MANIFEST_PATH);
    if let Some(parent) = manifest_path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SignBundleError::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut outputs = StagedOutputs::default();
    for (path, encoded) in &sidecars {
        outputs.stage(&root.join(path), encoded)?;
    }
    outputs.stage(&public_key_path, backend.public_key().to_pem().as_bytes())?;
    outputs.stage(&manifest_path, &encoded)?;
    outputs.commit()?;

    Ok(SignReport {
        manifest: manifest_path,
        public_key: public_key_path,
        key_id: key_id.to_string(),
        key: backend.describe(),
        files: manifest.files.len(),
        bytes: manifest.files.values().map(|record| record.size).sum(),
        archives: manifest.archives.len(),
        sidecars: modules.len(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn unsupported(path: &str, reason: String) -> SignBundleError {
    SignBundleError::Unsupported {
        path: path.to_owned(),
        reason,
    }
}

/// Parses the encoded manifest back with the verifier's strict parser and
/// checks its signature with the verifier's key code.
fn self_check_manifest(
    encoded: &[u8],
    manifest: &Manifest,
    key_id: KeyId,
    trusted: &TrustedKeys,
) -> Result<(), SignBundleError> {
    let parsed =
        manifest::parse_manifest(encoded).map_err(|e| SignBundleError::SelfCheck(e.to_string()))?;
    if parsed.manifest != *manifest {
        return Err(SignBundleError::SelfCheck(
            "the manifest does not read back as written".to_owned(),
        ));
    }
    let key = trusted
        .key(&key_id)
        .ok_or_else(|| SignBundleError::SelfCheck(format!("key {key_id} missing")))?;
    key.verify(&parsed.signed_bytes, &parsed.signature)
        .map_err(|e| SignBundleError::SelfCheck(e.to_string()))
}

/// Records an archive's header hash and every file and link inside it.
/// Hashes are recomputed from the bytes; the header's own `integrity` values
/// must agree with them, or signing stops.
fn record_archive(
    root: &Path,
    path: &str,
    files: &BTreeMap<String, FileRecord>,
) -> Result<ArchiveRecord, SignBundleError> {
    let archive = Archive::open(&root.join(path))?;
    archive.check_integrity()?;
    let mut entries = BTreeMap::new();
    for entry in archive.entries() {
        let record = match &entry.kind {
            EntryKind::Directory { .. } => continue,
            EntryKind::Link { target, .. } => ArchiveEntryRecord::Link {
                target: target.clone(),
            },
            EntryKind::File { unpacked, .. } => {
                let digest = archive.digest_entry(entry)?;
                if *unpacked {
                    let unpacked_path = format!("{path}.unpacked/{}", entry.path);
                    let listed = files.get(&unpacked_path);
                    if listed.map(|record| record.sha256) != Some(digest.sha256) {
                        return Err(unsupported(
                            &unpacked_path,
                            "the unpacked entry's file is missing from the bundle or changed while signing".to_owned(),
                        ));
                    }
                }
                ArchiveEntryRecord::File {
                    size: digest.size,
                    sha256: digest.sha256,
                    blocks: digest.blocks,
                    unpacked: *unpacked,
                }
            }
        };
        entries.insert(entry.path.clone(), record);
    }
    Ok(ArchiveRecord::new(
        archive.header_sha256(),
        archive.header_json().len() as u64,
        entries,
    ))
}

/// Output files written to temporary names beside their targets, renamed into
/// place by [`StagedOutputs::commit`]; dropping it first removes the temporary files.
#[derive(Default)]
struct StagedOutputs {
    /// (temporary path, final path), in the order they are renamed.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl StagedOutputs {
    /// Writes `bytes` to a new temporary file beside `path` and syncs it.
    fn stage(&mut self, path: &Path, bytes: &[u8]) -> Result<(), SignBundleError> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
        // A leftover file from an earlier run with the same process id is
        // removed; create_new then refuses anything that appears in between,
        // a symbolic link included.
        let _ = std::fs::remove_file(&temporary);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(SignBundleError::Write {
                path: path.to_owned(),
                source,
            });
        }
        self.staged.push((temporary, path.to_owned()));
        Ok(())
    }

    /// Renames every staged file into place, in order.
    fn commit(mut self) -> Result<(), SignBundleError> {
        let staged = std::mem::take(&mut self.staged);
        let mut pending = staged.iter();
        for (temporary, path) in pending.by_ref() {
            if let Err(source) = std::fs::rename(temporary, path) {
                // NOTE: renames already done stay done. Sidecars come first and
                // the manifest last, so the bundle then has new sidecars under
                // the old manifest and fails the launch check until signed again.
                let _ = std::fs::remove_file(temporary);
                for (rest, _) in pending {
                    let _ = std::fs::remove_file(rest);
                }
                return Err(SignBundleError::Write {
                    path: path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }
}

impl Drop for StagedOutputs {
    fn drop(&mut self) {
        for (temporary, _) in &self.staged {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Default product name and version: `name` and `version` from `app.asar`'s
/// `package.json` when it has them, else the folder name and `0.0.0`.
pub fn product_defaults(root: &Path) -> (String, String) {
    let folder_name = root
        .canonicalize()
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "bundle".to_owned());
    let from_package = read_package_json(&root.join("app.asar"));
    let name = from_package
        .as_ref()
        .and_then(|(name, _)| name.clone())
        .unwrap_or(folder_name);
    let version = from_package
        .and_then(|(_, version)| version)
        .unwrap_or_else(|| "0.0.0".to_owned());
    (name, version)
}

fn read_package_json(archive_path: &Path) -> Option<(Option<String>, Option<String>)> {
    use std::io::Read as _;
    const MAX_PACKAGE_JSON_LEN: u64 = 1024 * 1024;
    let archive = Archive::open(archive_path).ok()?;
    let entry = archive.entry("package.json")?;
    let mut bytes = Vec::new();
    archive
        .open_entry(entry)
        .ok()?
        .take(MAX_PACKAGE_JSON_LEN)
        .read_to_end(&mut bytes)
        .ok()?;
    let value = midcore_verifier::json::parse(&bytes).ok()?;
    let midcore_verifier::json::Value::Object(object) = value else {
        return None;
    };
    let text = |name: &str| match object.get(name) {
        Some(midcore_verifier::json::Value::String(text))
            if !text.is_empty() && text.len() <= 256 =>
        {
            Some(text.clone())
        }
        _ => None,
    };
    Some((text("name"), text("version")))
}
