//! A ledger truncated at any byte offset recovers to exactly the entries it
//! fully contains; any flipped bit is reported at the entry that holds it.

mod ledger_support;

use std::path::{Path, PathBuf};

use ledger_support::{AwsSigner, ReceiptFields};
use midcore_verifier::crypto::{TrustedKeys, sha256};
use midcore_verifier::json;
use midcore_verifier::ledger::{
    EntryProblem, FILE_HEADER, FRAME_MAGIC, Ledger, LedgerError, ReplayError, replay,
};

/// Converts a sequence number or count to an index.
fn index(value: u64) -> usize {
    usize::try_from(value).expect("fits in usize")
}

/// A small ledger: genesis, receipt r-0, one evidence entry, receipt r-1.
struct Golden {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    /// Start offset of each frame, then the file length.
    bounds: Vec<usize>,
    hashes: Vec<[u8; 32]>,
    keys: TrustedKeys,
}

fn golden() -> Golden {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("golden.ledger");
    let signer = AwsSigner::generate();
    let mut keys = TrustedKeys::new();
    keys.pin_key(signer.public_key().clone());

    let mut ledger = Ledger::open(&path, "project-g").expect("create ledger");
    let mut bounds = vec![FILE_HEADER.len()];
    let mut hashes = vec![ledger.head()];
    for index in 0..2 {
        let fields = ReceiptFields::new(
            &format!("r-{index}"),
            "ocr.page",
            "tenant-a",
            100 + index,
            1_767_225_600_000,
        );
        let appended = ledger
            .append_receipt("tenant-a", signer.receipt(&fields).as_bytes(), &keys)
            .expect("append receipt");
        bounds.push(usize::try_from(appended.offset).expect("small offset"));
        hashes.push(appended.hash);
        if index < 1 {
            let body = json::parse(format!("{{\"note\":\"evidence {index}\"}}").as_bytes())
                .expect("valid JSON");
            let appended = ledger
                .append_evidence("drift", body)
                .expect("append evidence");
            bounds.push(usize::try_from(appended.offset).expect("small offset"));
            hashes.push(appended.hash);
        }
    }
    drop(ledger);
    let bytes = std::fs::read(&path).expect("read golden ledger");
    bounds.push(bytes.len());
    Golden {
        _dir: dir,
        bytes,
        bounds,
        hashes,
        keys,
    }
}

impl Golden {
    fn entries(&self) -> usize {
        self.hashes.len()
    }

    /// Index of the frame that holds byte `offset` (which is past the header).
    fn entry_at(&self, offset: usize) -> u64 {
        let index = self
            .bounds
            .windows(2)
            .position(|pair| (pair[0]..pair[1]).contains(&offset))
            .expect("offset inside a frame");
        u64::try_from(index).expect("small index")
    }

    /// Number of frames that end at or before `offset`.
    fn contained(&self, offset: usize) -> usize {
        self.bounds[1..]
            .iter()
            .filter(|&&end| end <= offset)
            .count()
    }
}

fn write_case(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("case.ledger");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).expect("write case");
    path
}

fn failing_entry(error: &ReplayError) -> Option<u64> {
    match error {
        ReplayError::BadEntry { entry, .. } | ReplayError::TornTail { entry, .. } => Some(*entry),
        _ => None,
    }
}

fn crc_frame(payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len())
        .expect("small payload")
        .to_le_bytes();
    let mut frame = FRAME_MAGIC.to_vec();
    frame.extend_from_slice(&length);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&length), payload).to_le_bytes());
    frame
}

#[test]
fn golden_ledger_replays() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let path = write_case(scratch.path(), &golden.bytes);
    let summary = replay(&path, Some(&golden.keys), &mut |_| {}).expect("golden ledger is valid");
    assert_eq!(summary.entries, 4);
}

