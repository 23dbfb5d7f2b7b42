//! Readers of entry bytes: plain, and verified block by block.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use crate::crypto::sha256;

use super::BLOCK_SIZE;
use super::error::{AsarError, AsarErrorKind};

/// Reads into `buffer` at `offset` without moving any file cursor, so one handle can
/// serve many readers.
#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

/// Reads into `buffer` at `offset`. `seek_read` moves the handle's cursor, but no reader
/// here uses the cursor, so positioned reads stay independent.
#[cfg(windows)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buffer, offset)
}

/// Fills `buffer` from `offset`, failing with `UnexpectedEof` if the file ends first.
pub(crate) fn read_exact_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buffer.is_empty() {
        match read_at(file, buffer, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ended early; it was truncated",
                ));
            }
            Ok(read) => {
                buffer = &mut buffer[read..];
                offset += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The bytes of one file entry: a range of the archive, or a whole unpacked file.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) archive: PathBuf,
    pub(crate) entry: String,
    pub(crate) file: Arc<File>,
    /// Offset of the first byte in `file`.
    pub(crate) start: u64,
    pub(crate) len: u64,
    /// Whether `file` is an unpacked file, which must end exactly at `len`.
    pub(crate) whole_file: bool,
}

impl Source {
    fn error(&self, kind: AsarErrorKind) -> AsarError {
        AsarError::entry(&self.archive, self.entry.as_str(), kind)
    }

    /// Reads at `position` (relative to the entry), at most up to the entry's end.
    fn read_at(&self, buffer: &mut [u8], position: u64) -> io::Result<usize> {
        let remaining = self.len.saturating_sub(position);
        let want = usize::try_from(remaining)
            .map_or(buffer.len(), |remaining| remaining.min(buffer.len()));
        if want == 0 {
            return Ok(0);
        }
        loop {
            match read_at(&self.file, &mut buffer[..want], self.start + position) {
                Ok(0) => {
                    let kind = AsarErrorKind::Read {
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file ended early; it was truncated",
                        ),
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        self.error(kind),
                    ));
                }
                Ok(read) => return Ok(read),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(self.error(AsarErrorKind::Read { source: error }).into_io());
                }
            }
        }
    }

    /// Fails if an unpacked file has bytes after `len` (it grew since it was opened).
    fn check_ends_at_len(&self) -> io::Result<()> {
        if !self.whole_file {
            return Ok(());
        }
        let mut probe = [0u8; 1];
        let extra = loop {
            match read_at(&self.file, &mut probe, self.len) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match extra {
            Ok(0) => Ok(()),
            Ok(_) => Err(self
                .error(AsarErrorKind::SizeMismatch {
                    expected: self.len,
                    actual: self.len + 1,
                })
                .into_io()),
            Err(error) => Err(self.error(AsarErrorKind::Read { source: error }).into_io()),
        }
    }
}

fn seek_position(current: u64, len: u64, target: SeekFrom) -> io::Result<u64> {
    let position = match target {
        SeekFrom::Start(offset) => Some(offset),
        SeekFrom::End(delta) => len.checked_add_signed(delta),
        SeekFrom::Current(delta) => current.checked_add_signed(delta),
    };
    position.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "seek to a negative or overflowing position",
        )
    })
}

/// A reader of one file entry's bytes, unverified.
///
/// Packed entries are read with positioned reads on the archive's shared handle; unpacked
/// entries from their own handle, opened without following symbolic links. A read fails
/// with `UnexpectedEof` if the file was truncated after it was opened.
#[derive(Debug)]
pub struct EntryReader {
    source: Source,
    position: u64,
}

impl EntryReader {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
            position: 0,
        }
    }

    /// Returns the entry's length in bytes.
    pub fn len(&self) -> u64 {
        self.source.len
    }

    /// Returns whether the entry is empty.
    pub fn is_empty(&self) -> bool {
        self.source.len == 0
    }
}

impl Read for EntryReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.source.read_at(buffer, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for EntryReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        self.position = seek_position(self.position, self.source.len, target)?;
        Ok(self.position)
    }
}

