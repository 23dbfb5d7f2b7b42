//! Receipts for cloud-billed operations, signed by the backend.
//!
//! A receipt is one JSON object with the fields `id`, `operation`,
//! `tenant_id` (strings), `actual_cents`, `finalized_at_ms` (integers),
//! `signature` (standard base64 with padding) and an optional `key_id`.
//! The backend signs the UTF-8 bytes
//! `id|operation|tenant_id|actual_cents|finalized_at_ms` with RSASSA-PSS,
//! SHA-256, MGF1-SHA-256 and a 32-byte salt; the scheme is fixed in
//! [`crate::crypto`] and never read from the receipt.
//!
//! Joining fields with `|` is ambiguous (`id="a|b", operation="c"` and
//! `id="a", operation="b|c"` sign the same bytes), so every string field that
//! contains `|` or a control character is rejected. Numbers must be plain
//! integers within ±(2^53 − 1), the range a JavaScript shell can hold exactly,
//! and each is written in the signed bytes in plain decimal.
//!
//! What the signature does not bind: the project, the ledger, the key id
//! field and the receipt's position in any chain. A receipt can therefore be
//! copied into another project's ledger of the same tenant; the ledger
//! rejects it only when the tenant differs.

use std::fmt;

use base64::Engine as _;

use crate::crypto::{KeyId, PublicKey, SignatureError, TrustedKeys};
use crate::json::{self, Fields, JsonError, Value};

/// Largest magnitude accepted for an integer field: 2^53 − 1, the largest
/// integer a JavaScript number represents exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Largest receipt accepted, in bytes of JSON.
pub const MAX_RECEIPT_LEN: usize = 64 * 1024;

/// Largest string field accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;

/// Errors from parsing or verifying a receipt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt is larger than [`MAX_RECEIPT_LEN`].
    #[error("receipt is {len} bytes, larger than the {MAX_RECEIPT_LEN}-byte limit")]
    TooLarge {
        /// Size of the rejected input.
        len: usize,
    },
    /// The receipt repeats a JSON key.
    #[error("receipt field {field:?} appears more than once; a receipt must name each field once")]
    DuplicateField {
        /// The repeated key.
        field: String,
    },
    /// The receipt is not valid JSON.
    #[error("receipt is not valid JSON: {source}")]
    Json {
        /// The parser's error.
        #[source]
        source: JsonError,
    },
    /// A field is missing, unknown, of the wrong type or has a rejected value.
    #[error("receipt field {field}: {reason}")]
    InvalidField {
        /// Name of the field.
        field: String,
        /// Reason the field is rejected.
        reason: String,
    },
    /// The receipt names a key id that is not pinned.
    #[error(
        "receipt {id:?} names key {key_id}, which is not a pinned receipt key: pass its public-key PEM with --receipt-key"
    )]
    UntrustedKey {
        /// Receipt id.
        id: String,
        /// The key id the receipt names.
        key_id: KeyId,
    },
    /// No receipt key is pinned.
    #[error("no receipt keys are pinned: pass at least one --receipt-key PEM file")]
    NoKeys,
    /// The signature does not verify under the named key.
    #[error("receipt {id:?}: {source}")]
    BadSignature {
        /// Receipt id.
        id: String,
        /// Reason verification failed.
        #[source]
        source: SignatureError,
    },
    /// The signature verifies under none of the pinned keys.
    #[error("receipt {id:?}: the signature verifies under none of the {tried} pinned receipt keys")]
    NoKeyVerifies {
        /// Receipt id.
        id: String,
        /// How many keys were tried.
        tried: usize,
    },
}

