//! `@electron/asar` 4.3 packs identical contents once and points every entry
//! with that content at the same bytes; partial overlaps stay hostile.
#![allow(clippy::unwrap_used, reason = "test setup fails loudly")]

use midcore_verifier::asar::Archive;

/// Builds an archive from a JSON header and a data section, with the pickle prefix Electron writes.
fn archive_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let json_len = u32::try_from(header.len()).unwrap();
    let padded = json_len.div_ceil(4) * 4;
    let header_size = 8 + padded;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&header_size.to_le_bytes());
    bytes.extend_from_slice(&(header_size - 4).to_le_bytes());
    bytes.extend_from_slice(&json_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(16 + padded as usize, 0);
    bytes.extend_from_slice(data);
    bytes
}

fn open(header: &str, data: &[u8]) -> Result<Archive, midcore_verifier::asar::AsarError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.asar");
    std::fs::write(&path, archive_bytes(header, data)).unwrap();
    Archive::open(&path)
}

#[test]
fn identical_ranges_accepted() {
    let header = r#"{"files":{"a.txt":{"size":5,"offset":"0"},"b.txt":{"size":5,"offset":"0"},"c.txt":{"size":3,"offset":"5"}}}"#;
    let archive = open(header, b"helloabc").unwrap();
    assert_eq!(archive.entries().len(), 3);
}

#[test]
fn partial_overlap_rejected() {
    let header = r#"{"files":{"a.txt":{"size":5,"offset":"0"},"b.txt":{"size":5,"offset":"2"}}}"#;
    let message = open(header, b"helloabc").unwrap_err().to_string();
    assert!(message.contains("overlap"), "{message}");
    assert!(message.contains("b.txt"), "{message}");
}

#[test]
fn overlap_after_shared_range_rejected() {
    // Two entries share 0..6, and a third starts inside it.
    let header = r#"{"files":{"a":{"size":6,"offset":"0"},"b":{"size":6,"offset":"0"},"c":{"size":2,"offset":"4"}}}"#;
    let message = open(header, b"abcdefgh").unwrap_err().to_string();
    assert!(message.contains("overlap"), "{message}");
}

#[test]
fn range_inside_longer_range_rejected() {
    let header = r#"{"files":{"a":{"size":8,"offset":"0"},"b":{"size":2,"offset":"1"},"c":{"size":2,"offset":"5"}}}"#;
    let message = open(header, b"abcdefgh").unwrap_err().to_string();
    assert!(message.contains("overlap"), "{message}");
}
