//! Errors of the ASAR reader.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::json::JsonError;

/// An ASAR failure: the archive, the entry inside it (when one is involved) and the reason.
///
/// Displays as `<archive>: entry <path>: <reason>`, or `<archive>: <reason>` when no entry
/// is involved.
#[derive(Debug)]
#[non_exhaustive]
pub struct AsarError {
    /// Path of the archive as the caller gave it.
    pub archive: PathBuf,
    /// Entry path inside the archive (components joined with `/`), if the failure concerns one.
    pub entry: Option<String>,
    /// The reason for the failure.
    pub kind: AsarErrorKind,
}

impl AsarError {
    /// Builds an error about the archive as a whole.
    pub fn new(archive: &Path, kind: AsarErrorKind) -> Self {
        Self {
            archive: archive.to_owned(),
            entry: None,
            kind,
        }
    }

    /// Builds an error about one entry of the archive.
    pub fn entry(archive: &Path, entry: impl Into<String>, kind: AsarErrorKind) -> Self {
        Self {
            archive: archive.to_owned(),
            entry: Some(entry.into()),
            kind,
        }
    }

    /// Converts the error into an `io::Error` of kind `InvalidData`, for `Read` implementations.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

impl fmt::Display for AsarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(entry) => write!(
                f,
                "{}: entry {entry}: {}",
                self.archive.display(),
                self.kind
            ),
            None => write!(f, "{}: {}", self.archive.display(), self.kind),
        }
    }
}

impl std::error::Error for AsarError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// A header error found without any file I/O: the entry path (if any) and the reason.
///
/// [`parse_header`](super::parse_header) and [`parse_header_json`](super::parse_header_json)
/// return this type, and [`Archive::open`](super::Archive::open) adds the archive path.
#[derive(Debug)]
#[non_exhaustive]
pub struct HeaderError {
    /// Entry path inside the archive, if the failure concerns one.
    pub entry: Option<String>,
    /// The reason for the failure.
    pub kind: AsarErrorKind,
}

impl HeaderError {
    pub(crate) fn new(kind: AsarErrorKind) -> Self {
        Self { entry: None, kind }
    }

    pub(crate) fn entry(entry: impl Into<String>, kind: AsarErrorKind) -> Self {
        Self {
            entry: Some(entry.into()),
            kind,
        }
    }

