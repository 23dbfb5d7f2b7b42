//! The signed integrity manifest (`build/integrity.json`).
//!
//! The file is the canonical JSON encoding (see [`crate::json`]) of one object,
//! followed by a single line feed. The signature covers the canonical encoding
//! of the same object without its `signature` member. A file that is not
//! byte-for-byte canonical is rejected before its signature is checked, so
//! there is exactly one accepted encoding of every manifest.
//! `docs/formats.md` specifies every field.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;

use crate::crypto::{KeyId, SIGNATURE_ALGORITHM, Sha256Digest, parse_lower_hex_32};
use crate::json::{self, FieldError, Fields, Object, Value};

/// Manifest schema version this verifier reads and the signer writes.
pub const SCHEMA_VERSION: u64 = 1;
/// Bundle-relative path of the manifest.
pub const MANIFEST_PATH: &str = "build/integrity.json";
/// Bundle-relative path of the signing key's public key.
pub const PUBLIC_KEY_PATH: &str = "build/integrity.pub.pem";
/// Largest manifest file accepted, in bytes.
pub const MAX_MANIFEST_LEN: u64 = 256 * 1024 * 1024;
/// Largest product name or version accepted, in bytes.
const MAX_LABEL_LEN: usize = 256;

/// Errors from parsing a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes are not valid JSON.
    #[error(
        "{MANIFEST_PATH} is not valid JSON ({0}); the file was replaced or damaged: reinstall the app from a trusted release, or sign the bundle again with midcore-sign"
    )]
    Json(#[from] json::JsonError),
    /// The bytes are valid JSON but not the canonical encoding.
    #[error(
        "{MANIFEST_PATH} is not in canonical form (first difference at byte {offset}); it was edited after signing or written by another tool: reinstall the app from a trusted release, or sign the bundle again with midcore-sign"
    )]
    NotCanonical {
        /// First byte offset where the file differs from its canonical encoding.
        offset: usize,
    },
    /// A field is missing, has the wrong type or an invalid value.
    #[error("{MANIFEST_PATH}: {0}")]
    Field(#[from] FieldError),
    /// The schema version is not one this verifier reads.
    #[error(
        "{MANIFEST_PATH}: schema_version {found} is not supported (this verifier reads version {SCHEMA_VERSION}); upgrade the verifier or sign with a matching signer"
    )]
    UnsupportedSchema {
        /// Version found.
        found: u64,
    },
    /// The file is larger than the limit.
    #[error("{MANIFEST_PATH} is {len} bytes, larger than the {MAX_MANIFEST_LEN}-byte limit")]
    TooLarge {
        /// File length.
        len: u64,
    },
}

/// Product name and version as given to the signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Product name.
    pub name: String,
    /// Product version.
    pub version: String,
}

/// Hash and size of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// SHA-256 of the file's bytes.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// The manifest's record of one ASAR archive.
#[derive(Clone, Debug)]
pub struct ArchiveRecord {
    /// SHA-256 of the header's JSON bytes, as Electron's integrity check computes it.
    pub header_sha256: Sha256Digest,
    /// Length of the header's JSON in bytes.
    pub header_size: u64,
    entries: ArchiveEntries,
}

/// Entries by path inside the archive (`/`-separated); directories are not listed.
pub type EntryMap = BTreeMap<String, ArchiveEntryRecord>;

/// An archive's entry list, parsed at once or on first use.
#[derive(Clone, Debug)]
enum ArchiveEntries {
    Parsed(EntryMap),
    /// The JSON of the `entries` object, from a manifest whose signature was
    /// verified before parsing; parsed strictly on first use.
    Deferred {
        bytes: Arc<[u8]>,
        field_path: String,
        parsed: Arc<OnceLock<Result<EntryMap, FieldError>>>,
    },
}

impl ArchiveRecord {
    /// Builds a record from its parts.
    pub fn new(header_sha256: Sha256Digest, header_size: u64, entries: EntryMap) -> Self {
        Self {
            header_sha256,
            header_size,
            entries: ArchiveEntries::Parsed(entries),
        }
    }

