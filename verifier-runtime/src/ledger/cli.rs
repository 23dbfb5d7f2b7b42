//! The `midcore-verify ledger` subcommands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Ledger, LedgerError, Month, MonthlyReport, ReplayError, ReplaySummary, SourceFormat};
use crate::crypto::{PublicKey, TrustedKeys};
use crate::json::{self, Value};
use crate::receipt::Receipt;

/// Replay, report on, export and append to a project's audit ledger.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Replay a ledger or export end to end: links, sequence numbers, entry
    /// hashes, duplicates, tenant and every receipt signature. On failure,
    /// names the first bad entry. Exit 0 if valid, 1 if not, 2 on a usage or I/O error.
    Verify {
        /// The ledger file, or an export written by `ledger export`.
        ledger: PathBuf,
        /// Public-key PEM file of a backend receipt key; repeat for several keys during a rotation.
        #[arg(long = "receipt-key", value_name = "KEY", required = true)]
        receipt_keys: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sum the receipts finalized in one UTC month, per operation, with counts and the total.
    Report {
        /// The ledger file, or an export written by `ledger export`.
        ledger: PathBuf,
        /// The month, as YYYY-MM (UTC).
        #[arg(long, value_name = "YYYY-MM")]
        month: Month,
        /// Public-key PEM file of a backend receipt key; with it, every signature is checked first.
        #[arg(long = "receipt-key", value_name = "KEY")]
        receipt_keys: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained JSON Lines copy of the ledger that `ledger verify` accepts.
    Export {
        /// The ledger file.
        ledger: PathBuf,
        /// The export file to write; replaced only if the replay succeeds.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Public-key PEM file of a backend receipt key; with it, every signature is checked first.
        #[arg(long = "receipt-key", value_name = "KEY")]
        receipt_keys: Vec<PathBuf>,
    },
    /// Verify a receipt and append it to the ledger, creating the ledger if needed.
    Append {
        /// The ledger file.
        ledger: PathBuf,
        /// The project the ledger belongs to.
        #[arg(long, value_name = "ID")]
        project: String,
        /// The tenant the receipt must be for.
        #[arg(long, value_name = "ID")]
        tenant: String,
        /// The receipt JSON file.
        #[arg(long, value_name = "FILE")]
        receipt: PathBuf,
        /// Public-key PEM file of a backend receipt key; repeat for several keys during a rotation.
        #[arg(long = "receipt-key", value_name = "KEY", required = true)]
        receipt_keys: Vec<PathBuf>,
    },
}

/// Failure of a ledger command: the message and the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Builds the failure for a usage or I/O problem before any verdict on the ledger or receipt (exit 2).
    fn usage(message: String) -> Self {
        Self {
            code: crate::cli::EXIT_ERROR,
            message,
        }
    }

    /// Builds the failure for a rejected ledger, export or receipt (exit 1).
    fn rejected(message: String) -> Self {
        Self {
            code: crate::cli::EXIT_REFUSED,
            message,
        }
    }
}

impl From<ReplayError> for Failure {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::Io { .. } | ReplayError::Write { .. } => Self::usage(error.to_string()),
            _ => Self::rejected(error.to_string()),
        }
    }
}

impl From<LedgerError> for Failure {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Io { .. } | LedgerError::Locked { .. } => Self::usage(error.to_string()),
            _ => Self::rejected(error.to_string()),
        }
    }
}

impl LedgerCommand {
    /// Runs the subcommand: exit 0 on success, 1 when a ledger, export or
    /// receipt is rejected, 2 on a usage or I/O error (reason on stderr).
    pub fn run(self) -> ExitCode {
        match self.execute() {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => {
                eprintln!("midcore-verify: error: {}", failure.message);
                ExitCode::from(failure.code)
            }
        }
    }

