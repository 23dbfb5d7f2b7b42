//! Offline replay of a ledger file or an export: links, sequence, hashes,
//! duplicates, tenant, and every receipt signature, checked in parallel.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use super::chain::{Admitted, ChainState, EntryProblem};
use super::entry::Entry;
use super::export::{self, ExportHeader};
use super::frame::{self, FILE_HEADER, FrameFault, FrameRead, FrameReader};
use crate::crypto::{Sha256Digest, TrustedKeys};
use crate::receipt::Receipt;

/// Receipts handed to a signature worker at a time.
const BATCH_LEN: usize = 256;

/// Kind of file that was replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceFormat {
    /// The framed ledger file.
    Ledger,
    /// The JSON Lines export.
    Export,
}

/// Position of an entry in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// Byte offset of a frame in a ledger file.
    Offset(u64),
    /// Line number (from 1) in an export.
    Line(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Offset(offset) => write!(f, "byte offset {offset}"),
            Location::Line(line) => write!(f, "line {line}"),
        }
    }
}

/// Result of a successful replay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// Kind of file.
    pub format: SourceFormat,
    /// Number of entries, including entry 0.
    pub entries: u64,
    /// Hash of the last entry.
    pub head: Sha256Digest,
    /// Project named in entry 0.
    pub project: String,
    /// Tenant fixed by the first receipt, if there is one.
    pub tenant: Option<String>,
    /// Number of receipts.
    pub receipts: u64,
    /// Whether every receipt signature was checked.
    pub signatures_checked: bool,
}

/// Reasons a replay fails. A variant about one entry names the first bad entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading the file failed.
    #[error("{path}: failed to read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A failed write of an export or of its temporary files.
    #[error("{path}: failed to write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither a ledger nor an export.
    #[error("{path}: not a Midcore ledger or ledger export: {reason}")]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file has no entries at all.
    #[error("{path}: the ledger has no entries; entry 0 (ledger-created) is missing")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// An entry breaks the chain or contains a bad receipt.
    #[error("{path}: entry {entry} at {location} is bad: {problem}")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// Sequence number (position) of the first bad entry.
        entry: u64,
        /// Start of the entry.
        location: Location,
        /// The problem found.
        problem: Box<EntryProblem>,
    },
    /// The file ends in an incomplete or invalid frame with nothing valid after it.
    #[error(
        "{path}: entry {entry} at {location} is a torn tail ({fault}), as an interrupted append leaves; the entries before it are valid, and opening the ledger for writing cuts the tail"
    )]
    TornTail {
        /// The file.
        path: PathBuf,
        /// Sequence number the torn entry would have had.
        entry: u64,
        /// Start of the entry.
        location: Location,
        /// The framing fault.
        fault: FrameFault,
    },
    /// An export's header does not match its entries.
    #[error("{path}: the export header does not match its entries: {reason}")]
    ExportMismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

impl ReplayError {
    /// Sequence number of the first bad entry, if the failure is about one entry.
    pub fn entry(&self) -> Option<u64> {
        match self {
            ReplayError::BadEntry { entry, .. } | ReplayError::TornTail { entry, .. } => {
                Some(*entry)
            }
            _ => None,
        }
    }
}

/// One step of reading entries from either format.
enum Step {
    Entry(Location, Box<Entry>),
    BadEntry(Location, EntryProblem),
    TornTail(Location, FrameFault),
    End,
}

enum Source {
    Ledger(FrameReader<BufReader<File>>),
    Export {
        lines: BufReader<File>,
        line: u64,
        header: ExportHeader,
    },
}