/// A receipt whose fields passed the strict checks but whose signature has
/// not been checked yet.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    id: String,
    operation: String,
    tenant_id: String,
    actual_cents: i64,
    finalized_at_ms: i64,
    signature: Vec<u8>,
    key_id: Option<KeyId>,
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("tenant_id", &self.tenant_id)
            .field("actual_cents", &self.actual_cents)
            .field("finalized_at_ms", &self.finalized_at_ms)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Receipt {
    /// Parses a receipt from its JSON bytes, rejecting duplicate keys, unknown
    /// fields, ambiguous strings and numbers that are not plain safe integers.
    pub fn parse(input: &[u8]) -> Result<Self, ReceiptError> {
        if input.len() > MAX_RECEIPT_LEN {
            return Err(ReceiptError::TooLarge { len: input.len() });
        }
        let value = json::parse(input).map_err(|source| match source {
            JsonError::DuplicateKey { key, .. } => ReceiptError::DuplicateField { field: key },
            JsonError::Syntax { offset, .. } => match field_before(input, offset) {
                Some(field) => ReceiptError::InvalidField {
                    field,
                    reason: format!(
                        "the value is not valid JSON ({source}); numbers must be plain integers"
                    ),
                },
                None => ReceiptError::Json { source },
            },
            source => ReceiptError::Json { source },
        })?;
        Self::from_value(&value)
    }

    /// Reads a receipt from an already parsed JSON value, with the same checks as [`Receipt::parse`].
    pub fn from_value(value: &Value) -> Result<Self, ReceiptError> {
        let mut fields = Fields::new(value, "").map_err(|error| ReceiptError::InvalidField {
            field: "(receipt)".to_owned(),
            reason: error.reason,
        })?;

        // Step 1: the three strings that go into the signed bytes.
        let id = signed_string(&mut fields, "id")?;
        let operation = signed_string(&mut fields, "operation")?;
        let tenant_id = signed_string(&mut fields, "tenant_id")?;

        // Step 2: the two integers, as plain literals within the safe range.
        let actual_cents = safe_integer(&mut fields, "actual_cents")?;
        let finalized_at_ms = safe_integer(&mut fields, "finalized_at_ms")?;

        // Step 3: the signature, in standard base64 with canonical padding.
        let signature_text = fields.string("signature").map_err(field_error)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature_text)
            .map_err(|error| ReceiptError::InvalidField {
                field: "signature".to_owned(),
                reason: format!("not standard base64 with padding ({error})"),
            })?;
        if signature.is_empty() {
            return Err(invalid("signature", "is empty"));
        }

        // Step 4: the optional key id, which only selects among pinned keys.
        let key_id = match fields.optional("key_id") {
            None => None,
            Some(Value::String(text)) => Some(
                text.parse::<KeyId>()
                    .map_err(|error| invalid("key_id", error.to_string()))?,
            ),
            Some(other) => {
                return Err(invalid(
                    "key_id",
                    format!("expected a string, found {}", other.type_name()),
                ));
            }
        };

        // Step 5: nothing else may be present.
        fields.finish().map_err(field_error)?;
        Ok(Self {
            id,
            operation,
            tenant_id,
            actual_cents,
            finalized_at_ms,
            signature,
            key_id,
        })
    }

    /// The receipt id, unique per backend.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The billed operation.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The tenant the operation was billed to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The amount billed, in cents; negative for a credit.
    pub fn actual_cents(&self) -> i64 {
        self.actual_cents
    }

    /// When the backend finalized the charge, in milliseconds since the Unix epoch (UTC).
    pub fn finalized_at_ms(&self) -> i64 {
        self.finalized_at_ms
    }

    /// The key id the receipt names, if any.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Returns the exact bytes the backend signs: `id|operation|tenant_id|actual_cents|finalized_at_ms`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{}|{}|{}|{}|{}",
            self.id, self.operation, self.tenant_id, self.actual_cents, self.finalized_at_ms
        )
        .into_bytes()
    }

    /// Encodes the receipt as a JSON object with the same fields it was read from.
    pub fn to_json(&self) -> Value {
        let mut object = json::Object::new();
        object.insert("id".to_owned(), Value::String(self.id.clone()));
        object.insert(
            "operation".to_owned(),
            Value::String(self.operation.clone()),
        );
        object.insert(
            "tenant_id".to_owned(),
            Value::String(self.tenant_id.clone()),
        );
        object.insert(
            "actual_cents".to_owned(),
            json::number_i64(self.actual_cents),
        );
        object.insert(
            "finalized_at_ms".to_owned(),
            json::number_i64(self.finalized_at_ms),
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(&self.signature);
        object.insert("signature".to_owned(), Value::String(signature));
        if let Some(key_id) = self.key_id {
            object.insert("key_id".to_owned(), Value::String(key_id.to_string()));
        }
        Value::Object(object)
    }

    /// Verifies the signature against the pinned receipt keys.
    ///
    /// A receipt that names a `key_id` is checked under that key only, and the
    /// key must be pinned with its public key. A receipt without one is checked
    /// under each pinned public key in turn. Key ids pinned without a public key
    /// cannot verify anything and are skipped.
    pub fn verify(self, keys: &TrustedKeys) -> Result<VerifiedReceipt, ReceiptError> {
        let key_id = self.verify_in_place(keys)?;
        Ok(VerifiedReceipt {
            receipt: self,
            key_id,
        })
    }

    /// Checks the signature without consuming the receipt; returns the key that verified it.
    pub(crate) fn verify_in_place(&self, keys: &TrustedKeys) -> Result<KeyId, ReceiptError> {
        let message = self.signed_bytes();
        if let Some(key_id) = self.key_id {
            let key = keys
                .key(&key_id)
                .ok_or_else(|| ReceiptError::UntrustedKey {
                    id: self.id.clone(),
                    key_id,
                })?;
            key.verify(&message, &self.signature)
                .map_err(|source| ReceiptError::BadSignature {
                    id: self.id.clone(),
                    source,
                })?;
            return Ok(key_id);
        }

        let candidates: Vec<&PublicKey> = keys.key_ids().filter_map(|id| keys.key(&id)).collect();
        if candidates.is_empty() {
            return Err(ReceiptError::NoKeys);
        }
        for key in &candidates {
            if key.verify(&message, &self.signature).is_ok() {
                return Ok(key.key_id());
            }
        }
        Err(ReceiptError::NoKeyVerifies {
            id: self.id.clone(),
            tried: candidates.len(),
        })
    }
}