    /// Returns the archive's entries. For a manifest read in lazy mode, the
    /// first call parses them strictly, and a malformed list fails here.
    pub fn entries(&self) -> Result<&EntryMap, ManifestError> {
        match &self.entries {
            ArchiveEntries::Parsed(entries) => Ok(entries),
            ArchiveEntries::Deferred {
                bytes,
                field_path,
                parsed,
            } => parsed
                .get_or_init(|| parse_entries_json(bytes, field_path))
                .as_ref()
                .map_err(|error| ManifestError::Field(error.clone())),
        }
    }
}

impl PartialEq for ArchiveRecord {
    fn eq(&self, other: &Self) -> bool {
        self.header_sha256 == other.header_sha256
            && self.header_size == other.header_size
            && matches!((self.entries(), other.entries()), (Ok(a), Ok(b)) if a == b)
    }
}

impl Eq for ArchiveRecord {}

/// One file or link inside an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveEntryRecord {
    /// A file, packed or in the `.unpacked` folder.
    File {
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the whole file.
        sha256: Sha256Digest,
        /// SHA-256 of each 4 MiB block, as `@electron/asar` computes them: one block (equal to
        /// `sha256`) below 4 MiB, and a final block over no bytes when the size is a multiple of 4 MiB.
        blocks: Vec<Sha256Digest>,
        /// Whether the bytes are in `<archive>.unpacked/`.
        unpacked: bool,
    },
    /// A link to another path inside the archive.
    Link {
        /// Target path relative to the archive root.
        target: String,
    },
}

/// The signed content of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Product name and version.
    pub product: Product,
    /// Id of the key that signs the manifest.
    pub key_id: KeyId,
    /// `SOURCE_DATE_EPOCH` at signing time, if it was set.
    pub source_date_epoch: Option<u64>,
    /// Every covered file, by bundle-relative path.
    pub files: BTreeMap<String, FileRecord>,
    /// Every ASAR archive, by bundle-relative path.
    pub archives: BTreeMap<String, ArchiveRecord>,
}

/// A manifest as read from disk: its content, the exact bytes the signature
/// covers, and the signature. Nothing here has been verified yet.
#[derive(Clone, Debug)]
pub struct UnverifiedManifest {
    /// Parsed content.
    pub manifest: Manifest,
    /// Canonical bytes the signature covers.
    pub signed_bytes: Vec<u8>,
    /// Algorithm named in the file.
    pub signature_algorithm: String,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

/// Checks a bundle-relative path: UTF-8 components separated by `/`, none
/// empty, `.` or `..`, no leading `/`, no `\`, no control characters and no
/// drive prefix such as `C:`. Paths are compared byte for byte, never normalised.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed".to_owned());
    }
    if path.contains('\\') {
        return Err("'\\' is not allowed; use '/' as the separator".to_owned());
    }
    if path.chars().any(char::is_control) {
        return Err("control characters are not allowed".to_owned());
    }
    let first = path.split('/').next().unwrap_or_default();
    if first.len() == 2 && first.ends_with(':') && first.as_bytes()[0].is_ascii_alphabetic() {
        return Err("drive prefixes are not allowed".to_owned());
    }
    for component in path.split('/') {
        match component {
            "" => {
                return Err(
                    "empty path components ('//' or a trailing '/') are not allowed".to_owned(),
                );
            }
            "." | ".." => return Err(format!("'{component}' components are not allowed")),
            _ => {}
        }
    }
    Ok(())
}

/// Finds two paths that differ only in letter case, which Windows and macOS
/// would treat as one file. Returns the first pair found, in sorted order.
pub fn find_case_collision<'a>(
    paths: impl IntoIterator<Item = &'a str>,
) -> Option<(String, String)> {
    let mut seen: BTreeMap<String, &'a str> = BTreeMap::new();
    for path in paths {
        let folded = path.to_lowercase();
        if let Some(previous) = seen.insert(folded, path) {
            let (first, second) = if previous < path {
                (previous, path)
            } else {
                (path, previous)
            };
            return Some((first.to_owned(), second.to_owned()));
        }
    }
    None
}

fn hex_field(fields: &Fields<'_>, name: &str, value: &Value) -> Result<Sha256Digest, FieldError> {
    match value {
        Value::String(text) => parse_lower_hex_32(text).ok_or_else(|| {
            fields.error(name, "expected 64 lower-case hex digits (a SHA-256 digest)")
        }),
        other => Err(fields.error(
            name,
            format!("expected a hex string, found {}", other.type_name()),
        )),
    }
}

