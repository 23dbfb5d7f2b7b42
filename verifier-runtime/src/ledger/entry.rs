//! Ledger entries: their fields, canonical encoding and entry hash.

use std::fmt;

use crate::crypto::{self, Sha256Digest};
use crate::json::{self, Fields, Value};

/// Prefix of the entry-hash input; it keeps an entry hash from ever equalling
/// a hash computed over the same bytes for another purpose.
pub const ENTRY_HASH_DOMAIN: &[u8] = b"midcore-ledger-entry-v1\0";

/// Kind of the first entry of every ledger; its body names the project.
pub const GENESIS_KIND: &str = "ledger-created";

/// Kind of every `billing` entry; its body is the receipt.
pub const RECEIPT_KIND: &str = "receipt";

/// Ledger format version recorded in the first entry.
pub const FORMAT_VERSION: u64 = 1;

/// Maximum length of a kind, in bytes.
pub const MAX_KIND_LEN: usize = 64;

/// Maximum length of a project id, in bytes.
pub const MAX_PROJECT_LEN: usize = 256;

/// The part of the audit trail an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Domain {
    /// A verified receipt from the backend.
    Billing,
    /// Evidence the client recorded: the ledger's creation, tamper findings, integrity drift.
    System,
}

impl Domain {
    /// The name written in the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Billing => "billing",
            Domain::System => "system",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "billing" => Some(Domain::Billing),
            "system" => Some(Domain::System),
            _ => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the chain, with its hash checked against its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    seq: u64,
    parent: Sha256Digest,
    domain: Domain,
    kind: String,
    body: Value,
    hash: Sha256Digest,
}

impl Entry {
    /// Builds an entry and computes its hash.
    pub(crate) fn new(
        seq: u64,
        parent: Sha256Digest,
        domain: Domain,
        kind: &str,
        body: Value,
    ) -> Self {
        let hash = entry_hash(seq, &parent, domain, kind, &body);
        Self {
            seq,
            parent,
            domain,
            kind: kind.to_owned(),
            body,
            hash,
        }
    }

    /// Position in the chain, starting at 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Hash of the previous entry; all zero bytes for entry 0.
    pub fn parent(&self) -> &Sha256Digest {
        &self.parent
    }

    /// The entry's domain.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The entry's kind, such as `receipt` or `tamper-finding`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The entry's body.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The entry hash: SHA-256 of [`ENTRY_HASH_DOMAIN`] followed by the canonical
    /// JSON of `{"body","domain","kind","parent","seq"}`.
    pub fn hash(&self) -> &Sha256Digest {
        &self.hash
    }

    /// Encodes the entry as canonical JSON, including its hash.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        let mut object =
            fields_without_hash(self.seq, &self.parent, self.domain, &self.kind, &self.body);
        object.insert("hash".to_owned(), Value::String(hex::encode(self.hash)));
        json::to_canonical(&Value::Object(object))
    }

    /// Decodes an entry from its canonical JSON and checks the stored hash.
    ///
    /// The bytes must be exactly the canonical encoding, so every change to
    /// them changes either a field or the hash and is detected here.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<Self, EntryFormatError> {
        let value = json::parse(bytes).map_err(|error| EntryFormatError::Json {
            reason: error.to_string(),
        })?;
        if json::to_canonical(&value) != bytes {
            return Err(EntryFormatError::NotCanonical);
        }
        let field = |error: json::FieldError| EntryFormatError::Field {
            path: error.path,
            reason: error.reason,
        };

        let mut fields = Fields::new(&value, "").map_err(field)?;
        let seq = fields.u64("seq").map_err(field)?;
        let parent = digest_field(&mut fields, "parent")?;
        let domain_text = fields.string("domain").map_err(field)?;
        let domain = Domain::parse(domain_text).ok_or_else(|| EntryFormatError::Field {
            path: "domain".to_owned(),
            reason: format!("{domain_text:?} is neither \"billing\" nor \"system\""),
        })?;
        let kind = fields.string("kind").map_err(field)?;
        check_kind(kind).map_err(|reason| EntryFormatError::Field {
            path: "kind".to_owned(),
            reason,
        })?;
        let body = fields.required("body").map_err(field)?.clone();
        let stored = digest_field(&mut fields, "hash")?;
        fields.finish().map_err(field)?;

        let entry = Self::new(seq, parent, domain, kind, body);
        if entry.hash != stored {
            return Err(EntryFormatError::HashMismatch {
                stored,
                computed: entry.hash,
            });
        }
        Ok(entry)
    }
}

