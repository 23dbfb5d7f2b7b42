//! Walking a bundle folder and hashing its files, shared by the signer and the launch check.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::crypto::{Sha256, Sha256Digest};
use crate::manifest::{MANIFEST_PATH, PUBLIC_KEY_PATH};

/// Size of the read buffer each hashing thread owns; peak memory for hashing
/// is this times the thread count.
pub const HASH_BUFFER_LEN: usize = 1024 * 1024;

/// Deepest folder nesting the walk follows.
pub const MAX_WALK_DEPTH: usize = 256;

/// Kind of file the walk found at one bundle-relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkEntry {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// File identity (device and inode on Unix), to detect a swap between walk and open.
        identity: Option<(u64, u64)>,
    },
    /// A symbolic link, never followed.
    Symlink {
        /// The link's target as stored.
        target: String,
    },
    /// Anything else: a socket, FIFO or device.
    Special,
}

/// Errors from walking or reading a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file name is not UTF-8, so it cannot be named in a manifest.
    #[error("{path}: file name is not valid UTF-8; rename it")]
    NonUtf8Name {
        /// The folder and lossy name.
        path: PathBuf,
    },
    /// Folders nest deeper than the walk follows.
    #[error("{path}: folders nest deeper than {MAX_WALK_DEPTH} levels")]
    TooDeep {
        /// The folder where the limit was passed.
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether a bundle-relative path is one of the two files the manifest does not cover.
pub fn is_manifest_file(path: &str) -> bool {
    path == MANIFEST_PATH || path == PUBLIC_KEY_PATH
}

/// Lists every entry under `root` by bundle-relative `/`-separated path,
/// without following symbolic links. Folders are descended, not listed; the
/// manifest and its public key are left out.
pub fn walk(root: &Path) -> Result<BTreeMap<String, WalkEntry>, BundleError> {
    let mut found = BTreeMap::new();
    let mut pending: Vec<(PathBuf, String, usize)> = vec![(root.to_owned(), String::new(), 0)];
    while let Some((folder, prefix, depth)) = pending.pop() {
        if depth > MAX_WALK_DEPTH {
            return Err(BundleError::TooDeep { path: folder });
        }
        for item in std::fs::read_dir(&folder).map_err(io_error(&folder))? {
            let item = item.map_err(io_error(&folder))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                return Err(BundleError::NonUtf8Name {
                    path: folder.join(name),
                });
            };
            let relative = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let full = item.path();
            let metadata = std::fs::symlink_metadata(&full).map_err(io_error(&full))?;
            let file_type = metadata.file_type();
            if file_type.is_dir() {
                pending.push((full, relative, depth + 1));
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(&full).map_err(io_error(&full))?;
                found.insert(
                    relative,
                    WalkEntry::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    },
                );
            } else if file_type.is_file() {
                if !is_manifest_file(&relative) {
                    found.insert(
                        relative,
                        WalkEntry::File {
                            size: metadata.len(),
                            identity: identity(&metadata),
                        },
                    );
                }
            } else {
                found.insert(relative, WalkEntry::Special);
            }
        }
    }
    Ok(found)
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(_metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Opens a regular file without following a symbolic link in its last
/// component, and checks that what was opened is a regular file.
pub fn open_regular_no_follow(path: &Path) -> std::io::Result<(File, std::fs::Metadata)> {
    let file = open_nonblocking(path, false).map_err(|error| {
        // ELOOP from O_NOFOLLOW means the last component is a symbolic link.
        if error.raw_os_error() == Some(40) && cfg!(target_os = "linux") {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a symbolic link, which is never followed",
            )
        } else {
            error
        }
    })?;
    regular_file(file)
}

/// Returns the file with its metadata if it is a regular file.
fn regular_file(file: File) -> std::io::Result<(File, std::fs::Metadata)> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, metadata))
}

/// Opens `path` read-only without blocking on a FIFO, following a symbolic
/// link in the last component only when `follow` is set.
#[cfg(unix)]
fn open_nonblocking(path: &Path, follow: bool) -> std::io::Result<File> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    Ok(File::from(openat(CWD, path, flags, Mode::empty())?))
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path, follow: bool) -> std::io::Result<File> {
    // NOTE: without O_NOFOLLOW, a link swapped in after this check is followed,
    // so the identity check against the walk's metadata is the only guard on this platform.
    if !follow && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a symbolic link",
        ));
    }
    File::open(path)
}

/// Opens an existing regular file for reading, following symbolic links, for
/// paths a user names on the command line. FIFOs, devices and folders are
/// rejected without blocking.
pub fn open_regular(path: &Path) -> std::io::Result<(File, std::fs::Metadata)> {
    regular_file(open_nonblocking(path, true)?)
}

/// Reads a whole regular file (no symlink in the last component) of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let (file, metadata) = open_regular_no_follow(path)?;
    if metadata.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is larger than the {limit}-byte limit",
                metadata.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file grew past the size limit while being read",
        ));
    }
    Ok(bytes)
}

/// The result of hashing one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// SHA-256 of the bytes read.
    pub sha256: Sha256Digest,
    /// Number of bytes read.
    pub size: u64,
    /// Identity of the file that was opened.
    pub identity: Option<(u64, u64)>,
}

/// Hashes `paths` (bundle-relative) under `root` on `threads` threads, largest
/// files first, each thread with one [`HASH_BUFFER_LEN`] buffer. Results come
/// back in the order of `paths`.
pub fn hash_files(
    root: &Path,
    paths: &[(String, u64)],
    threads: usize,
) -> Vec<Result<FileDigest, BundleError>> {
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by(|&a, &b| paths[b].1.cmp(&paths[a].1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileDigest, BundleError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let threads = threads.clamp(1, paths.len().max(1));

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buffer = vec![0u8; HASH_BUFFER_LEN];
                loop {
                    let position = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = order.get(position) else {
                        break;
                    };
                    let full = root.join(&paths[index].0);
                    let result = hash_one(&full, &mut buffer);
                    if let Ok(mut slots) = results.lock() {
                        slots[index] = Some(result);
                    }
                }
            });
        }
    });

    let slots = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    slots
        .into_iter()
        .zip(paths)
        .map(|(slot, (path, _))| {
            slot.unwrap_or_else(|| {
                Err(BundleError::Io {
                    path: root.join(path),
                    source: std::io::Error::other("hashing thread stopped early"),
                })
            })
        })
        .collect()
}

fn hash_one(path: &Path, buffer: &mut [u8]) -> Result<FileDigest, BundleError> {
    let (mut file, metadata) = open_regular_no_follow(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(BundleError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok(FileDigest {
        sha256: hasher.finish(),
        size,
        identity: identity(&metadata),
    })
}

/// Number of hashing threads to use by default: one per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}
