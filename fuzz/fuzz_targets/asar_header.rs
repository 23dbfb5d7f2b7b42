//! Fuzzes the ASAR header parsers: the 16-byte prefix and the JSON header.
//!
//! The input is read two ways: as a whole archive (prefix, JSON, padding, data), and
//! as a bare JSON header. Neither parser may panic. When the JSON parser accepts a
//! header, the entries it returns must satisfy the invariants the reader promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midcore_verifier::asar::{Entry, EntryKind, MAX_PATH_LEN, parse_header, parse_header_json};

/// Data section length used when the input is a bare JSON header.
const BARE_DATA_LEN: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // 1. The input as a whole archive.
    if let Some(prefix) = data.first_chunk::<16>() {
        if let Ok(layout) = parse_header(prefix, data.len() as u64) {
            assert_eq!(
                layout.data_offset.checked_add(layout.data_len),
                Some(data.len() as u64)
            );
            let json_end =
                usize::try_from(16 + layout.json_len).expect("the JSON lies inside the input");
            let json = &data[16..json_end];
            if let Ok(entries) = parse_header_json(json, layout.data_len) {
                check_entries(&entries, layout.data_len);
            }
        }
    }

    // 2. The input as a bare JSON header.
    if let Ok(entries) = parse_header_json(data, BARE_DATA_LEN) {
        check_entries(&entries, BARE_DATA_LEN);
    }
});

/// Asserts what an accepted header guarantees: paths strictly sorted, within the length
/// limit and made of plain components, and packed bytes inside the data section and either
/// identical or not overlapping.
fn check_entries(entries: &[Entry], data_len: u64) {
    for pair in entries.windows(2) {
        assert!(pair[0].path < pair[1].path, "entries are sorted and unique");
    }
    let mut ranges = Vec::new();
    for entry in entries {
        assert!(entry.path.len() <= MAX_PATH_LEN, "path within the limit");
        for name in entry.path.split('/') {
            assert!(!name.is_empty(), "no empty name in {:?}", entry.path);
            assert!(
                name != "." && name != "..",
                "no dot name in {:?}",
                entry.path
            );
            assert!(!name.contains('\\'), "no backslash in {:?}", entry.path);
        }
        if let EntryKind::File {
            size,
            offset,
            unpacked,
            ..
        } = &entry.kind
        {
            assert_eq!(
                offset.is_none(),
                *unpacked,
                "offset is absent exactly for unpacked files"
            );
            if let Some(offset) = offset {
                let end = offset.checked_add(*size).expect("offset + size fits");
                assert!(end <= data_len, "packed bytes lie inside the data section");
                if *size > 0 {
                    ranges.push((*offset, end));
                }
            }
        }
    }
    // Identical ranges are allowed: @electron/asar 4.3 stores identical contents once.
    ranges.sort_unstable();
    ranges.dedup();
    for pair in ranges.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "packed byte ranges do not overlap");
    }
}
