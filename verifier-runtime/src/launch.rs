//! The launch check: is this bundle exactly what the release key signed?
//!
//! An embedding application calls [`check_bundle`] before it loads anything
//! from the bundle. Only this module constructs [`VerifiedManifest`] and
//! [`VerifiedBundle`], so holding one proves the checks ran.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::asar::{Archive, EntryDigest, VerifiedEntryReader};
use crate::bundle::{self, BundleError, WalkEntry};
use crate::crypto::{KeyId, PublicKey, SIGNATURE_ALGORITHM, Sha256, Sha256Digest, TrustedKeys};
use crate::manifest::{
    self, ArchiveEntryRecord, ArchiveRecord, FileRecord, MANIFEST_PATH, Manifest, PUBLIC_KEY_PATH,
};

/// Largest public-key PEM accepted, in bytes.
const MAX_PUBLIC_KEY_LEN: u64 = 64 * 1024;

/// Folder, relative to the bundle, that contains runner modules. Lazy mode leaves
/// `*.wasm` files here to the runner loader, which checks each in full.
pub const RUNNERS_DIR: &str = "local-compute/runners";
/// Maximum length of a runner name, in bytes.
pub const MAX_RUNNER_NAME_LEN: usize = 64;

/// How much of the bundle the launch check hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Hash every covered byte.
    #[default]
    Full,
    /// Check the signature, ASAR headers, the file set and sizes, and hash only
    /// files the shell reads without going through the verifier.
    Lazy,
}

impl Mode {
    /// Name as used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Lazy => "lazy",
        }
    }
}

/// Options for [`check_bundle`].
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// Full or lazy.
    pub mode: Mode,
    /// Hashing threads; `None` uses one per core.
    pub threads: Option<usize>,
}

/// Kind of difference between the bundle and its manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftKind {
    /// The file's bytes differ from the signed hash.
    Modified,
    /// A listed file is not there.
    Missing,
    /// A file (or link, or special file) is there that the manifest does not list.
    Unexpected,
    /// An ASAR archive's header differs from the signed header hash.
    HeaderMismatch,
    /// The file's size differs from the signed size.
    SizeMismatch,
}

impl DriftKind {
    /// Name as used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Modified => "modified",
            DriftKind::Missing => "missing",
            DriftKind::Unexpected => "unexpected",
            DriftKind::HeaderMismatch => "header_mismatch",
            DriftKind::SizeMismatch => "size_mismatch",
        }
    }
}

/// One difference between the bundle and its manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// Bundle-relative path; entries inside an archive are `ARCHIVE/ENTRY`, as Electron names them.
    pub path: String,
    /// What differs.
    pub kind: DriftKind,
    /// Value the manifest records (a hash, a size), if any.
    pub expected: Option<String>,
    /// Value found on disk, if any.
    pub actual: Option<String>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.path)?;
        if let Some(expected) = &self.expected {
            write!(f, " (expected {expected}")?;
            match &self.actual {
                Some(actual) => write!(f, ", found {actual})")?,
                None => write!(f, ")")?,
            }
        } else if let Some(actual) = &self.actual {
            write!(f, " ({actual})")?;
        }
        Ok(())
    }
}

/// The outcome of a launch check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything matched.
    Verified,
    /// Something failed; see the report.
    Refused,
}

impl Verdict {
    /// Name as used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Refused => "refused",
        }
    }
}

/// Outcome and statistics of one launch check.
#[derive(Clone, Debug)]
pub struct LaunchReport {
    /// The verdict.
    pub verdict: Verdict,
    /// Mode used.
    pub mode: Mode,
    /// Id of the manifest's signing key, once its public key was read.
    pub key_id: Option<KeyId>,
    /// Files compared with the manifest (presence and size).
    pub files_checked: u64,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// Every difference found, sorted by path.
    pub drift: Vec<Drift>,
    /// Reason the bundle was refused before its files were compared (bad,
    /// missing or untrusted signature), if it was.
    pub refusal: Option<String>,
    /// Wall-clock time of the check, in milliseconds.
    pub duration_ms: u64,
}

