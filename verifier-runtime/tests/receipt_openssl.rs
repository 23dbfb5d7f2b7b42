//! Receipts signed by OpenSSL verify; every ambiguous, malformed or
//! unsigned receipt is rejected with a message naming the field.

mod ledger_support;

use std::sync::OnceLock;

use ledger_support::{OpensslKey, ReceiptFields};
use midcore_verifier::crypto::TrustedKeys;
use midcore_verifier::receipt::{Receipt, ReceiptError};

struct Keys {
    _dir: tempfile::TempDir,
    first: OpensslKey,
    second: OpensslKey,
}

/// Two OpenSSL keys shared by the tests in this file: one 3072-bit, one 2048-bit.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let first = OpensslKey::generate(dir.path(), "first", 3072);
        let second = OpensslKey::generate(dir.path(), "second", 2048);
        Keys {
            _dir: dir,
            first,
            second,
        }
    })
}

fn trusted(keys: &[&OpensslKey]) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    for key in keys {
        trusted.pin_key(key.public_key());
    }
    trusted
}

fn sample() -> ReceiptFields {
    ReceiptFields::new("rcpt-0001", "ocr.page", "tenant-a", 125, 1_767_225_600_000)
}

fn signed(fields: &ReceiptFields, key: &OpensslKey) -> String {
    fields.to_json(&key.sign(&fields.signed_bytes()), None)
}

fn field_of(error: &ReceiptError) -> Option<&str> {
    match error {
        ReceiptError::InvalidField { field, .. } => Some(field),
        ReceiptError::DuplicateField { field } => Some(field),
        _ => None,
    }
}

#[test]
fn openssl_receipt_verifies() {
    let keys = keys();
    let receipt =
        Receipt::parse(signed(&sample(), &keys.first).as_bytes()).expect("receipt parses");
    let verified = receipt
        .verify(&trusted(&[&keys.first]))
        .expect("OpenSSL PSS signature verifies");
    assert_eq!(verified.verified_by(), keys.first.public_key().key_id());
}

#[test]
fn signed_bytes_are_pipe_joined() {
    let receipt =
        Receipt::parse(signed(&sample(), &keys().second).as_bytes()).expect("receipt parses");
    assert_eq!(
        receipt.signed_bytes(),
        b"rcpt-0001|ocr.page|tenant-a|125|1767225600000"
    );
}

#[test]
fn negative_amount_verifies() {
    let keys = keys();
    let fields = ReceiptFields::new("refund-1", "ocr.page", "tenant-a", -40, -5);
    let receipt = Receipt::parse(signed(&fields, &keys.second).as_bytes()).expect("receipt parses");
    assert!(receipt.verify(&trusted(&[&keys.second])).is_ok());
}

#[test]
fn rotation_accepts_either_pinned_key() {
    let keys = keys();
    let pinned = trusted(&[&keys.first, &keys.second]);
    for key in [&keys.first, &keys.second] {
        let receipt = Receipt::parse(signed(&sample(), key).as_bytes()).expect("receipt parses");
        assert!(receipt.verify(&pinned).is_ok());
    }
}

#[test]
fn key_id_selects_the_key() {
    let keys = keys();
    let fields = sample();
    let key_id = keys.second.public_key().key_id().to_string();
    let json = fields.to_json(&keys.second.sign(&fields.signed_bytes()), Some(&key_id));
    let receipt = Receipt::parse(json.as_bytes()).expect("receipt parses");
    let verified = receipt
        .verify(&trusted(&[&keys.first, &keys.second]))
        .expect("verifies under the named key");
    assert_eq!(verified.verified_by().to_string(), key_id);
}

#[test]
fn unpinned_key_id_rejected() {
    let keys = keys();
    let fields = sample();
    let key_id = keys.second.public_key().key_id().to_string();
    let json = fields.to_json(&keys.second.sign(&fields.signed_bytes()), Some(&key_id));
    let error = Receipt::parse(json.as_bytes())
        .expect("parses")
        .verify(&trusted(&[&keys.first]))
        .unwrap_err();
    assert!(
        matches!(error, ReceiptError::UntrustedKey { .. }),
        "{error}"
    );
}

#[test]
fn wrong_key_id_rejected() {
    let keys = keys();
    let fields = sample();
    let other_id = keys.first.public_key().key_id().to_string();
    let json = fields.to_json(&keys.second.sign(&fields.signed_bytes()), Some(&other_id));
    let error = Receipt::parse(json.as_bytes())
        .expect("parses")
        .verify(&trusted(&[&keys.first, &keys.second]))
        .unwrap_err();
    assert!(
        matches!(error, ReceiptError::BadSignature { .. }),
        "{error}"
    );
}

#[test]
fn unpinned_signer_rejected() {
    let keys = keys();
    let receipt = Receipt::parse(signed(&sample(), &keys.second).as_bytes()).expect("parses");
    let error = receipt.verify(&trusted(&[&keys.first])).unwrap_err();
    assert!(
        matches!(error, ReceiptError::NoKeyVerifies { tried: 1, .. }),
        "{error}"
    );
}

#[test]
fn no_pinned_keys_rejected() {
    let receipt = Receipt::parse(signed(&sample(), &keys().second).as_bytes()).expect("parses");
    let error = receipt.verify(&TrustedKeys::new()).unwrap_err();
    assert!(matches!(error, ReceiptError::NoKeys), "{error}");
}

#[test]
fn altered_amount_rejected() {
    let keys = keys();
    let json =
        signed(&sample(), &keys.second).replace("\"actual_cents\":125", "\"actual_cents\":1");
    let error = Receipt::parse(json.as_bytes())
        .expect("parses")
        .verify(&trusted(&[&keys.second]))
        .unwrap_err();
    assert!(
        matches!(error, ReceiptError::NoKeyVerifies { .. }),
        "{error}"
    );
}

