//! Parsing of the 16-byte header prefix and the JSON header, without file I/O.

use crate::crypto::parse_lower_hex_32;
use crate::json::{self, JsonError, Object, Value};

use super::error::{AsarErrorKind, HeaderError};
use super::links::{self, LinkTable};
use super::{Entry, EntryKind, Integrity};

/// Maximum header JSON length the reader accepts, in bytes.
pub const MAX_HEADER_JSON_LEN: u64 = 64 * 1024 * 1024;
/// Maximum JSON nesting depth the reader accepts. Each folder level takes two levels
/// (the node object and its `files` object), so this allows about 250 levels of folders.
pub const MAX_HEADER_JSON_DEPTH: usize = 512;
/// Maximum number of entries (files, folders and links, root excluded) the reader accepts.
pub const MAX_ENTRIES: usize = 2_000_000;
/// Maximum length of an entry path or link target, in bytes. It equals Linux's `PATH_MAX`,
/// far above the paths real apps contain.
pub const MAX_PATH_LEN: usize = 4096;
/// Maximum sum of all entry path lengths the reader accepts, in bytes. Each entry stores its
/// whole path, so without this bound a header could make the reader store far more bytes
/// than it contains: many entries under one deep folder each repeat the folder's path.
pub const MAX_TOTAL_PATH_BYTES: usize = 256 * 1024 * 1024;

/// The only integrity algorithm `@electron/asar` writes and Electron checks.
const INTEGRITY_ALGORITHM: &str = "SHA256";

/// Position and length of the header parts, from the 16-byte prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderLayout {
    /// Size of the header pickle (second prefix field): 8 plus the JSON length rounded up to 4.
    pub header_size: u64,
    /// Length of the JSON header in bytes (fourth prefix field).
    pub json_len: u64,
    /// Offset of the first byte of file data: `8 + header_size`.
    pub data_offset: u64,
    /// Length of the data section: file length minus `data_offset`.
    pub data_len: u64,
}

impl HeaderLayout {
    /// Offset of the first byte of the JSON header.
    pub const JSON_OFFSET: u64 = 16;

    /// Number of padding bytes between the JSON header and the data section (0 to 3).
    pub fn padding_len(&self) -> u64 {
        self.data_offset - Self::JSON_OFFSET - self.json_len
    }
}

/// Parses the 16-byte prefix of an archive of `file_len` bytes.
///
/// The prefix is two Chromium pickles. The first contains one u32 (the size of the second),
/// and the second contains the JSON string. All four fields are checked against each other and
/// against the file length, with checked arithmetic.
pub fn parse_header(prefix: &[u8; 16], file_len: u64) -> Result<HeaderLayout, HeaderError> {
    let field = |index: usize| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&prefix[index * 4..index * 4 + 4]);
        bytes
    };
    let pickle_size = u32::from_le_bytes(field(0));
    let header_size = u32::from_le_bytes(field(1));
    let payload_size = u32::from_le_bytes(field(2));
    let json_len = i32::from_le_bytes(field(3));

    // 1. The first pickle always carries exactly one u32.
    if pickle_size != 4 {
        return Err(HeaderError::new(AsarErrorKind::BadPickleSize {
            found: pickle_size,
        }));
    }

    // 2. The second pickle's payload is its size minus its own 4-byte length field.
    if header_size.checked_sub(4) != Some(payload_size) {
        return Err(HeaderError::new(AsarErrorKind::HeaderSizeMismatch {
            header_size,
            payload_size,
        }));
    }

    // 3. The JSON string (a 4-byte length, then the bytes, then padding to 4) fills the payload.
    let json_len = u64::try_from(json_len)
        .map_err(|_| HeaderError::new(AsarErrorKind::NegativeJsonLength { length: json_len }))?;
    let header_size = u64::from(header_size);
    let fits = json_len
        .checked_add(8)
        .is_some_and(|needed| needed <= header_size);
    if !fits {
        return Err(HeaderError::new(AsarErrorKind::JsonLongerThanHeader {
            json_len,
            header_size,
        }));
    }
    // json_len + 8 <= header_size <= u32::MAX, so these additions cannot overflow.
    let expected = json_len.div_ceil(4) * 4 + 8;
    if header_size != expected {
        return Err(HeaderError::new(AsarErrorKind::HeaderPadding {
            header_size,
            json_len,
            expected,
        }));
    }
    if json_len > MAX_HEADER_JSON_LEN {
        return Err(HeaderError::new(AsarErrorKind::HeaderTooLarge {
            json_len,
            max: MAX_HEADER_JSON_LEN,
        }));
    }

    // 4. The header must lie inside the file; everything after it is the data section.
    let data_offset = header_size + 8;
    let data_len = file_len.checked_sub(data_offset).ok_or(HeaderError::new(
        AsarErrorKind::HeaderBeyondFile {
            header_end: data_offset,
            file_len,
        },
    ))?;
    Ok(HeaderLayout {
        header_size,
        json_len,
        data_offset,
        data_len,
    })
}

