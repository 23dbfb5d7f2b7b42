//! The ASAR reader against hand-made hostile and tricky archives, built in temporary folders.

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use midcore_verifier::asar::{
    Archive, AsarError, AsarErrorKind, BLOCK_SIZE, EntryDigest, EntryKind, HeaderLayout,
    MAX_HEADER_JSON_LEN, MAX_LINK_DEPTH, MAX_PATH_LEN, MAX_TOTAL_PATH_BYTES, digest_reader,
    parse_header, parse_header_json,
};
use midcore_verifier::crypto::sha256;
use midcore_verifier::json::JsonError;
use tempfile::TempDir;

/// [`BLOCK_SIZE`] as a `usize`, for buffers.
const BLOCK: usize = 4 * 1024 * 1024;

/// Builds archive bytes: the 16-byte prefix, `json`, zero padding to 4, then `data`.
fn build(json: &str, data: &[u8]) -> Vec<u8> {
    build_raw(json.as_bytes(), json.len(), data)
}

/// Like [`build`], but with `json_len` written as the JSON length field.
fn build_raw(json: &[u8], json_len: usize, data: &[u8]) -> Vec<u8> {
    let padded = json_len.div_ceil(4) * 4;
    let header_size = u32::try_from(8 + padded).expect("test header fits");
    let mut out = Vec::new();
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&header_size.to_le_bytes());
    out.extend_from_slice(&(header_size - 4).to_le_bytes());
    out.extend_from_slice(
        &i32::try_from(json_len)
            .expect("test JSON fits")
            .to_le_bytes(),
    );
    out.extend_from_slice(json);
    out.resize(8 + header_size as usize, 0);
    out.extend_from_slice(data);
    out
}

fn prefix(fields: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (index, field) in fields.iter().enumerate() {
        out[index * 4..index * 4 + 4].copy_from_slice(&field.to_le_bytes());
    }
    out
}

struct Fixture {
    folder: TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new(bytes: &[u8]) -> Self {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("app.asar");
        fs::write(&path, bytes).expect("archive written");
        Self { folder, path }
    }

    fn open(&self) -> Result<Archive, AsarError> {
        Archive::open(&self.path)
    }

    fn unpacked(&self) -> PathBuf {
        self.folder.path().join("app.asar.unpacked")
    }

    fn write_unpacked(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.unpacked().join(relative);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("folder created");
        fs::write(&path, bytes).expect("unpacked file written");
        path
    }
}

fn open(json: &str, data: &[u8]) -> Result<Archive, AsarError> {
    Fixture::new(&build(json, data)).open()
}

fn reject(json: &str, data: &[u8]) -> AsarError {
    open(json, data).expect_err("archive must be rejected")
}

fn accept(json: &str, data: &[u8]) -> (Fixture, Archive) {
    let fixture = Fixture::new(&build(json, data));
    let archive = fixture
        .open()
        .unwrap_or_else(|error| panic!("archive must open: {error}"));
    (fixture, archive)
}

/// Returns the `integrity` member that `@electron/asar` writes for `data`.
fn integrity(data: &[u8]) -> String {
    let digest = digest_reader(data).expect("in-memory read");
    let blocks: Vec<String> = digest
        .blocks
        .iter()
        .map(|block| format!("\"{}\"", hex::encode(block)))
        .collect();
    format!(
        r#"{{"algorithm":"SHA256","hash":"{}","blockSize":4194304,"blocks":[{}]}}"#,
        hex::encode(digest.sha256),
        blocks.join(",")
    )
}

fn one_file(name: &str, data: &[u8]) -> String {
    format!(
        r#"{{"files":{{"{name}":{{"size":{},"offset":"0","integrity":{}}}}}}}"#,
        data.len(),
        integrity(data)
    )
}

fn is_invalid_member(error: &AsarError, member: &str) -> bool {
    matches!(&error.kind, AsarErrorKind::InvalidMember { member: found, .. } if *found == member)
}

fn is_invalid_name(error: &AsarError) -> bool {
    matches!(error.kind, AsarErrorKind::InvalidName { .. })
}

// ---------------------------------------------------------------------------
// The 16-byte prefix.

#[test]
fn prefix_first_field_must_be_four() {
    let error = parse_header(&prefix([8, 16, 12, 4]), 100).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::BadPickleSize { found: 8 }),
        "{error}"
    );
}

#[test]
fn prefix_payload_size_must_match() {
    let error = parse_header(&prefix([4, 16, 8, 4]), 100).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderSizeMismatch { .. }),
        "{error}"
    );
}

#[test]
fn prefix_zero_header_size_rejected() {
    let error = parse_header(&prefix([4, 0, u32::MAX, 0]), 100).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderSizeMismatch { .. }),
        "{error}"
    );
}

#[test]
fn prefix_negative_json_length_rejected() {
    let error = parse_header(&prefix([4, 16, 12, u32::MAX]), 100).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NegativeJsonLength { length: -1 }),
        "{error}"
    );
}

#[test]
fn json_longer_than_header_rejected() {
    let error = parse_header(&prefix([4, 16, 12, 9]), 100).expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::JsonLongerThanHeader {
                json_len: 9,
                header_size: 16
            }
        ),
        "{error}"
    );
}

#[test]
fn json_longer_than_header_in_file_rejected() {
    let mut bytes = build(r#"{"files":{}}"#, b"");
    bytes[12..16].copy_from_slice(&40u32.to_le_bytes());
    let error = Fixture::new(&bytes).open().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::JsonLongerThanHeader { .. }),
        "{error}"
    );
}

