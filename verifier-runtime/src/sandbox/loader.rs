//! Resolves a runner name to its files, reads them once, and checks the bytes
//! against the verified manifest and the sidecar signature.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::limits::Limit;
use super::pool::{Runner, RunnerPool};
use super::{LoadError, VerifiedModule};
use crate::crypto::sha256;
use crate::launch::VerifiedManifest;

/// The runners folder, relative to the bundle root, with `/` separators.
pub const RUNNERS_DIR: &str = "local-compute/runners";

/// Largest sidecar file read; a sidecar is a small JSON envelope.
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// The manifest path of runner `name`: `local-compute/runners/NAME.wasm`.
/// Fails unless `name` passes [`crate::launch::check_runner_name`].
pub fn runner_path(name: &str) -> Result<String, LoadError> {
    crate::launch::check_runner_name(name).map_err(|reason| LoadError::InvalidName {
        runner: name.to_owned(),
        reason,
    })?;
    Ok(format!("{RUNNERS_DIR}/{name}.wasm"))
}

impl RunnerPool {
    /// Loads runner `name` from the bundle that `manifest` describes.
    ///
    /// Steps: check the name; resolve the runners folder and reject it if it
    /// leaves the bundle; open `NAME.wasm` and `NAME.wasm.sig`, rejecting
    /// symbolic links and anything but regular files; read each once (the
    /// module up to [`Limits::max_module_bytes`](super::Limits)); compare both
    /// with the manifest's SHA-256 and size; verify the sidecar signature over
    /// the module bytes with the manifest's trusted keys (the pinned keys plus
    /// the manifest's own key); compile those same bytes.
    pub fn load(&self, manifest: &VerifiedManifest, name: &str) -> Result<Runner, LoadError> {
        let verified = read_verified(
            manifest,
            name,
            self.limits().max_module_bytes,
            self.cache_dir(),
        )?;
        self.prepare(
            name,
            &verified.bytes,
            verified.sha256,
            Some(verified.key_id),
        )
    }

    fn cache_dir(&self) -> Option<&Path> {
        self.shared().cache.as_ref().map(|cache| cache.dir())
    }
}

fn read_verified(
    manifest: &VerifiedManifest,
    name: &str,
    max_module_bytes: u64,
    cache_dir: Option<&Path>,
) -> Result<VerifiedModule, LoadError> {
    // 1. Only a plain name maps to a path; the path is built, never taken.
    let module_rel = runner_path(name)?;
    let sidecar_rel = format!("{module_rel}.sig");

    // 2. The runners folder must resolve to itself inside the bundle root, so
    //    a symbolic link on the folder or a parent cannot lead elsewhere.
    let root = manifest.root();
    let runners = runners_folder(root, name)?;
    if let Some(cache_dir) = cache_dir {
        let canonical_root = fs::canonicalize(root).map_err(|source| LoadError::Io {
            runner: name.to_owned(),
            path: root.to_owned(),
            source,
        })?;
        if cache_dir.starts_with(&canonical_root) {
            return Err(LoadError::CacheInsideBundle {
                path: cache_dir.to_owned(),
            });
        }
    }

    // 3. Read the module and its sidecar once each.
    let module_path = runners.join(format!("{name}.wasm"));
    let bytes = read_regular_file(name, &module_path, max_module_bytes)?.ok_or_else(|| {
        LoadError::NotFound {
            runner: name.to_owned(),
            path: module_path.clone(),
        }
    })?;
    let sidecar_path = runners.join(format!("{name}.wasm.sig"));
    let sidecar = read_regular_file(name, &sidecar_path, MAX_SIDECAR_BYTES)?.ok_or_else(|| {
        LoadError::Unsigned {
            runner: name.to_owned(),
            path: sidecar_path.clone(),
        }
    })?;

    // 4. Both files must be exactly what the verified manifest lists.
    let digest = sha256(&bytes);
    check_manifest_entry(manifest, name, &module_rel, &digest, bytes.len())?;
    check_manifest_entry(
        manifest,
        name,
        &sidecar_rel,
        &sha256(&sidecar),
        sidecar.len(),
    )?;

    // 5. The sidecar signature covers the same in-memory bytes.
    let key_id = crate::sidecar::verify_module(&bytes, &sidecar, manifest.trusted_keys()).map_err(
        |source| LoadError::Sidecar {
            runner: name.to_owned(),
            source,
        },
    )?;
    tracing::debug!(runner = name, %key_id, "runner verified against manifest and sidecar");
    Ok(VerifiedModule {
        bytes,
        sha256: digest,
        key_id,
    })
}

