//! A strict reader of Electron's ASAR archives.
//!
//! Layout: a 16-byte prefix (two Chromium pickles giving the header size and the JSON
//! length), the JSON header, 0 to 3 bytes of zero padding, then the file bytes back to
//! back. [`parse_header`] and [`parse_header_json`] check all of it without file I/O.
//! [`Archive`] adds positioned reads of entry bytes on one shared handle, unpacked files
//! from `<archive>.unpacked/` and links resolved inside the archive. It also computes the
//! SHA-256 digests that Electron's integrity check and the signed manifest use.
//!
//! What this reader rejects and Electron accepts: prefix fields that disagree with each
//! other or the file length, duplicate keys, unknown node members, names that are not one
//! plain path component, sizes and offsets that are not plain integers or fall outside the
//! data section, partly overlapping byte ranges, and links that leave the archive, dangle
//! or form a cycle. Link problems are found at open, so such an archive can never be signed.
//!
//! What it does not check: bytes of the data section that no entry covers, and whether a
//! directory marked `unpacked` has only unpacked children. [`Archive::check_integrity`]
//! compares the header's `integrity` blocks with the bytes; opening does not.

mod digest;
mod error;
mod header;
mod links;
mod read;
mod unpacked;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::sha256;

pub use digest::{EntryDigest, block_count, digest_reader};
pub use error::{AsarError, AsarErrorKind, HeaderError};
pub use header::{
    HeaderLayout, MAX_ENTRIES, MAX_HEADER_JSON_DEPTH, MAX_HEADER_JSON_LEN, MAX_PATH_LEN,
    MAX_TOTAL_PATH_BYTES, parse_header, parse_header_json,
};
pub use read::{EntryReader, VerifiedEntryReader};

use links::LinkTable;
use read::Source;

/// Size of the integrity blocks `@electron/asar` writes and Electron checks: 4 MiB.
pub const BLOCK_SIZE: u64 = 4 * 1024 * 1024;

/// Most links followed while resolving one path; Electron stops at the same number.
pub const MAX_LINK_DEPTH: usize = 40;

/// One node of the archive other than the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path from the archive root: the names, raw UTF-8, joined with `/`.
    pub path: String,
    /// The node's kind and header fields.
    pub kind: EntryKind,
}

/// The kind of a node and its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder.
    Directory {
        /// Whether the header marks it unpacked (its files are under `.unpacked`).
        unpacked: bool,
    },
    /// A file.
    File {
        /// Length in bytes.
        size: u64,
        /// Offset in the data section; `None` exactly when the file is unpacked.
        offset: Option<u64>,
        /// Whether the bytes are in `<archive>.unpacked/<path>` instead of the archive.
        unpacked: bool,
        /// Whether the header marks the file executable.
        executable: bool,
        /// The header's integrity record, if the packer wrote one.
        integrity: Option<Integrity>,
    },
    /// A symbolic link to another path in the archive.
    Link {
        /// Target path relative to the archive root, as written.
        target: String,
        /// Whether the header marks it unpacked.
        unpacked: bool,
    },
}

/// The `integrity` record of a file node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    /// Always `SHA256`; the parser rejects any other.
    pub algorithm: String,
    /// SHA-256 of the whole file.
    pub hash: [u8; 32],
    /// Block size in bytes (4 MiB from `@electron/asar`).
    pub block_size: u64,
    /// SHA-256 of each block.
    pub blocks: Vec<[u8; 32]>,
}

/// An open ASAR archive with its parsed and checked header.
///
/// Entry bytes are read with positioned reads on one shared handle, so readers from the
/// same archive do not disturb each other and the archive is never loaded whole.
pub struct Archive {
    file: Arc<File>,
    path: PathBuf,
    file_len: u64,
    layout: HeaderLayout,
    header_json: Vec<u8>,
    header_sha256: [u8; 32],
    entries: Vec<Entry>,
    links: LinkTable,
}

impl fmt::Debug for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("file_len", &self.file_len)
            .field("data_offset", &self.layout.data_offset)
            .field("header_sha256", &hex::encode(self.header_sha256))
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Opens `path` for reading without blocking on a FIFO, naming it in the error.
fn open_archive_file(path: &Path) -> Result<File, AsarError> {
    open_without_blocking(path).map_err(|source| {
        AsarError::new(
            path,
            AsarErrorKind::Io {
                operation: "open",
                source,
            },
        )
    })
}