/// Parses and checks the JSON header of an archive whose data section is `data_len` bytes.
///
/// Returns every node but the root, sorted by path bytes. Rejects anything that is not a
/// well-formed ASAR header:
/// - duplicate keys, unknown members, and names that are not one plain path component;
/// - sizes and offsets that are not plain integers, byte ranges outside the data section,
///   and ranges that overlap without being identical;
/// - links that leave the archive, dangle, form a cycle or chain more than
///   [`MAX_LINK_DEPTH`](super::MAX_LINK_DEPTH) links;
/// - more than [`MAX_ENTRIES`] entries, and paths past [`MAX_PATH_LEN`] or
///   [`MAX_TOTAL_PATH_BYTES`].
///
/// Only the form of the `integrity` blocks is checked here.
/// [`Archive::check_integrity`](super::Archive::check_integrity) compares them with the bytes.
pub fn parse_header_json(json: &[u8], data_len: u64) -> Result<Vec<Entry>, HeaderError> {
    parse_header_json_with_links(json, data_len).map(|(entries, _)| entries)
}

/// [`parse_header_json`], also returning where every link resolves to.
pub(crate) fn parse_header_json_with_links(
    json: &[u8],
    data_len: u64,
) -> Result<(Vec<Entry>, LinkTable), HeaderError> {
    let root = json::parse_with_depth(json, MAX_HEADER_JSON_DEPTH).map_err(|error| {
        let entry = match &error {
            JsonError::DuplicateKey { key, offset } => duplicate_key_entry(json, *offset, key),
            _ => None,
        };
        HeaderError {
            entry,
            kind: AsarErrorKind::InvalidJson(error),
        }
    })?;
    let mut entries = collect_entries(&root, data_len)?;
    drop(root);
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    check_overlaps(&entries)?;
    let links = links::resolve_all(&entries)?;
    Ok((entries, links))
}

/// Walks the node tree without recursion and turns every node but the root into an entry.
fn collect_entries(root: &Value, data_len: u64) -> Result<Vec<Entry>, HeaderError> {
    let root_files = match root {
        Value::Object(object) => match parse_node(object, data_len) {
            Ok(Node::Directory { files, .. }) => files,
            Ok(_) => return Err(HeaderError::new(AsarErrorKind::RootNotDirectory)),
            Err(kind) => return Err(HeaderError::new(kind)),
        },
        _ => return Err(HeaderError::new(AsarErrorKind::RootNotDirectory)),
    };

    let mut entries = Vec::new();
    let mut total_path_bytes = 0usize;
    let mut pending: Vec<(String, &Object)> = vec![(String::new(), root_files)];
    while let Some((parent, files)) = pending.pop() {
        for (name, value) in files {
            // Check the length before building the path, so a huge name is never copied.
            let len = if parent.is_empty() {
                name.len()
            } else {
                parent.len() + 1 + name.len()
            };
            if len > MAX_PATH_LEN {
                let kind = AsarErrorKind::PathTooLong {
                    len,
                    max: MAX_PATH_LEN,
                };
                return Err(if parent.is_empty() {
                    HeaderError::new(kind)
                } else {
                    HeaderError::entry(parent, kind)
                });
            }
            total_path_bytes += len;
            if total_path_bytes > MAX_TOTAL_PATH_BYTES {
                return Err(HeaderError::new(AsarErrorKind::PathsTooLarge {
                    max: MAX_TOTAL_PATH_BYTES,
                }));
            }
            let path = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}/{name}")
            };
            check_name(name).map_err(|kind| HeaderError::entry(path.as_str(), kind))?;
            if entries.len() >= MAX_ENTRIES {
                return Err(HeaderError::new(AsarErrorKind::TooManyEntries {
                    max: MAX_ENTRIES,
                }));
            }
            let Value::Object(object) = value else {
                return Err(HeaderError::entry(
                    path,
                    AsarErrorKind::NodeNotObject {
                        found: value.type_name(),
                    },
                ));
            };
            let kind = match parse_node(object, data_len) {
                Ok(Node::Directory { unpacked, files }) => {
                    pending.push((path.clone(), files));
                    EntryKind::Directory { unpacked }
                }
                Ok(Node::Leaf(kind)) => kind,
                Err(kind) => return Err(HeaderError::entry(path, kind)),
            };
            entries.push(Entry { path, kind });
        }
    }
    Ok(entries)
}