impl Source {
    fn open(path: &Path) -> Result<Self, ReplayError> {
        let io = |source| ReplayError::Io {
            path: path.to_owned(),
            source,
        };
        let (file, _) = crate::bundle::open_regular(path).map_err(io)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut start = [0u8; FILE_HEADER.len()];
        let got = frame::read_full(&mut reader, &mut start).map_err(io)?;
        if got == start.len() && start == *FILE_HEADER {
            return Ok(Source::Ledger(FrameReader::new(
                reader,
                FILE_HEADER.len() as u64,
            )));
        }
        if got > 0 && start[0] == b'{' {
            reader.seek(SeekFrom::Start(0)).map_err(io)?;
            let mut first = Vec::new();
            reader.read_until(b'\n', &mut first).map_err(io)?;
            let header =
                export::parse_header(&first).map_err(|reason| ReplayError::NotALedger {
                    path: path.to_owned(),
                    reason,
                })?;
            return Ok(Source::Export {
                lines: reader,
                line: 1,
                header,
            });
        }
        Err(ReplayError::NotALedger {
            path: path.to_owned(),
            reason: "the file starts with neither the ledger header nor an export header line"
                .to_owned(),
        })
    }

    fn format(&self) -> SourceFormat {
        match self {
            Source::Ledger(_) => SourceFormat::Ledger,
            Source::Export { .. } => SourceFormat::Export,
        }
    }

    fn next(&mut self, path: &Path) -> Result<Step, ReplayError> {
        let io = |source| ReplayError::Io {
            path: path.to_owned(),
            source,
        };
        match self {
            Source::Ledger(frames) => match frames.next_frame().map_err(io)? {
                FrameRead::End => Ok(Step::End),
                FrameRead::Frame { offset, payload } => {
                    Ok(decode(Location::Offset(offset), &payload))
                }
                FrameRead::Fault { offset, fault } => {
                    // Only a fault with no valid frame after it is a torn tail. The rest
                    // of the file is read into memory, which only this error path does.
                    let mut rest = Vec::new();
                    let (mut file, _) = crate::bundle::open_regular(path).map_err(io)?;
                    file.seek(SeekFrom::Start(offset)).map_err(io)?;
                    file.read_to_end(&mut rest).map_err(io)?;
                    let location = Location::Offset(offset);
                    if frame::find_later_frame(&rest).is_some() {
                        Ok(Step::BadEntry(location, EntryProblem::Frame { fault }))
                    } else {
                        Ok(Step::TornTail(location, fault))
                    }
                }
            },
            Source::Export { lines, line, .. } => {
                let mut bytes = Vec::new();
                lines.read_until(b'\n', &mut bytes).map_err(io)?;
                if bytes.is_empty() {
                    return Ok(Step::End);
                }
                *line += 1;
                let location = Location::Line(*line);
                if bytes.pop() != Some(b'\n') {
                    return Ok(Step::BadEntry(
                        location,
                        EntryProblem::Frame {
                            fault: FrameFault::Incomplete,
                        },
                    ));
                }
                Ok(decode(location, &bytes))
            }
        }
    }
}

fn decode(location: Location, payload: &[u8]) -> Step {
    match Entry::from_canonical_json(payload) {
        Ok(entry) => Step::Entry(location, Box::new(entry)),
        Err(source) => Step::BadEntry(location, EntryProblem::Format { source }),
    }
}

/// A receipt waiting for its signature check.
struct SignatureJob {
    seq: u64,
    location: Location,
    receipt: Box<Receipt>,
}