/// A receipt whose signature verified under a pinned key. Only
/// [`Receipt::verify`] constructs one.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt {
    receipt: Receipt,
    key_id: KeyId,
}

impl VerifiedReceipt {
    /// The verified receipt.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// Id of the pinned key the signature verified under.
    pub fn verified_by(&self) -> KeyId {
        self.key_id
    }
}

/// Finds the object key whose value contains byte `offset`, for messages
/// about JSON syntax errors such as `01` or `+5` in a number.
fn field_before(input: &[u8], offset: usize) -> Option<String> {
    let before = input.get(..offset)?;
    let colon = before.iter().rposition(|&b| b == b':')?;
    let value = before[colon + 1..].trim_ascii();
    // A string value or a nested structure between the colon and the error means it is not a plain value.
    if value
        .iter()
        .any(|&b| matches!(b, b'"' | b'{' | b'[' | b','))
    {
        return None;
    }
    let key_end = before[..colon].trim_ascii_end();
    let key_body = key_end.strip_suffix(b"\"")?;
    let key_start = key_body.iter().rposition(|&b| b == b'"')?;
    let key = std::str::from_utf8(&key_body[key_start + 1..]).ok()?;
    Some(key.to_owned())
}

fn invalid(field: &str, reason: impl Into<String>) -> ReceiptError {
    ReceiptError::InvalidField {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn field_error(error: json::FieldError) -> ReceiptError {
    ReceiptError::InvalidField {
        field: error.path,
        reason: error.reason,
    }
}

/// Takes a string that goes into the signed bytes and rejects the characters
/// that would make the `|`-joined message ambiguous.
fn signed_string(fields: &mut Fields<'_>, name: &'static str) -> Result<String, ReceiptError> {
    let text = fields.string(name).map_err(field_error)?;
    check_signed_string(name, text)?;
    Ok(text.to_owned())
}

/// Checks one string field of a receipt: non-empty, at most [`MAX_FIELD_LEN`]
/// bytes, no `|` and no control character (Unicode general category Cc).
pub fn check_signed_string(name: &str, text: &str) -> Result<(), ReceiptError> {
    if text.is_empty() {
        return Err(invalid(name, "is empty"));
    }
    if text.len() > MAX_FIELD_LEN {
        return Err(invalid(
            name,
            format!(
                "is {} bytes, longer than the {MAX_FIELD_LEN}-byte limit",
                text.len()
            ),
        ));
    }
    if text.contains('|') {
        return Err(invalid(
            name,
            "contains '|', which would make the signed bytes ambiguous",
        ));
    }
    if let Some(control) = text.chars().find(|c| c.is_control()) {
        return Err(invalid(
            name,
            format!(
                "contains the control character U+{:04X}",
                u32::from(control)
            ),
        ));
    }
    Ok(())
}

fn safe_integer(fields: &mut Fields<'_>, name: &'static str) -> Result<i64, ReceiptError> {
    let number = match fields.required(name).map_err(field_error)? {
        Value::Number(number) => number,
        other => {
            return Err(invalid(
                name,
                format!("expected an integer, found {}", other.type_name()),
            ));
        }
    };
    if !number.is_plain_integer() {
        return Err(invalid(
            name,
            format!(
                "{} is not a plain integer (no fraction, exponent, sign '+', leading zero or -0)",
                number.as_str()
            ),
        ));
    }
    let out_of_range = || invalid(name, format!("{} is outside ±(2^53 − 1)", number.as_str()));
    let value = number.as_i64().ok_or_else(out_of_range)?;
    if !(-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value) {
        return Err(out_of_range());
    }
    Ok(value)
}