#[test]
fn header_size_with_extra_padding_rejected() {
    let error = parse_header(&prefix([4, 20, 16, 4]), 100).expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::HeaderPadding { expected: 12, .. }
        ),
        "{error}"
    );
}

#[test]
fn header_larger_than_file_rejected() {
    let bytes = build(r#"{"files":{}}"#, b"");
    let truncated = &bytes[..bytes.len() - 2];
    let error = Fixture::new(truncated).open().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderBeyondFile { .. }),
        "{error}"
    );
}

#[test]
fn file_shorter_than_prefix_rejected() {
    let error = Fixture::new(&[4, 0, 0, 0, 8]).open().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::TooShort { len: 5 }),
        "{error}"
    );
}

#[test]
fn empty_file_rejected() {
    let error = Fixture::new(b"").open().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::TooShort { len: 0 }),
        "{error}"
    );
}

#[test]
fn nonzero_padding_rejected() {
    let json = r#"{"files":{"a":{"size":0,"offset":"0"}}}"#;
    assert_ne!(json.len() % 4, 0, "the test needs padding");
    let mut bytes = build(json, b"");
    bytes[16 + json.len()] = 1;
    let error = Fixture::new(&bytes).open().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NonZeroPadding),
        "{error}"
    );
}

#[test]
fn header_json_over_limit_rejected() {
    let json_len = u32::try_from(MAX_HEADER_JSON_LEN + 4).expect("fits");
    let error = parse_header(&prefix([4, json_len + 8, json_len + 4, json_len]), u64::MAX)
        .expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderTooLarge { .. }),
        "{error}"
    );
}

#[test]
fn prefix_layout_is_computed() {
    let layout = parse_header(&prefix([4, 20, 16, 10]), 100).expect("valid prefix");
    assert_eq!(layout.header_size, 20);
    assert_eq!(layout.json_len, 10);
    assert_eq!(layout.data_offset, 28);
    assert_eq!(layout.data_len, 72);
    assert_eq!(layout.padding_len(), 2);
    assert_eq!(HeaderLayout::JSON_OFFSET, 16);
}

#[test]
fn directory_path_rejected() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let error = Archive::open(folder.path()).expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::NotRegularFile | AsarErrorKind::Io { .. }
        ),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn archive_fifo_rejected_without_blocking() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join("app.asar");
    let status = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(status.expect("mkfifo runs").success());
    let error = Archive::open(&path).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NotRegularFile),
        "{error}"
    );
}

#[test]
fn missing_archive_names_path() {
    let error = Archive::open(Path::new("/nonexistent/app.asar")).expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::Io {
                operation: "open",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("/nonexistent/app.asar: "),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// The JSON header: syntax, node kinds and members.

#[test]
fn invalid_json_rejected() {
    let error = reject(r#"{"files":{"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::InvalidJson(_)),
        "{error}"
    );
}

#[test]
fn duplicate_keys_rejected() {
    let error = reject(
        r#"{"files":{"a":{"size":1,"offset":"0"},"a":{"size":1,"offset":"1"}}}"#,
        b"xy",
    );
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(JsonError::DuplicateKey { .. })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("duplicate key \"a\""), "{error}");
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn duplicate_keys_in_subfolder_rejected() {
    let error = reject(
        r#"{"files":{"d":{"files":{"x":{"link":"d"},"x":{"link":"d"}}}}}"#,
        b"",
    );
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(JsonError::DuplicateKey { .. })
        ),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("d/x"));
}

#[test]
fn duplicate_escaped_key_names_entry() {
    let error = reject(
        r#"{"files":{"d\"q":{"files":{"x":{"link":"y"},"\u0078":{"link":"y"}}},"y":{"files":{}}}}"#,
        b"",
    );
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(JsonError::DuplicateKey { .. })
        ),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("d\"q/x"));
}

#[test]
fn duplicate_root_member_names_no_entry() {
    let error = reject(r#"{"files":{},"files":{}}"#, b"");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(JsonError::DuplicateKey { .. })
        ),
        "{error}"
    );
    assert_eq!(error.entry, None);
}