#[test]
fn truncation_recovers_contained_entries() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    for cut in 0..=golden.bytes.len() {
        let path = write_case(scratch.path(), &golden.bytes[..cut]);

        // Before recovery, the replay names the torn entry or passes at a frame boundary.
        let contained = golden.contained(cut);
        let replayed = replay(&path, None, &mut |_| {});
        if cut < FILE_HEADER.len() {
            assert!(
                matches!(replayed, Err(ReplayError::NotALedger { .. })),
                "cut {cut}: {replayed:?}"
            );
            let opened = Ledger::open(&path, "project-g");
            assert!(
                matches!(opened, Err(LedgerError::NotALedger { .. })),
                "cut {cut}: {opened:?}"
            );
            continue;
        }
        let at_boundary = golden.bounds.contains(&cut);
        match &replayed {
            Ok(summary) => assert_eq!(index(summary.entries), contained, "cut {cut}"),
            Err(ReplayError::TornTail { entry, .. }) => {
                assert!(
                    !at_boundary,
                    "cut {cut}: torn tail reported at a frame boundary"
                );
                assert_eq!(index(*entry), contained, "cut {cut}");
            }
            Err(ReplayError::Empty { .. }) => assert_eq!(contained, 0, "cut {cut}"),
            Err(error) => panic!("cut {cut}: unexpected replay error {error}"),
        }

        // Opening cuts the torn tail and keeps exactly the contained entries.
        let ledger =
            Ledger::open(&path, "project-g").unwrap_or_else(|error| panic!("cut {cut}: {error}"));
        assert_eq!(index(ledger.len()), contained.max(1), "cut {cut}");
        assert_eq!(
            ledger.head(),
            golden.hashes[contained.max(1) - 1],
            "cut {cut}"
        );
        assert_eq!(ledger.recovery().is_some(), !at_boundary, "cut {cut}");
        drop(ledger);
        let recovered = std::fs::read(&path).expect("read recovered ledger");
        let expected_len = golden.bounds[contained.max(1)];
        assert_eq!(recovered[..], golden.bytes[..expected_len], "cut {cut}");
    }
}

#[test]
fn every_flipped_bit_names_its_entry() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let mut bytes = golden.bytes.clone();
    for offset in 0..bytes.len() {
        for bit in 0..8 {
            bytes[offset] ^= 1 << bit;
            let path = write_case(scratch.path(), &bytes);
            let error =
                replay(&path, None, &mut |_| {}).expect_err("a flipped bit must be detected");
            if offset < FILE_HEADER.len() {
                assert!(
                    matches!(error, ReplayError::NotALedger { .. }),
                    "offset {offset} bit {bit}: {error}"
                );
            } else {
                assert_eq!(
                    failing_entry(&error),
                    Some(golden.entry_at(offset)),
                    "offset {offset} bit {bit}: {error}"
                );
            }
            bytes[offset] ^= 1 << bit;
        }
    }
}

#[test]
fn reframed_edits_name_their_entry() {
    // An editor who recomputes the frame checksum is still caught by the entry hash.
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    for index in 0..golden.entries() {
        let (start, end) = (golden.bounds[index], golden.bounds[index + 1]);
        let payload = golden.bytes[start + 8..end - 4].to_vec();
        for position in 0..payload.len() {
            for bit in 0..8 {
                let mut edited = payload.clone();
                edited[position] ^= 1 << bit;
                let mut bytes = golden.bytes[..start].to_vec();
                bytes.extend_from_slice(&crc_frame(&edited));
                bytes.extend_from_slice(&golden.bytes[end..]);
                let path = write_case(scratch.path(), &bytes);
                let error = replay(&path, None, &mut |_| {}).expect_err("an edit must be detected");
                assert_eq!(
                    failing_entry(&error),
                    Some(index as u64),
                    "entry {index} byte {position} bit {bit}: {error}"
                );
            }
        }
    }
}