impl Archive {
    /// Opens and checks the archive at `path`.
    pub fn open(path: &Path) -> Result<Archive, AsarError> {
        let file = open_archive_file(path)?;
        Self::from_file(file, path)
    }

    /// Opens an archive whose JSON header must have exactly this SHA-256 and
    /// length, as a signed manifest records them. The length is compared
    /// before the header is read and the hash before it is parsed, so a
    /// replaced header costs neither memory nor parsing, and the bytes parsed
    /// are the bytes that were hashed.
    pub fn open_expecting(
        path: &Path,
        header_sha256: &[u8; 32],
        header_len: u64,
    ) -> Result<Archive, AsarError> {
        let file = open_archive_file(path)?;
        Self::read_checked(file, path, Some((header_sha256, header_len)))
    }

    /// Checks an archive from an already open handle; `path` names it in errors and locates
    /// the `.unpacked` folder.
    pub fn from_file(file: File, path: &Path) -> Result<Archive, AsarError> {
        Self::read_checked(file, path, None)
    }

    fn read_checked(
        file: File,
        path: &Path,
        expected_header: Option<(&[u8; 32], u64)>,
    ) -> Result<Archive, AsarError> {
        let fail = |kind| AsarError::new(path, kind);
        let io_fail =
            |operation, source| AsarError::new(path, AsarErrorKind::Io { operation, source });

        // 1. A regular file, at least as long as the prefix.
        let metadata = file
            .metadata()
            .map_err(|source| io_fail("inspect", source))?;
        if !metadata.is_file() {
            return Err(fail(AsarErrorKind::NotRegularFile));
        }
        let file_len = metadata.len();
        if file_len < HeaderLayout::JSON_OFFSET {
            return Err(fail(AsarErrorKind::TooShort { len: file_len }));
        }

        // 2. The prefix fields, checked against each other and the file length.
        let mut prefix = [0u8; 16];
        read::read_exact_at(&file, &mut prefix, 0).map_err(|source| io_fail("read", source))?;
        let layout = parse_header(&prefix, file_len).map_err(|error| error.in_archive(path))?;
        let changed = |found: String| {
            let (sha256, len) = expected_header.unwrap_or((&[0; 32], 0));
            fail(AsarErrorKind::HeaderChanged {
                expected: format!("{len} bytes with sha256 {}", hex::encode(sha256)),
                found,
            })
        };
        if let Some((_, expected_len)) = expected_header
            && layout.json_len != expected_len
        {
            return Err(changed(format!("{} bytes", layout.json_len)));
        }

        // 3. The JSON bytes and the zero padding after them.
        let to_usize = |value: u64| {
            usize::try_from(value).map_err(|_| {
                fail(AsarErrorKind::HeaderTooLarge {
                    json_len: value,
                    max: MAX_HEADER_JSON_LEN,
                })
            })
        };
        let mut header = vec![0u8; to_usize(layout.json_len + layout.padding_len())?];
        read::read_exact_at(&file, &mut header, HeaderLayout::JSON_OFFSET)
            .map_err(|source| io_fail("read", source))?;
        let padding = header.split_off(to_usize(layout.json_len)?);
        if padding.iter().any(|&byte| byte != 0) {
            return Err(fail(AsarErrorKind::NonZeroPadding));
        }
        let header_sha256 = sha256(&header);
        if let Some((expected_sha256, _)) = expected_header
            && header_sha256 != *expected_sha256
        {
            return Err(changed(format!("sha256 {}", hex::encode(header_sha256))));
        }

        // 4. The header tree: entries, byte ranges and links.
        let (entries, links) = header::parse_header_json_with_links(&header, layout.data_len)
            .map_err(|error| error.in_archive(path))?;
        tracing::debug!(archive = %path.display(), entries = entries.len(), header_sha256 = %hex::encode(header_sha256), "opened ASAR archive");
        Ok(Archive {
            file: Arc::new(file),
            path: path.to_owned(),
            file_len,
            layout,
            header_json: header,
            header_sha256,
            entries,
            links,
        })
    }