#[test]
fn duplicate_member_in_node_rejected() {
    let error = reject(r#"{"files":{"a":{"size":1,"size":2,"offset":"0"}}}"#, b"xy");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(JsonError::DuplicateKey { .. })
        ),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn root_must_be_directory() {
    let error = reject(r#"{"size":0,"offset":"0"}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::RootNotDirectory),
        "{error}"
    );
}

#[test]
fn root_must_be_object() {
    let error = reject("[]", b"");
    assert!(
        matches!(error.kind, AsarErrorKind::RootNotDirectory),
        "{error}"
    );
}

#[test]
fn node_must_be_object() {
    let error = reject(r#"{"files":{"a":1}}"#, b"");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::NodeNotObject { found: "a number" }
        ),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn unknown_member_rejected() {
    let error = reject(
        r#"{"files":{"a":{"size":1,"offset":"0","mode":420}}}"#,
        b"x",
    );
    assert!(
        matches!(&error.kind, AsarErrorKind::UnknownMember { member, node_kind: "file" } if member == "mode")
    );
    assert!(
        error.to_string().contains("unknown member \"mode\""),
        "{error}"
    );
}

#[test]
fn link_decides_kind_before_files() {
    let error = reject(
        r#"{"files":{"a":{"link":"b","files":{}},"b":{"files":{}}}}"#,
        b"",
    );
    assert!(
        matches!(&error.kind, AsarErrorKind::UnknownMember { member, node_kind: "link" } if member == "files")
    );
}

#[test]
fn files_decides_kind_before_file() {
    let error = reject(r#"{"files":{"a":{"files":{},"size":0}}}"#, b"");
    assert!(
        matches!(&error.kind, AsarErrorKind::UnknownMember { member, node_kind: "directory" } if member == "size")
    );
}

#[test]
fn files_must_be_object() {
    let error = reject(r#"{"files":{"a":{"files":[]}}}"#, b"");
    assert!(is_invalid_member(&error, "files"), "{error}");
}

#[test]
fn flags_must_be_booleans() {
    let error = reject(
        r#"{"files":{"a":{"size":0,"offset":"0","executable":1}}}"#,
        b"",
    );
    assert!(is_invalid_member(&error, "executable"), "{error}");
    let error = reject(r#"{"files":{"a":{"files":{},"unpacked":"yes"}}}"#, b"");
    assert!(is_invalid_member(&error, "unpacked"), "{error}");
}

#[test]
fn executable_flag_is_kept() {
    let (_fixture, archive) = accept(
        r#"{"files":{"run.sh":{"size":2,"offset":"0","executable":true}}}"#,
        b"hi",
    );
    let entry = archive.entry("run.sh").expect("entry exists");
    assert!(matches!(
        entry.kind,
        EntryKind::File {
            executable: true,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------
// Sizes and offsets.

#[test]
fn negative_size_rejected() {
    let error = reject(r#"{"files":{"a":{"size":-1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_member(&error, "size"), "{error}");
    assert!(error.to_string().contains("-1"), "{error}");
}

#[test]
fn fractional_size_rejected() {
    let error = reject(r#"{"files":{"a":{"size":1.5,"offset":"0"}}}"#, b"xy");
    assert!(is_invalid_member(&error, "size"), "{error}");
}

#[test]
fn exponent_size_rejected() {
    let error = reject(r#"{"files":{"a":{"size":1e0,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_member(&error, "size"), "{error}");
}

#[test]
fn string_size_rejected() {
    let error = reject(r#"{"files":{"a":{"size":"1","offset":"0"}}}"#, b"x");
    assert!(is_invalid_member(&error, "size"), "{error}");
    assert!(error.to_string().contains("found a string"), "{error}");
}

#[test]
fn missing_size_rejected() {
    let error = reject(r#"{"files":{"a":{"offset":"0"}}}"#, b"x");
    assert!(
        matches!(error.kind, AsarErrorKind::MissingMember { member: "size" }),
        "{error}"
    );
}

#[test]
fn size_beyond_data_rejected() {
    let error = reject(r#"{"files":{"a":{"size":5,"offset":"0"}}}"#, b"abcd");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::DataOutOfBounds {
                offset: 0,
                end: 5,
                data_len: 4
            }
        ),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn offset_beyond_data_rejected() {
    let error = reject(r#"{"files":{"a":{"size":0,"offset":"5"}}}"#, b"abcd");
    assert!(
        matches!(error.kind, AsarErrorKind::DataOutOfBounds { .. }),
        "{error}"
    );
}

#[test]
fn numeric_offset_rejected() {
    let error = reject(r#"{"files":{"a":{"size":1,"offset":0}}}"#, b"x");
    assert!(is_invalid_member(&error, "offset"), "{error}");
}

#[test]
fn non_canonical_offsets_rejected() {
    for offset in [
        "01",
        "+1",
        "-1",
        " 1",
        "1.0",
        "",
        "0x1",
        "18446744073709551616",
    ] {
        let json = format!(r#"{{"files":{{"a":{{"size":0,"offset":"{offset}"}}}}}}"#);
        let error = reject(&json, b"xx");
        assert!(
            is_invalid_member(&error, "offset"),
            "offset {offset:?}: {error}"
        );
    }
}

#[test]
fn missing_offset_rejected() {
    let error = reject(r#"{"files":{"a":{"size":1}}}"#, b"x");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::MissingMember { member: "offset" }
        ),
        "{error}"
    );
}

#[test]
fn offset_on_unpacked_file_rejected() {
    let error = reject(
        r#"{"files":{"a":{"size":1,"offset":"0","unpacked":true}}}"#,
        b"x",
    );
    assert!(is_invalid_member(&error, "offset"), "{error}");
}

#[test]
fn offset_plus_size_overflow_rejected() {
    let error = reject(
        r#"{"files":{"a":{"size":2,"offset":"18446744073709551615"}}}"#,
        b"x",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::OffsetOverflow { .. }),
        "{error}"
    );
}

#[test]
fn overlapping_ranges_rejected() {
    let error = reject(
        r#"{"files":{"a":{"size":3,"offset":"0"},"b":{"size":2,"offset":"2"}}}"#,
        b"abcd",
    );
    assert!(
        matches!(&error.kind, AsarErrorKind::Overlap { other, .. } if other == "a"),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("b"));
}

#[test]
fn identical_ranges_read_same_bytes() {
    // @electron/asar 4.3 stores identical contents once, so entries may share a range.
    let data = b"ab";
    let json = format!(
        r#"{{"files":{{"a":{{"size":2,"offset":"0","integrity":{0}}},"d":{{"files":{{"b":{{"size":2,"offset":"0","integrity":{0}}}}}}}}}}}"#,
        integrity(data)
    );
    let (_fixture, archive) = accept(&json, data);
    let first = archive.entry("a").expect("entry exists");
    let second = archive.entry("d/b").expect("entry exists");
    assert_eq!(
        archive.digest_entry(first).expect("digests"),
        archive.digest_entry(second).expect("digests")
    );
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn empty_files_may_share_offsets() {
    let json = r#"{"files":{"a":{"size":0,"offset":"0"},"b":{"size":2,"offset":"0"},"c":{"size":0,"offset":"1"},"d":{"size":0,"offset":"2"}}}"#;
    let (_fixture, archive) = accept(json, b"ab");
    assert_eq!(archive.entries().len(), 4);
}

#[test]
fn offsets_past_four_gib_are_exact() {
    let json = r#"{"files":{"a":{"size":1,"offset":"4294967296"}}}"#;
    let entries = parse_header_json(json.as_bytes(), 4_294_967_297).expect("valid header");
    assert!(matches!(
        entries[0].kind,
        EntryKind::File {
            offset: Some(4_294_967_296),
            ..
        }
    ));
}

// ---------------------------------------------------------------------------
// Names.

#[test]
fn dot_dot_name_rejected() {
    let error = reject(
        r#"{"files":{"..":{"files":{"evil":{"size":1,"offset":"0"}}}}}"#,
        b"x",
    );
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn dot_name_rejected() {
    let error = reject(r#"{"files":{".":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn empty_name_rejected() {
    let error = reject(r#"{"files":{"":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn slash_in_name_rejected() {
    let error = reject(r#"{"files":{"a/b":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn absolute_name_rejected() {
    let error = reject(r#"{"files":{"/etc/passwd":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn backslash_in_name_rejected() {
    let error = reject(r#"{"files":{"..\\evil":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn nul_in_name_rejected() {
    let error = reject(r#"{"files":{"a\u0000b":{"size":1,"offset":"0"}}}"#, b"x");
    assert!(is_invalid_name(&error), "{error}");
}

#[test]
fn nested_invalid_name_names_path() {
    let error = reject(
        r#"{"files":{"dir":{"files":{"..":{"size":1,"offset":"0"}}}}}"#,
        b"x",
    );
    assert_eq!(error.entry.as_deref(), Some("dir/.."));
}

#[test]
fn unicode_names_accepted() {
    let data = b"girl";
    let (_fixture, archive) = accept(&one_file("女の子.txt", data), data);
    let entry = archive.entry("女の子.txt").expect("entry exists");
    let mut bytes = Vec::new();
    archive
        .open_entry(entry)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect("reads");
    assert_eq!(bytes, data);
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn json_length_counts_bytes() {
    let json = one_file("女の子.txt", b"");
    assert!(
        json.len() > json.chars().count(),
        "the test needs multibyte characters"
    );
    let fixture = Fixture::new(&build_raw(json.as_bytes(), json.chars().count(), b""));
    let error = fixture
        .open()
        .expect_err("a length in characters cuts the JSON short");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::InvalidJson(_) | AsarErrorKind::NonZeroPadding
        ),
        "{error}"
    );
}

#[test]
fn prototype_names_accepted() {
    let json = r#"{"files":{"__proto__":{"files":{"constructor":{"size":1,"offset":"0"}}},"constructor":{"size":1,"offset":"1"}}}"#;
    let (_fixture, archive) = accept(json, b"ab");
    assert!(archive.entry("__proto__/constructor").is_some());
    assert!(archive.entry("constructor").is_some());
}

#[test]
fn name_at_path_limit_accepted() {
    let name = "n".repeat(MAX_PATH_LEN);
    let json = format!(r#"{{"files":{{"{name}":{{"size":0,"offset":"0"}}}}}}"#);
    let entries =
        parse_header_json(json.as_bytes(), 0).expect("a path of exactly the limit is accepted");
    assert_eq!(entries[0].path.len(), MAX_PATH_LEN);
}

#[test]
fn name_over_path_limit_rejected() {
    let name = "n".repeat(MAX_PATH_LEN + 1);
    let error = reject(
        &format!(r#"{{"files":{{"{name}":{{"size":0,"offset":"0"}}}}}}"#),
        b"",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::PathTooLong { .. }),
        "{error}"
    );
    assert_eq!(error.entry, None);
}

#[test]
fn nested_path_over_limit_names_parent() {
    let name = "n".repeat(MAX_PATH_LEN - 1);
    let error = reject(
        &format!(r#"{{"files":{{"d":{{"files":{{"{name}":{{"size":0,"offset":"0"}}}}}}}}}}"#),
        b"",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::PathTooLong { .. }),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("d"));
}

#[test]
fn long_link_target_rejected() {
    let target = "t".repeat(MAX_PATH_LEN + 1);
    let error = reject(
        &format!(r#"{{"files":{{"a":{{"link":"{target}"}}}}}}"#),
        b"",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::PathTooLong { .. }),
        "{error}"
    );
}

#[test]
fn repeated_long_paths_rejected() {
    // Every child repeats the long folder name in its path, so a header of a few MB
    // would otherwise make the reader store hundreds of MB of paths.
    let folder = "f".repeat(MAX_PATH_LEN - 16);
    let children = MAX_TOTAL_PATH_BYTES / folder.len() + 1;
    let members: Vec<String> = (0..children)
        .map(|index| format!(r#""{index}":{{"size":0,"offset":"0"}}"#))
        .collect();
    let json = format!(
        r#"{{"files":{{"{folder}":{{"files":{{{}}}}}}}}}"#,
        members.join(",")
    );
    assert!(json.len() < 8 * 1024 * 1024, "the header stays small");
    let error = parse_header_json(json.as_bytes(), 0).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::PathsTooLarge { .. }),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Nesting depth.

fn nested(levels: usize) -> String {
    let mut json = String::from(r#"{"files":"#);
    for _ in 0..levels {
        json.push_str(r#"{"d":{"files":"#);
    }
    json.push_str(r#"{"f":{"size":0,"offset":"0"}}"#);
    for _ in 0..levels {
        json.push_str("}}");
    }
    json.push('}');
    json
}

/// Runs `test` on a thread with the 2 MiB stack Rust gives test threads by default.
fn on_small_stack<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(test)
        .expect("thread starts")
        .join()
        .expect("thread did not overflow its stack")
}

#[test]
fn deep_folders_accepted_on_small_stack() {
    let entries = on_small_stack(|| {
        parse_header_json(nested(250).as_bytes(), 0).map(|entries| entries.len())
    });
    assert_eq!(entries.expect("250 levels are accepted"), 251);
}

#[test]
fn too_deep_folders_rejected_on_small_stack() {
    let outcome =
        on_small_stack(|| parse_header_json(nested(300).as_bytes(), 0).map_err(|error| error.kind));
    assert!(matches!(
        outcome,
        Err(AsarErrorKind::InvalidJson(JsonError::TooDeep { .. }))
    ));
}

// ---------------------------------------------------------------------------
// Links.

#[test]
fn escaping_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"../outside"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkEscapes { .. }),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn absolute_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"/etc/passwd"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkEscapes { .. }),
        "{error}"
    );
}

#[test]
fn link_with_inner_dot_dot_rejected() {
    let error = reject(
        r#"{"files":{"a":{"link":"b/../../x"},"b":{"files":{}}}}"#,
        b"",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::LinkEscapes { .. }),
        "{error}"
    );
}

#[test]
fn backslash_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"..\\x"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkEscapes { .. }),
        "{error}"
    );
}

#[test]
fn empty_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":""}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkEscapes { .. }),
        "{error}"
    );
}

#[test]
fn non_string_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":1}}}"#, b"");
    assert!(is_invalid_member(&error, "link"), "{error}");
}

#[test]
fn self_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"a"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkCycle { .. }),
        "{error}"
    );
}

#[test]
fn two_link_cycle_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"b"},"b":{"link":"a"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkCycle { .. }),
        "{error}"
    );
}

#[test]
fn link_into_itself_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"a/b"}}}"#, b"");
    assert!(
        matches!(error.kind, AsarErrorKind::LinkCycle { .. }),
        "{error}"
    );
}

#[test]
fn dangling_link_rejected() {
    let error = reject(r#"{"files":{"a":{"link":"missing"}}}"#, b"");
    assert!(
        matches!(&error.kind, AsarErrorKind::LinkTargetNotFound { target } if target == "missing"),
        "{error}"
    );
}

#[test]
fn link_through_file_rejected() {
    let error = reject(
        r#"{"files":{"a":{"link":"f/x"},"f":{"size":1,"offset":"0"}}}"#,
        b"x",
    );
    assert!(
        matches!(error.kind, AsarErrorKind::LinkTargetNotFound { .. }),
        "{error}"
    );
}

fn link_chain(links: usize) -> String {
    let mut members = vec![r#""f":{"size":1,"offset":"0"}"#.to_owned()];
    for index in 0..links {
        let target = if index == 0 {
            "f".to_owned()
        } else {
            format!("l{:03}", index - 1)
        };
        members.push(format!(r#""l{index:03}":{{"link":"{target}"}}"#));
    }
    format!(r#"{{"files":{{{}}}}}"#, members.join(","))
}

#[test]
fn link_chain_at_limit_resolves() {
    let (_fixture, archive) = accept(&link_chain(MAX_LINK_DEPTH), b"x");
    let last = format!("l{:03}", MAX_LINK_DEPTH - 1);
    assert_eq!(archive.resolve(&last).expect("resolves").path, "f");
}

#[test]
fn link_chain_over_limit_rejected() {
    let error = reject(&link_chain(MAX_LINK_DEPTH + 1), b"x");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::LinkDepthExceeded {
                max: MAX_LINK_DEPTH
            }
        ),
        "{error}"
    );
}

#[test]
fn resolve_rejects_dot_dot_path() {
    let (_fixture, archive) = accept(r#"{"files":{"d":{"files":{}}}}"#, b"");
    let error = archive.resolve("d/../d").expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::InvalidPath { .. }),
        "{error}"
    );
}

#[test]
fn resolve_through_file_fails() {
    let (_fixture, archive) = accept(r#"{"files":{"f":{"size":1,"offset":"0"}}}"#, b"x");
    let error = archive.resolve("f/x").expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NotADirectory { .. }),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Unpacked files.

const UNPACKED_A: &str = r#"{"files":{"a.txt":{"size":5,"unpacked":true}}}"#;
const UNPACKED_DIR: &str =
    r#"{"files":{"d":{"unpacked":true,"files":{"a.txt":{"size":5,"unpacked":true}}}}}"#;

fn open_entry_error(fixture: &Fixture, path: &str) -> AsarError {
    let archive = fixture.open().expect("opens");
    let entry = archive.entry(path).expect("entry exists");
    archive.open_entry(entry).expect_err("rejected")
}

#[test]
fn unpacked_file_reads() {
    let fixture = Fixture::new(&build(UNPACKED_DIR, b""));
    fixture.write_unpacked("d/a.txt", b"hello");
    let archive = fixture.open().expect("opens");
    let entry = archive.entry("d/a.txt").expect("entry exists");
    let mut bytes = Vec::new();
    archive
        .open_entry(entry)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect("reads");
    assert_eq!(bytes, b"hello");
}

#[test]
fn missing_unpacked_file_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    fs::create_dir(fixture.unpacked()).expect("folder created");
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(&error.kind, AsarErrorKind::UnpackedMissing { path } if path.ends_with("a.txt")),
        "{error}"
    );
}

#[test]
fn unpacked_size_mismatch_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    fixture.write_unpacked("a.txt", b"hello!");
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::SizeMismatch {
                expected: 5,
                actual: 6
            }
        ),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn unpacked_symlink_out_of_folder_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    let outside = fixture.folder.path().join("outside.txt");
    fs::write(&outside, b"hello").expect("outside file written");
    fs::create_dir(fixture.unpacked()).expect("folder created");
    std::os::unix::fs::symlink(&outside, fixture.unpacked().join("a.txt"))
        .expect("symlink created");
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(error.kind, AsarErrorKind::UnpackedSymlink { .. }),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn unpacked_symlinked_folder_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_DIR, b""));
    let outside = fixture.folder.path().join("outside");
    fs::create_dir(&outside).expect("outside folder created");
    fs::write(outside.join("a.txt"), b"hello").expect("outside file written");
    fs::create_dir(fixture.unpacked()).expect("folder created");
    std::os::unix::fs::symlink(&outside, fixture.unpacked().join("d")).expect("symlink created");
    let error = open_entry_error(&fixture, "d/a.txt");
    assert!(
        matches!(&error.kind, AsarErrorKind::UnpackedSymlink { path } if path.ends_with("d")),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn unpacked_root_symlink_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    let outside = fixture.folder.path().join("outside");
    fs::create_dir(&outside).expect("outside folder created");
    fs::write(outside.join("a.txt"), b"hello").expect("outside file written");
    std::os::unix::fs::symlink(&outside, fixture.unpacked()).expect("symlink created");
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(error.kind, AsarErrorKind::UnpackedSymlink { .. }),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn unpacked_fifo_rejected_without_blocking() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    fs::create_dir(fixture.unpacked()).expect("folder created");
    let status = std::process::Command::new("mkfifo")
        .arg(fixture.unpacked().join("a.txt"))
        .status();
    assert!(status.expect("mkfifo runs").success());
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(error.kind, AsarErrorKind::UnpackedNotRegular { .. }),
        "{error}"
    );
}

#[test]
fn unpacked_folder_in_place_of_file_rejected() {
    let fixture = Fixture::new(&build(UNPACKED_A, b""));
    fs::create_dir_all(fixture.unpacked().join("a.txt")).expect("folder created");
    let error = open_entry_error(&fixture, "a.txt");
    assert!(
        matches!(error.kind, AsarErrorKind::UnpackedNotRegular { .. }),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Integrity records.

fn file_with_integrity(data: &[u8], integrity: &str) -> String {
    format!(
        r#"{{"files":{{"a":{{"size":{},"offset":"0","integrity":{integrity}}}}}}}"#,
        data.len()
    )
}

#[test]
fn correct_integrity_accepted() {
    let data = b"some bytes";
    let (_fixture, archive) = accept(&one_file("a", data), data);
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn wrong_integrity_hash_rejected() {
    let data = b"some bytes";
    let other = integrity(b"other bytes");
    let real = integrity(data);
    let block = &real[real.find("\"blocks\"").expect("has blocks")..];
    let hash_part = &other[..other.find("\"blocks\"").expect("has blocks")];
    let (_fixture, archive) = accept(
        &file_with_integrity(data, &format!("{hash_part}{block}")),
        data,
    );
    let error = archive.check_integrity().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::IntegrityHash { .. }),
        "{error}"
    );
    assert_eq!(error.entry.as_deref(), Some("a"));
}

#[test]
fn tampered_data_rejected() {
    let json = one_file("a", b"some bytes");
    let (_fixture, archive) = accept(&json, b"SOME bytes");
    let error = archive.check_integrity().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::IntegrityHash { .. }),
        "{error}"
    );
}

#[test]
fn wrong_block_count_rejected() {
    let data = b"some bytes";
    let hash = hex::encode(sha256(data));
    let integrity = format!(
        r#"{{"algorithm":"SHA256","hash":"{hash}","blockSize":4194304,"blocks":["{hash}","{hash}"]}}"#
    );
    let (_fixture, archive) = accept(&file_with_integrity(data, &integrity), data);
    let error = archive.check_integrity().expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::IntegrityBlockCount {
                found: 2,
                expected: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn wrong_block_hash_rejected() {
    let data = b"some bytes";
    let hash = hex::encode(sha256(data));
    let wrong = hex::encode(sha256(b"other"));
    let integrity = format!(
        r#"{{"algorithm":"SHA256","hash":"{hash}","blockSize":4194304,"blocks":["{wrong}"]}}"#
    );
    let (_fixture, archive) = accept(&file_with_integrity(data, &integrity), data);
    let error = archive.check_integrity().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::BlockMismatch { index: 0 }),
        "{error}"
    );
}

#[test]
fn small_block_size_is_honoured() {
    let data = b"0123456789";
    let blocks: Vec<String> = [&data[0..4], &data[4..8], &data[8..10]]
        .iter()
        .map(|block| format!("\"{}\"", hex::encode(sha256(block))))
        .collect();
    let integrity = format!(
        r#"{{"algorithm":"SHA256","hash":"{}","blockSize":4,"blocks":[{}]}}"#,
        hex::encode(sha256(data)),
        blocks.join(",")
    );
    let (_fixture, archive) = accept(&file_with_integrity(data, &integrity), data);
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn unsupported_algorithm_rejected() {
    let integrity = integrity(b"x").replace("SHA256", "SHA1");
    let error = reject(&file_with_integrity(b"x", &integrity), b"x");
    assert!(is_invalid_member(&error, "integrity.algorithm"), "{error}");
}

#[test]
fn upper_case_hash_rejected() {
    let lower = hex::encode(sha256(b"x"));
    let integrity = integrity(b"x").replacen(&lower, &lower.to_uppercase(), 1);
    let error = reject(&file_with_integrity(b"x", &integrity), b"x");
    assert!(is_invalid_member(&error, "integrity.hash"), "{error}");
}

#[test]
fn zero_block_size_rejected() {
    let integrity = integrity(b"x").replace("4194304", "0");
    let error = reject(&file_with_integrity(b"x", &integrity), b"x");
    assert!(is_invalid_member(&error, "integrity.blockSize"), "{error}");
}

#[test]
fn unknown_integrity_member_rejected() {
    let integrity = integrity(b"x").replace("\"algorithm\"", "\"extra\":1,\"algorithm\"");
    let error = reject(&file_with_integrity(b"x", &integrity), b"x");
    assert!(is_invalid_member(&error, "integrity"), "{error}");
}

#[test]
fn tampered_unpacked_file_rejected() {
    let json = r#"{"files":{"a.txt":{"size":5,"unpacked":true,"integrity":INTEGRITY}}}"#
        .replace("INTEGRITY", &integrity(b"hello"));
    let fixture = Fixture::new(&build(&json, b""));
    fixture.write_unpacked("a.txt", b"HELLO");
    let archive = fixture.open().expect("opens");
    let error = archive.check_integrity().expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::IntegrityHash { .. }),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Digests and readers.

#[test]
fn empty_input_has_one_block() {
    let digest = digest_reader(&b""[..]).expect("reads");
    assert_eq!(digest.size, 0);
    assert_eq!(digest.blocks, vec![sha256(b"")]);
    assert_eq!(digest.sha256, sha256(b""));
}

#[test]
fn full_block_gets_empty_final_block() {
    assert_eq!(BLOCK as u64, BLOCK_SIZE);
    let data = vec![7u8; BLOCK];
    let digest = digest_reader(&data[..]).expect("reads");
    assert_eq!(digest.blocks, vec![sha256(&data), sha256(b"")]);
}

#[test]
fn partial_second_block_is_hashed() {
    let data = vec![7u8; BLOCK + 3];
    let digest = digest_reader(&data[..]).expect("reads");
    assert_eq!(
        digest.blocks,
        vec![sha256(&data[..BLOCK]), sha256(&data[BLOCK..])]
    );
    assert_eq!(digest.sha256, sha256(&data));
}

/// Nine MiB of bytes that differ per block.
fn large_data() -> Vec<u8> {
    (0..9 * 1024 * 1024)
        .map(|index: usize| u8::try_from(index % 251).expect("below 251"))
        .collect()
}

#[test]
fn verified_reader_returns_all_bytes() {
    let data = large_data();
    let (_fixture, archive) = accept(&one_file("big", &data), &data);
    let entry = archive.entry("big").expect("entry exists");
    let digest = archive.digest_entry(entry).expect("digests");
    assert_eq!(digest.blocks.len(), 3);
    let mut bytes = Vec::new();
    archive
        .open_verified(entry, &digest)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect("reads");
    assert_eq!(bytes, data);
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn verified_reader_stops_at_bad_block() {
    let data = large_data();
    let fixture = Fixture::new(&build(&one_file("big", &data), &data));
    let archive = fixture.open().expect("opens");
    let entry = archive.entry("big").expect("entry exists");
    let mut digest: EntryDigest = archive.digest_entry(entry).expect("digests");
    digest.blocks[1] = sha256(b"not this block");

    let mut reader = archive.open_verified(entry, &digest).expect("opens");
    let mut first = vec![0u8; BLOCK];
    reader.read_exact(&mut first).expect("block 0 verifies");
    assert_eq!(first, data[..BLOCK]);
    let mut next = [0u8; 16];
    let error = reader.read(&mut next).expect_err("block 1 fails");
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(
        message.contains(&fixture.path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("entry big"), "{message}");
    assert!(message.contains("block 1"), "{message}");
    assert_eq!(next, [0u8; 16], "no byte of the bad block was returned");
}

#[test]
fn verified_reader_seeks_to_later_block() {
    let data = large_data();
    let (_fixture, archive) = accept(&one_file("big", &data), &data);
    let entry = archive.entry("big").expect("entry exists");
    let digest = archive.digest_entry(entry).expect("digests");
    let mut reader = archive.open_verified(entry, &digest).expect("opens");
    let start = 8 * 1024 * 1024 + 5;
    reader.seek(SeekFrom::Start(start as u64)).expect("seeks");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).expect("reads");
    assert_eq!(bytes, data[start..]);
}

#[test]
fn verified_reader_checks_empty_final_block() {
    let data = vec![1u8; BLOCK];
    let (_fixture, archive) = accept(&one_file("exact", &data), &data);
    let entry = archive.entry("exact").expect("entry exists");
    let mut digest = archive.digest_entry(entry).expect("digests");
    digest.blocks[1] = sha256(b"x");
    let mut bytes = Vec::new();
    let error = archive
        .open_verified(entry, &digest)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect_err("fails");
    assert_eq!(error.kind(), ErrorKind::InvalidData);
}

#[test]
fn verified_reader_checks_empty_file() {
    let (_fixture, archive) = accept(&one_file("empty", b""), b"");
    let entry = archive.entry("empty").expect("entry exists");
    let digest = EntryDigest {
        size: 0,
        sha256: sha256(b""),
        blocks: vec![sha256(b"x")],
    };
    let mut bytes = Vec::new();
    let error = archive
        .open_verified(entry, &digest)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect_err("fails");
    assert_eq!(error.kind(), ErrorKind::InvalidData);
}

#[test]
fn verified_open_rejects_size_difference() {
    let (_fixture, archive) = accept(&one_file("a", b"abc"), b"abc");
    let entry = archive.entry("a").expect("entry exists");
    let digest = digest_reader(&b"abcd"[..]).expect("reads");
    let error = archive.open_verified(entry, &digest).expect_err("rejected");
    assert!(
        matches!(
            error.kind,
            AsarErrorKind::SizeMismatch {
                expected: 4,
                actual: 3
            }
        ),
        "{error}"
    );
}

#[test]
fn verified_open_rejects_block_count() {
    let (_fixture, archive) = accept(&one_file("a", b"abc"), b"abc");
    let entry = archive.entry("a").expect("entry exists");
    let digest = EntryDigest {
        size: 3,
        sha256: sha256(b"abc"),
        blocks: vec![],
    };
    let error = archive.open_verified(entry, &digest).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::IntegrityBlockCount { .. }),
        "{error}"
    );
}

#[test]
fn verified_unpacked_file_that_grew_fails() {
    let json = r#"{"files":{"a.txt":{"size":5,"unpacked":true}}}"#;
    let fixture = Fixture::new(&build(json, b""));
    let path = fixture.write_unpacked("a.txt", b"hello");
    let archive = fixture.open().expect("opens");
    let entry = archive.entry("a.txt").expect("entry exists");
    let digest = archive.digest_entry(entry).expect("digests");
    let mut reader = archive.open_verified(entry, &digest).expect("opens");
    fs::write(&path, b"hello and more").expect("file rewritten in place");
    let mut bytes = Vec::new();
    let error = reader.read_to_end(&mut bytes).expect_err("fails");
    assert_eq!(error.kind(), ErrorKind::InvalidData);
}

#[test]
fn verified_read_of_truncated_archive_fails() {
    let data = b"0123456789";
    let fixture = Fixture::new(&build(&one_file("a", data), data));
    let archive = fixture.open().expect("opens");
    let entry = archive.entry("a").expect("entry exists");
    let digest = archive.digest_entry(entry).expect("digests");
    let mut reader = archive.open_verified(entry, &digest).expect("opens");
    let length = fs::metadata(&fixture.path).expect("metadata").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&fixture.path)
        .expect("opens")
        .set_len(length - 4)
        .expect("truncates");
    let mut bytes = Vec::new();
    let error = reader.read_to_end(&mut bytes).expect_err("fails");
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert!(
        error.to_string().contains("size is 6 bytes, expected 10"),
        "{error}"
    );
    assert!(bytes.is_empty(), "no byte of the short block was returned");
}

#[test]
fn truncated_archive_read_fails() {
    let data = b"0123456789";
    let fixture = Fixture::new(&build(&one_file("a", data), data));
    let archive = fixture.open().expect("opens");
    let entry = archive.entry("a").expect("entry exists");
    let length = fs::metadata(&fixture.path).expect("metadata").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&fixture.path)
        .expect("opens")
        .set_len(length - 4)
        .expect("truncates");
    let mut bytes = Vec::new();
    let error = archive
        .open_entry(entry)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect_err("fails");
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    assert!(error.to_string().contains("entry a"), "{error}");
}

