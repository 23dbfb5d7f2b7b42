//! Whole-file and per-block SHA-256 digests, as `@electron/asar` computes them.

use std::io::{self, Read};

use crate::crypto::Sha256;

use super::BLOCK_SIZE;

/// The SHA-256 of a file's bytes and of each of its 4 MiB blocks.
///
/// Blocks follow `@electron/asar` 4.3.2 (`getFileIntegrity`): one hash per full block,
/// then always one final hash of the remaining bytes, which is the hash of empty input
/// when the size is a multiple of the block size. So an empty file has one block, and a
/// file of exactly 4 MiB has two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDigest {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of all the bytes.
    pub sha256: [u8; 32],
    /// SHA-256 of each block, in order.
    pub blocks: Vec<[u8; 32]>,
}

/// Number of block hashes a file of `size` bytes has with `block_size`-byte blocks:
/// the full blocks plus the final, possibly empty, one.
pub fn block_count(size: u64, block_size: u64) -> u64 {
    size / block_size.max(1) + 1
}

/// Hashes everything `reader` yields, with 4 MiB blocks.
pub fn digest_reader(reader: impl Read) -> io::Result<EntryDigest> {
    digest_reader_with_block_size(reader, BLOCK_SIZE)
}

/// Hashes everything `reader` yields, with blocks of `block_size` bytes (at least 1).
pub(crate) fn digest_reader_with_block_size(
    mut reader: impl Read,
    block_size: u64,
) -> io::Result<EntryDigest> {
    let block_size = block_size.max(1);
    let mut whole = Sha256::new();
    let mut block = Sha256::new();
    let mut in_block = 0u64;
    let mut blocks = Vec::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let mut chunk = &buffer[..read];
        whole.update(chunk);
        size += read as u64;
        while !chunk.is_empty() {
            // The take is at most chunk.len(), so it fits in usize.
            let take = usize::try_from((block_size - in_block).min(chunk.len() as u64))
                .unwrap_or(chunk.len());
            block.update(&chunk[..take]);
            in_block += take as u64;
            chunk = &chunk[take..];
            if in_block == block_size {
                blocks.push(std::mem::take(&mut block).finish());
                in_block = 0;
            }
        }
    }
    blocks.push(block.finish());
    Ok(EntryDigest {
        size,
        sha256: whole.finish(),
        blocks,
    })
}