/// Replays the ledger or export at `path` from entry 0 to the end.
///
/// Checks every frame or line, every sequence number, parent link and entry
/// hash, entry 0, receipt fields, duplicate receipt ids and the tenant. With
/// `keys`, it also checks every receipt signature, on all cores. `visit` sees each entry
/// that passed the sequential checks, in order, before signatures are known, so
/// a caller must discard what it gathered if the replay fails.
///
/// On failure the error names the first bad entry: the lowest sequence number
/// at which any check failed.
pub fn replay(
    path: &Path,
    keys: Option<&TrustedKeys>,
    visit: &mut dyn FnMut(&Entry),
) -> Result<ReplaySummary, ReplayError> {
    let source = Source::open(path)?;
    let Some(keys) = keys else {
        return walk(path, source, visit, &mut |_| {}).map(|summary| ReplaySummary {
            signatures_checked: false,
            ..summary
        });
    };

    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let (sender, receiver) = mpsc::sync_channel::<Vec<SignatureJob>>(workers * 4);
    let receiver = Mutex::new(receiver);
    let first_failure: Mutex<Option<(u64, Location, crate::receipt::ReceiptError)>> =
        Mutex::new(None);

    let walked = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| check_signatures(&receiver, &first_failure, keys));
        }
        let mut batch = Vec::with_capacity(BATCH_LEN);
        let walked = {
            let mut submit = |job: SignatureJob| {
                batch.push(job);
                if batch.len() == BATCH_LEN {
                    // A send fails only if every worker has exited, and workers exit early only by panicking.
                    let _ =
                        sender.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_LEN)));
                }
            };
            walk(path, source, visit, &mut submit)
        };
        let _ = sender.send(batch);
        drop(sender);
        walked
    });

    // A bad signature always sits before any sequential failure, because only
    // entries that passed the sequential checks were submitted.
    let failure = first_failure
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((entry, location, source)) = failure {
        return Err(ReplayError::BadEntry {
            path: path.to_owned(),
            entry,
            location,
            problem: Box::new(EntryProblem::Signature { source }),
        });
    }
    walked.map(|summary| ReplaySummary {
        signatures_checked: true,
        ..summary
    })
}

type Failure = Option<(u64, Location, crate::receipt::ReceiptError)>;

fn check_signatures(
    receiver: &Mutex<mpsc::Receiver<Vec<SignatureJob>>>,
    first_failure: &Mutex<Failure>,
    keys: &TrustedKeys,
) {
    loop {
        let batch = {
            let guard = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            }
        };
        for job in batch {
            if let Err(error) = job.receipt.verify_in_place(keys) {
                let mut slot = first_failure
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if slot.as_ref().is_none_or(|(seq, _, _)| job.seq < *seq) {
                    *slot = Some((job.seq, job.location, error));
                }
            }
        }
    }
}

/// Walks the entries in order and applies the sequential chain checks.
fn walk(
    path: &Path,
    mut source: Source,
    visit: &mut dyn FnMut(&Entry),
    submit: &mut dyn FnMut(SignatureJob),
) -> Result<ReplaySummary, ReplayError> {
    let format = source.format();
    let mut chain = ChainState::default();
    let bad = |entry, location, problem| ReplayError::BadEntry {
        path: path.to_owned(),
        entry,
        location,
        problem: Box::new(problem),
    };
    loop {
        let seq = chain.next_seq();
        match source.next(path)? {
            Step::End => break,
            Step::TornTail(location, fault) => {
                return Err(ReplayError::TornTail {
                    path: path.to_owned(),
                    entry: seq,
                    location,
                    fault,
                });
            }
            Step::BadEntry(location, problem) => return Err(bad(seq, location, problem)),
            Step::Entry(location, entry) => {
                let admitted = chain
                    .check(&entry)
                    .map_err(|problem| bad(seq, location, problem))?;
                chain.record(&entry, &admitted);
                visit(&entry);
                if let Admitted::Receipt(receipt) = admitted {
                    submit(SignatureJob {
                        seq,
                        location,
                        receipt,
                    });
                }
            }
        }
    }

    if chain.next_seq() == 0 {
        return Err(ReplayError::Empty {
            path: path.to_owned(),
        });
    }
    let summary = ReplaySummary {
        format,
        entries: chain.next_seq(),
        head: chain.head(),
        project: chain.project().unwrap_or_default().to_owned(),
        tenant: chain.tenant().map(str::to_owned),
        receipts: chain.receipt_count() as u64,
        signatures_checked: false,
    };
    if let Source::Export { header, .. } = &source {
        export::check_header(header, &summary).map_err(|reason| ReplayError::ExportMismatch {
            path: path.to_owned(),
            reason,
        })?;
    }
    Ok(summary)
}
