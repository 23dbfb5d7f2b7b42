//! The signed integrity manifest (`build/integrity.json`).
//!
//! The file is the canonical JSON encoding (see [`crate::json`]) of one object,
//! followed by a single line feed. The signature covers the canonical encoding
//! of the same object without its `signature` member. A file that is not
//! byte-for-byte canonical is rejected before its signature is checked, so
//! there is exactly one accepted encoding of every manifest.
//! `docs/formats.md` specifies every field.

use std::collections::{BTreeMap, BTreeSet};

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
    #[error("{MANIFEST_PATH} is not valid JSON ({0}); re-run midcore-sign to regenerate it")]
    Json(#[from] json::JsonError),
    /// The bytes are valid JSON but not the canonical encoding.
    #[error(
        "{MANIFEST_PATH} is not in canonical form (first difference at byte {offset}); it was edited after signing or written by another tool; re-run midcore-sign"
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

/// What the manifest records about one ASAR archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// SHA-256 of the header's JSON bytes, as Electron's integrity check computes it.
    pub header_sha256: Sha256Digest,
    /// Length of the header's JSON in bytes.
    pub header_size: u64,
    /// Entries by path inside the archive (`/`-separated); directories are not listed.
    pub entries: BTreeMap<String, ArchiveEntryRecord>,
}

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
    let manifest = manifest_from_value(&signed)?;
    Ok(UnverifiedManifest {
        manifest,
        signed_bytes,
        signature_algorithm,
        signature,
    })
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

fn manifest_from_value(value: &Value) -> Result<Manifest, ManifestError> {
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
        archives.insert(path.clone(), parse_archive(archive_value, &field_path)?);
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

fn parse_archive(value: &Value, field_path: &str) -> Result<ArchiveRecord, ManifestError> {
    let mut fields = Fields::new(value, field_path)?;
    let header_value = fields.required("header_sha256")?;
    let header_sha256 = hex_field(&fields, "header_sha256", header_value)?;
    let header_size = fields.u64("header_size")?;
    let entries_object = fields.object("entries")?;
    let mut entries = BTreeMap::new();
    for (entry_path, entry_value) in entries_object {
        let entry_field = format!("{field_path}.entries[{}]", quoted(entry_path));
        check_relative_path(entry_path).map_err(|reason| FieldError {
            path: entry_field.clone(),
            reason,
        })?;
        entries.insert(entry_path.clone(), parse_entry(entry_value, &entry_field)?);
    }
    fields.finish()?;
    Ok(ArchiveRecord {
        header_sha256,
        header_size,
        entries,
    })
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
    /// The manifest as a JSON value, without a signature.
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
            for (entry_path, record) in &archive.entries {
                entries.insert(entry_path.clone(), entry_value(record));
            }
            let mut object = Object::new();
            object.insert("entries".to_owned(), Value::Object(entries));
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

    /// The canonical bytes a signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        json::to_canonical(&self.to_value())
    }

    /// The complete file: canonical JSON with the signature, and a final line feed.
    pub fn encode_signed(&self, signature: &[u8]) -> Vec<u8> {
        let mut value = self.to_value();
        if let Value::Object(object) = &mut value {
            object.insert("signature".to_owned(), signature_value(signature));
        }
        let mut out = json::to_canonical(&value);
        out.push(b'\n');
        out
    }

    /// Paths of every file the manifest covers inside archives, for checks
    /// that an unpacked entry is also listed as a bundle file.
    pub fn unpacked_paths(&self) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for (archive_path, archive) in &self.archives {
            for (entry_path, record) in &archive.entries {
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