    /// Returns the archive path as given to [`Archive::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the JSON header: exactly the bytes Electron hashes for its integrity check.
    pub fn header_json(&self) -> &[u8] {
        &self.header_json
    }

    /// Returns the SHA-256 of [`Archive::header_json`].
    pub fn header_sha256(&self) -> [u8; 32] {
        self.header_sha256
    }

    /// Returns the offset of the data section in the archive: 8 plus the header size.
    pub fn data_offset(&self) -> u64 {
        self.layout.data_offset
    }

    /// Returns the length of the archive file when it was opened.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Returns the positions and lengths read from the prefix.
    pub fn layout(&self) -> HeaderLayout {
        self.layout
    }

    /// Returns every node but the root, folders and links included, sorted by path bytes.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Finds the entry with exactly this path, without following links.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        links::find(&self.entries, path).map(|index| &self.entries[index])
    }

    /// Resolves `path` to a file or folder, following links in any component (at most
    /// [`MAX_LINK_DEPTH`] in all).
    pub fn resolve(&self, path: &str) -> Result<&Entry, AsarError> {
        let index = links::resolve_path(&self.entries, &self.links, path)
            .map_err(|error| error.in_archive(&self.path))?;
        Ok(&self.entries[index])
    }

    /// Returns the folder that contains unpacked files: the archive path plus `.unpacked`.
    pub fn unpacked_root(&self) -> PathBuf {
        let mut root = self.path.as_os_str().to_owned();
        root.push(".unpacked");
        PathBuf::from(root)
    }

    /// Opens a file entry for reading, unverified.
    ///
    /// Unpacked files are opened under [`Archive::unpacked_root`] without following a
    /// symbolic link in any component, must be regular files and must have the size the
    /// header gives.
    pub fn open_entry(&self, entry: &Entry) -> Result<EntryReader, AsarError> {
        self.source(entry).map(EntryReader::new)
    }

    /// Computes the SHA-256 and the 4 MiB block hashes of a file entry's bytes.
    pub fn digest_entry(&self, entry: &Entry) -> Result<EntryDigest, AsarError> {
        let reader = self.open_entry(entry)?;
        digest_reader(reader).map_err(|error| self.read_error(entry, error))
    }

    /// Checks every file entry that has an `integrity` record against its bytes: the
    /// number of blocks, the whole-file hash and each block hash. Returns the first failure.
    pub fn check_integrity(&self) -> Result<(), AsarError> {
        for entry in &self.entries {
            if let EntryKind::File {
                size,
                integrity: Some(integrity),
                ..
            } = &entry.kind
            {
                self.check_entry_integrity(entry, *size, integrity)?;
            }
        }
        Ok(())
    }

    fn check_entry_integrity(
        &self,
        entry: &Entry,
        size: u64,
        integrity: &Integrity,
    ) -> Result<(), AsarError> {
        let fail = |kind| AsarError::entry(&self.path, entry.path.as_str(), kind);

        // 1. The block count, before reading, so a bogus header cannot make us hash
        //    into a huge list. Electron also accepts a list without the final empty
        //    block of a file whose size is a multiple of the block size.
        let expected = block_count(size, integrity.block_size);
        let found = integrity.blocks.len() as u64;
        let final_block_omitted =
            size > 0 && size.is_multiple_of(integrity.block_size) && found + 1 == expected;
        if found != expected && !final_block_omitted {
            return Err(fail(AsarErrorKind::IntegrityBlockCount {
                size,
                found: integrity.blocks.len(),
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
            }));
        }

        // 2. The bytes, hashed at the header's block size.
        let reader = self.open_entry(entry)?;
        let digest = digest::digest_reader_with_block_size(reader, integrity.block_size)
            .map_err(|error| self.read_error(entry, error))?;
        if digest.sha256 != integrity.hash {
            tracing::debug!(archive = %self.path.display(), entry = %entry.path, "ASAR integrity hash does not match the bytes");
            return Err(fail(AsarErrorKind::IntegrityHash {
                expected: hex::encode(integrity.hash),
                actual: hex::encode(digest.sha256),
            }));
        }
        for (index, (actual, expected)) in digest.blocks.iter().zip(&integrity.blocks).enumerate() {
            if actual != expected {
                tracing::debug!(archive = %self.path.display(), entry = %entry.path, block = index, "ASAR integrity block does not match the bytes");
                return Err(fail(AsarErrorKind::BlockMismatch { index }));
            }
        }
        Ok(())
    }

    /// Opens a file entry for reading, checking each 4 MiB block against `expected`
    /// before returning its bytes (see [`VerifiedEntryReader`]).
    ///
    /// Fails at once if `expected` has another size than the header gives or the wrong
    /// number of blocks for that size.
    pub fn open_verified(
        &self,
        entry: &Entry,
        expected: &EntryDigest,
    ) -> Result<VerifiedEntryReader, AsarError> {
        let fail = |kind| AsarError::entry(&self.path, entry.path.as_str(), kind);
        let size = self.file_size(entry)?;
        if expected.size != size {
            return Err(fail(AsarErrorKind::SizeMismatch {
                expected: expected.size,
                actual: size,
            }));
        }
        let blocks = block_count(size, BLOCK_SIZE);
        if expected.blocks.len() as u64 != blocks {
            return Err(fail(AsarErrorKind::IntegrityBlockCount {
                size,
                found: expected.blocks.len(),
                expected: usize::try_from(blocks).unwrap_or(usize::MAX),
            }));
        }
        let source = self.source(entry)?;
        Ok(VerifiedEntryReader::new(source, expected.blocks.clone()))
    }

    /// Returns the size of a file entry of this archive.
    fn file_size(&self, entry: &Entry) -> Result<u64, AsarError> {
        let fail = |kind| AsarError::entry(&self.path, entry.path.as_str(), kind);
        // An entry from another archive must not be read at this archive's offsets.
        if self.entry(&entry.path) != Some(entry) {
            return Err(fail(AsarErrorKind::NotFound));
        }
        match entry.kind {
            EntryKind::File { size, .. } => Ok(size),
            EntryKind::Directory { .. } => {
                Err(fail(AsarErrorKind::NotAFile { found: "directory" }))
            }
            EntryKind::Link { .. } => Err(fail(AsarErrorKind::NotAFile { found: "link" })),
        }
    }

    /// Locates a file entry's bytes: a range of the archive or an unpacked file.
    fn source(&self, entry: &Entry) -> Result<Source, AsarError> {
        let fail = |kind| AsarError::entry(&self.path, entry.path.as_str(), kind);
        let size = self.file_size(entry)?;
        let EntryKind::File { offset, .. } = entry.kind else {
            return Err(fail(AsarErrorKind::NotAFile { found: "directory" }));
        };
        let source = |file, start, whole_file| Source {
            archive: self.path.clone(),
            entry: entry.path.clone(),
            file,
            start,
            len: size,
            whole_file,
        };
        match offset {
            // The parser checked offset + size <= data length, so this cannot overflow.
            Some(offset) => Ok(source(
                Arc::clone(&self.file),
                self.layout.data_offset + offset,
                false,
            )),
            None => {
                let file =
                    unpacked::open_unpacked(&self.unpacked_root(), &entry.path).map_err(fail)?;
                let actual = file
                    .metadata()
                    .map_err(|source| fail(AsarErrorKind::Read { source }))?
                    .len();
                if actual != size {
                    return Err(fail(AsarErrorKind::SizeMismatch {
                        expected: size,
                        actual,
                    }));
                }
                Ok(source(Arc::new(file), 0, true))
            }
        }
    }

    /// Turns an error from an entry reader back into an [`AsarError`].
    fn read_error(&self, entry: &Entry, error: io::Error) -> AsarError {
        let source = if error.get_ref().is_some_and(|inner| inner.is::<AsarError>()) {
            match error
                .into_inner()
                .map(|inner| inner.downcast::<AsarError>())
            {
                Some(Ok(asar_error)) => return *asar_error,
                Some(Err(other)) => io::Error::other(other),
                None => io::Error::other("read failed"),
            }
        } else {
            error
        };
        AsarError::entry(
            &self.path,
            entry.path.as_str(),
            AsarErrorKind::Read { source },
        )
    }
}

/// Opens a file for reading. On Unix it uses `O_NONBLOCK`, so a FIFO put in place of an
/// archive cannot block the open; [`Archive::from_file`] then rejects anything but a
/// regular file, and the flag has no effect on reads from one.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// Opens a file for reading.
#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> io::Result<File> {
    File::open(path)
}