/// Problems with one entry's encoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryFormatError {
    /// The payload is not valid JSON.
    #[error("the entry is not valid JSON: {reason}")]
    Json {
        /// The parser's message.
        reason: String,
    },
    /// The payload is valid JSON but not its canonical encoding.
    #[error("the entry is not in canonical JSON form")]
    NotCanonical,
    /// A field is missing, unknown or invalid.
    #[error("entry field {path}: {reason}")]
    Field {
        /// Field name.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The stored hash differs from the hash of the entry's fields.
    #[error("stored entry hash {} differs from the hash of its fields, {}", hex::encode(.stored), hex::encode(.computed))]
    HashMismatch {
        /// Hash written in the entry.
        stored: Sha256Digest,
        /// Hash computed from its fields.
        computed: Sha256Digest,
    },
}

/// Checks an entry kind: 1 to 64 bytes of `a`-`z`, `0`-`9` and `-`.
pub fn check_kind(kind: &str) -> Result<(), String> {
    if kind.is_empty() || kind.len() > MAX_KIND_LEN {
        return Err(format!(
            "kind must be 1 to {MAX_KIND_LEN} bytes long, found {} bytes",
            kind.len()
        ));
    }
    if !kind
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    {
        return Err(format!("kind {kind:?} may contain only a-z, 0-9 and '-'"));
    }
    Ok(())
}

/// Checks a project id: 1 to 256 bytes with no control character and no `|`.
pub fn check_project(project: &str) -> Result<(), String> {
    if project.is_empty() || project.len() > MAX_PROJECT_LEN {
        return Err(format!(
            "a project id must be 1 to {MAX_PROJECT_LEN} bytes long, found {} bytes",
            project.len()
        ));
    }
    if project.chars().any(|c| c.is_control() || c == '|') {
        return Err("a project id may not contain control characters or '|'".to_owned());
    }
    Ok(())
}

/// Builds the body of entry 0.
pub(crate) fn genesis_body(project: &str) -> Value {
    let mut object = json::Object::new();
    object.insert("format".to_owned(), json::number_u64(FORMAT_VERSION));
    object.insert("project".to_owned(), Value::String(project.to_owned()));
    Value::Object(object)
}

/// Reads the project id out of an entry-0 body; `None` if the body is not a valid genesis body.
pub(crate) fn read_genesis_body(body: &Value) -> Result<String, String> {
    let mut fields = Fields::new(body, "body").map_err(|error| error.to_string())?;
    let format = fields.u64("format").map_err(|error| error.to_string())?;
    if format != FORMAT_VERSION {
        return Err(format!(
            "ledger format {format} is not supported; this verifier reads format {FORMAT_VERSION}"
        ));
    }
    let project = fields
        .string("project")
        .map_err(|error| error.to_string())?
        .to_owned();
    fields.finish().map_err(|error| error.to_string())?;
    check_project(&project)?;
    Ok(project)
}

fn fields_without_hash(
    seq: u64,
    parent: &Sha256Digest,
    domain: Domain,
    kind: &str,
    body: &Value,
) -> json::Object {
    let mut object = json::Object::new();
    object.insert("seq".to_owned(), json::number_u64(seq));
    object.insert("parent".to_owned(), Value::String(hex::encode(parent)));
    object.insert(
        "domain".to_owned(),
        Value::String(domain.as_str().to_owned()),
    );
    object.insert("kind".to_owned(), Value::String(kind.to_owned()));
    object.insert("body".to_owned(), body.clone());
    object
}

fn entry_hash(
    seq: u64,
    parent: &Sha256Digest,
    domain: Domain,
    kind: &str,
    body: &Value,
) -> Sha256Digest {
    let object = fields_without_hash(seq, parent, domain, kind, body);
    let mut hasher = crypto::Sha256::new();
    hasher.update(ENTRY_HASH_DOMAIN);
    hasher.update(&json::to_canonical(&Value::Object(object)));
    hasher.finish()
}

fn digest_field(
    fields: &mut Fields<'_>,
    name: &'static str,
) -> Result<Sha256Digest, EntryFormatError> {
    let text = fields
        .string(name)
        .map_err(|error| EntryFormatError::Field {
            path: error.path,
            reason: error.reason,
        })?;
    crypto::parse_lower_hex_32(text).ok_or_else(|| EntryFormatError::Field {
        path: name.to_owned(),
        reason: "expected 64 lower-case hex digits".to_owned(),
    })
}