enum Node<'a> {
    Directory { unpacked: bool, files: &'a Object },
    Leaf(EntryKind),
}

/// Member names each node kind may have. Electron ignores unknown members; this reader
/// rejects them, so a header cannot carry data that no tool checks.
const DIRECTORY_MEMBERS: &[&str] = &["files", "unpacked"];
const FILE_MEMBERS: &[&str] = &["size", "offset", "unpacked", "executable", "integrity"];
const LINK_MEMBERS: &[&str] = &["link", "unpacked"];
const INTEGRITY_MEMBERS: &[&str] = &["algorithm", "hash", "blockSize", "blocks"];

/// Parses one node. The kind is decided as Electron does: `link`, then `files`, else file.
fn parse_node(object: &Object, data_len: u64) -> Result<Node<'_>, AsarErrorKind> {
    if let Some(link) = object.get("link") {
        check_members(object, LINK_MEMBERS, "link")?;
        let Value::String(target) = link else {
            return Err(invalid(
                "link",
                format!("expected a string, found {}", link.type_name()),
            ));
        };
        links::check_target(target)?;
        let unpacked = optional_bool(object, "unpacked")?;
        return Ok(Node::Leaf(EntryKind::Link {
            target: target.clone(),
            unpacked,
        }));
    }

    if let Some(files) = object.get("files") {
        check_members(object, DIRECTORY_MEMBERS, "directory")?;
        let Value::Object(files) = files else {
            return Err(invalid(
                "files",
                format!("expected an object, found {}", files.type_name()),
            ));
        };
        let unpacked = optional_bool(object, "unpacked")?;
        return Ok(Node::Directory { unpacked, files });
    }

    check_members(object, FILE_MEMBERS, "file")?;
    parse_file(object, data_len).map(Node::Leaf)
}

fn parse_file(object: &Object, data_len: u64) -> Result<EntryKind, AsarErrorKind> {
    // 1. Size: a plain non-negative integer, as @electron/asar writes it.
    let size = match object.get("size") {
        None => return Err(AsarErrorKind::MissingMember { member: "size" }),
        Some(Value::Number(number)) => number.as_u64().ok_or_else(|| {
            invalid(
                "size",
                format!(
                    "expected a plain non-negative integer, found {}",
                    number.as_str()
                ),
            )
        })?,
        Some(other) => {
            return Err(invalid(
                "size",
                format!("expected a number, found {}", other.type_name()),
            ));
        }
    };
    let unpacked = optional_bool(object, "unpacked")?;
    let executable = optional_bool(object, "executable")?;

    // 2. Offset: a decimal string for packed files (a JavaScript number cannot hold every
    //    u64), absent for unpacked ones, whose bytes live in the `.unpacked` folder.
    let offset = match (unpacked, object.get("offset")) {
        (true, None) => None,
        (true, Some(_)) => {
            return Err(invalid(
                "offset",
                "an unpacked file has no offset; remove it or the unpacked flag".to_owned(),
            ));
        }
        (false, None) => return Err(AsarErrorKind::MissingMember { member: "offset" }),
        (false, Some(Value::String(text))) => Some(parse_offset(text)?),
        (false, Some(other)) => {
            return Err(invalid(
                "offset",
                format!("expected a decimal string, found {}", other.type_name()),
            ));
        }
    };

    // 3. The packed bytes must lie inside the data section.
    if let Some(offset) = offset {
        let end = offset
            .checked_add(size)
            .ok_or(AsarErrorKind::OffsetOverflow { offset, size })?;
        if end > data_len {
            return Err(AsarErrorKind::DataOutOfBounds {
                offset,
                end,
                data_len,
            });
        }
    }

    let integrity = match object.get("integrity") {
        None => None,
        Some(value) => Some(parse_integrity(value)?),
    };
    Ok(EntryKind::File {
        size,
        offset,
        unpacked,
        executable,
        integrity,
    })
}