/// Errors from the launch check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The bundle was refused, and the report gives the reason.
    #[error("bundle refused: {}", refusal_summary(.0))]
    Refused(Box<LaunchReport>),
    /// The bundle could not be read, so no verdict was reached.
    #[error("{0}")]
    Io(#[from] BundleError),
}

fn refusal_summary(report: &LaunchReport) -> String {
    if let Some(reason) = &report.refusal {
        return reason.clone();
    }
    let shown: Vec<String> = report
        .drift
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect();
    let more = report.drift.len().saturating_sub(shown.len());
    let mut text = format!(
        "{} file(s) drifted from the signed manifest: {}",
        report.drift.len(),
        shown.join("; ")
    );
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

/// A manifest whose signature verified under a pinned key. Only the launch
/// check constructs it; its files have not necessarily been hashed.
#[derive(Clone, Debug)]
pub struct VerifiedManifest {
    root: PathBuf,
    manifest: Manifest,
    public_key: PublicKey,
    trusted: TrustedKeys,
}

impl VerifiedManifest {
    /// Returns the bundle folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the manifest's content.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Id of the key that signed the manifest.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// Returns the record of one bundle-relative path.
    pub fn file(&self, path: &str) -> Option<&FileRecord> {
        self.manifest.files.get(path)
    }

    /// Returns the pinned keys plus the manifest's own public key (whose id is pinned),
    /// for checking sidecars.
    pub fn trusted_keys(&self) -> &TrustedKeys {
        &self.trusted
    }
}

/// A bundle that passed the launch check.
#[derive(Debug)]
pub struct VerifiedBundle {
    manifest: VerifiedManifest,
    report: LaunchReport,
    /// Archives opened by [`VerifiedBundle::open_packed`], by bundle path.
    archives: Mutex<BTreeMap<String, Arc<Archive>>>,
}

impl VerifiedBundle {
    /// Returns the verified manifest.
    pub fn manifest(&self) -> &VerifiedManifest {
        &self.manifest
    }

    /// Returns the check's outcome and statistics.
    pub fn report(&self) -> &LaunchReport {
        &self.report
    }

    /// Opens a packed archive entry for reading; each 4 MiB block is checked
    /// against the manifest before any of its bytes are returned.
    ///
    /// The archive's header is read and parsed on the first call for that
    /// archive, and refused unless its bytes still hash to the signed header hash.
    pub fn open_packed(
        &self,
        archive_path: &str,
        entry_path: &str,
    ) -> Result<VerifiedEntryReader, LaunchError> {
        let path = self.manifest.root.join(archive_path);
        let failure = |reason: String| {
            LaunchError::Io(BundleError::Io {
                path: path.join(entry_path),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
            })
        };
        let archive_record = self
            .manifest
            .manifest
            .archives
            .get(archive_path)
            .ok_or_else(|| failure("not a signed archive".to_owned()))?;
        let entries = archive_record
            .entries()
            .map_err(|e| failure(e.to_string()))?;
        let Some(ArchiveEntryRecord::File {
            size,
            sha256,
            blocks,
            ..
        }) = entries.get(entry_path)
        else {
            return Err(failure("not a file entry of the signed archive".to_owned()));
        };
        let archive = self
            .open_archive(archive_path, archive_record)
            .map_err(failure)?;
        let entry = archive
            .entry(entry_path)
            .ok_or_else(|| failure("entry not in the archive header".to_owned()))?;
        let expected = EntryDigest {
            size: *size,
            sha256: *sha256,
            blocks: blocks.clone(),
        };
        archive
            .open_verified(entry, &expected)
            .map_err(|e| failure(e.to_string()))
    }

    fn open_archive(
        &self,
        archive_path: &str,
        record: &ArchiveRecord,
    ) -> Result<Arc<Archive>, String> {
        let mut cache = self
            .archives
            .lock()
            .map_err(|_| "archive cache lock poisoned".to_owned())?;
        if let Some(archive) = cache.get(archive_path) {
            return Ok(Arc::clone(archive));
        }
        let archive = open_signed_archive(&self.manifest.root, archive_path, record)?;
        let archive = Arc::new(archive);
        cache.insert(archive_path.to_owned(), Arc::clone(&archive));
        Ok(archive)
    }
}

/// Opens and parses an archive, and checks that the header bytes it parsed
/// hash to the signed header hash.
fn open_signed_archive(
    root: &Path,
    archive_path: &str,
    record: &ArchiveRecord,
) -> Result<Archive, String> {
    Archive::open_expecting(
        &root.join(archive_path),
        &record.header_sha256,
        record.header_size,
    )
    .map_err(|e| e.to_string())
}

/// Failure to compute an archive's header digest.
#[derive(Clone, Debug)]
enum HeaderProblem {
    /// Opening or reading the file failed, so no verdict can be reached.
    Unreadable {
        kind: std::io::ErrorKind,
        message: String,
    },
    /// The bytes read are not a valid header prefix, or end early.
    Invalid(String),
}

impl HeaderProblem {
    fn unreadable(error: &std::io::Error) -> Self {
        Self::Unreadable {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// Reads an archive's 16-byte prefix and JSON header and returns the
/// header's SHA-256 and length, without parsing the JSON.
fn read_header_digest(path: &Path) -> Result<(Sha256Digest, u64), HeaderProblem> {
    let (mut file, metadata) =
        bundle::open_regular_no_follow(path).map_err(|e| HeaderProblem::unreadable(&e))?;
    let mut prefix = [0u8; 16];
    file.read_exact(&mut prefix).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            HeaderProblem::Invalid("the file ends inside the 16-byte header prefix".to_owned())
        } else {
            HeaderProblem::unreadable(&e)
        }
    })?;
    let layout = crate::asar::parse_header(&prefix, metadata.len())
        .map_err(|e| HeaderProblem::Invalid(e.in_archive(path).to_string()))?;
    let (digest, read) = Sha256::digest_reader((&mut file).take(layout.json_len))
        .map_err(|e| HeaderProblem::unreadable(&e))?;
    if read != layout.json_len {
        return Err(HeaderProblem::Invalid(format!(
            "the header is truncated ({read} of {} bytes)",
            layout.json_len
        )));
    }
    Ok((digest, layout.json_len))
}

fn refused(mode: Mode, key_id: Option<KeyId>, reason: String, started: Instant) -> LaunchError {
    LaunchError::Refused(Box::new(LaunchReport {
        verdict: Verdict::Refused,
        mode,
        key_id,
        files_checked: 0,
        bytes_hashed: 0,
        drift: Vec::new(),
        refusal: Some(reason),
        duration_ms: elapsed_ms(started),
    }))
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reads the manifest and its public key, checks that the key is pinned and
/// that the signature verifies. Does not hash the bundle's files.
pub fn verify_manifest(
    root: &Path,
    trusted: &TrustedKeys,
) -> Result<VerifiedManifest, LaunchError> {
    verify_manifest_in(root, trusted, Mode::Lazy, Instant::now())
}

fn verify_manifest_in(
    root: &Path,
    trusted: &TrustedKeys,
    mode: Mode,
    started: Instant,
) -> Result<VerifiedManifest, LaunchError> {
    // Step 1: the bundle folder must exist; anything else is a refusal, not an I/O error.
    let metadata = std::fs::metadata(root).map_err(|source| BundleError::Io {
        path: root.to_owned(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(BundleError::Io {
            path: root.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "the bundle must be a folder",
            ),
        }
        .into());
    }
    if trusted.is_empty() {
        return Err(refused(
            mode,
            None,
            "no trusted keys are configured: pass at least one --trust KEY".to_owned(),
            started,
        ));
    }

    // Step 2: the public key next to the manifest, accepted only if pinned.
    let key_path = root.join(PUBLIC_KEY_PATH);
    let key_pem = bundle::read_limited(&key_path, MAX_PUBLIC_KEY_LEN).map_err(|e| {
        refused(
            mode,
            None,
            format!("{PUBLIC_KEY_PATH}: cannot be read ({e}); the bundle is not signed"),
            started,
        )
    })?;
    let public_key = PublicKey::from_pem(&key_pem)
        .map_err(|e| refused(mode, None, format!("{PUBLIC_KEY_PATH}: {e}"), started))?;
    let key_id = public_key.key_id();
    trusted.check(&public_key).map_err(|e| {
        refused(
            mode,
            Some(key_id),
            format!("{PUBLIC_KEY_PATH}: {e}"),
            started,
        )
    })?;

    // Step 3: the manifest's signed bytes and signature, found without parsing it.
    let manifest_path = root.join(MANIFEST_PATH);
    let bytes = bundle::read_limited(&manifest_path, manifest::MAX_MANIFEST_LEN).map_err(|e| {
        refused(
            mode,
            Some(key_id),
            format!("{MANIFEST_PATH}: cannot be read ({e}); the bundle is not signed"),
            started,
        )
    })?;
    let parts = manifest::split_signature(&bytes)
        .map_err(|e| refused(mode, Some(key_id), e.to_string(), started))?;

    // Step 4: the signature, with the algorithm fixed here rather than read
    // from the file, checked before any manifest content is interpreted.
    if parts.algorithm != SIGNATURE_ALGORITHM {
        return Err(refused(
            mode,
            Some(key_id),
            format!(
                "{MANIFEST_PATH}: signature.algorithm {:?} is not accepted; only {SIGNATURE_ALGORITHM:?} is",
                parts.algorithm
            ),
            started,
        ));
    }
    public_key.verify(&parts.signed_bytes, &parts.signature).map_err(|e| {
        // A reformatted file keeps the signature's shape but not the signed
        // bytes, so the reformatting is the more useful reason to report.
        let reason = match manifest::diagnose_form(&bytes) {
            Some(form) => form.to_string(),
            None => format!(
                "{MANIFEST_PATH}: {e}; the manifest was changed after signing or signed by another key"
            ),
        };
        refused(mode, Some(key_id), reason, started)
    })?;

    // Step 5: parse the authenticated bytes. Full mode parses everything
    // strictly and checks the canonical form again. Lazy mode leaves archive
    // entry lists to be parsed when an entry is first read.
    let manifest = match mode {
        Mode::Full => {
            let parsed = manifest::parse_manifest(&bytes)
                .map_err(|e| refused(mode, Some(key_id), e.to_string(), started))?;
            if parsed.signed_bytes != parts.signed_bytes {
                return Err(refused(
                    mode,
                    Some(key_id),
                    format!(
                        "{MANIFEST_PATH}: the signature member is not where the canonical encoding puts it"
                    ),
                    started,
                ));
            }
            parsed.manifest
        }
        Mode::Lazy => manifest::parse_verified_deferring_entries(&parts.signed_bytes)
            .map_err(|e| refused(mode, Some(key_id), e.to_string(), started))?,
    };
    if manifest.key_id != key_id {
        return Err(refused(
            mode,
            Some(key_id),
            format!(
                "{MANIFEST_PATH}: names key {} but {PUBLIC_KEY_PATH} holds key {key_id}",
                manifest.key_id
            ),
            started,
        ));
    }

    let mut with_key = trusted.clone();
    with_key.pin_key(public_key.clone());
    Ok(VerifiedManifest {
        root: root.to_owned(),
        manifest,
        public_key,
        trusted: with_key,
    })
}

/// Runs the launch check on the bundle at `root`.
pub fn check_bundle(
    root: &Path,
    trusted: &TrustedKeys,
    options: &LaunchOptions,
) -> Result<VerifiedBundle, LaunchError> {
    let started = Instant::now();
    let mode = options.mode;
    let threads = options.threads.unwrap_or_else(bundle::default_threads);

    // Steps 1-5 run on two threads: this one walks the bundle and, in lazy
    // mode, hashes the archive headers and the files lazy mode covers, while
    // the other verifies the manifest. Nothing read here is trusted until it
    // is compared with the verified manifest below.
    let (verified, found, prehashed) = std::thread::scope(|scope| {
        let manifest_thread = scope.spawn(|| verify_manifest_in(root, trusted, mode, started));
        let walked = bundle::walk(root);
        let prehashed = match (&walked, mode) {
            (Ok(found), Mode::Lazy) => prehash_lazy(root, found),
            _ => Prehashed::default(),
        };
        let verified = manifest_thread.join().unwrap_or_else(|_| {
            Err(refused(
                mode,
                None,
                "the manifest check stopped unexpectedly".to_owned(),
                started,
            ))
        });
        (verified, walked, prehashed)
    });
    let verified = verified?;
    let found = match found {
        Ok(found) => found,
        // Names a manifest cannot list and trees deeper than the walk follows
        // were added after signing: a refusal, not a missing verdict.
        Err(BundleError::NonUtf8Name { path } | BundleError::TooDeep { path }) => {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let actual = if relative.is_empty() {
                None
            } else {
                Some("not listable in a manifest".to_owned())
            };
            let drift = vec![Drift {
                path: relative,
                kind: DriftKind::Unexpected,
                expected: None,
                actual,
            }];
            return Err(LaunchError::Refused(Box::new(LaunchReport {
                verdict: Verdict::Refused,
                mode,
                key_id: Some(verified.key_id()),
                files_checked: 0,
                bytes_hashed: 0,
                drift,
                refusal: None,
                duration_ms: elapsed_ms(started),
            })));
        }
        Err(error) => return Err(error.into()),
    };
    let manifest = &verified.manifest;

    // Step 6: the file set and sizes.
    let mut drift = compare_file_set(manifest, &found);
    let files_checked = manifest.files.len() as u64;

    // Step 7: each archive's header bytes against the signed header hash. The
    // JSON is not parsed here: the signer parsed exactly these bytes strictly,
    // and an entry reader parses them again (checking the hash) when needed.
    for (path, record) in &manifest.archives {
        if !matches!(found.get(path), Some(WalkEntry::File { .. })) {
            continue;
        }
        let header = match prehashed.headers.get(path) {
            Some(result) => result.clone(),
            None => read_header_digest(&root.join(path)),
        };
        let actual = match header {
            Ok((digest, len)) if digest == record.header_sha256 && len == record.header_size => {
                continue;
            }
            Ok((digest, _)) => hex::encode(digest),
            Err(HeaderProblem::Invalid(reason)) => format!("invalid header: {reason}"),
            Err(HeaderProblem::Unreadable { kind, message }) => {
                return Err(BundleError::Io {
                    path: root.join(path),
                    source: std::io::Error::new(kind, message),
                }
                .into());
            }
        };
        drift.push(Drift {
            path: path.clone(),
            kind: DriftKind::HeaderMismatch,
            expected: Some(hex::encode(record.header_sha256)),
            actual: Some(actual),
        });
    }

    // Step 8: hash what this mode covers, for files whose presence and size
    // matched, reusing what lazy mode hashed in advance.
    let needed: Vec<(String, u64)> = manifest
        .files
        .iter()
        .filter(|(path, record)| matches!(found.get(path.as_str()), Some(WalkEntry::File { size, .. }) if *size == record.size))
        .filter(|(path, _)| mode == Mode::Full || needs_hash_in_lazy_mode(manifest, path))
        .map(|(path, record)| (path.clone(), record.size))
        .collect();
    let mut prehashed_files = prehashed.files;
    let to_hash: Vec<(String, u64)> = needed
        .iter()
        .filter(|(path, _)| !prehashed_files.contains_key(path))
        .cloned()
        .collect();
    for (item, result) in to_hash
        .iter()
        .zip(bundle::hash_files(root, &to_hash, threads))
    {
        prehashed_files.insert(item.0.clone(), result);
    }
    let mut bytes_hashed = 0u64;
    for (path, _) in &needed {
        let Some(result) = prehashed_files.remove(path) else {
            continue;
        };
        let digest = result?;
        bytes_hashed += digest.size;
        let record = &manifest.files[path];
        let walked_identity = match found.get(path.as_str()) {
            Some(WalkEntry::File { identity, .. }) => *identity,
            _ => None,
        };
        if digest.sha256 == record.sha256
            && digest.size == record.size
            && digest.identity == walked_identity
        {
            continue;
        }
        let actual = if digest.sha256 == record.sha256 && digest.size == record.size {
            // Same bytes, other file: it was replaced while the check ran.
            format!(
                "{} in a different file, which replaced the original during the check",
                hex::encode(digest.sha256)
            )
        } else {
            hex::encode(digest.sha256)
        };
        drift.push(Drift {
            path: path.clone(),
            kind: if digest.size == record.size {
                DriftKind::Modified
            } else {
                DriftKind::SizeMismatch
            },
            expected: Some(hex::encode(record.sha256)),
            actual: Some(actual),
        });
        if let Some(archive_record) = manifest.archives.get(path) {
            drift.extend(diagnose_archive(root, path, archive_record));
        }
    }

    drift.sort_by(|a, b| a.path.cmp(&b.path).then(a.kind.cmp(&b.kind)));
    drift.dedup();
    let verdict = if drift.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Refused
    };
    let report = LaunchReport {
        verdict,
        mode,
        key_id: Some(verified.key_id()),
        files_checked,
        bytes_hashed,
        drift,
        refusal: None,
        duration_ms: elapsed_ms(started),
    };
    tracing::debug!(
        verdict = verdict.as_str(),
        files_checked,
        bytes_hashed,
        "launch check finished"
    );
    if verdict == Verdict::Refused {
        return Err(LaunchError::Refused(Box::new(report)));
    }
    Ok(VerifiedBundle {
        manifest: verified,
        report,
        archives: Mutex::new(BTreeMap::new()),
    })
}

/// Digests lazy mode computes while the manifest is being verified.
#[derive(Default)]
struct Prehashed {
    /// Header digest and length of every `*.asar` file, by bundle path.
    headers: BTreeMap<String, Result<(Sha256Digest, u64), HeaderProblem>>,
    /// Digest of every other file lazy mode hashes, by bundle path.
    files: BTreeMap<String, Result<bundle::FileDigest, BundleError>>,
}

/// Hashes, on one thread, what lazy mode checks for every file the walk found,
/// deciding by name alone: header digests of `*.asar` files, nothing for
/// runner modules, and the whole content of everything else.
fn prehash_lazy(root: &Path, found: &BTreeMap<String, WalkEntry>) -> Prehashed {
    let mut prehashed = Prehashed::default();
    let mut to_hash = Vec::new();
    for (path, entry) in found {
        let WalkEntry::File { size, .. } = entry else {
            continue;
        };
        if path.ends_with(".asar") {
            prehashed
                .headers
                .insert(path.clone(), read_header_digest(&root.join(path)));
        } else if !is_runner_module(path) {
            to_hash.push((path.clone(), *size));
        }
    }
    for (item, result) in to_hash.iter().zip(bundle::hash_files(root, &to_hash, 1)) {
        prehashed.files.insert(item.0.clone(), result);
    }
    prehashed
}

/// Checks that `name` is a plain runner name: letters, digits, `-`, `_` and
/// `.`, no leading `.`, no `..`, 1 to 64 bytes. Only such names are loaded as
/// `local-compute/runners/NAME.wasm`.
pub fn check_runner_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_RUNNER_NAME_LEN {
        return Err("the name is longer than 64 bytes");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("the name contains a path separator");
    }
    if name.contains("..") {
        return Err("the name contains '..'");
    }
    if name.starts_with('.') {
        return Err("the name starts with '.'");
    }
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
    {
        return Err("the name contains a character other than letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Returns whether `path` is a module the runner loader can load, which
/// checks it in full at load time: exactly `local-compute/runners/NAME.wasm`
/// with a valid runner name. Any other `.wasm` file is an ordinary file.
fn is_runner_module(path: &str) -> bool {
    path.strip_prefix(RUNNERS_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|file| file.strip_suffix(".wasm"))
        .is_some_and(|name| check_runner_name(name).is_ok())
}

/// Returns whether lazy mode hashes this file: everything except signed archives
/// (checked entry by entry when read) and runner modules (checked in full
/// when loaded).
fn needs_hash_in_lazy_mode(manifest: &Manifest, path: &str) -> bool {
    if manifest.archives.contains_key(path) {
        return false;
    }
    !is_runner_module(path)
}

fn compare_file_set(manifest: &Manifest, found: &BTreeMap<String, WalkEntry>) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (path, record) in &manifest.files {
        match found.get(path) {
            None => drift.push(Drift {
                path: path.clone(),
                kind: DriftKind::Missing,
                expected: Some(hex::encode(record.sha256)),
                actual: None,
            }),
            Some(WalkEntry::File { size, .. }) if *size != record.size => drift.push(Drift {
                path: path.clone(),
                kind: DriftKind::SizeMismatch,
                expected: Some(format!("{} bytes", record.size)),
                actual: Some(format!("{size} bytes")),
            }),
            Some(WalkEntry::File { .. }) => {}
            Some(WalkEntry::Symlink { target }) => drift.push(Drift {
                path: path.clone(),
                kind: DriftKind::Modified,
                expected: Some(hex::encode(record.sha256)),
                actual: Some(format!("a symbolic link to {target}")),
            }),
            Some(WalkEntry::Special) => drift.push(Drift {
                path: path.clone(),
                kind: DriftKind::Modified,
                expected: Some(hex::encode(record.sha256)),
                actual: Some("not a regular file".to_owned()),
            }),
        }
    }
    for (path, entry) in found {
        if manifest.files.contains_key(path) {
            continue;
        }
        let actual = match entry {
            WalkEntry::File { size, .. } => format!("{size} bytes"),
            WalkEntry::Symlink { target } => format!("a symbolic link to {target}"),
            WalkEntry::Special => "a special file".to_owned(),
        };
        drift.push(Drift {
            path: path.clone(),
            kind: DriftKind::Unexpected,
            expected: None,
            actual: Some(actual),
        });
    }
    drift
}

/// Names the archive entries that changed, after the archive's whole-file hash
/// failed. A changed header is already reported by the header check.
fn diagnose_archive(root: &Path, archive_path: &str, record: &ArchiveRecord) -> Vec<Drift> {
    let mut drift = Vec::new();
    let (Ok(archive), Ok(entries)) = (
        open_signed_archive(root, archive_path, record),
        record.entries(),
    ) else {
        return drift;
    };
    for (entry_path, entry_record) in entries {
        let ArchiveEntryRecord::File {
            sha256,
            unpacked: false,
            ..
        } = entry_record
        else {
            continue;
        };
        let Some(entry) = archive.entry(entry_path) else {
            continue;
        };
        let actual = match archive.digest_entry(entry) {
            Ok(digest) if digest.sha256 == *sha256 => continue,
            Ok(digest) => hex::encode(digest.sha256),
            Err(error) => format!("unreadable: {error}"),
        };
        drift.push(Drift {
            path: format!("{archive_path}/{entry_path}"),
            kind: DriftKind::Modified,
            expected: Some(hex::encode(sha256)),
            actual: Some(actual),
        });
    }
    drift
}

/// Kind of the `system` ledger entry that records a refused launch.
pub const DRIFT_EVIDENCE_KIND: &str = "integrity-drift";

/// Builds the JSON body of a drift evidence entry: the bundle, the verdict, the key,
/// the mode, the refusal reason and every drift item.
pub fn drift_evidence(bundle: &Path, report: &LaunchReport) -> crate::json::Value {
    use crate::json::{Object, Value, number_u64};
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    let drift = report
        .drift
        .iter()
        .map(|item| {
            let mut object = Object::new();
            object.insert("path".to_owned(), Value::String(item.path.clone()));
            object.insert(
                "kind".to_owned(),
                Value::String(item.kind.as_str().to_owned()),
            );
            object.insert("expected".to_owned(), text(&item.expected));
            object.insert("actual".to_owned(), text(&item.actual));
            Value::Object(object)
        })
        .collect();
    let mut body = Object::new();
    body.insert(
        "bundle".to_owned(),
        Value::String(bundle.display().to_string()),
    );
    body.insert(
        "verdict".to_owned(),
        Value::String(report.verdict.as_str().to_owned()),
    );
    body.insert(
        "mode".to_owned(),
        Value::String(report.mode.as_str().to_owned()),
    );
    body.insert(
        "key_id".to_owned(),
        text(&report.key_id.map(|id| id.to_string())),
    );
    body.insert("refusal".to_owned(), text(&report.refusal));
    body.insert("files_checked".to_owned(), number_u64(report.files_checked));
    body.insert("drift".to_owned(), Value::Array(drift));
    Value::Object(body)
}

/// Appends a refused launch to the project's audit ledger as `system` evidence.
pub fn record_drift(
    ledger: &mut crate::ledger::Ledger,
    bundle: &Path,
    report: &LaunchReport,
) -> Result<crate::ledger::AppendedEntry, crate::ledger::LedgerError> {
    ledger.append_evidence(DRIFT_EVIDENCE_KIND, drift_evidence(bundle, report))
}
