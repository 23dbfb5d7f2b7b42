//! `midcore-verify run`: verify a bundle, load one runner and run it on one request.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{CacheConfig, CacheKey, MIB, PoolConfig, RunError, RunnerPool, Task};

/// Exit status when the runner itself exited with a non-zero status.
pub const EXIT_RUNNER_FAILED: u8 = 1;
/// Exit status when the bundle or the runner was rejected (signature, manifest,
/// path, unsupported feature, invalid module).
pub const EXIT_REFUSED: u8 = 3;
/// Exit status when the run hit a limit (memory, time, stack, output, request size).
pub const EXIT_LIMIT: u8 = 4;
/// Exit status when the runner trapped or is not a WASI command.
pub const EXIT_TRAPPED: u8 = 5;
/// Exit status for host failures: unreadable files, stdin or stdout errors, engine setup.
pub const EXIT_HOST_ERROR: u8 = 6;

/// Arguments of `midcore-verify run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 the runner succeeded; 1 the runner exited non-zero; \
2 usage error (including an unreadable --trust file, or a cache folder or key inside the bundle); \
3 bundle or runner rejected; 4 a limit was hit; 5 the runner trapped; 6 host error."
)]
pub struct RunArgs {
    /// Bundle root folder (contains build/integrity.json).
    pub bundle: PathBuf,
    /// Runner name: loads BUNDLE/local-compute/runners/RUNNER.wasm.
    pub runner: String,
    /// Trusted signing key: a PEM public-key file or a key id (sha256:HEX). Repeatable.
    #[arg(long = "trust", value_name = "KEY", required = true)]
    pub trust: Vec<String>,
    /// Maximum linear memory of the runner, in MiB.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_mib: u64,
    /// Wall-clock limit of the run, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Maximum bytes the runner may write to stdout.
    #[arg(long, value_name = "N", default_value_t = 16 * 1024 * 1024)]
    pub max_output_bytes: usize,
    /// Folder of the authenticated compiled-code cache (outside the bundle); needs --cache-key.
    #[arg(long, value_name = "DIR", requires = "cache_key")]
    pub cache_dir: Option<PathBuf>,
    /// Per-installation cache key file (32 bytes; created when missing); needs --cache-dir.
    #[arg(long, value_name = "FILE", requires = "cache_dir")]
    pub cache_key: Option<PathBuf>,
    /// Arguments passed to the runner after argv[0] (the runner's name).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Runs the `run` subcommand and maps each outcome to its exit status.
pub fn run_command(args: RunArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err((status, message)) => {
            eprintln!("midcore-verify: error: {message}");
            ExitCode::from(status)
        }
    }
}

type Failure = (u8, String);

fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    // 1. Pin the trusted keys, exactly as `midcore-verify launch` does; a
    //    --trust value that cannot be read or parsed is a usage error there too.
    let trusted =
        crate::cli::load_trust(&args.trust).map_err(|message| (crate::cli::EXIT_ERROR, message))?;
    if let Some(dir) = &args.cache_dir
        && resolves_inside(dir, &args.bundle)
    {
        let error = super::LoadError::CacheInsideBundle { path: dir.clone() };
        return Err((crate::cli::EXIT_ERROR, error.to_string()));
    }
    // Anyone who can read the key can forge cache entries. The key therefore
    // must not ship in the bundle, whose files `run` does not hash apart from the runner.
    if let Some(key) = &args.cache_key
        && resolves_inside(key, &args.bundle)
    {
        return Err((
            crate::cli::EXIT_ERROR,
            format!(
                "compiled-code cache key {} is inside the bundle; keep it outside the bundle, in per-installation storage",
                key.display()
            ),
        ));
    }

    // 2. Verify the manifest's signature against the pinned keys.
    let manifest = crate::launch::verify_manifest(&args.bundle, &trusted).map_err(|error| {
        (
            EXIT_REFUSED,
            format!("bundle {} rejected: {error}", args.bundle.display()),
        )
    })?;

    // 3. Build a one-worker pool with the requested limits.
    let mut config = PoolConfig {
        workers: 1,
        queue_capacity: 1,
        ..PoolConfig::default()
    };
    config.limits.max_memory_bytes = args.memory_mib.saturating_mul(MIB);
    config.limits.timeout = Duration::from_millis(args.timeout_ms);
    config.limits.max_stdout_bytes = args.max_output_bytes;
    if let (Some(dir), Some(key_path)) = (&args.cache_dir, &args.cache_key) {
        // The folder first, so a path that cannot be a folder leaves no new key behind.
        std::fs::create_dir_all(dir).map_err(|error| {
            (
                crate::cli::EXIT_ERROR,
                format!(
                    "cannot create the compiled-code cache folder {}: {error}; name a folder outside the bundle",
                    dir.display()
                ),
            )
        })?;
        let key = CacheKey::load_or_create(key_path)
            .map_err(|error| (EXIT_HOST_ERROR, error.to_string()))?;
        config.cache = Some(CacheConfig {
            dir: dir.clone(),
            key,
        });
    }
    let max_request = config.limits.max_stdin_bytes;
    let pool = RunnerPool::new(config).map_err(|error| (EXIT_HOST_ERROR, error.to_string()))?;

    // 4. Load the runner: name check, manifest, sidecar, compile.
    let runner = pool.load(&manifest, &args.runner).map_err(|error| {
        let status = if error.is_refusal() {
            EXIT_REFUSED
        } else {
            EXIT_HOST_ERROR
        };
        (status, error.to_string())
    })?;
    if matches!(runner.key_id(), Some(id) if *id != manifest.key_id()) {
        tracing::debug!(
            runner = runner.name(),
            "sidecar key differs from the manifest key; both are trusted"
        );
    }

    // 5. Read the request, run, and pass the response through.
    let mut request = Vec::new();
    std::io::stdin()
        .take(
            u64::try_from(max_request)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        )
        .read_to_end(&mut request)
        .map_err(|error| {
            (
                EXIT_HOST_ERROR,
                format!("cannot read the request from stdin: {error}"),
            )
        })?;
    let output = pool
        .run(
            &runner,
            Task {
                request,
                args: args.args,
            },
        )
        .map_err(|error| (run_error_status(&error), error.to_string()))?;

    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&output.stdout)
        .and_then(|()| stdout.flush())
        .map_err(|error| {
            (
                EXIT_HOST_ERROR,
                format!("cannot write the response to stdout: {error}"),
            )
        })?;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&output.stderr);
    if output.stderr_dropped > 0 {
        let _ = writeln!(
            stderr,
            "[{} more bytes of runner stderr dropped]",
            output.stderr_dropped
        );
    }
    if output.exit_code != 0 {
        let _ = writeln!(
            stderr,
            "runner `{}` exited with status {}",
            runner.name(),
            output.exit_code
        );
        return Ok(ExitCode::from(EXIT_RUNNER_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports whether `path`, which need not exist yet, lies inside the folder
/// `root`. Symbolic links in the part that exists are resolved. In the part
/// that does not exist, `.` and `..` are applied by name, which is exact
/// because a missing component cannot be a link. This check runs before
/// anything is created, and the loader checks the created cache folder again.
fn resolves_inside(path: &std::path::Path, root: &std::path::Path) -> bool {
    use std::path::Component;

    let Ok(root) = std::fs::canonicalize(root) else {
        return false;
    };
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        match std::env::current_dir() {
            Ok(current) => current.join(path),
            Err(_) => return false,
        }
    };
    let components: Vec<Component<'_>> = absolute.components().collect();
    for existing in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..existing].iter().collect();
        let Ok(mut resolved) = std::fs::canonicalize(&prefix) else {
            continue;
        };
        for component in &components[existing..] {
            match component {
                Component::Normal(name) => resolved.push(name),
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return resolved.starts_with(&root);
    }
    false
}

fn run_error_status(error: &RunError) -> u8 {
    match error {
        RunError::Limit { .. } => EXIT_LIMIT,
        RunError::Trap { .. } | RunError::NotACommand { .. } => EXIT_TRAPPED,
        _ => EXIT_HOST_ERROR,
    }
}