#[test]
fn folder_entry_cannot_be_read() {
    let (_fixture, archive) = accept(r#"{"files":{"d":{"files":{}}}}"#, b"");
    let entry = archive.entry("d").expect("entry exists");
    let error = archive.open_entry(entry).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NotAFile { found: "directory" }),
        "{error}"
    );
}

#[test]
fn link_entry_cannot_be_read() {
    let (_fixture, archive) = accept(
        r#"{"files":{"f":{"size":1,"offset":"0"},"l":{"link":"f"}}}"#,
        b"x",
    );
    let entry = archive.entry("l").expect("entry exists");
    let error = archive.open_entry(entry).expect_err("rejected");
    assert!(
        matches!(error.kind, AsarErrorKind::NotAFile { found: "link" }),
        "{error}"
    );
}

#[test]
fn entry_from_other_archive_rejected() {
    let (_first, first) = accept(r#"{"files":{"f":{"size":1,"offset":"0"}}}"#, b"x");
    let (_second, second) = accept(r#"{"files":{"f":{"size":1,"offset":"1"}}}"#, b"xy");
    let foreign = second.entry("f").expect("entry exists");
    let error = first.open_entry(foreign).expect_err("rejected");
    assert!(matches!(error.kind, AsarErrorKind::NotFound), "{error}");
}

#[test]
fn error_display_names_archive_and_entry() {
    let fixture = Fixture::new(&build(r#"{"files":{"a":{"size":-1,"offset":"0"}}}"#, b""));
    let error = fixture.open().expect_err("rejected");
    let expected_start = format!("{}: entry a: invalid `size`: ", fixture.path.display());
    assert!(error.to_string().starts_with(&expected_start), "{error}");
}

#[test]
fn unpacked_root_appends_suffix() {
    let fixture = Fixture::new(&build(r#"{"files":{}}"#, b""));
    let archive = fixture.open().expect("opens");
    assert_eq!(archive.unpacked_root(), fixture.unpacked());
}
