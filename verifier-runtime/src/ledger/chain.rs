//! The chain rules, written once and applied by the writer, the replay and the export.

use std::collections::HashMap;

use super::entry::{self, Domain, Entry, EntryFormatError, GENESIS_KIND, RECEIPT_KIND};
use crate::crypto::Sha256Digest;
use crate::receipt::{Receipt, ReceiptError};

/// What is wrong with one entry of a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The bytes are not a valid frame.
    #[error("{fault}")]
    Frame {
        /// The framing fault.
        fault: super::frame::FrameFault,
    },
    /// The frame holds a malformed entry or its stored hash does not match.
    #[error("{source}")]
    Format {
        /// The decoding error.
        #[from]
        source: EntryFormatError,
    },
    /// The sequence number is not the entry's position.
    #[error("sequence number {found}, expected {expected}")]
    Sequence {
        /// The position in the chain.
        expected: u64,
        /// The number written in the entry.
        found: u64,
    },
    /// The parent hash is not the previous entry's hash.
    #[error("parent hash {} does not match the previous entry's hash {}", hex::encode(.found), hex::encode(.expected))]
    Parent {
        /// Hash of the previous entry.
        expected: Sha256Digest,
        /// Parent hash written in the entry.
        found: Sha256Digest,
    },
    /// Entry 0 is not a valid `ledger-created` entry, or a later entry claims to be one.
    #[error("{reason}")]
    Genesis {
        /// What is wrong.
        reason: String,
    },
    /// A `billing` entry does not hold a valid receipt.
    #[error("invalid receipt in a billing entry: {source}")]
    Receipt {
        /// The receipt error.
        #[source]
        source: ReceiptError,
    },
    /// The receipt's signature does not verify under the pinned keys.
    #[error("receipt signature rejected: {source}")]
    Signature {
        /// The verification error.
        #[source]
        source: ReceiptError,
    },
    /// A receipt id appears a second time.
    #[error("receipt {id:?} was already recorded in entry {first_seq}")]
    DuplicateReceipt {
        /// The repeated receipt id.
        id: String,
        /// Sequence number of the first entry with this id.
        first_seq: u64,
    },
    /// The receipt's tenant differs from the ledger's tenant.
    #[error("receipt tenant {receipt_tenant:?} differs from the ledger's tenant {ledger_tenant:?}")]
    TenantMismatch {
        /// Tenant fixed by the ledger's first receipt.
        ledger_tenant: String,
        /// Tenant named in this receipt.
        receipt_tenant: String,
    },
    /// A `billing` entry has a kind other than `receipt`.
    #[error("billing entries must have kind \"receipt\", found {kind:?}")]
    BillingKind {
        /// The kind found.
        kind: String,
    },
}

/// State of a chain read up to some entry.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChainState {
    next_seq: u64,
    head: Sha256Digest,
    project: Option<String>,
    tenant: Option<String>,
    receipts: HashMap<String, u64>,
}

/// The outcome of checking an entry before it is recorded.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// Entry 0, naming the project.
    Genesis { project: String },
    /// A billing entry with its receipt, signature not yet checked.
    Receipt(Box<Receipt>),
    /// Any other system entry.
    Evidence,
}

impl ChainState {
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn head(&self) -> Sha256Digest {
        self.head
    }

    pub(crate) fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    pub(crate) fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    pub(crate) fn receipt_seq(&self, id: &str) -> Option<u64> {
        self.receipts.get(id).copied()
    }

    pub(crate) fn receipt_count(&self) -> usize {
        self.receipts.len()
    }

    /// Checks that `entry` may follow the entries recorded so far, without
    /// changing the state. Signatures are checked elsewhere, in parallel.
    pub(crate) fn check(&self, entry: &Entry) -> Result<Admitted, EntryProblem> {
        // Step 1: position and link.
        if entry.seq() != self.next_seq {
            return Err(EntryProblem::Sequence {
                expected: self.next_seq,
                found: entry.seq(),
            });
        }
        if *entry.parent() != self.head {
            return Err(EntryProblem::Parent {
                expected: self.head,
                found: *entry.parent(),
            });
        }

        // Step 2: entry 0 and only entry 0 is the genesis entry.
        let is_genesis = entry.domain() == Domain::System && entry.kind() == GENESIS_KIND;
        if self.next_seq == 0 {
            if !is_genesis {
                return Err(EntryProblem::Genesis {
                    reason: format!("entry 0 must be a system entry of kind {GENESIS_KIND:?}"),
                });
            }
            let project = entry::read_genesis_body(entry.body())
                .map_err(|reason| EntryProblem::Genesis { reason })?;
            return Ok(Admitted::Genesis { project });
        }
        if is_genesis {
            return Err(EntryProblem::Genesis {
                reason: format!("only entry 0 may have kind {GENESIS_KIND:?}"),
            });
        }

        // Step 3: billing entries hold one receipt each, of the ledger's tenant, never repeated.
        if entry.domain() != Domain::Billing {
            return Ok(Admitted::Evidence);
        }
        if entry.kind() != RECEIPT_KIND {
            return Err(EntryProblem::BillingKind {
                kind: entry.kind().to_owned(),
            });
        }
        let receipt =
            Receipt::from_value(entry.body()).map_err(|source| EntryProblem::Receipt { source })?;
        self.check_receipt(&receipt)?;
        Ok(Admitted::Receipt(Box::new(receipt)))
    }

    /// Checks a receipt against the ledger's tenant and the ids already recorded.
    pub(crate) fn check_receipt(&self, receipt: &Receipt) -> Result<(), EntryProblem> {
        if let Some(&first_seq) = self.receipts.get(receipt.id()) {
            return Err(EntryProblem::DuplicateReceipt {
                id: receipt.id().to_owned(),
                first_seq,
            });
        }
        if let Some(tenant) = &self.tenant
            && tenant != receipt.tenant_id()
        {
            return Err(EntryProblem::TenantMismatch {
                ledger_tenant: tenant.clone(),
                receipt_tenant: receipt.tenant_id().to_owned(),
            });
        }
        Ok(())
    }

    /// Records an entry that [`ChainState::check`] admitted.
    pub(crate) fn record(&mut self, entry: &Entry, admitted: &Admitted) {
        match admitted {
            Admitted::Genesis { project } => self.project = Some(project.clone()),
            Admitted::Receipt(receipt) => {
                if self.tenant.is_none() {
                    self.tenant = Some(receipt.tenant_id().to_owned());
                }
                self.receipts.insert(receipt.id().to_owned(), entry.seq());
            }
            Admitted::Evidence => {}
        }
        self.head = *entry.hash();
        self.next_seq += 1;
    }
}