/// Parses a canonical decimal u64: digits only, no sign, no leading zero unless it is `0`.
fn parse_offset(text: &str) -> Result<u64, AsarErrorKind> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let value = if canonical {
        text.parse::<u64>().ok()
    } else {
        None
    };
    value.ok_or_else(|| {
        invalid(
            "offset",
            format!("expected a decimal 64-bit integer in a string, found {text:?}"),
        )
    })
}

fn parse_integrity(value: &Value) -> Result<Integrity, AsarErrorKind> {
    let Value::Object(object) = value else {
        return Err(invalid(
            "integrity",
            format!("expected an object, found {}", value.type_name()),
        ));
    };
    if let Some(member) = object
        .keys()
        .find(|key| !INTEGRITY_MEMBERS.contains(&key.as_str()))
    {
        return Err(invalid("integrity", format!("unknown member {member:?}")));
    }

    let algorithm = match object.get("algorithm") {
        Some(Value::String(text)) if text == INTEGRITY_ALGORITHM => text.clone(),
        Some(Value::String(text)) => {
            return Err(invalid(
                "integrity.algorithm",
                format!("unsupported algorithm {text:?}; only SHA256 exists"),
            ));
        }
        Some(other) => {
            return Err(invalid(
                "integrity.algorithm",
                format!("expected a string, found {}", other.type_name()),
            ));
        }
        None => {
            return Err(AsarErrorKind::MissingMember {
                member: "integrity.algorithm",
            });
        }
    };

    let hash = match object.get("hash") {
        Some(value) => parse_hex_digest(value, "integrity.hash")?,
        None => {
            return Err(AsarErrorKind::MissingMember {
                member: "integrity.hash",
            });
        }
    };

    // Electron holds the block size in a 32-bit integer, so larger values are rejected too.
    let block_size = match object.get("blockSize") {
        Some(Value::Number(number)) => number
            .as_u64()
            .filter(|size| (1..=u64::from(u32::MAX)).contains(size)),
        Some(_) => None,
        None => {
            return Err(AsarErrorKind::MissingMember {
                member: "integrity.blockSize",
            });
        }
    }
    .ok_or_else(|| {
        invalid(
            "integrity.blockSize",
            "expected an integer from 1 to 4294967295".to_owned(),
        )
    })?;

    let blocks = match object.get("blocks") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| parse_hex_digest(item, "integrity.blocks"))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(invalid(
                "integrity.blocks",
                format!("expected an array, found {}", other.type_name()),
            ));
        }
        None => {
            return Err(AsarErrorKind::MissingMember {
                member: "integrity.blocks",
            });
        }
    };
    Ok(Integrity {
        algorithm,
        hash,
        block_size,
        blocks,
    })
}

fn parse_hex_digest(value: &Value, member: &'static str) -> Result<[u8; 32], AsarErrorKind> {
    match value {
        Value::String(text) => parse_lower_hex_32(text).ok_or_else(|| {
            invalid(
                member,
                format!("expected 64 lower-case hex digits, found {text:?}"),
            )
        }),
        other => Err(invalid(
            member,
            format!("expected a string, found {}", other.type_name()),
        )),
    }
}

fn check_members(
    object: &Object,
    allowed: &[&str],
    node_kind: &'static str,
) -> Result<(), AsarErrorKind> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(member) => Err(AsarErrorKind::UnknownMember {
            member: member.clone(),
            node_kind,
        }),
        None => Ok(()),
    }
}

fn optional_bool(object: &Object, member: &'static str) -> Result<bool, AsarErrorKind> {
    match object.get(member) {
        None => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(invalid(
            member,
            format!("expected a boolean, found {}", other.type_name()),
        )),
    }
}

