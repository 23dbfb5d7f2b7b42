//! The single writer: opening with the lock, recovering a torn tail, appending durably.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::chain::{ChainState, EntryProblem};
use super::entry::{self, Domain, Entry};
use super::frame::{self, FILE_HEADER, FrameRead, FrameReader, MAX_PAYLOAD_LEN};
use super::{AppendedEntry, LedgerError, Recovery};
use crate::crypto::{Sha256Digest, TrustedKeys};
use crate::json::Value;
use crate::receipt::{Receipt, VerifiedReceipt};

/// How long [`Ledger::open`] waits for another writer to release the lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// An open ledger holding the writer lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    // Held only for its lock, which the operating system releases when the file is closed.
    _lock: File,
    end: u64,
    chain: ChainState,
    recovery: Option<Recovery>,
    poisoned: bool,
}

impl Ledger {
    /// Opens the ledger at `path` for project `project`, creating it if it does
    /// not exist, and takes the writer lock (waiting up to [`DEFAULT_LOCK_TIMEOUT`]).
    ///
    /// Every entry is checked (frames, links, hashes, receipt fields, tenant,
    /// duplicates; not signatures). A torn tail left by an interrupted append
    /// is cut; damage followed by valid frames is an error and nothing is
    /// changed.
    pub fn open(path: &Path, project: &str) -> Result<Ledger, LedgerError> {
        Self::open_with_timeout(path, project, DEFAULT_LOCK_TIMEOUT)
    }