fn check_manifest_entry(
    manifest: &VerifiedManifest,
    name: &str,
    rel: &str,
    digest: &[u8; 32],
    len: usize,
) -> Result<(), LoadError> {
    let Some(record) = manifest.file(rel) else {
        return Err(LoadError::NotInManifest {
            runner: name.to_owned(),
            path: rel.to_owned(),
        });
    };
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    // Digests are public values, so a plain comparison leaks nothing secret.
    if record.size != len || &record.sha256 != digest {
        tracing::warn!(
            runner = name,
            path = rel,
            "runner file differs from the manifest"
        );
        return Err(LoadError::ManifestMismatch {
            runner: name.to_owned(),
            path: rel.to_owned(),
        });
    }
    Ok(())
}

/// Resolves `ROOT/local-compute/runners` and checks that its canonical path is
/// the canonical root followed by exactly those two components.
fn runners_folder(root: &Path, name: &str) -> Result<PathBuf, LoadError> {
    let folder = root.join(RUNNERS_DIR);
    let unusable = |reason: String| LoadError::RunnersFolder {
        runner: name.to_owned(),
        path: folder.clone(),
        reason,
    };
    let canonical_root = fs::canonicalize(root)
        .map_err(|error| unusable(format!("cannot resolve the bundle root: {error}")))?;
    let canonical = fs::canonicalize(&folder)
        .map_err(|error| unusable(format!("cannot resolve it: {error}")))?;
    let expected = RUNNERS_DIR
        .split('/')
        .fold(canonical_root, |path, part| path.join(part));
    if canonical != expected {
        return Err(unusable(format!(
            "it resolves to {}, outside the bundle's runners folder; replace the symbolic link with a real folder",
            canonical.display()
        )));
    }
    if !canonical.is_dir() {
        return Err(unusable("it is not a folder".into()));
    }
    Ok(canonical)
}

/// Reads a regular file that is not a symbolic link, at most `max_bytes`.
/// Returns `None` when nothing exists at `path`.
fn read_regular_file(
    name: &str,
    path: &Path,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, LoadError> {
    let io_error = |source| LoadError::Io {
        runner: name.to_owned(),
        path: path.to_owned(),
        source,
    };

    // 1. Look at the path itself without following a link.
    let link_metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(error)),
    };
    if link_metadata.file_type().is_symlink() {
        return Err(LoadError::Symlink {
            runner: name.to_owned(),
            path: path.to_owned(),
        });
    }
    if !link_metadata.is_file() {
        return Err(LoadError::NotRegularFile {
            runner: name.to_owned(),
            path: path.to_owned(),
            reason: "is not a regular file",
        });
    }

    // 2. Open it and make sure the handle refers to the file just inspected,
    //    so a swap for a link between the two steps is caught.
    let (file, metadata) = crate::bundle::open_regular_no_follow(path).map_err(io_error)?;
    if !same_file(&link_metadata, &metadata) || !metadata.is_file() {
        return Err(LoadError::NotRegularFile {
            runner: name.to_owned(),
            path: path.to_owned(),
            reason: "changed while it was being opened",
        });
    }
    if metadata.len() > max_bytes {
        return Err(size_error(name, path, max_bytes));
    }

    // 3. Read at most one byte past the limit, in case the file grew.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
        return Err(size_error(name, path, max_bytes));
    }
    Ok(Some(bytes))
}

fn size_error(name: &str, path: &Path, max_bytes: u64) -> LoadError {
    if path
        .extension()
        .is_some_and(|extension| extension == "wasm")
    {
        LoadError::Limit {
            runner: name.to_owned(),
            limit: Limit::ModuleSize { max_bytes },
        }
    } else {
        LoadError::NotRegularFile {
            runner: name.to_owned(),
            path: path.to_owned(),
            reason: "is larger than a sidecar can be (64 KiB)",
        }
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    // NOTE: without stable file ids on this platform, only the size and type
    // are compared; the link check in step 1 still applies.
    a.len() == b.len() && a.file_type() == b.file_type()
}