/// A reader that returns an entry's bytes only after checking them against expected
/// block hashes.
///
/// It reads one 4 MiB block at a time into a reused buffer with a positioned read, hashes
/// it and compares it with the expected hash before returning any byte of that block. A
/// mismatch fails the read with an `io::Error` of kind `InvalidData` naming the archive,
/// the entry and the block index, and the buffered block is discarded. A file that ends
/// before the expected size fails the same way. Reaching the end also checks the final
/// block (the empty one, when the size is a multiple of 4 MiB) and, for unpacked files,
/// that the file has no bytes past the expected size. The reader does not compare the
/// whole-file `sha256` of the expected digest, because the block hashes cover every byte.
#[derive(Debug)]
pub struct VerifiedEntryReader {
    source: Source,
    expected_blocks: Vec<[u8; 32]>,
    buffer: Vec<u8>,
    loaded: Option<u64>,
    position: u64,
    final_checked: bool,
}

impl VerifiedEntryReader {
    /// `expected_blocks` must have one hash per block of `source.len` bytes; the caller checks.
    pub(crate) fn new(source: Source, expected_blocks: Vec<[u8; 32]>) -> Self {
        Self {
            source,
            expected_blocks,
            buffer: Vec::new(),
            loaded: None,
            position: 0,
            final_checked: false,
        }
    }

    /// Returns the entry's length in bytes.
    pub fn len(&self) -> u64 {
        self.source.len
    }

    /// Returns whether the entry is empty.
    pub fn is_empty(&self) -> bool {
        self.source.len == 0
    }

    fn last_block(&self) -> u64 {
        self.source.len / BLOCK_SIZE
    }

    /// Reads block `index` into the buffer and checks its hash.
    fn load(&mut self, index: u64) -> io::Result<()> {
        self.loaded = None;
        let start = index * BLOCK_SIZE;
        let len = (self.source.len - start).min(BLOCK_SIZE);
        // len <= BLOCK_SIZE (4 MiB), so it fits in usize.
        let len = usize::try_from(len).map_err(|_| io::Error::other("block larger than memory"))?;
        self.buffer.clear();
        self.buffer.resize(len, 0);

        // 1. Read the whole block.
        //    A file that ends early fails as InvalidData too, like any other size difference.
        let mut filled = 0;
        while filled < len {
            match self
                .source
                .read_at(&mut self.buffer[filled..], start + filled as u64)
            {
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    self.buffer.clear();
                    let actual = start + filled as u64;
                    let kind = AsarErrorKind::SizeMismatch {
                        expected: self.source.len,
                        actual,
                    };
                    return Err(self.source.error(kind).into_io());
                }
                Err(error) => return Err(error),
            }
        }
        if index == self.last_block() {
            self.source.check_ends_at_len()?;
        }

        // 2. Compare its hash before any byte of it leaves this reader.
        let expected = usize::try_from(index)
            .ok()
            .and_then(|index| self.expected_blocks.get(index));
        if expected != Some(&sha256(&self.buffer)) {
            self.buffer.clear();
            let index = usize::try_from(index).unwrap_or(usize::MAX);
            tracing::warn!(archive = %self.source.archive.display(), entry = %self.source.entry, block = index, "ASAR entry block does not match its expected hash");
            return Err(self
                .source
                .error(AsarErrorKind::BlockMismatch { index })
                .into_io());
        }
        self.loaded = Some(index);
        if index == self.last_block() {
            self.final_checked = true;
        }
        Ok(())
    }
}

impl Read for VerifiedEntryReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.position >= self.source.len {
            if !self.final_checked {
                self.load(self.last_block())?;
            }
            return Ok(0);
        }
        let index = self.position / BLOCK_SIZE;
        if self.loaded != Some(index) {
            self.load(index)?;
        }
        // The offset is below BLOCK_SIZE, so it fits in usize.
        let offset = usize::try_from(self.position - index * BLOCK_SIZE).unwrap_or(usize::MAX);
        let available = self.buffer.get(offset..).unwrap_or_default();
        let count = available.len().min(buffer.len());
        buffer[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for VerifiedEntryReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        self.position = seek_position(self.position, self.source.len, target)?;
        Ok(self.position)
    }
}