#[test]
fn pipe_in_any_string_field_rejected() {
    let keys = keys();
    // `id="a|b", operation="c"` and `id="a", operation="b|c"` sign the same bytes.
    let shifted = [
        ("id", ReceiptFields::new("a|b", "c", "tenant-a", 1, 1)),
        (
            "operation",
            ReceiptFields::new("a", "b|c", "tenant-a", 1, 1),
        ),
        ("tenant_id", ReceiptFields::new("a", "b", "t|x", 1, 1)),
    ];
    for (field, fields) in shifted {
        let error = Receipt::parse(signed(&fields, &keys.second).as_bytes()).unwrap_err();
        assert_eq!(field_of(&error), Some(field), "{error}");
    }
}

#[test]
fn ambiguous_pair_signs_the_same_bytes() {
    let left = ReceiptFields::new("a|b", "c", "t", 1, 1);
    let right = ReceiptFields::new("a", "b|c", "t", 1, 1);
    assert_eq!(left.signed_bytes(), right.signed_bytes());
}

#[test]
fn control_characters_rejected() {
    for (field, value) in [
        ("id", "a\u{0}b"),
        ("operation", "op\n"),
        ("tenant_id", "t\u{7f}"),
        ("id", "x\u{85}"),
    ] {
        let mut fields = sample();
        match field {
            "id" => fields.id = value.to_owned(),
            "operation" => fields.operation = value.to_owned(),
            _ => fields.tenant_id = value.to_owned(),
        }
        let error = Receipt::parse(fields.to_json(&[1; 256], None).as_bytes()).unwrap_err();
        assert_eq!(field_of(&error), Some(field), "{value:?}: {error}");
    }
}

#[test]
fn empty_string_field_rejected() {
    let mut fields = sample();
    fields.operation = String::new();
    let error = Receipt::parse(fields.to_json(&[1; 256], None).as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("operation"));
}

/// A receipt with `literal` spliced in as the value of `field`.
fn with_number(field: &str, literal: &str) -> String {
    let fields = sample();
    let json = fields.to_json(&[1; 256], None);
    let original = if field == "actual_cents" {
        "\"actual_cents\":125"
    } else {
        "\"finalized_at_ms\":1767225600000"
    };
    json.replace(original, &format!("\"{field}\":{literal}"))
}

#[test]
fn non_plain_numbers_rejected() {
    for field in ["actual_cents", "finalized_at_ms"] {
        for literal in [
            "1e3", "1E3", "1999.0", "-0", "01", "+5", "0.5", "\"125\"", "true", "null", "-", "1e-2",
        ] {
            let error = Receipt::parse(with_number(field, literal).as_bytes()).unwrap_err();
            assert_eq!(field_of(&error), Some(field), "{field}={literal}: {error}");
        }
    }
}

#[test]
fn unsafe_integers_rejected() {
    for field in ["actual_cents", "finalized_at_ms"] {
        for literal in [
            "9007199254740992",
            "-9007199254740992",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let error = Receipt::parse(with_number(field, literal).as_bytes()).unwrap_err();
            assert_eq!(field_of(&error), Some(field), "{field}={literal}: {error}");
        }
    }
}

#[test]
fn safe_integer_bounds_accepted() {
    for literal in ["9007199254740991", "-9007199254740991", "0"] {
        let receipt = Receipt::parse(with_number("actual_cents", literal).as_bytes());
        assert!(receipt.is_ok(), "{literal}: {receipt:?}");
    }
}

#[test]
fn duplicate_key_rejected() {
    let json = signed(&sample(), &keys().second).replacen(
        "{\"id\":\"rcpt-0001\",",
        "{\"id\":\"rcpt-0001\",\"id\":\"rcpt-0002\",",
        1,
    );
    let error = Receipt::parse(json.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, ReceiptError::DuplicateField { field } if field == "id"),
        "{error}"
    );
}

#[test]
fn escaped_duplicate_key_rejected() {
    let json = signed(&sample(), &keys().second).replacen(
        "{\"id\":",
        "{\"tenant_\\u0069d\":\"tenant-b\",\"id\":",
        1,
    );
    let error = Receipt::parse(json.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, ReceiptError::DuplicateField { field } if field == "tenant_id"),
        "{error}"
    );
}

#[test]
fn unknown_field_rejected() {
    let json = signed(&sample(), &keys().second).replacen("{", "{\"project\":\"p\",", 1);
    let error = Receipt::parse(json.as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("project"), "{error}");
}

#[test]
fn missing_field_rejected() {
    let json = signed(&sample(), &keys().second).replacen("\"operation\":\"ocr.page\",", "", 1);
    let error = Receipt::parse(json.as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("operation"), "{error}");
}

#[test]
fn unpadded_base64_rejected() {
    let fields = sample();
    let json = fields.to_json(&[7; 256], None);
    // 256 bytes encode to 344 characters ending in "=".
    let unpadded = json.replacen("=\"", "\"", 1);
    let error = Receipt::parse(unpadded.as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("signature"), "{error}");
}

#[test]
fn url_safe_base64_rejected() {
    let fields = sample();
    let json = fields.to_json(&[0xfb; 256], None);
    let url_safe = json.replace('+', "-").replace('/', "_");
    let error = Receipt::parse(url_safe.as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("signature"), "{error}");
}

#[test]
fn malformed_key_id_rejected() {
    let json = sample().to_json(&[1; 256], Some("sha256:ABC"));
    let error = Receipt::parse(json.as_bytes()).unwrap_err();
    assert_eq!(field_of(&error), Some("key_id"), "{error}");
}