    fn execute(self) -> Result<(), Failure> {
        match self {
            LedgerCommand::Verify {
                ledger,
                receipt_keys,
                json,
            } => {
                let keys = load_receipt_keys(&receipt_keys).map_err(Failure::usage)?;
                let summary = match super::replay(&ledger, Some(&keys), &mut |_| {}) {
                    Ok(summary) => summary,
                    Err(error) => {
                        if json {
                            println!("{}", String::from_utf8_lossy(&failure_json(&error)));
                        }
                        return Err(error.into());
                    }
                };
                if json {
                    println!("{}", String::from_utf8_lossy(&summary_json(&summary)));
                } else {
                    print_summary(&ledger, &summary);
                }
                Ok(())
            }
            LedgerCommand::Report {
                ledger,
                month,
                receipt_keys,
                json,
            } => {
                let keys = optional_keys(&receipt_keys).map_err(Failure::usage)?;
                let report = MonthlyReport::build(&ledger, month, keys.as_ref())?;
                if json {
                    println!("{}", String::from_utf8_lossy(&report.to_json()));
                } else {
                    print!("{}", report.to_text());
                }
                Ok(())
            }
            LedgerCommand::Export {
                ledger,
                out,
                receipt_keys,
            } => {
                let keys = optional_keys(&receipt_keys).map_err(Failure::usage)?;
                let summary = super::export(&ledger, &out, keys.as_ref())?;
                println!(
                    "exported {} entries of project {} to {} (head {})",
                    summary.entries,
                    summary.project,
                    out.display(),
                    hex::encode(summary.head)
                );
                if !summary.signatures_checked {
                    println!(
                        "receipt signatures were not checked; pass --receipt-key to check them"
                    );
                }
                Ok(())
            }
            LedgerCommand::Append {
                ledger,
                project,
                tenant,
                receipt,
                receipt_keys,
            } => {
                // Verify the receipt before touching the ledger, so a rejected
                // receipt never creates or recovers a file.
                let keys = load_receipt_keys(&receipt_keys).map_err(Failure::usage)?;
                let receipt_json = read_limited(&receipt, crate::receipt::MAX_RECEIPT_LEN)
                    .map_err(Failure::usage)?;
                let verified = Receipt::parse(&receipt_json)
                    .and_then(|parsed| parsed.verify(&keys))
                    .map_err(|error| {
                        Failure::rejected(format!(
                            "{}: receipt rejected: {error}",
                            receipt.display()
                        ))
                    })?;
                let mut opened = Ledger::open(&ledger, &project)?;
                if let Some(recovery) = opened.recovery() {
                    eprintln!(
                        "warning: cut a torn tail of {} bytes at byte offset {} (an interrupted append)",
                        recovery.bytes_cut, recovery.offset
                    );
                }
                let appended =
                    opened
                        .append_verified_receipt(&tenant, &verified)
                        .map_err(|error| {
                            let failure = Failure::from(error);
                            Failure {
                                message: format!("{}: {}", receipt.display(), failure.message),
                                ..failure
                            }
                        })?;
                println!(
                    "appended entry {} (hash {})",
                    appended.seq,
                    hex::encode(appended.hash)
                );
                Ok(())
            }
        }
    }
}

/// Reads each `--receipt-key` file as a public-key PEM and pins it.
pub fn load_receipt_keys(paths: &[PathBuf]) -> Result<TrustedKeys, String> {
    let mut keys = TrustedKeys::new();
    for path in paths {
        let pem = read_limited(path, 64 * 1024)?;
        let key = PublicKey::from_pem(&pem).map_err(|error| {
            format!(
                "{}: {error}; --receipt-key takes a public-key PEM file",
                path.display()
            )
        })?;
        tracing::debug!(key_id = %key.key_id(), path = %path.display(), "pinned a receipt key");
        keys.pin_key(key);
    }
    if keys.is_empty() {
        return Err("no receipt keys given: pass at least one --receipt-key PEM file".to_owned());
    }
    Ok(keys)
}

fn optional_keys(paths: &[PathBuf]) -> Result<Option<TrustedKeys>, String> {
    if paths.is_empty() {
        Ok(None)
    } else {
        load_receipt_keys(paths).map(Some)
    }
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let (file, _) = crate::bundle::open_regular(path)
        .map_err(|error| format!("{}: failed to open: {error}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("{}: failed to read: {error}", path.display()))?;
    if bytes.len() > limit {
        return Err(format!(
            "{}: larger than the {limit}-byte limit",
            path.display()
        ));
    }
    Ok(bytes)
}

fn print_summary(path: &Path, summary: &ReplaySummary) {
    let kind = match summary.format {
        SourceFormat::Ledger => "ledger",
        SourceFormat::Export => "ledger export",
    };
    println!(
        "{}: valid {kind} of project {}: {}, {} (all signatures verified), tenant {}, head {}",
        path.display(),
        summary.project,
        crate::cli::counted(summary.entries, "entry", "entries"),
        crate::cli::counted(summary.receipts, "receipt", "receipts"),
        summary.tenant.as_deref().unwrap_or("(none yet)"),
        hex::encode(summary.head)
    );
}

fn failure_json(error: &super::ReplayError) -> Vec<u8> {
    let mut object = json::Object::new();
    object.insert("valid".to_owned(), Value::Bool(false));
    let entry = error.entry().map_or(Value::Null, json::number_u64);
    object.insert("first_bad_entry".to_owned(), entry);
    object.insert("error".to_owned(), Value::String(error.to_string()));
    json::to_canonical(&Value::Object(object))
}

fn summary_json(summary: &ReplaySummary) -> Vec<u8> {
    let mut object = json::Object::new();
    object.insert("valid".to_owned(), Value::Bool(true));
    object.insert("entries".to_owned(), json::number_u64(summary.entries));
    object.insert("receipts".to_owned(), json::number_u64(summary.receipts));
    object.insert("project".to_owned(), Value::String(summary.project.clone()));
    object.insert(
        "tenant_id".to_owned(),
        summary.tenant.clone().map_or(Value::Null, Value::String),
    );
    object.insert("head".to_owned(), Value::String(hex::encode(summary.head)));
    object.insert(
        "signatures_checked".to_owned(),
        Value::Bool(summary.signatures_checked),
    );
    json::to_canonical(&Value::Object(object))
}