    /// Same as [`Ledger::open`], waiting at most `timeout` for the lock.
    pub fn open_with_timeout(
        path: &Path,
        project: &str,
        timeout: Duration,
    ) -> Result<Ledger, LedgerError> {
        entry::check_project(project).map_err(|reason| LedgerError::InvalidProject {
            project: project.to_owned(),
            reason,
        })?;

        // A missing folder would otherwise be reported on the lock file's path.
        if let Some(folder) = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(LedgerError::Io {
                path: path.to_owned(),
                action: "open the ledger's folder",
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is not an existing folder", folder.display()),
                ),
            });
        }

        // Step 1: the lock comes first, so the state read below cannot change under us.
        let lock = acquire_lock(path, timeout)?;

        // Step 2: create the file atomically, or open the existing one.
        if !path.exists() {
            create(path, project)?;
        }
        let io = |action: &'static str| {
            move |source| LedgerError::Io {
                path: path.to_owned(),
                action,
                source,
            }
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        }
        let file = options.open(path).map_err(io("open the ledger"))?;
        let is_regular = file.metadata().map_err(io("inspect the ledger"))?.is_file();
        if !is_regular {
            let not_regular =
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io("open the ledger")(not_regular));
        }

        // Step 3: read and check every entry, cutting a torn tail.
        let (chain, end, recovery) = load(path, &file)?;
        let mut ledger = Ledger {
            path: path.to_owned(),
            file,
            _lock: lock,
            end,
            chain,
            recovery,
            poisoned: false,
        };

        // Step 4: a ledger recovered to zero entries gets its genesis entry again.
        if ledger.chain.next_seq() == 0 {
            ledger.append(
                Domain::System,
                entry::GENESIS_KIND,
                entry::genesis_body(project),
            )?;
        }
        match ledger.chain.project() {
            Some(found) if found == project => {}
            found => {
                return Err(LedgerError::ProjectMismatch {
                    path: path.to_owned(),
                    ledger_project: found.unwrap_or_default().to_owned(),
                    requested: project.to_owned(),
                });
            }
        }
        tracing::debug!(path = %path.display(), entries = ledger.len(), "opened the ledger");
        Ok(ledger)
    }

    /// Number of entries, including entry 0.
    pub fn len(&self) -> u64 {
        self.chain.next_seq()
    }

    /// Whether the ledger has no entries; never true for an open ledger.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hash of the last entry.
    pub fn head(&self) -> Sha256Digest {
        self.chain.head()
    }

    /// The project id recorded in entry 0.
    pub fn project(&self) -> &str {
        self.chain.project().unwrap_or_default()
    }

    /// The tenant fixed by the first receipt, if any receipt was appended.
    pub fn tenant(&self) -> Option<&str> {
        self.chain.tenant()
    }

    /// Number of receipts recorded.
    pub fn receipt_count(&self) -> usize {
        self.chain.receipt_count()
    }

    /// Sequence number of the entry holding receipt `id`, if it was recorded.
    pub fn receipt_seq(&self, id: &str) -> Option<u64> {
        self.chain.receipt_seq(id)
    }

    /// What was cut from the end of the file when it was opened, if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Path of the ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses and verifies a receipt, then appends it as a `billing` entry.
    ///
    /// `tenant` is the tenant the caller expects (the `--tenant` argument). The
    /// receipt must name it, and so must the ledger once its first receipt fixed it.
    pub fn append_receipt(
        &mut self,
        tenant: &str,
        receipt_json: &[u8],
        keys: &TrustedKeys,
    ) -> Result<AppendedEntry, LedgerError> {
        let receipt =
            Receipt::parse(receipt_json).map_err(|source| LedgerError::Receipt { source })?;
        let verified = receipt
            .verify(keys)
            .map_err(|source| LedgerError::Receipt { source })?;
        self.append_verified_receipt(tenant, &verified)
    }

    /// Appends a receipt whose signature was already verified as a `billing` entry.
    pub fn append_verified_receipt(
        &mut self,
        tenant: &str,
        verified: &VerifiedReceipt,
    ) -> Result<AppendedEntry, LedgerError> {
        let receipt = verified.receipt();
        if receipt.tenant_id() != tenant {
            return Err(LedgerError::WrongTenant {
                path: self.path.clone(),
                expected: tenant.to_owned(),
                receipt_tenant: receipt.tenant_id().to_owned(),
            });
        }
        let appended = self.append(Domain::Billing, entry::RECEIPT_KIND, receipt.to_json())?;
        tracing::debug!(receipt = receipt.id(), seq = appended.seq, key_id = %verified.verified_by(), "appended a receipt");
        Ok(appended)
    }

    /// Appends a `system` evidence entry of kind `kind` (1 to 64 bytes of
    /// `a`-`z`, `0`-`9`, `-`; not `ledger-created`) with any JSON body.
    pub fn append_evidence(
        &mut self,
        kind: &str,
        body: Value,
    ) -> Result<AppendedEntry, LedgerError> {
        entry::check_kind(kind).map_err(|reason| LedgerError::InvalidKind {
            kind: kind.to_owned(),
            reason,
        })?;
        self.append(Domain::System, kind, body)
    }

    /// Checks, frames, writes and syncs one entry. The entry counts as
    /// appended only after `sync_data` returns. A failed write or sync
    /// poisons this handle, because the state of the file is then unknown
    /// until it is reopened and checked again.
    fn append(
        &mut self,
        domain: Domain,
        kind: &str,
        body: Value,
    ) -> Result<AppendedEntry, LedgerError> {
        if self.poisoned {
            return Err(LedgerError::Poisoned {
                path: self.path.clone(),
            });
        }
        let entry = Entry::new(self.chain.next_seq(), self.chain.head(), domain, kind, body);
        let admitted = self
            .chain
            .check(&entry)
            .map_err(|problem| self.rejected(problem))?;
        let payload = entry.to_canonical_json();
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(LedgerError::EntryTooLarge { len: payload.len() });
        }
        let frame = frame::encode(&payload);

        let result = self
            .file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&frame))
            .and_then(|()| self.file.sync_data());
        if let Err(source) = result {
            self.poisoned = true;
            tracing::debug!(path = %self.path.display(), error = %source, "ledger append failed; the handle is now unusable");
            return Err(LedgerError::Io {
                path: self.path.clone(),
                action: "append to the ledger",
                source,
            });
        }

        let offset = self.end;
        self.end += frame.len() as u64;
        self.chain.record(&entry, &admitted);
        Ok(AppendedEntry {
            seq: entry.seq(),
            hash: *entry.hash(),
            offset,
        })
    }

    fn rejected(&self, problem: EntryProblem) -> LedgerError {
        match problem {
            EntryProblem::DuplicateReceipt { id, first_seq } => LedgerError::DuplicateReceipt {
                path: self.path.clone(),
                id,
                seq: first_seq,
            },
            EntryProblem::TenantMismatch {
                ledger_tenant,
                receipt_tenant,
            } => LedgerError::TenantMismatch {
                path: self.path.clone(),
                ledger_tenant,
                receipt_tenant,
            },
            problem => LedgerError::Rejected {
                path: self.path.clone(),
                problem: Box::new(problem),
            },
        }
    }
}

