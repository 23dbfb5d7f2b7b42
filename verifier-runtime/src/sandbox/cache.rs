//! An authenticated compiled-code cache.
//!
//! `Module::deserialize` runs whatever native code its input contains, so an
//! entry is used only after an HMAC-SHA256 under a per-installation key checks
//! out on the bytes in memory. The MAC covers the compiled bytes, the source
//! module's SHA-256, the wasmtime version and the engine's compatibility hash.
//! Any failure (missing file, bad header, wrong module, other engine, bad MAC,
//! deserialization error) is a cache miss: the runner is compiled from the
//! verified module bytes and the entry is rewritten.
//!
//! Entry layout, `<dir>/<module sha256 hex>.cwasm`:
//! `MAGIC` (8 bytes), module SHA-256 (32), engine digest (32), MAC (32), then
//! the output of `Module::serialize`.

use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::{constant_time, hmac, rand};
use wasmtime::{Engine, Module};

use super::PoolError;
use crate::crypto::{Sha256, Sha256Digest};

const MAGIC: &[u8; 8] = b"MIDCWC1\n";
const HEADER_LEN: usize = 8 + 32 + 32 + 32;
const MAC_LABEL: &[u8] = b"midcore-compiled-cache-v1\0";
/// The wasmtime version the workspace pins exactly (`=48.0.10` in Cargo.toml).
/// The engine digest covers the version too; this keeps it explicit in the MAC.
pub const WASMTIME_VERSION: &str = "48.0.10";
/// Largest cache entry read; compiled code is a few times the module's size.
const MAX_ENTRY_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Length of the per-installation key, in bytes.
pub const CACHE_KEY_LEN: usize = 32;

/// The per-installation MAC key. It must live outside the bundle (for example
/// in the user's application-data folder); its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct CacheKey([u8; CACHE_KEY_LEN]);

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKey(redacted)")
    }
}

impl CacheKey {
    /// Wraps exactly [`CACHE_KEY_LEN`] secret bytes.
    pub fn from_bytes(bytes: [u8; CACHE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, PoolError> {
        let mut bytes = [0u8; CACHE_KEY_LEN];
        rand::fill(&mut bytes).map_err(|_| PoolError::CacheKey {
            path: PathBuf::new(),
            detail: "the system random number generator failed".into(),
        })?;
        Ok(Self(bytes))
    }

    /// Reads the key at `path`, or creates it there (mode 0600 on Unix) when
    /// the file does not exist. A file of any other length is rejected.
    pub fn load_or_create(path: &Path) -> Result<Self, PoolError> {
        let error = |detail: String| PoolError::CacheKey {
            path: path.to_owned(),
            detail,
        };
        match crate::bundle::open_regular(path) {
            Ok((file, _)) => {
                let mut bytes = Vec::with_capacity(CACHE_KEY_LEN);
                file.take(CACHE_KEY_LEN as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|source| error(format!("cannot read the key: {source}")))?;
                let bytes: [u8; CACHE_KEY_LEN] = bytes.try_into().map_err(|bytes: Vec<u8>| {
                    error(format!(
                        "the key file holds {} bytes, expected {CACHE_KEY_LEN}; name a key file made by midcore-verify, or a path that does not exist yet so that one is made",
                        bytes.len()
                    ))
                })?;
                Ok(Self(bytes))
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(path)
                    .map_err(|source| error(format!("cannot create the key: {source}")))?;
                file.write_all(&key.0)
                    .and_then(|()| file.sync_all())
                    .map_err(|source| error(format!("cannot write the key: {source}")))?;
                tracing::debug!(path = %path.display(), "created compiled-code cache key");
                Ok(key)
            }
            Err(source) => Err(error(format!("cannot open the key: {source}"))),
        }
    }
}

/// Where the compiled-code cache lives and the key that authenticates it.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Folder for the entries; must be outside every bundle the pool loads from.
    pub dir: PathBuf,
    /// The per-installation MAC key.
    pub key: CacheKey,
}

/// The opened cache, bound to one engine.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    key: hmac::Key,
    engine_digest: Sha256Digest,
}

impl fmt::Debug for CompiledCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledCache")
            .field("dir", &self.dir)
            .field("engine_digest", &hex::encode(self.engine_digest))
            .finish_non_exhaustive()
    }
}

/// Feeds `Hash` output into SHA-256 so the engine's compatibility hash becomes
/// a stable 32-byte digest.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is read through `Sha256::finish`.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Digest of `Engine::precompile_compatibility_hash` for `engine`.
pub(crate) fn engine_digest(engine: &Engine) -> Sha256Digest {
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finish()
}

impl CompiledCache {
    pub(crate) fn open(config: CacheConfig, engine: &Engine) -> Result<Self, PoolError> {
        fs::create_dir_all(&config.dir).map_err(|source| PoolError::CacheDir {
            path: config.dir.clone(),
            detail: source.to_string(),
        })?;
        let dir = fs::canonicalize(&config.dir).map_err(|source| PoolError::CacheDir {
            path: config.dir.clone(),
            detail: source.to_string(),
        })?;
        Ok(Self {
            dir,
            key: hmac::Key::new(hmac::HMAC_SHA256, &config.key.0),
            engine_digest: engine_digest(engine),
        })
    }

