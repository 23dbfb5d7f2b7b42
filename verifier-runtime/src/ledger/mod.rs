//! The per-project audit ledger: a hash chain of verified receipts and system evidence.
//!
//! Each entry carries its sequence number, its parent's hash, a domain, a kind
//! and a body. The domain is `billing` for receipts and `system` for evidence
//! such as tamper findings and integrity drift. The entry hash covers all of
//! that behind a domain-separation prefix (see [`Entry::hash`]). Entry 0 is always a
//! `system` entry of kind `ledger-created` naming the project.
//!
//! Storage is a framed append-only file (see the `frame` module docs for the
//! byte layout) written by one process at a time under a lock on
//! `<ledger>.lock`. An append counts only after `fsync`; a torn tail from an
//! interrupted append is cut on the next [`Ledger::open`], and damage that is
//! followed by valid frames is reported and never silently cut.
//!
//! The ledger's tenant is fixed by its first receipt; later receipts of
//! another tenant are rejected. A receipt id appears at most once.
//!
//! What the chain does not prove: that the file is complete or current.
//! Whoever can write the file can cut its tail or rebuild it from scratch
//! (system entries carry no secret); receipts cannot be forged, but they can
//! be left out. Only a head hash kept somewhere else makes that detectable.

mod chain;
pub mod entry;
mod export;
mod frame;
mod replay;
mod report;
mod writer;

#[cfg(feature = "cli")]
pub mod cli;

use std::path::PathBuf;
use std::time::Duration;

pub use chain::EntryProblem;
pub use entry::{Domain, Entry, EntryFormatError};
pub use export::{EXPORT_FORMAT, EXPORT_VERSION, export};
pub use frame::{FILE_HEADER, FRAME_MAGIC, FrameFault, MAX_PAYLOAD_LEN};
pub use replay::{Location, ReplayError, ReplaySummary, SourceFormat, replay};
pub use report::{Month, MonthlyReport, OperationTotal, month_of_ms};
pub use writer::{DEFAULT_LOCK_TIMEOUT, Ledger, lock_path};

use crate::crypto::Sha256Digest;
use crate::receipt::ReceiptError;

/// An entry that was written and synced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendedEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Its entry hash, the new head of the chain.
    pub hash: Sha256Digest,
    /// Byte offset of its frame in the ledger file.
    pub offset: u64,
}

/// Torn tail that [`Ledger::open`] cut from the end of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Sequence number the torn entry would have had.
    pub entry: u64,
    /// Byte offset where the file was cut.
    pub offset: u64,
    /// Number of bytes removed.
    pub bytes_cut: u64,
    /// The framing fault found there.
    pub fault: FrameFault,
}

/// Errors from opening a ledger or appending to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A file operation failed.
    #[error("{path}: failed to {action}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operation that failed.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another writer holds the lock.
    #[error(
        "{path}: another process holds the ledger's writer lock (waited {waited:?}); retry when it has finished"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// The file is not a ledger.
    #[error("{path}: not a Midcore ledger: {reason}")]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A complete frame contains an invalid entry; the file was not changed.
    #[error(
        "{path}: entry {entry} at byte offset {offset} is invalid: {problem}; the ledger was not changed, run `midcore-verify ledger verify` and restore it from a backup or export"
    )]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// Sequence number of the bad entry.
        entry: u64,
        /// Byte offset of its frame.
        offset: u64,
        /// What is wrong.
        problem: Box<EntryProblem>,
    },
    /// A faulty frame is followed by valid frames, so it is damage, not a torn tail.
    #[error(
        "{path}: entry {entry} at byte offset {offset} is damaged ({fault}) but valid entries follow at byte offset {next_valid_offset}; the ledger was not changed, restore it from a backup or export"
    )]
    DamagedBeforeValidEntries {
        /// The ledger file.
        path: PathBuf,
        /// Sequence number of the damaged entry.
        entry: u64,
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What is wrong with it.
        fault: FrameFault,
        /// Offset of the next valid frame.
        next_valid_offset: u64,
    },
    /// The ledger belongs to another project.
    #[error("{path}: the ledger belongs to project {ledger_project:?}, not {requested:?}")]
    ProjectMismatch {
        /// The ledger file.
        path: PathBuf,
        /// Project recorded in entry 0.
        ledger_project: String,
        /// Project the caller named.
        requested: String,
    },
    /// The project id is not acceptable.
    #[error("invalid project id {project:?}: {reason}")]
    InvalidProject {
        /// The rejected id.
        project: String,
        /// Why.
        reason: String,
    },
    /// The receipt is malformed or its signature does not verify.
    #[error("receipt rejected: {source}")]
    Receipt {
        /// The receipt error.
        #[source]
        source: ReceiptError,
    },
    /// The receipt names a tenant other than the one the caller expects.
    #[error(
        "{path}: receipt tenant {receipt_tenant:?} differs from the expected tenant {expected:?}"
    )]
    WrongTenant {
        /// The ledger file.
        path: PathBuf,
        /// Tenant the caller passed.
        expected: String,
        /// Tenant in the receipt.
        receipt_tenant: String,
    },
    /// The receipt's tenant differs from the tenant fixed by the ledger's first receipt.
    #[error(
        "{path}: the ledger belongs to tenant {ledger_tenant:?}, but the receipt is for tenant {receipt_tenant:?}"
    )]
    TenantMismatch {
        /// The ledger file.
        path: PathBuf,
        /// Tenant of the ledger.
        ledger_tenant: String,
        /// Tenant of the receipt.
        receipt_tenant: String,
    },
    /// The receipt id is already in the ledger.
    #[error(
        "{path}: receipt {id:?} is already recorded in entry {seq}; a receipt is recorded once"
    )]
    DuplicateReceipt {
        /// The ledger file.
        path: PathBuf,
        /// Receipt id.
        id: String,
        /// Entry that contains it.
        seq: u64,
    },
    /// Any other rule of the chain rejected the new entry.
    #[error("{path}: entry rejected: {problem}")]
    Rejected {
        /// The ledger file.
        path: PathBuf,
        /// The rule that failed.
        problem: Box<EntryProblem>,
    },
    /// An evidence kind is not acceptable.
    #[error("invalid entry kind {kind:?}: {reason}")]
    InvalidKind {
        /// The rejected kind.
        kind: String,
        /// Why.
        reason: String,
    },
    /// The encoded entry is larger than a frame may be.
    #[error("the encoded entry is {len} bytes, larger than the {MAX_PAYLOAD_LEN}-byte limit")]
    EntryTooLarge {
        /// Encoded size.
        len: usize,
    },
    /// An earlier write or sync failed on this handle.
    #[error(
        "{path}: an earlier append failed, so the file's state is unknown; open the ledger again to check and recover it"
    )]
    Poisoned {
        /// The ledger file.
        path: PathBuf,
    },
}