    /// Adds the archive path.
    pub fn in_archive(self, archive: &Path) -> AsarError {
        AsarError {
            archive: archive.to_owned(),
            entry: self.entry,
            kind: self.kind,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(entry) => write!(f, "entry {entry}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// The reason an ASAR operation failed; one variant per failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsarErrorKind {
    /// Reading or opening the archive failed.
    #[error("failed to {operation} the archive: {source}")]
    Io {
        /// The operation that failed, such as `open` or `read`.
        operation: &'static str,
        /// The operating system error.
        source: io::Error,
    },
    /// The archive path is not a regular file.
    #[error("not a regular file; pass the path of an .asar archive")]
    NotRegularFile,
    /// The file is shorter than the 16-byte header prefix.
    #[error(
        "file is {len} bytes, shorter than the 16-byte ASAR header prefix; this is not an ASAR archive"
    )]
    TooShort {
        /// File length in bytes.
        len: u64,
    },
    /// The first prefix field is not 4.
    #[error("first header field is {found}, expected 4; this is not an ASAR archive")]
    BadPickleSize {
        /// The value found.
        found: u32,
    },
    /// The second and third prefix fields disagree.
    #[error(
        "header size {header_size} and header payload size {payload_size} disagree (payload must be size - 4)"
    )]
    HeaderSizeMismatch {
        /// Second prefix field.
        header_size: u32,
        /// Third prefix field.
        payload_size: u32,
    },
    /// The JSON length field is negative.
    #[error("header JSON length {length} is negative")]
    NegativeJsonLength {
        /// Fourth prefix field.
        length: i32,
    },
    /// The JSON string does not fit in the header pickle.
    #[error("header JSON length {json_len} does not fit in the header of {header_size} bytes")]
    JsonLongerThanHeader {
        /// Fourth prefix field.
        json_len: u64,
        /// Second prefix field.
        header_size: u64,
    },
    /// The header size is not the JSON length plus 8, rounded up to 4.
    #[error(
        "header size {header_size} does not match JSON length {json_len} (expected {expected})"
    )]
    HeaderPadding {
        /// Second prefix field.
        header_size: u64,
        /// Fourth prefix field.
        json_len: u64,
        /// 8 plus the JSON length rounded up to a multiple of 4.
        expected: u64,
    },
    /// The header ends past the end of the file.
    #[error(
        "header ends at byte {header_end}, past the end of the {file_len}-byte file; the archive is truncated"
    )]
    HeaderBeyondFile {
        /// Offset of the first byte after the header.
        header_end: u64,
        /// File length.
        file_len: u64,
    },
    /// The header JSON is larger than the reader accepts.
    #[error("header JSON is {json_len} bytes, more than the limit of {max} bytes")]
    HeaderTooLarge {
        /// Fourth prefix field.
        json_len: u64,
        /// The limit.
        max: u64,
    },
    /// The header is not the one the caller expected (see [`crate::asar::Archive::open_expecting`]).
    #[error("the archive header changed after signing (expected {expected}, found {found})")]
    HeaderChanged {
        /// The expected header: its SHA-256 and length.
        expected: String,
        /// What the archive contains instead.
        found: String,
    },
    /// A padding byte after the header JSON is not zero.
    #[error("header padding after the JSON is not zero")]
    NonZeroPadding,
    /// The header is not valid JSON (duplicate keys included).
    #[error("invalid header JSON: {0}")]
    InvalidJson(#[source] JsonError),
    /// The header contains more entries than the reader accepts.
    #[error("header has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
    /// An entry path or link target is longer than the reader accepts.
    #[error("path of {len} bytes is longer than the limit of {max} bytes")]
    PathTooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The entry paths together are longer than the reader accepts.
    #[error("entry paths total more than {max} bytes")]
    PathsTooLarge {
        /// The limit.
        max: usize,
    },
    /// The root node is not a directory.
    #[error("root node is not a directory with a `files` object")]
    RootNotDirectory,
    /// A node is not a JSON object.
    #[error("node is {found}, expected an object")]
    NodeNotObject {
        /// JSON type found.
        found: &'static str,
    },
    /// A node has a member that no ASAR node has.
    #[error(
        "unknown member {member:?} in {node_kind} node; ASAR nodes have only files, unpacked, size, offset, executable, integrity and link"
    )]
    UnknownMember {
        /// Member name.
        member: String,
        /// `directory`, `file` or `link`.
        node_kind: &'static str,
    },
    /// A required member is missing.
    #[error("missing member `{member}`")]
    MissingMember {
        /// Member name.
        member: &'static str,
    },
    /// A member has the wrong type or an invalid value.
    #[error("invalid `{member}`: {reason}")]
    InvalidMember {
        /// Member name, such as `size` or `integrity.blocks`.
        member: &'static str,
        /// The problem with the value.
        reason: String,
    },
    /// An entry name is not a single, plain path component.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// The reason for the rejection.
        reason: &'static str,
    },
    /// `offset + size` does not fit in 64 bits.
    #[error("offset {offset} plus size {size} overflows a 64-bit integer")]
    OffsetOverflow {
        /// Entry offset.
        offset: u64,
        /// Entry size.
        size: u64,
    },
    /// A packed file's bytes lie beyond the data section.
    #[error(
        "bytes {offset}..{end} lie beyond the {data_len}-byte data section; the archive is truncated or the header is wrong"
    )]
    DataOutOfBounds {
        /// Entry offset within the data section.
        offset: u64,
        /// End of the entry's bytes.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two non-empty packed files share bytes.
    #[error("bytes {offset}..{end} overlap entry {other}")]
    Overlap {
        /// Entry offset.
        offset: u64,
        /// End of the entry's bytes.
        end: u64,
        /// Path of the other entry.
        other: String,
    },
    /// A link target is not a relative path of plain components inside the archive.
    #[error("link target {target:?} leaves the archive or is not a plain relative path: {reason}")]
    LinkEscapes {
        /// The target as written.
        target: String,
        /// The reason for the rejection.
        reason: &'static str,
    },
    /// Following a link comes back to a link already being followed.
    #[error("link target {target:?} forms a cycle of links")]
    LinkCycle {
        /// The target as written.
        target: String,
    },
    /// More links than the limit were followed.
    #[error("more than {max} links followed while resolving the path")]
    LinkDepthExceeded {
        /// The limit.
        max: usize,
    },
    /// A link points at a path that does not exist in the archive.
    #[error("link target {target:?} does not exist in the archive")]
    LinkTargetNotFound {
        /// The target as written.
        target: String,
    },
    /// A path has a file where a directory is needed.
    #[error("{component:?} is a file, not a directory")]
    NotADirectory {
        /// The path up to the offending component.
        component: String,
    },
    /// No entry has this path.
    #[error("not found in the archive")]
    NotFound,
    /// A path passed to a lookup is empty or has an empty, `.` or `..` component.
    #[error("invalid lookup path: {reason}")]
    InvalidPath {
        /// The reason for the rejection.
        reason: &'static str,
    },
    /// The entry is not a file, so it has no bytes to read.
    #[error("is a {found}, not a file")]
    NotAFile {
        /// `directory` or `link`.
        found: &'static str,
    },
    /// The unpacked file is missing.
    #[error("unpacked file {path} is missing; ship the archive's .unpacked folder with it")]
    UnpackedMissing {
        /// Path under the `.unpacked` folder.
        path: PathBuf,
    },
    /// A component of the unpacked file's path is a symbolic link.
    #[error("unpacked path {path} is or passes through a symbolic link, which is not allowed")]
    UnpackedSymlink {
        /// Path under the `.unpacked` folder.
        path: PathBuf,
    },
    /// The unpacked file is not a regular file.
    #[error("unpacked path {path} is not a regular file")]
    UnpackedNotRegular {
        /// Path under the `.unpacked` folder.
        path: PathBuf,
    },
    /// Opening or reading the unpacked file failed.
    #[error("failed to open unpacked file {path}: {source}")]
    UnpackedIo {
        /// Path under the `.unpacked` folder.
        path: PathBuf,
        /// The operating system error.
        source: io::Error,
    },
    /// The file's length differs from the size in the header or the expected digest.
    #[error("size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// Expected size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// Reading the entry's bytes failed.
    #[error("failed to read the entry: {source}")]
    Read {
        /// The operating system error.
        source: io::Error,
    },
    /// The header's `integrity.hash` does not match the bytes.
    #[error("integrity hash {expected} does not match the bytes, whose SHA-256 is {actual}")]
    IntegrityHash {
        /// Hash in the header, hex.
        expected: String,
        /// Hash of the bytes, hex.
        actual: String,
    },
    /// The number of block hashes is wrong for the entry's size.
    #[error("integrity has {found} block hashes, but the {size}-byte file has {expected} blocks")]
    IntegrityBlockCount {
        /// Entry size.
        size: u64,
        /// Block hashes in the header or expected digest.
        found: usize,
        /// Blocks the bytes have.
        expected: usize,
    },
    /// A block's hash does not match its bytes.
    #[error(
        "block {index} does not match its expected SHA-256; the bytes were changed after signing"
    )]
    BlockMismatch {
        /// Zero-based block index.
        index: usize,
    },
}