/// Rebuilds the golden chain with receipt `r-1` raised to 999 cents and every hash recomputed.
fn rebuilt_with_altered_receipt(golden: &Golden) -> Vec<u8> {
    let mut bytes = FILE_HEADER.to_vec();
    let mut parent = [0u8; 32];
    for index in 0..golden.entries() {
        let (start, end) = (golden.bounds[index], golden.bounds[index + 1]);
        let mut value =
            json::parse(&golden.bytes[start + 8..end - 4]).expect("golden entry parses");
        let json::Value::Object(object) = &mut value else {
            panic!("entry is an object")
        };
        object.remove("hash");
        object.insert(
            "parent".to_owned(),
            json::Value::String(hex::encode(parent)),
        );
        if let Some(json::Value::Object(body)) = object.get_mut("body")
            && body.get("id") == Some(&json::Value::String("r-1".to_owned()))
        {
            body.insert("actual_cents".to_owned(), json::number_i64(999));
        }
        let mut hash_input = b"midcore-ledger-entry-v1\0".to_vec();
        hash_input.extend_from_slice(&json::to_canonical(&value));
        let hash = sha256(&hash_input);
        let json::Value::Object(object) = &mut value else {
            panic!("entry is an object")
        };
        object.insert("hash".to_owned(), json::Value::String(hex::encode(hash)));
        bytes.extend_from_slice(&crc_frame(&json::to_canonical(&value)));
        parent = hash;
    }
    bytes
}

#[test]
fn rebuilt_chain_fails_on_signature() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let path = write_case(scratch.path(), &rebuilt_with_altered_receipt(&golden));
    let error =
        replay(&path, Some(&golden.keys), &mut |_| {}).expect_err("the altered receipt must fail");
    let ReplayError::BadEntry { entry, problem, .. } = &error else {
        panic!("expected a bad entry, found {error}")
    };
    assert_eq!(*entry, 3, "{error}");
    assert!(
        matches!(**problem, EntryProblem::Signature { .. }),
        "{error}"
    );
}

#[test]
fn rebuilt_chain_passes_without_keys() {
    // Without the backend's key only the structure is checked; this is why `ledger verify` requires keys.
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let path = write_case(scratch.path(), &rebuilt_with_altered_receipt(&golden));
    assert!(replay(&path, None, &mut |_| {}).is_ok());
}

#[test]
fn damage_before_valid_entries_not_cut() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let mut bytes = golden.bytes.clone();
    let offset = golden.bounds[2] + 20;
    bytes[offset] ^= 0x10;
    let path = write_case(scratch.path(), &bytes);
    let error = Ledger::open(&path, "project-g").expect_err("damage must not be recovered");
    assert!(
        matches!(
            error,
            LedgerError::DamagedBeforeValidEntries { entry: 2, .. }
        ),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).expect("read ledger"), bytes);
}

#[test]
fn invalid_final_entry_not_cut() {
    // A complete frame with a valid checksum is never treated as a torn tail.
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let last = golden.entries() - 1;
    let (start, end) = (golden.bounds[last], golden.bounds[last + 1]);
    let mut payload = golden.bytes[start + 8..end - 4].to_vec();
    payload[10] ^= 1;
    let mut bytes = golden.bytes[..start].to_vec();
    bytes.extend_from_slice(&crc_frame(&payload));
    let path = write_case(scratch.path(), &bytes);
    let error = Ledger::open(&path, "project-g").expect_err("an invalid entry must not be cut");
    assert!(
        matches!(error, LedgerError::Corrupt { entry: 3, .. }),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).expect("read ledger"), bytes);
}

#[test]
fn garbage_after_torn_tail_reported() {
    let golden = golden();
    let scratch = tempfile::tempdir().expect("temporary directory");
    let mut bytes = golden.bytes.clone();
    bytes.extend_from_slice(b"\x00\x00garbage");
    let path = write_case(scratch.path(), &bytes);
    let error = replay(&path, None, &mut |_| {}).expect_err("trailing garbage must be reported");
    assert!(
        matches!(error, ReplayError::TornTail { entry: 4, .. }),
        "{error}"
    );
}