/// Path of the lock file that belongs to the ledger at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn acquire_lock(path: &Path, timeout: Duration) -> Result<File, LedgerError> {
    let lock_path = lock_path(path);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    never_follow_or_block(&mut options);
    let lock = options.open(&lock_path).map_err(|source| LedgerError::Io {
        path: lock_path.clone(),
        action: "open the lock file",
        source,
    })?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut announced = false;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(source)) => {
                return Err(LedgerError::Io {
                    path: lock_path,
                    action: "lock the lock file",
                    source,
                });
            }
        }
        if started.elapsed() >= timeout {
            return Err(LedgerError::Locked {
                path: lock_path,
                waited: timeout,
            });
        }
        if !announced && started.elapsed() >= Duration::from_millis(500) {
            announced = true;
            tracing::warn!(
                lock = %lock_path.display(),
                timeout_ms = timeout.as_millis(),
                "waiting for another process to release the ledger's writer lock"
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Creates a ledger with its genesis entry: written to a temporary file,
/// synced, renamed into place, then the directory is synced, so a crash
/// leaves either no ledger or a complete one.
fn create(path: &Path, project: &str) -> Result<(), LedgerError> {
    let io = |action: &'static str| {
        move |source| LedgerError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let mut temporary_name = path.as_os_str().to_owned();
    temporary_name.push(".creating");
    let temporary = PathBuf::from(temporary_name);

    let genesis = Entry::new(
        0,
        [0u8; 32],
        Domain::System,
        entry::GENESIS_KIND,
        entry::genesis_body(project),
    );
    let mut bytes = FILE_HEADER.to_vec();
    bytes.extend_from_slice(&frame::encode(&genesis.to_canonical_json()));

    // The writer lock is held, so a leftover temporary file is a crashed
    // creation's, or something planted there.
    let mut file =
        create_temporary(&temporary, false).map_err(io("create the temporary ledger file"))?;
    file.write_all(&bytes).map_err(io("write the new ledger"))?;
    file.sync_all().map_err(io("sync the new ledger"))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io("rename the new ledger into place"))?;
    sync_parent_directory(path)?;
    tracing::debug!(path = %path.display(), project, "created a ledger");
    Ok(())
}

/// Creates the temporary file `path` for writing (and reading, with `read`).
/// Whatever is already at `path` is removed first (a symbolic link itself,
/// never its target), then the file is created exclusively, so neither a
/// planted link nor a FIFO is ever opened.
pub(crate) fn create_temporary(path: &Path, read: bool) -> std::io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut options = OpenOptions::new();
    options.read(read).write(true).create_new(true);
    never_follow_or_block(&mut options);
    options.open(path)
}

/// Makes `options` fail on a symbolic link in the last component and never
/// block on a FIFO.
fn never_follow_or_block(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn sync_parent_directory(path: &Path) -> Result<(), LedgerError> {
    // Directories cannot be opened as files on Windows; NTFS journals the rename itself.
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|directory| directory.sync_all())
            .map_err(|source| LedgerError::Io {
                path: parent.to_owned(),
                action: "sync the directory",
                source,
            })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads every entry, checks the chain and cuts a torn tail.
fn load(path: &Path, file: &File) -> Result<(ChainState, u64, Option<Recovery>), LedgerError> {
    let io = |action: &'static str| {
        move |source| LedgerError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader
        .seek(SeekFrom::Start(0))
        .map_err(io("read the ledger"))?;
    let mut header = [0u8; FILE_HEADER.len()];
    let got = frame::read_full(&mut reader, &mut header).map_err(io("read the ledger"))?;
    if got < header.len() || header != *FILE_HEADER {
        return Err(LedgerError::NotALedger {
            path: path.to_owned(),
            reason: "the file does not start with the 16-byte ledger header".to_owned(),
        });
    }

    let mut frames = FrameReader::new(reader, FILE_HEADER.len() as u64);
    let mut chain = ChainState::default();
    loop {
        match frames.next_frame().map_err(io("read the ledger"))? {
            FrameRead::End => return Ok((chain, frames.offset(), None)),
            FrameRead::Frame { offset, payload } => {
                let entry = Entry::from_canonical_json(&payload).map_err(|source| {
                    LedgerError::Corrupt {
                        path: path.to_owned(),
                        entry: chain.next_seq(),
                        offset,
                        problem: Box::new(EntryProblem::Format { source }),
                    }
                })?;
                let admitted = chain
                    .check(&entry)
                    .map_err(|problem| LedgerError::Corrupt {
                        path: path.to_owned(),
                        entry: chain.next_seq(),
                        offset,
                        problem: Box::new(problem),
                    })?;
                chain.record(&entry, &admitted);
            }
            FrameRead::Fault { offset, fault } => {
                let recovery = cut_torn_tail(path, file, chain.next_seq(), offset, fault)?;
                return Ok((chain, offset, Some(recovery)));
            }
        }
    }
}

/// Cuts the file at `offset` if nothing valid follows the faulty frame there;
/// otherwise reports the damage and changes nothing.
fn cut_torn_tail(
    path: &Path,
    file: &File,
    entry: u64,
    offset: u64,
    fault: frame::FrameFault,
) -> Result<Recovery, LedgerError> {
    let io = |action: &'static str| {
        move |source| LedgerError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let mut rest = Vec::new();
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(io("read the ledger's tail"))?;
    reader
        .read_to_end(&mut rest)
        .map_err(io("read the ledger's tail"))?;
    if let Some(later) = frame::find_later_frame(&rest) {
        tracing::debug!(path = %path.display(), entry, offset, "ledger damaged before valid entries; refusing to recover");
        return Err(LedgerError::DamagedBeforeValidEntries {
            path: path.to_owned(),
            entry,
            offset,
            fault,
            next_valid_offset: offset + later as u64,
        });
    }

    file.set_len(offset).map_err(io("cut the torn tail"))?;
    file.sync_all()
        .map_err(io("sync the ledger after cutting the torn tail"))?;
    tracing::warn!(path = %path.display(), entry, offset, bytes = rest.len(), %fault, "cut a torn tail from the ledger");
    Ok(Recovery {
        entry,
        offset,
        bytes_cut: rest.len() as u64,
        fault,
    })
}
