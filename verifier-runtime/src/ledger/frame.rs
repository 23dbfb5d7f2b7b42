//! The framed append-only file: a 16-byte header, then one frame per entry.
//!
//! ```text
//! header: "MIDCORE-LEDGER" 0x00 0x01             (16 bytes)
//! frame:  magic  FF 4C 45 31                      (4 bytes, never valid UTF-8)
//!         length u32 little-endian                (4 bytes, 1 ..= MAX_PAYLOAD_LEN)
//!         payload                                 (length bytes: the entry's canonical JSON)
//!         crc32c u32 little-endian over length and payload (4 bytes)
//! ```

use std::io::{self, Read};

/// First 16 bytes of every ledger file.
pub const FILE_HEADER: &[u8; 16] = b"MIDCORE-LEDGER\x00\x01";

/// First 4 bytes of every frame. `0xFF` never occurs in UTF-8, so the magic
/// cannot appear inside a JSON payload.
pub const FRAME_MAGIC: [u8; 4] = [0xFF, b'L', b'E', b'1'];

/// Largest payload accepted, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;

/// Bytes a frame adds around its payload.
pub const FRAME_OVERHEAD: usize = 12;

/// Encodes one frame around `payload`.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    // The caller checks the length against MAX_PAYLOAD_LEN, which fits in a u32.
    let length = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut frame = Vec::with_capacity(payload.len() + FRAME_OVERHEAD);
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&length);
    frame.extend_from_slice(payload);
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&length), payload);
    frame.extend_from_slice(&checksum.to_le_bytes());
    frame
}

/// Why bytes at some offset are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameFault {
    /// The file ends inside the frame.
    Incomplete,
    /// The first four bytes are not the frame magic.
    BadMagic,
    /// The length is zero or larger than [`MAX_PAYLOAD_LEN`].
    BadLength(u32),
    /// The CRC-32C does not match.
    BadChecksum,
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameFault::Incomplete => f.write_str("the file ends inside the frame"),
            FrameFault::BadMagic => f.write_str("the frame does not start with the frame magic"),
            FrameFault::BadLength(length) => {
                write!(
                    f,
                    "the frame length {length} is outside 1..={MAX_PAYLOAD_LEN}"
                )
            }
            FrameFault::BadChecksum => {
                f.write_str("the frame's CRC-32C does not match its contents")
            }
        }
    }
}

/// One step of reading frames.
#[derive(Debug)]
pub(crate) enum FrameRead {
    /// A valid frame starting at `offset`.
    Frame { offset: u64, payload: Vec<u8> },
    /// The file ends cleanly after the previous frame.
    End,
    /// The bytes at `offset` are not a valid frame.
    Fault { offset: u64, fault: FrameFault },
}

/// Reads frames one after another from a reader positioned after the header.
pub(crate) struct FrameReader<R> {
    reader: R,
    offset: u64,
}

impl<R: Read> FrameReader<R> {
    pub(crate) fn new(reader: R, offset: u64) -> Self {
        Self { reader, offset }
    }

    /// Offset of the next frame to read.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next frame. After a `Fault` or `End` the reader must not be used again.
    pub(crate) fn next_frame(&mut self) -> io::Result<FrameRead> {
        let offset = self.offset;
        let mut head = [0u8; 8];
        let got = read_full(&mut self.reader, &mut head)?;
        if got == 0 {
            return Ok(FrameRead::End);
        }
        let fault = |fault| Ok(FrameRead::Fault { offset, fault });
        if head[..got.min(4)] != FRAME_MAGIC[..got.min(4)] {
            return fault(FrameFault::BadMagic);
        }
        if got < head.len() {
            return fault(FrameFault::Incomplete);
        }
        let length_bytes = [head[4], head[5], head[6], head[7]];
        let length = u32::from_le_bytes(length_bytes);
        let payload_len = length as usize;
        if payload_len == 0 || payload_len > MAX_PAYLOAD_LEN {
            return fault(FrameFault::BadLength(length));
        }
        let mut rest = vec![0u8; payload_len + 4];
        if read_full(&mut self.reader, &mut rest)? < rest.len() {
            return fault(FrameFault::Incomplete);
        }
        let stored = u32::from_le_bytes([
            rest[payload_len],
            rest[payload_len + 1],
            rest[payload_len + 2],
            rest[payload_len + 3],
        ]);
        rest.truncate(payload_len);
        if crc32c::crc32c_append(crc32c::crc32c(&length_bytes), &rest) != stored {
            return fault(FrameFault::BadChecksum);
        }
        self.offset += (payload_len + FRAME_OVERHEAD) as u64;
        Ok(FrameRead::Frame {
            offset,
            payload: rest,
        })
    }
}

/// Returns the offset, relative to `bytes`, of the first valid frame that
/// starts after position 0, if any. Used after a faulty frame to tell a torn
/// tail (nothing valid follows) from damage in the middle of the file.
pub(crate) fn find_later_frame(bytes: &[u8]) -> Option<usize> {
    let mut start = 1;
    while let Some(found) = find_magic(&bytes[start.min(bytes.len())..]) {
        let candidate = start + found;
        let mut reader = FrameReader::new(&bytes[candidate..], 0);
        if let Ok(FrameRead::Frame { .. }) = reader.next_frame() {
            return Some(candidate);
        }
        start = candidate + 1;
    }
    None
}

fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(FRAME_MAGIC.len())
        .position(|window| window == FRAME_MAGIC)
}

/// Reads until `buffer` is full or the reader ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<FrameRead> {
        let mut reader = FrameReader::new(bytes, 0);
        let mut out = Vec::new();
        loop {
            let step = reader
                .next_frame()
                .expect("reading from memory cannot fail");
            let last = !matches!(step, FrameRead::Frame { .. });
            out.push(step);
            if last {
                return out;
            }
        }
    }

    #[test]
    fn frame_round_trips() {
        let frame = encode(b"{\"a\":1}");
        let steps = read_all(&frame);
        assert!(matches!(&steps[0], FrameRead::Frame { payload, .. } if payload == b"{\"a\":1}"));
        assert!(matches!(steps[1], FrameRead::End));
    }

    #[test]
    fn truncated_frame_is_incomplete() {
        let frame = encode(b"{}");
        for cut in 1..frame.len() {
            let steps = read_all(&frame[..cut]);
            assert!(
                matches!(
                    steps[0],
                    FrameRead::Fault {
                        fault: FrameFault::Incomplete,
                        ..
                    }
                ),
                "cut at {cut}: {steps:?}"
            );
        }
    }

    #[test]
    fn later_frame_found_after_damage() {
        let mut bytes = encode(b"{}");
        bytes[9] ^= 1;
        let second = bytes.len();
        bytes.extend_from_slice(&encode(b"[]"));
        assert_eq!(find_later_frame(&bytes), Some(second));
    }

    #[test]
    fn no_later_frame_in_garbage() {
        let mut bytes = encode(b"{}");
        bytes.truncate(bytes.len() - 1);
        assert_eq!(find_later_frame(&bytes), None);
    }
}
