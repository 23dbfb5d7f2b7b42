//! The ASAR reader against real archives packed by `@electron/asar` and Electron's own
//! test archives.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use midcore_verifier::asar::{Archive, AsarErrorKind, BLOCK_SIZE, EntryKind, block_count};
use midcore_verifier::crypto::sha256;

/// Locates the fixtures: `MIDCORE_FIXTURES_DIR` when set (`scripts/test.sh`
/// sets it), else `shared/` beside the repository (`<repo>/../shared`) or a
/// folder above it, as a git worktree nested deeper needs.
fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIDCORE_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .skip(2)
        .map(|folder| folder.join("shared/fixtures/electron-asar"))
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| crate_dir.join("../../shared/fixtures/electron-asar"))
}

fn archive(relative: &str) -> PathBuf {
    fixtures().join(relative)
}

/// Every `.asar` file in the three fixture folders, sorted.
fn all_archives() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for folder in ["input", "expected", "electron-spec"] {
        for item in fs::read_dir(fixtures().join(folder)).expect("fixture folder is readable") {
            let path = item.expect("fixture folder entry").path();
            if path
                .extension()
                .is_some_and(|extension| extension == "asar")
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// Archives that must fail to open, with the expected reason.
fn expected_open_failure(path: &Path) -> Option<fn(&AsarErrorKind) -> bool> {
    match path.file_name()?.to_str()? {
        "bad-symlink.asar" => Some(|kind| matches!(kind, AsarErrorKind::LinkEscapes { .. })),
        "cyclic-link.asar" | "cyclic-link2.asar" | "cyclic-dir-link.asar" => {
            Some(|kind| matches!(kind, AsarErrorKind::LinkCycle { .. }))
        }
        _ => None,
    }
}

/// Archives whose unpacked files are deliberately not shipped.
fn lacks_unpacked_folder(path: &Path) -> bool {
    path.ends_with("electron-spec/unpack.asar")
}

fn read_all(archive: &Archive, path: &str) -> Vec<u8> {
    let entry = archive
        .entry(path)
        .unwrap_or_else(|| panic!("{path} is in {}", archive.path().display()));
    let mut bytes = Vec::new();
    archive
        .open_entry(entry)
        .expect("entry opens")
        .read_to_end(&mut bytes)
        .expect("entry reads");
    bytes
}

#[test]
fn fixture_folders_are_present() {
    assert!(
        all_archives().len() >= 20,
        "found only {:?}",
        all_archives()
    );
}

#[test]
fn every_fixture_opens_or_fails_as_expected() {
    for path in all_archives() {
        let outcome = Archive::open(&path);
        match (expected_open_failure(&path), outcome) {
            (None, Ok(_)) => {}
            (None, Err(error)) => panic!("{} should open: {error}", path.display()),
            (Some(_), Ok(_)) => panic!("{} should be rejected", path.display()),
            (Some(is_expected), Err(error)) => {
                assert!(
                    is_expected(&error.kind),
                    "{}: unexpected error {error}",
                    path.display()
                );
                assert_eq!(error.archive, path, "error names the archive");
                assert!(error.entry.is_some(), "{error} names the link");
            }
        }
    }
}

#[test]
fn every_fixture_matches_its_integrity() {
    for path in all_archives() {
        if expected_open_failure(&path).is_some() || lacks_unpacked_folder(&path) {
            continue;
        }
        let archive = Archive::open(&path).expect("fixture opens");
        if let Err(error) = archive.check_integrity() {
            panic!("{error}");
        }
    }
}

#[test]
fn every_file_entry_digest_matches_header() {
    let mut checked = 0;
    for path in all_archives() {
        if expected_open_failure(&path).is_some() || lacks_unpacked_folder(&path) {
            continue;
        }
        let archive = Archive::open(&path).expect("fixture opens");
        for entry in archive.entries() {
            let EntryKind::File {
                size, integrity, ..
            } = &entry.kind
            else {
                continue;
            };
            let digest = archive
                .digest_entry(entry)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(digest.size, *size, "{}: {}", path.display(), entry.path);
            assert_eq!(digest.blocks.len() as u64, block_count(*size, BLOCK_SIZE));
            if let Some(integrity) = integrity {
                assert_eq!(
                    digest.sha256,
                    integrity.hash,
                    "{}: {}",
                    path.display(),
                    entry.path
                );
                assert_eq!(
                    digest.blocks,
                    integrity.blocks,
                    "{}: {}",
                    path.display(),
                    entry.path
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} entries had integrity records");
}

#[test]
fn every_file_entry_reads_verified() {
    for path in all_archives() {
        if expected_open_failure(&path).is_some() || lacks_unpacked_folder(&path) {
            continue;
        }
        let archive = Archive::open(&path).expect("fixture opens");
        for entry in archive.entries() {
            if !matches!(entry.kind, EntryKind::File { .. }) {
                continue;
            }
            let digest = archive.digest_entry(entry).expect("entry digests");
            let mut plain = Vec::new();
            archive
                .open_entry(entry)
                .expect("opens")
                .read_to_end(&mut plain)
                .expect("reads");
            let mut verified = Vec::new();
            let mut reader = archive
                .open_verified(entry, &digest)
                .expect("opens verified");
            reader
                .read_to_end(&mut verified)
                .expect("verified read succeeds");
            assert_eq!(verified, plain, "{}: {}", path.display(), entry.path);
            assert_eq!(sha256(&plain), digest.sha256);
        }
    }
}

#[test]
fn header_json_is_exact_prefix_bytes() {
    for path in all_archives() {
        let Ok(archive) = Archive::open(&path) else {
            continue;
        };
        let bytes = fs::read(&path).expect("fixture reads");
        let json_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        assert_eq!(
            archive.header_json(),
            &bytes[16..16 + json_len],
            "{}",
            path.display()
        );
        assert_eq!(archive.header_sha256(), sha256(&bytes[16..16 + json_len]));
        let header_size = u64::from(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
        assert_eq!(archive.data_offset(), 8 + header_size);
        assert_eq!(archive.file_len(), bytes.len() as u64);
    }
}

#[test]
fn packed_bytes_match_source_tree() {
    let archive = Archive::open(&archive("expected/packthis.asar")).expect("opens");
    let sources = fixtures().join("sources/packthis");
    for name in [
        ".hiddenfile.txt",
        "file0.txt",
        "emptyfile.txt",
        "dir1/file1.txt",
        "dir2/file2.png",
        "dir2/file3.txt",
    ] {
        let expected = fs::read(sources.join(name)).expect("source file reads");
        assert_eq!(read_all(&archive, name), expected, "{name}");
    }
}

#[test]
fn unpacked_bytes_match_unpacked_folder() {
    let archive = Archive::open(&archive("expected/packthis-unpack-dir.asar")).expect("opens");
    let entry = archive.entry("dir2/file2.png").expect("entry exists");
    assert!(matches!(
        entry.kind,
        EntryKind::File {
            unpacked: true,
            offset: None,
            ..
        }
    ));
    let expected =
        fs::read(archive.unpacked_root().join("dir2/file2.png")).expect("unpacked file reads");
    assert_eq!(read_all(&archive, "dir2/file2.png"), expected);
}

#[test]
fn entries_are_sorted_and_include_folders() {
    let archive = Archive::open(&archive("expected/packthis.asar")).expect("opens");
    let paths: Vec<&str> = archive
        .entries()
        .iter()
        .map(|entry| entry.path.as_str())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
    assert_eq!(
        paths,
        [
            ".hiddenfile.txt",
            "dir1",
            "dir1/file1.txt",
            "dir2",
            "dir2/file2.png",
            "dir2/file3.txt",
            "emptyfile.txt",
            "file0.txt"
        ]
    );
    assert!(matches!(
        archive.entry("dir1").map(|entry| &entry.kind),
        Some(EntryKind::Directory { unpacked: false })
    ));
}

#[test]
fn links_resolve_through_components() {
    let archive = Archive::open(&archive("input/stat-symlink.asar")).expect("opens");
    assert_eq!(
        archive.resolve("real.txt").expect("resolves").path,
        "A/real.txt"
    );
    assert_eq!(archive.resolve("Current").expect("resolves").path, "A");
    assert_eq!(
        archive.resolve("Current/real.txt").expect("resolves").path,
        "A/real.txt"
    );
    assert!(matches!(
        archive.entry("Current").map(|entry| &entry.kind),
        Some(EntryKind::Link { .. })
    ));
}

#[test]
fn link_into_other_folder_resolves() {
    let archive =
        Archive::open(&archive("expected/packthis-read-stream-symlink.asar")).expect("opens");
    let target = archive.resolve("A/reverse-symlink.txt").expect("resolves");
    assert_eq!(target.path, "B/reverse-symlink.txt");
    assert_eq!(
        archive
            .resolve("Current/reverse-symlink.txt")
            .expect("resolves")
            .path,
        "B/reverse-symlink.txt"
    );
}

#[test]
fn resolve_reports_missing_path() {
    let archive = Archive::open(&archive("input/stat-symlink.asar")).expect("opens");
    let error = archive
        .resolve("Current/missing.txt")
        .expect_err("must be rejected");
    assert!(matches!(error.kind, AsarErrorKind::NotFound), "{error}");
    assert_eq!(error.entry.as_deref(), Some("Current/missing.txt"));
}

#[test]
fn bad_symlink_names_link_and_target() {
    let path = archive("input/bad-symlink.asar");
    let error = Archive::open(&path).expect_err("must be rejected");
    assert_eq!(error.entry.as_deref(), Some("Test"));
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{}: entry Test: ", path.display())),
        "{message}"
    );
    assert!(message.contains("../../../../../private/tmp"), "{message}");
}

#[test]
fn cyclic_links_fail_with_clear_message() {
    for name in [
        "cyclic-link.asar",
        "cyclic-link2.asar",
        "cyclic-dir-link.asar",
    ] {
        let error = Archive::open(&archive(&format!("electron-spec/{name}")))
            .expect_err("must be rejected");
        assert!(
            error.to_string().contains("forms a cycle of links"),
            "{error}"
        );
    }
}

#[test]
fn missing_unpacked_folder_fails_on_read() {
    let archive =
        Archive::open(&archive("electron-spec/unpack.asar")).expect("opens without the folder");
    let entry = archive.entry("a.txt").expect("entry exists");
    let error = archive.open_entry(entry).expect_err("must be rejected");
    let AsarErrorKind::UnpackedMissing { path } = &error.kind else {
        panic!("unexpected error {error}")
    };
    assert!(
        path.ends_with("unpack.asar.unpacked/a.txt"),
        "{}",
        path.display()
    );
    assert_eq!(error.entry.as_deref(), Some("a.txt"));
    assert!(error.to_string().contains(".unpacked folder"), "{error}");
}

#[test]
fn unicode_names_are_kept_raw() {
    let archive = Archive::open(&archive("expected/packthis-unicode-path.asar")).expect("opens");
    let entry = archive
        .entry("dir1/女の子.txt")
        .expect("unicode entry exists");
    assert!(matches!(entry.kind, EntryKind::File { size: 0, .. }));
    assert!(
        archive.header_json().len()
            > archive
                .header_json()
                .iter()
                .filter(|b| b.is_ascii())
                .count()
    );
}

#[test]
fn prototype_names_are_plain_entries() {
    let archive =
        Archive::open(&archive("expected/packthis-object-prototype.asar")).expect("opens");
    for name in [
        "__proto__",
        "constructor/__proto__",
        "constructor/constructor",
        "folder1/constructor",
    ] {
        assert!(archive.entry(name).is_some(), "{name} is missing");
    }
    let sources = fixtures().join("sources/packthis-object-prototype");
    let expected = fs::read(sources.join("constructor/__proto__")).expect("source reads");
    assert_eq!(read_all(&archive, "constructor/__proto__"), expected);
}

#[test]
fn fully_unpacked_archive_has_empty_data() {
    let archive = Archive::open(&archive("expected/packthis-all-unpacked.asar")).expect("opens");
    assert_eq!(archive.file_len(), archive.data_offset());
    assert!(archive.check_integrity().is_ok());
}

#[test]
fn open_expecting_checks_header_before_parsing() {
    let path = archive("expected/packthis.asar");
    let opened = Archive::open(&path).expect("fixture opens");
    let digest = opened.header_sha256();
    let len = opened.header_json().len() as u64;

    let same = Archive::open_expecting(&path, &digest, len).expect("matching header opens");
    assert_eq!(same.entries().len(), opened.entries().len());

    let mut other_digest = digest;
    other_digest[0] ^= 1;
    let error = Archive::open_expecting(&path, &other_digest, len).unwrap_err();
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderChanged { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("changed after signing"),
        "{error}"
    );

    let error = Archive::open_expecting(&path, &digest, len + 1).unwrap_err();
    assert!(
        matches!(error.kind, AsarErrorKind::HeaderChanged { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!("found {len} bytes")),
        "{error}"
    );
}