fn quoted(path: &str) -> String {
    let mut out = Vec::new();
    json::write_canonical(&Value::String(path.to_owned()), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn label(fields: &mut Fields<'_>, name: &'static str) -> Result<String, FieldError> {
    let text = fields.string(name)?;
    if text.is_empty() || text.len() > MAX_LABEL_LEN || text.chars().any(char::is_control) {
        return Err(fields.error(
            name,
            format!("must be 1 to {MAX_LABEL_LEN} bytes without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// Parses `bytes` as strict JSON and requires them to be its canonical
/// encoding followed by one line feed.
fn parse_canonical(bytes: &[u8]) -> Result<Value, ManifestError> {
    let value = json::parse(bytes)?;
    let mut canonical = json::to_canonical(&value);
    canonical.push(b'\n');
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(bytes.len()));
        return Err(ManifestError::NotCanonical { offset });
    }
    Ok(value)
}

/// Parses a manifest file strictly: size limit, strict JSON, byte-for-byte
/// canonical form, known fields only, valid paths and no case collisions.
/// The signature is NOT checked here; see [`crate::launch::verify_manifest`].
pub fn parse_manifest(bytes: &[u8]) -> Result<UnverifiedManifest, ManifestError> {
    if bytes.len() as u64 > MAX_MANIFEST_LEN {
        return Err(ManifestError::TooLarge {
            len: bytes.len() as u64,
        });
    }

    // Step 1: strict JSON, then require the one canonical encoding.
    let value = parse_canonical(bytes)?;

    // Step 2: split off the signature; the rest is exactly what was signed.
    let Value::Object(mut object) = value else {
        return Err(FieldError {
            path: "(top level)".to_owned(),
            reason: "expected an object".to_owned(),
        }
        .into());
    };
    let signature_value = object.remove("signature").ok_or_else(|| FieldError {
        path: "signature".to_owned(),
        reason: "missing required field; the manifest is unsigned".to_owned(),
    })?;
    let signed = Value::Object(object);
    let signed_bytes = json::to_canonical(&signed);
    let (signature_algorithm, signature) = parse_signature(&signature_value, "signature")?;

    // Step 3: typed fields.
    let manifest = manifest_from_value(&signed, &BTreeMap::new())?;
    Ok(UnverifiedManifest {
        manifest,
        signed_bytes,
        signature_algorithm,
        signature,
    })
}

/// The parts of a manifest file, found without parsing it: the exact bytes the
/// signature covers, the algorithm named, and the signature.
#[derive(Clone, Debug)]
pub struct SignedParts {
    /// The canonical bytes the signature covers: the file without its
    /// `signature` member and without the final line feed.
    pub signed_bytes: Vec<u8>,
    /// Algorithm named in `signature.algorithm`.
    pub algorithm: String,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Splits a canonical manifest file into its signed bytes and its signature
/// without parsing the JSON, so the signature can be checked before any
/// manifest content is interpreted.
///
/// In the canonical encoding the `signature` member is the last top-level
/// member except `source_date_epoch`, and has the fixed shape
/// `"signature":{"algorithm":"...","value":"..."}`. A quote inside a canonical
/// string is always escaped, so the unescaped pattern searched for cannot occur
/// inside a string. The text after it must be exactly the expected ending.
///
/// When the bytes do not have that shape, [`diagnose_form`] names the first
/// byte that cannot be part of a canonical manifest, if it finds one.
pub fn split_signature(bytes: &[u8]) -> Result<SignedParts, ManifestError> {
    split_signed_parts(bytes).map_err(|error| match error {
        ManifestError::TooLarge { .. } => error,
        error => diagnose_form(bytes).unwrap_or(error),
    })
}

/// Finds the first byte of `bytes` that cannot be part of a canonical
/// manifest file: a first byte other than `{`, whitespace outside a string
/// (pretty-printing, spaced separators, CR or trailing spaces), or a missing
/// final line feed. Returns `None` when there is none. The bytes are
/// unauthenticated and this only explains a rejection, so it is one pass in
/// constant memory and builds nothing from them.
pub fn diagnose_form(bytes: &[u8]) -> Option<ManifestError> {
    let not_canonical = |offset| Some(ManifestError::NotCanonical { offset });
    if bytes.first() != Some(&b'{') {
        return not_canonical(0);
    }
    let last = bytes.len() - 1;
    let (mut in_string, mut escaped) = (false, false);
    for (offset, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\t' | b'\r' | b'\n') && !(byte == b'\n' && offset == last)
        {
            return not_canonical(offset);
        }
    }
    if bytes[last] != b'\n' {
        return not_canonical(bytes.len());
    }
    None
}

fn split_signed_parts(bytes: &[u8]) -> Result<SignedParts, ManifestError> {
    const START: &[u8] = b",\"signature\":{\"algorithm\":\"";
    const MIDDLE: &[u8] = b"\",\"value\":\"";
    let invalid = |reason: &str| {
        ManifestError::Field(FieldError {
            path: "signature".to_owned(),
            reason: reason.to_owned(),
        })
    };
    if bytes.len() as u64 > MAX_MANIFEST_LEN {
        return Err(ManifestError::TooLarge {
            len: bytes.len() as u64,
        });
    }
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| invalid("the file does not end with a line feed"))?;
    let start = body
        .windows(START.len())
        .rposition(|window| window == START)
        .ok_or_else(|| {
            invalid("missing or misplaced; the manifest is unsigned or not canonical")
        })?;

    let mut position = start + START.len();
    let algorithm_len = body[position..]
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        .unwrap_or(body.len() - position);
    let algorithm = String::from_utf8_lossy(&body[position..position + algorithm_len]).into_owned();
    position += algorithm_len;
    if !body[position..].starts_with(MIDDLE) {
        return Err(invalid("expected {\"algorithm\":...,\"value\":...}"));
    }
    position += MIDDLE.len();
    let value_len = body[position..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
        .unwrap_or(body.len() - position);
    let encoded = &body[position..position + value_len];
    position += value_len;
    if !body[position..].starts_with(b"\"}") {
        return Err(invalid("signature.value is not standard base64"));
    }
    position += 2;

    // What follows is `}` or `,"source_date_epoch":DIGITS}`.
    let rest = &body[position..];
    let ending_ok = rest == b"}"
        || rest
            .strip_prefix(b",\"source_date_epoch\":")
            .and_then(|tail| tail.strip_suffix(b"}"))
            .is_some_and(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
    if !ending_ok {
        return Err(invalid(
            "unexpected members after the signature; the manifest is not canonical",
        ));
    }
    // Canonical order puts `signature` right after `schema_version`.
    let before = &body[..start];
    let digits = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || !before[..before.len() - digits].ends_with(b",\"schema_version\":") {
        return Err(invalid(
            "the signature member is not where the canonical encoding puts it",
        ));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            invalid(&format!(
                "signature.value is not standard base64 with padding ({e})"
            ))
        })?;

    let mut signed_bytes = Vec::with_capacity(body.len());
    signed_bytes.extend_from_slice(&body[..start]);
    signed_bytes.extend_from_slice(rest);
    Ok(SignedParts {
        signed_bytes,
        algorithm,
        signature,
    })
}

/// Parses signed bytes whose signature has already been verified, leaving
/// each archive's entry list unparsed until [`ArchiveRecord::entries`] is
/// called. Everything is checked as strictly as by [`parse_manifest`],
/// canonical form included: the rest now, and each entry list when it is
/// first parsed.
pub fn parse_verified_deferring_entries(signed_bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let defer = |path: &[String]| path.len() == 3 && path[0] == "archives" && path[2] == "entries";
    let (value, deferred) = json::parse_deferring(signed_bytes, json::DEFAULT_MAX_DEPTH, &defer)?;

    // The parsed part must be canonical too: re-encode it and compare with the
    // signed bytes in which each deferred value is replaced by `null`.
    let mut expected = Vec::with_capacity(signed_bytes.len());
    let mut copied = 0;
    for item in &deferred {
        expected.extend_from_slice(&signed_bytes[copied..item.range.start]);
        expected.extend_from_slice(b"null");
        copied = item.range.end;
    }
    expected.extend_from_slice(&signed_bytes[copied..]);
    let canonical = json::to_canonical(&value);
    if canonical != expected {
        let offset = canonical
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(expected.len()));
        return Err(ManifestError::NotCanonical { offset });
    }
    let mut raw = BTreeMap::new();
    for item in deferred {
        let bytes: Arc<[u8]> = Arc::from(&signed_bytes[item.range]);
        raw.insert(item.path[1].clone(), bytes);
    }
    manifest_from_value(&value, &raw)
}

/// Parses a `{"algorithm": ..., "value": base64}` signature object.
pub(crate) fn parse_signature(value: &Value, path: &str) -> Result<(String, Vec<u8>), FieldError> {
    let mut fields = Fields::new(value, path)?;
    let algorithm = fields.string("algorithm")?.to_owned();
    let encoded = fields.string("value")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| fields.error("value", format!("not standard base64 with padding ({e})")))?;
    fields.finish()?;
    Ok((algorithm, signature))
}

fn manifest_from_value(
    value: &Value,
    deferred: &BTreeMap<String, Arc<[u8]>>,
) -> Result<Manifest, ManifestError> {
    let mut fields = Fields::new(value, "")?;

    let schema = fields.u64("schema_version")?;
    if schema != SCHEMA_VERSION {
        return Err(ManifestError::UnsupportedSchema { found: schema });
    }

    let key_id_text = fields.string("key_id")?;
    let key_id: KeyId = key_id_text
        .parse()
        .map_err(|e: crate::crypto::KeyError| fields.error("key_id", e.to_string()))?;

    let product_value = fields.required("product")?;
    let mut product_fields = Fields::new(product_value, "product")?;
    let product = Product {
        name: label(&mut product_fields, "name")?,
        version: label(&mut product_fields, "version")?,
    };
    product_fields.finish()?;

    let source_date_epoch = fields.optional_u64("source_date_epoch")?;

    let files_object = fields.object("files")?;
    let files = parse_files(files_object)?;

    let archives_object = fields.object("archives")?;
    let mut archives = BTreeMap::new();
    for (path, archive_value) in archives_object {
        let field_path = format!("archives[{}]", quoted(path));
        check_relative_path(path).map_err(|reason| FieldError {
            path: field_path.clone(),
            reason,
        })?;
        if !files.contains_key(path) {
            return Err(FieldError {
                path: field_path,
                reason: "the archive is not listed in files".to_owned(),
            }
            .into());
        }
        archives.insert(
            path.clone(),
            parse_archive(archive_value, &field_path, deferred.get(path).cloned())?,
        );
    }

    fields.finish()?;
    let manifest = Manifest {
        product,
        key_id,
        source_date_epoch,
        files,
        archives,
    };
    if let Some(path) = manifest
        .unpacked_paths()
        .into_iter()
        .find(|path| !manifest.files.contains_key(path))
    {
        return Err(FieldError {
            path: format!("files[{}]", quoted(&path)),
            reason: "missing, although an archive lists it as an unpacked entry".to_owned(),
        }
        .into());
    }
    Ok(manifest)
}

fn parse_files(object: &Object) -> Result<BTreeMap<String, FileRecord>, ManifestError> {
    let mut files = BTreeMap::new();
    for (path, value) in object {
        let field_path = format!("files[{}]", quoted(path));
        check_relative_path(path).map_err(|reason| FieldError {
            path: field_path.clone(),
            reason,
        })?;
        let mut fields = Fields::new(value, field_path)?;
        let sha256_value = fields.required("sha256")?;
        let sha256 = hex_field(&fields, "sha256", sha256_value)?;
        let size = fields.u64("size")?;
        fields.finish()?;
        files.insert(path.clone(), FileRecord { sha256, size });
    }
    if let Some((first, second)) = find_case_collision(files.keys().map(String::as_str)) {
        return Err(FieldError {
            path: format!("files[{}]", quoted(&second)),
            reason: format!("differs from {} only in letter case; Windows and macOS would treat them as one file", quoted(&first)),
        }
        .into());
    }
    Ok(files)
}

fn parse_archive(
    value: &Value,
    field_path: &str,
    deferred_entries: Option<Arc<[u8]>>,
) -> Result<ArchiveRecord, ManifestError> {
    let mut fields = Fields::new(value, field_path)?;
    let header_value = fields.required("header_sha256")?;
    let header_sha256 = hex_field(&fields, "header_sha256", header_value)?;
    let header_size = fields.u64("header_size")?;
    let entries = match deferred_entries {
        Some(bytes) => {
            fields.required("entries")?;
            ArchiveEntries::Deferred {
                bytes,
                field_path: format!("{field_path}.entries"),
                parsed: Arc::new(OnceLock::new()),
            }
        }
        None => {
            ArchiveEntries::Parsed(parse_entries_object(fields.object("entries")?, field_path)?)
        }
    };
    fields.finish()?;
    Ok(ArchiveRecord {
        header_sha256,
        header_size,
        entries,
    })
}

fn parse_entries_object(object: &Object, field_path: &str) -> Result<EntryMap, FieldError> {
    let mut entries = BTreeMap::new();
    for (entry_path, entry_value) in object {
        let entry_field = format!("{field_path}.entries[{}]", quoted(entry_path));
        check_relative_path(entry_path).map_err(|reason| FieldError {
            path: entry_field.clone(),
            reason,
        })?;
        let record = parse_entry(entry_value, &entry_field).map_err(|error| match error {
            ManifestError::Field(field) => field,
            other => FieldError {
                path: entry_field.clone(),
                reason: other.to_string(),
            },
        })?;
        entries.insert(entry_path.clone(), record);
    }
    Ok(entries)
}

/// Parses the bytes of a deferred `entries` object as strictly as the rest of the manifest.
fn parse_entries_json(bytes: &[u8], field_path: &str) -> Result<EntryMap, FieldError> {
    let value = json::parse(bytes).map_err(|error| FieldError {
        path: field_path.to_owned(),
        reason: error.to_string(),
    })?;
    if json::to_canonical(&value) != bytes {
        return Err(FieldError {
            path: field_path.to_owned(),
            reason: "not in canonical form".to_owned(),
        });
    }
    let archive_path = field_path.strip_suffix(".entries").unwrap_or(field_path);
    match &value {
        Value::Object(object) => parse_entries_object(object, archive_path),
        other => Err(FieldError {
            path: field_path.to_owned(),
            reason: format!("expected an object, found {}", other.type_name()),
        }),
    }
}

fn parse_entry(value: &Value, field_path: &str) -> Result<ArchiveEntryRecord, ManifestError> {
    let mut fields = Fields::new(value, field_path)?;
    let record = match fields.string("type")? {
        "file" => {
            let size = fields.u64("size")?;
            let sha256_value = fields.required("sha256")?;
            let sha256 = hex_field(&fields, "sha256", sha256_value)?;
            let expected_blocks = block_count(size);
            let blocks = match fields.optional("blocks") {
                None if expected_blocks == 1 => vec![sha256],
                None => {
                    return Err(fields
                        .error("blocks", "required for files of 4 MiB or more")
                        .into());
                }
                Some(_) if expected_blocks == 1 => {
                    return Err(fields
                        .error("blocks", "must be absent for files smaller than 4 MiB")
                        .into());
                }
                Some(Value::Array(items)) => {
                    let mut blocks = Vec::with_capacity(items.len());
                    for item in items {
                        blocks.push(hex_field(&fields, "blocks", item)?);
                    }
                    blocks
                }
                Some(other) => {
                    return Err(fields
                        .error(
                            "blocks",
                            format!("expected an array, found {}", other.type_name()),
                        )
                        .into());
                }
            };
            if blocks.len() as u64 != expected_blocks {
                return Err(fields
                    .error(
                        "blocks",
                        format!(
                            "{} block hashes listed, but a {size}-byte file has {expected_blocks}",
                            blocks.len()
                        ),
                    )
                    .into());
            }
            let unpacked = match fields.optional("unpacked") {
                None => false,
                Some(Value::Bool(true)) => true,
                Some(_) => return Err(fields.error("unpacked", "must be true or absent").into()),
            };
            ArchiveEntryRecord::File {
                size,
                sha256,
                blocks,
                unpacked,
            }
        }
        "link" => {
            let target = fields.string("target")?;
            check_relative_path(target).map_err(|reason| fields.error("target", reason))?;
            ArchiveEntryRecord::Link {
                target: target.to_owned(),
            }
        }
        other => {
            return Err(fields
                .error(
                    "type",
                    format!("expected \"file\" or \"link\", found {}", quoted(other)),
                )
                .into());
        }
    };
    fields.finish()?;
    Ok(record)
}

/// Number of block hashes the manifest records for a file of `size` bytes:
/// the rule of `@electron/asar`'s integrity blocks, so an empty file has one
/// block and a file of exactly 4 MiB has two (the second over no bytes).
pub fn block_count(size: u64) -> u64 {
    crate::asar::block_count(size, crate::asar::BLOCK_SIZE)
}

fn digest_value(digest: &Sha256Digest) -> Value {
    Value::String(hex::encode(digest))
}

impl Manifest {
    /// Returns the manifest as a JSON value, without a signature.
    pub fn to_value(&self) -> Value {
        let mut files = Object::new();
        for (path, record) in &self.files {
            let mut entry = Object::new();
            entry.insert("sha256".to_owned(), digest_value(&record.sha256));
            entry.insert("size".to_owned(), json::number_u64(record.size));
            files.insert(path.clone(), Value::Object(entry));
        }

        let mut archives = Object::new();
        for (path, archive) in &self.archives {
            let mut entries = Object::new();
            // A deferred list that does not parse is written as null, so the
            // encoding cannot verify under any signature.
            let entries_value = match archive.entries() {
                Ok(records) => {
                    for (entry_path, record) in records {
                        entries.insert(entry_path.clone(), entry_value(record));
                    }
                    Value::Object(entries)
                }
                Err(_) => Value::Null,
            };
            let mut object = Object::new();
            object.insert("entries".to_owned(), entries_value);
            object.insert(
                "header_sha256".to_owned(),
                digest_value(&archive.header_sha256),
            );
            object.insert(
                "header_size".to_owned(),
                json::number_u64(archive.header_size),
            );
            archives.insert(path.clone(), Value::Object(object));
        }

        let mut product = Object::new();
        product.insert("name".to_owned(), Value::String(self.product.name.clone()));
        product.insert(
            "version".to_owned(),
            Value::String(self.product.version.clone()),
        );

        let mut top = Object::new();
        top.insert("archives".to_owned(), Value::Object(archives));
        top.insert("files".to_owned(), Value::Object(files));
        top.insert("key_id".to_owned(), Value::String(self.key_id.to_string()));
        top.insert("product".to_owned(), Value::Object(product));
        top.insert(
            "schema_version".to_owned(),
            json::number_u64(SCHEMA_VERSION),
        );
        if let Some(epoch) = self.source_date_epoch {
            top.insert("source_date_epoch".to_owned(), json::number_u64(epoch));
        }
        Value::Object(top)
    }

    /// Returns the canonical bytes a signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        json::to_canonical(&self.to_value())
    }

    /// Encodes the complete file: canonical JSON with the signature, and a final line feed.
    pub fn encode_signed(&self, signature: &[u8]) -> Vec<u8> {
        let mut value = self.to_value();
        if let Value::Object(object) = &mut value {
            object.insert("signature".to_owned(), signature_value(signature));
        }
        let mut out = json::to_canonical(&value);
        out.push(b'\n');
        out
    }

    /// Bundle paths of the unpacked entries of every archive whose entries are
    /// already parsed, for checks that each is also listed as a bundle file.
    pub fn unpacked_paths(&self) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for (archive_path, archive) in &self.archives {
            let ArchiveEntries::Parsed(records) = &archive.entries else {
                continue;
            };
            for (entry_path, record) in records {
                if let ArchiveEntryRecord::File { unpacked: true, .. } = record {
                    paths.insert(format!("{archive_path}.unpacked/{entry_path}"));
                }
            }
        }
        paths
    }
}

/// The signature object written into signed files.
pub(crate) fn signature_value(signature: &[u8]) -> Value {
    let mut object = Object::new();
    object.insert(
        "algorithm".to_owned(),
        Value::String(SIGNATURE_ALGORITHM.to_owned()),
    );
    object.insert(
        "value".to_owned(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(signature)),
    );
    Value::Object(object)
}

fn entry_value(record: &ArchiveEntryRecord) -> Value {
    let mut object = Object::new();
    match record {
        ArchiveEntryRecord::File {
            size,
            sha256,
            blocks,
            unpacked,
        } => {
            if blocks.len() > 1 {
                object.insert(
                    "blocks".to_owned(),
                    Value::Array(blocks.iter().map(digest_value).collect()),
                );
            }
            object.insert("sha256".to_owned(), digest_value(sha256));
            object.insert("size".to_owned(), json::number_u64(*size));
            object.insert("type".to_owned(), Value::String("file".to_owned()));
            if *unpacked {
                object.insert("unpacked".to_owned(), Value::Bool(true));
            }
        }
        ArchiveEntryRecord::Link { target } => {
            object.insert("target".to_owned(), Value::String(target.clone()));
            object.insert("type".to_owned(), Value::String("link".to_owned()));
        }
    }
    Value::Object(object)
}
