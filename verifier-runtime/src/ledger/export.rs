//! The export: a self-contained JSON Lines copy of a ledger for auditors.
//!
//! Line 1 is the header, the canonical JSON object
//! `{"entries":N,"format":"midcore-ledger-export","head":"<hex>","project":"<id>","version":1}`.
//! Each following line is one entry's canonical JSON, exactly the payload of
//! its frame in the ledger file, in sequence order. Every line ends with `\n`.
//! Canonical JSON escapes every control character, so no entry contains a
//! line break.

use std::fs;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::replay::{self, ReplayError, ReplaySummary};
use super::writer::create_temporary;
use crate::crypto::{self, Sha256Digest, TrustedKeys};
use crate::json::{self, Fields, Value};

/// Value of the header's `format` field.
pub const EXPORT_FORMAT: &str = "midcore-ledger-export";

/// Value of the header's `version` field.
pub const EXPORT_VERSION: u64 = 1;

/// The parsed header line of an export.
#[derive(Clone, Debug)]
pub(crate) struct ExportHeader {
    entries: u64,
    head: Sha256Digest,
    project: String,
}

/// Parses the header line (with its trailing `\n`).
pub(crate) fn parse_header(line: &[u8]) -> Result<ExportHeader, String> {
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err("the header line does not end with a line break".to_owned());
    };
    let value =
        json::parse(body).map_err(|error| format!("the header line is not valid JSON: {error}"))?;
    if json::to_canonical(&value) != body {
        return Err("the header line is not in canonical JSON form".to_owned());
    }
    let mut fields = Fields::new(&value, "header").map_err(|error| error.to_string())?;
    let format = fields.string("format").map_err(|error| error.to_string())?;
    if format != EXPORT_FORMAT {
        return Err(format!(
            "header.format is {format:?}, expected {EXPORT_FORMAT:?}"
        ));
    }
    let version = fields.u64("version").map_err(|error| error.to_string())?;
    if version != EXPORT_VERSION {
        return Err(format!(
            "header.version {version} is not supported; this verifier reads version {EXPORT_VERSION}"
        ));
    }
    let entries = fields.u64("entries").map_err(|error| error.to_string())?;
    let head_text = fields.string("head").map_err(|error| error.to_string())?;
    let head = crypto::parse_lower_hex_32(head_text)
        .ok_or("header.head is not 64 lower-case hex digits")?;
    let project = fields
        .string("project")
        .map_err(|error| error.to_string())?
        .to_owned();
    fields.finish().map_err(|error| error.to_string())?;
    Ok(ExportHeader {
        entries,
        head,
        project,
    })
}

/// Checks that the header matches the replayed entries.
pub(crate) fn check_header(header: &ExportHeader, summary: &ReplaySummary) -> Result<(), String> {
    if header.entries != summary.entries {
        return Err(format!(
            "the header says {} entries, the file holds {}",
            header.entries, summary.entries
        ));
    }
    if header.head != summary.head {
        return Err(format!(
            "the header's head {} differs from the last entry's hash {}",
            hex::encode(header.head),
            hex::encode(summary.head)
        ));
    }
    if header.project != summary.project {
        return Err(format!(
            "the header names project {:?}, entry 0 names {:?}",
            header.project, summary.project
        ));
    }
    Ok(())
}

fn header_line(summary: &ReplaySummary) -> Vec<u8> {
    let mut object = json::Object::new();
    object.insert("format".to_owned(), Value::String(EXPORT_FORMAT.to_owned()));
    object.insert("version".to_owned(), json::number_u64(EXPORT_VERSION));
    object.insert("entries".to_owned(), json::number_u64(summary.entries));
    object.insert("head".to_owned(), Value::String(hex::encode(summary.head)));
    object.insert("project".to_owned(), Value::String(summary.project.clone()));
    let mut line = json::to_canonical(&Value::Object(object));
    line.push(b'\n');
    line
}

/// Replays the ledger at `ledger` (checking signatures when `keys` is given)
/// and writes its export to `out`. The export appears at `out` only if the
/// replay succeeded; it is written to a temporary file, synced and renamed.
pub fn export(
    ledger: &Path,
    out: &Path,
    keys: Option<&TrustedKeys>,
) -> Result<ReplaySummary, ReplayError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ReplayError::Write { path, source }
    };
    let entries_path = sibling(out, ".entries.tmp");
    let final_path = sibling(out, ".tmp");

    // Step 1: replay, writing each checked entry to a scratch file.
    let entries_file = create_temporary(&entries_path, true).map_err(write_error(&entries_path))?;
    let mut writer = BufWriter::new(entries_file);
    let mut first_write_error = None;
    let replayed = replay::replay(ledger, keys, &mut |entry| {
        if first_write_error.is_none() {
            let mut line = entry.to_canonical_json();
            line.push(b'\n');
            if let Err(error) = writer.write_all(&line) {
                first_write_error = Some(error);
            }
        }
    });
    let summary = match (replayed, first_write_error) {
        (Ok(summary), None) => summary,
        (Err(error), _) => {
            let _ = fs::remove_file(&entries_path);
            return Err(error);
        }
        (Ok(_), Some(source)) => {
            let _ = fs::remove_file(&entries_path);
            return Err(ReplayError::Write {
                path: entries_path,
                source,
            });
        }
    };
    let entries_file = writer.into_inner().map_err(|error| {
        let _ = fs::remove_file(&entries_path);
        ReplayError::Write {
            path: entries_path.clone(),
            source: error.into_error(),
        }
    });
    let mut entries_file = entries_file?;

    // Step 2: header first, then the entries; sync and rename into place.
    let result = (|| {
        let mut out_file = create_temporary(&final_path, false)?;
        out_file.write_all(&header_line(&summary))?;
        entries_file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut entries_file, &mut out_file)?;
        out_file.sync_all()?;
        fs::rename(&final_path, out)
    })();
    let _ = fs::remove_file(&entries_path);
    if result.is_err() {
        let _ = fs::remove_file(&final_path);
    }
    result.map_err(write_error(out))?;
    Ok(summary)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