fn invalid(member: &'static str, reason: String) -> AsarErrorKind {
    AsarErrorKind::InvalidMember { member, reason }
}

/// Checks that `name` is one plain path component on every platform Electron runs on.
pub(crate) fn check_name(name: &str) -> Result<(), AsarErrorKind> {
    let reason = if name.is_empty() {
        "names must not be empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not allowed as names"
    } else if name.contains('/') {
        "names must not contain `/`"
    } else if name.contains('\\') {
        "names must not contain `\\`, a path separator on Windows"
    } else if name.contains('\0') {
        "names must not contain a NUL character"
    } else {
        return Ok(());
    };
    Err(AsarErrorKind::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// Rejects two non-empty packed files whose byte ranges overlap without being
/// identical. Empty files may share an offset with anything, because
/// `@electron/asar` gives them the next file's offset. Identical ranges are
/// allowed because `@electron/asar` 4.3 stores a content it has already packed
/// once and points every entry with that SHA-256 at the same offset
/// (`filesystem.js`, `contentOffsets`).
fn check_overlaps(entries: &[Entry]) -> Result<(), HeaderError> {
    let mut ranges: Vec<(u64, u64, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| match entry.kind {
            EntryKind::File {
                size,
                offset: Some(offset),
                ..
            } if size > 0 => Some((offset, offset + size, index)),
            _ => None,
        })
        .collect();
    ranges.sort_unstable();
    // The range reaching furthest so far, and the range seen just before.
    let mut furthest: Option<(u64, usize)> = None;
    let mut previous_range: Option<(u64, u64)> = None;
    for &(offset, end, current) in &ranges {
        if previous_range == Some((offset, end)) {
            continue;
        }
        if let Some((furthest_end, furthest_index)) = furthest
            && offset < furthest_end
        {
            return Err(HeaderError::entry(
                entries[current].path.as_str(),
                AsarErrorKind::Overlap {
                    offset,
                    end,
                    other: entries[furthest_index].path.clone(),
                },
            ));
        }
        previous_range = Some((offset, end));
        if furthest.is_none_or(|(furthest_end, _)| end > furthest_end) {
            furthest = Some((end, current));
        }
    }
    Ok(())
}

/// Finds the entry path at which a duplicate key sits, by scanning the JSON text that
/// the parser had accepted up to `offset`: the names are the keys of `files` objects.
/// Returns `None` when the duplicate is not inside any entry (at the root, for example).
fn duplicate_key_entry(json: &[u8], offset: usize, duplicate: &str) -> Option<String> {
    // Each open object with its latest key; arrays are kept as `None` so depths stay right.
    let mut open: Vec<Option<String>> = Vec::new();
    let mut position = 0;
    while position < offset.min(json.len()) {
        match json[position] {
            b'{' => open.push(Some(String::new())),
            b'[' => open.push(None),
            b'}' | b']' => {
                open.pop();
            }
            b'"' => {
                let end = string_end(json, position)?;
                let after_colon =
                    json[end..].iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b':');
                if after_colon {
                    let key = match json::parse(&json[position..end]) {
                        Ok(Value::String(key)) => key,
                        _ => return None,
                    };
                    if let Some(Some(current)) = open.last_mut() {
                        *current = key;
                    }
                }
                position = end;
                continue;
            }
            _ => {}
        }
        position += 1;
    }

    // Names are the keys of objects that are the value of a `files` member.
    let mut names: Vec<&str> = Vec::new();
    let innermost = open.len().checked_sub(1)?;
    for level in (1..open.len()).step_by(2) {
        let parent_key = open[level - 1].as_deref()?;
        if parent_key != "files" {
            break;
        }
        names.push(if level == innermost {
            duplicate
        } else {
            open[level].as_deref()?
        });
    }
    if names.is_empty() {
        None
    } else {
        Some(names.join("/"))
    }
}

/// Returns the offset just past the string literal that starts at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut position = start + 1;
    while position < json.len() {
        match json[position] {
            b'\\' => position += 2,
            b'"' => return Some(position + 1),
            _ => position += 1,
        }
    }
    None
}