    /// The canonical cache folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, module_sha256: &Sha256Digest) -> PathBuf {
        self.dir
            .join(format!("{}.cwasm", hex::encode(module_sha256)))
    }

    fn mac(
        &self,
        module_sha256: &Sha256Digest,
        engine_digest: &Sha256Digest,
        compiled: &[u8],
    ) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(MAC_LABEL);
        context.update(module_sha256);
        context.update(&(WASMTIME_VERSION.len() as u64).to_le_bytes());
        context.update(WASMTIME_VERSION.as_bytes());
        context.update(engine_digest);
        context.update(&(compiled.len() as u64).to_le_bytes());
        context.update(compiled);
        context.sign()
    }

    /// Returns the compiled module for `module_sha256` when an entry exists and
    /// authenticates; every other outcome is a miss.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        runner: &str,
        module_sha256: &Sha256Digest,
    ) -> Option<Module> {
        let path = self.entry_path(module_sha256);
        let entry = match read_entry(&path) {
            Ok(entry) => entry,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(runner, path = %path.display(), "compiled-code cache miss");
                return None;
            }
            Err(error) => {
                tracing::warn!(runner, path = %path.display(), %error, "compiled-code cache entry unreadable; recompiling");
                return None;
            }
        };
        match self.authenticate(&entry, module_sha256) {
            Ok(compiled) => deserialize_authenticated(engine, runner, &path, compiled),
            Err(reason) => {
                tracing::warn!(runner, path = %path.display(), reason, "compiled-code cache entry rejected; recompiling");
                None
            }
        }
    }

    /// Checks the header and the MAC of `entry` in memory and returns the
    /// compiled bytes they cover.
    fn authenticate<'a>(
        &self,
        entry: &'a [u8],
        module_sha256: &Sha256Digest,
    ) -> Result<&'a [u8], &'static str> {
        if entry.len() < HEADER_LEN || &entry[..8] != MAGIC {
            return Err("not a cache entry of this format");
        }
        let (header, compiled) = entry.split_at(HEADER_LEN);
        if &header[8..40] != module_sha256 {
            return Err("entry is for another module");
        }
        if header[40..72] != self.engine_digest {
            return Err("entry was compiled by another engine configuration");
        }
        let expected = self.mac(module_sha256, &self.engine_digest, compiled);
        constant_time::verify_slices_are_equal(expected.as_ref(), &header[72..104])
            .map_err(|_| "MAC mismatch")?;
        Ok(compiled)
    }

    /// Serializes `module` and writes an authenticated entry atomically
    /// (temporary file, then rename). Failures are logged and otherwise ignored.
    pub(crate) fn store(
        &self,
        _engine: &Engine,
        runner: &str,
        module_sha256: &Sha256Digest,
        module: &Module,
    ) {
        let compiled = match module.serialize() {
            Ok(compiled) => compiled,
            Err(error) => {
                tracing::warn!(runner, error = %format!("{error:#}"), "cannot serialize compiled module");
                return;
            }
        };
        let mac = self.mac(module_sha256, &self.engine_digest, &compiled);
        let path = self.entry_path(module_sha256);
        let temporary = path.with_extension(format!("cwasm.tmp{}", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(MAGIC)?;
            file.write_all(module_sha256)?;
            file.write_all(&self.engine_digest)?;
            file.write_all(mac.as_ref())?;
            file.write_all(&compiled)?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        })();
        match result {
            Ok(()) => {
                tracing::debug!(runner, path = %path.display(), "stored compiled-code cache entry")
            }
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                tracing::warn!(runner, path = %path.display(), %error, "cannot write compiled-code cache entry");
            }
        }
    }
}

fn read_entry(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Deserializes compiled code that [`CompiledCache::authenticate`] accepted.
#[allow(
    unsafe_code,
    reason = "Module::deserialize is unsafe; the input is MAC-verified in memory first"
)]
fn deserialize_authenticated(
    engine: &Engine,
    runner: &str,
    path: &Path,
    compiled: &[u8],
) -> Option<Module> {
    // SAFETY: `compiled` is the exact in-memory buffer whose HMAC-SHA256 under
    // the per-installation key was verified just before this call, over these
    // bytes, the module's SHA-256, the wasmtime version and this engine's
    // compatibility digest. Only this process, holding the key, produced it
    // with `Module::serialize` on the same engine configuration.
    match unsafe { Module::deserialize(engine, compiled) } {
        Ok(module) => {
            tracing::debug!(runner, path = %path.display(), "compiled-code cache hit");
            Some(module)
        }
        Err(error) => {
            tracing::warn!(runner, path = %path.display(), error = %format!("{error:#}"), "cache entry does not deserialize; recompiling");
            None
        }
    }
}
