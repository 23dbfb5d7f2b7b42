//! Command-line front end of `midcore-verify` (feature `cli`).
//!
//! Exit codes: 0 verified, 1 refused, 2 usage or I/O error before a verdict.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::bundle;
use crate::ci::{CiReporter, plain_json_line, plain_line};
use crate::crypto::{KeyError, TrustedKeys, sha256};
use crate::launch::{self, LaunchError, LaunchOptions, LaunchReport, Mode, Verdict};
use crate::sidecar::{self, SIDECAR_SUFFIX};

/// Exit code for a verified result.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit code for a refusal.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for a usage or I/O error before a verdict.
pub const EXIT_ERROR: u8 = 2;

/// Largest module `midcore-verify wasm` reads, in bytes.
const MAX_MODULE_LEN: u64 = 1024 * 1024 * 1024;
const MAX_TRUST_FILE_LEN: u64 = 64 * 1024;

/// Sets up `tracing` output on stderr, filtered by `filter` or `MIDCORE_LOG` (default `warn`).
///
/// Returns an error when `--log` does not parse; an invalid `MIDCORE_LOG` only
/// prints a warning, so a stray variable cannot stop a launch.
pub fn init_logging(filter: Option<&str>) -> Result<(), String> {
    let parse = |filter: &str| tracing_subscriber::EnvFilter::builder().parse(filter);
    let env_filter = match (filter, std::env::var("MIDCORE_LOG")) {
        (Some(filter), _) => parse(filter).map_err(|e| {
            format!(
                "--log {filter:?} is not a valid log filter ({e}); use a level such as warn, info or debug, or target=level pairs"
            )
        })?,
        // A variable left in the environment must not stop a launch, so an
        // invalid one is reported and the default used.
        (None, Ok(filter)) => parse(&filter).unwrap_or_else(|e| {
            eprintln!(
                "warning: MIDCORE_LOG={filter:?} is not a valid log filter ({e}); logging at the default level, warn"
            );
            tracing_subscriber::EnvFilter::new("warn")
        }),
        (None, Err(_)) => tracing_subscriber::EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

/// Check mode on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModeArg {
    /// Hash every covered byte.
    Full,
    /// Check signature, headers, file set and sizes; hash only files the shell reads directly.
    Lazy,
}

/// Arguments of `midcore-verify launch`.
#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Bundle folder (for Electron, `resources/`).
    pub bundle: PathBuf,
    /// Trusted key: a public-key PEM file or a key id (`sha256:` + 64 hex digits). Repeat for several.
    #[arg(long = "trust", value_name = "KEY", required = true)]
    pub trust: Vec<String>,
    /// How much to hash.
    #[arg(long, value_enum, default_value = "full")]
    pub mode: ModeArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Report problems but exit 0 and run COMMAND anyway. Never use in production.
    #[arg(long)]
    pub development: bool,
    /// Hashing threads, at least 1 (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Audit ledger that receives a `system` evidence entry when the bundle is refused.
    #[arg(long, value_name = "LEDGER", requires = "project")]
    pub ledger: Option<PathBuf>,
    /// Project id of the ledger (with --ledger).
    #[arg(long, value_name = "ID", requires = "ledger")]
    pub project: Option<String>,
    /// Command to execute after a verified result (the verifier replaces itself with it on Unix,
    /// so the exit status is then the command's own). The report goes to stderr. Needs --mode full.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Arguments of `midcore-verify wasm`.
#[derive(Debug, clap::Args)]
pub struct WasmArgs {
    /// WASM module; its sidecar is MODULE.sig.
    pub module: PathBuf,
    /// Trusted key: a public-key PEM file or a key id. Without --bundle, a PEM is needed to check the sidecar.
    #[arg(long = "trust", value_name = "KEY", required = true)]
    pub trust: Vec<String>,
    /// Bundle whose verified manifest must list the module with the same hash.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
}

/// Formats `count` with the singular or plural noun, for messages.
pub fn counted(count: u64, singular: &str, plural: &str) -> String {
    format!("{count} {}", if count == 1 { singular } else { plural })
}

/// Builds the trust set from `--trust` values.
pub fn load_trust(values: &[String]) -> Result<TrustedKeys, String> {
    let mut trusted = TrustedKeys::new();
    for value in values {
        let result: Result<_, KeyError> = if value.starts_with("sha256:") {
            trusted.pin_text(value.as_bytes())
        } else {
            let bytes = bundle::read_limited(Path::new(value), MAX_TRUST_FILE_LEN)
                .map_err(|e| format!("--trust {value}: cannot read the key file ({e})"))?;
            trusted.pin_text(&bytes)
        };
        result.map_err(|e| format!("--trust {value}: {e}"))?;
    }
    Ok(trusted)
}

fn error_exit(message: &str) -> ExitCode {
    eprintln!("midcore-verify: error: {}", plain_line(message));
    CiReporter::from_env().error(&format!("midcore-verify: {message}"), None);
    ExitCode::from(EXIT_ERROR)
}

/// Reports an error that stopped `launch` before a verdict; with `--json` also
/// as one object, on the stream the report would have used.
fn launch_error_exit(message: &str, args: &LaunchArgs) -> ExitCode {
    if args.json {
        let value = serde_json::json!({ "verdict": null, "error": message }).to_string();
        let _ = writeln!(report_stream(args), "{}", plain_json_line(&value));
    }
    error_exit(message)
}

/// Returns the stream for the launch report: stdout, or stderr when a COMMAND
/// follows, so that the command's stdout carries only its own output.
fn report_stream(args: &LaunchArgs) -> Box<dyn Write> {
    if args.command.is_empty() {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::stderr().lock())
    }
}

/// Runs `midcore-verify launch`.
pub fn launch(args: LaunchArgs) -> ExitCode {
    if matches!(args.mode, ModeArg::Lazy) && !args.command.is_empty() {
        return launch_error_exit(
            "--mode lazy cannot guard a COMMAND: lazy mode checks packed ASAR entries and runner \
             modules only when they are read through the verifier's library, and a command started \
             afterwards reads them on its own; use --mode full, or embed the library and read \
             through it",
            &args,
        );
    }
    let trusted = match load_trust(&args.trust) {
        Ok(trusted) => trusted,
        Err(message) => return launch_error_exit(&message, &args),
    };
    let options = LaunchOptions {
        mode: match args.mode {
            ModeArg::Full => Mode::Full,
            ModeArg::Lazy => Mode::Lazy,
        },
        threads: args.threads.map(usize::from),
    };

    let report = match launch::check_bundle(&args.bundle, &trusted, &options) {
        Ok(verified) => verified.report().clone(),
        Err(LaunchError::Refused(report)) => *report,
        Err(LaunchError::Io(error)) => {
            return launch_error_exit(&format!("{error}; no verdict was reached"), &args);
        }
    };

    print_report(&mut report_stream(&args), &args.bundle, &report, args.json);
    let verified = report.verdict == Verdict::Verified;
    if !verified {
        annotate_refusal(&args.bundle, &report, args.development);
    }
    if let (false, Some(ledger_path), Some(project)) = (verified, &args.ledger, &args.project) {
        record_refusal(ledger_path, project, &args.bundle, &report);
    }
    if !verified && !args.development {
        return ExitCode::from(EXIT_REFUSED);
    }
    if !verified {
        eprintln!(
            "midcore-verify: warning: development mode: continuing although the bundle was refused"
        );
    }
    if args.command.is_empty() {
        return ExitCode::from(EXIT_VERIFIED);
    }
    exec_command(&args.command)
}

/// Reports a refusal to the CI platform: one annotation for the reason and one per drifted
/// file, attached to that file. Development mode reports them as warnings.
fn annotate_refusal(bundle: &Path, report: &LaunchReport, development: bool) {
    let ci = CiReporter::from_env();
    let annotate = |message: &str, file: Option<&str>| {
        if development {
            ci.warning(message, file);
        } else {
            ci.error(message, file);
        }
    };
    let reason = report
        .refusal
        .as_deref()
        .unwrap_or("files differ from the signed manifest");
    annotate(
        &format!("launch check refused {}: {reason}", bundle.display()),
        None,
    );
    for drift in &report.drift {
        let file = bundle.join(&drift.path).display().to_string();
        annotate(&format!("launch check: {drift}"), Some(&file));
    }
}

/// Appends a refused launch to the audit ledger; a failure is reported but does not change the verdict.
fn record_refusal(ledger_path: &Path, project: &str, bundle: &Path, report: &LaunchReport) {
    let recorded = crate::ledger::Ledger::open(ledger_path, project)
        .and_then(|mut ledger| launch::record_drift(&mut ledger, bundle, report));
    match recorded {
        Ok(entry) => eprintln!(
            "midcore-verify: recorded the refusal as evidence entry {} in {}",
            entry.seq,
            ledger_path.display()
        ),
        Err(error) => eprintln!(
            "midcore-verify: error: could not record the refusal in {}: {error}",
            ledger_path.display()
        ),
    }
}

fn print_report(stdout: &mut dyn Write, bundle: &Path, report: &LaunchReport, json: bool) {
    if json {
        let value = report_json(report).to_string();
        let _ = writeln!(stdout, "{}", plain_json_line(&value));
        return;
    }
    let bundle = bundle.display().to_string();
    let bundle = plain_line(&bundle);
    let key = report
        .key_id
        .map(|id| id.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    match report.verdict {
        Verdict::Verified => {
            let _ = writeln!(
                stdout,
                "verified: {bundle} (key {key}, mode {}, {} files checked, {} bytes hashed, {} ms)",
                report.mode.as_str(),
                report.files_checked,
                report.bytes_hashed,
                report.duration_ms
            );
            if report.mode == Mode::Lazy {
                let _ = writeln!(
                    stdout,
                    "  packed ASAR entries and runner modules were not hashed: they are checked when read through the verifier's library"
                );
            }
        }
        Verdict::Refused => {
            let _ = writeln!(
                stdout,
                "refused: {bundle} (key {key}, mode {})",
                report.mode.as_str()
            );
            if let Some(reason) = &report.refusal {
                let _ = writeln!(stdout, "  {}", plain_line(reason));
            }
            for drift in &report.drift {
                let _ = writeln!(stdout, "  {}", plain_line(&drift.to_string()));
            }
            if !report.drift.is_empty() {
                let _ = writeln!(
                    stdout,
                    "  the files above changed after the bundle was signed: reinstall the app from a trusted release, or, if the change is intended, sign the bundle again"
                );
            }
        }
    }
}

/// Converts a launch report to its JSON form.
pub fn report_json(report: &LaunchReport) -> serde_json::Value {
    let drift: Vec<serde_json::Value> = report
        .drift
        .iter()
        .map(|drift| {
            serde_json::json!({
                "path": drift.path,
                "kind": drift.kind.as_str(),
                "expected": drift.expected,
                "actual": drift.actual,
            })
        })
        .collect();
    serde_json::json!({
        "verdict": report.verdict.as_str(),
        "mode": report.mode.as_str(),
        "key_id": report.key_id.map(|id| id.to_string()),
        "files_checked": report.files_checked,
        "bytes_hashed": report.bytes_hashed,
        "duration_ms": report.duration_ms,
        "refusal": report.refusal,
        "drift": drift,
    })
}

#[cfg(unix)]
fn exec_command(command: &[String]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    error_exit(&format!("cannot execute {}: {error}", command[0]))
}

#[cfg(not(unix))]
fn exec_command(command: &[String]) -> ExitCode {
    match std::process::Command::new(&command[0])
        .args(&command[1..])
        .status()
    {
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(error) => error_exit(&format!("cannot execute {}: {error}", command[0])),
    }
}

/// Runs `midcore-verify wasm`.
pub fn wasm(args: WasmArgs) -> ExitCode {
    let trusted = match load_trust(&args.trust) {
        Ok(trusted) => trusted,
        Err(message) => return error_exit(&message),
    };

    // Read the module and its sidecar once; every check below uses these bytes.
    let module = match bundle::read_limited(&args.module, MAX_MODULE_LEN) {
        Ok(bytes) => bytes,
        Err(error) => return error_exit(&format!("{}: {error}", args.module.display())),
    };
    let mut sidecar_path = args.module.clone().into_os_string();
    sidecar_path.push(SIDECAR_SUFFIX);
    let sidecar_path = PathBuf::from(sidecar_path);
    let sidecar_bytes = match bundle::read_limited(&sidecar_path, sidecar::MAX_SIDECAR_LEN as u64) {
        Ok(bytes) => bytes,
        Err(error) => {
            return refuse(&format!(
                "{}: missing or unreadable sidecar ({error}); sign the module with midcore-sign",
                sidecar_path.display()
            ));
        }
    };

    let keys = match &args.bundle {
        None => trusted,
        Some(bundle_root) => match check_module_in_bundle(
            bundle_root,
            &args.module,
            &module,
            &sidecar_bytes,
            &trusted,
        ) {
            Ok(keys) => keys,
            Err(Outcome::Refused(message)) => return refuse(&message),
            Err(Outcome::Error(message)) => return error_exit(&message),
        },
    };

    match sidecar::verify_module(&module, &sidecar_bytes, &keys) {
        Ok(key_id) => {
            println!(
                "verified: {} (sidecar key {key_id}, sha256 {})",
                plain_line(&args.module.display().to_string()),
                hex::encode(sha256(&module))
            );
            ExitCode::from(EXIT_VERIFIED)
        }
        Err(error) => refuse(&format!("{}: {error}", sidecar_path.display())),
    }
}

enum Outcome {
    Refused(String),
    Error(String),
}

fn refuse(message: &str) -> ExitCode {
    println!("refused: {}", plain_line(message));
    CiReporter::from_env().error(&format!("midcore-verify: refused: {message}"), None);
    ExitCode::from(EXIT_REFUSED)
}

/// Checks that the module and its sidecar are listed in the bundle's verified
/// manifest with the hashes of the bytes already read. Returns the key set to
/// check the sidecar with.
fn check_module_in_bundle(
    bundle_root: &Path,
    module_path: &Path,
    module: &[u8],
    sidecar_bytes: &[u8],
    trusted: &TrustedKeys,
) -> Result<TrustedKeys, Outcome> {
    let verified = match launch::verify_manifest(bundle_root, trusted) {
        Ok(verified) => verified,
        Err(LaunchError::Refused(report)) => {
            return Err(Outcome::Refused(
                report
                    .refusal
                    .unwrap_or_else(|| "the bundle manifest was refused".to_owned()),
            ));
        }
        Err(error) => return Err(Outcome::Error(error.to_string())),
    };
    let relative = relative_to(bundle_root, module_path).map_err(Outcome::Error)?;
    let checks = [
        (relative.clone(), module),
        (format!("{relative}{SIDECAR_SUFFIX}"), sidecar_bytes),
    ];
    for (path, bytes) in checks {
        let Some(record) = verified.file(&path) else {
            return Err(Outcome::Refused(format!(
                "{path} is not listed in the bundle's signed manifest"
            )));
        };
        let digest = sha256(bytes);
        if record.sha256 != digest || record.size != bytes.len() as u64 {
            return Err(Outcome::Refused(format!(
                "{path} differs from the signed manifest (expected sha256 {}, found {})",
                hex::encode(record.sha256),
                hex::encode(digest)
            )));
        }
    }
    Ok(verified.trusted_keys().clone())
}

fn relative_to(root: &Path, path: &Path) -> Result<String, String> {
    let root = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = std::fs::canonicalize(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file path", path.display()))?;
    let full = parent.join(name);
    let relative = full.strip_prefix(&root).map_err(|_| {
        format!(
            "{} is not inside the bundle {}",
            path.display(),
            root.display()
        )
    })?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts
        .map(|parts| parts.join("/"))
        .ok_or_else(|| format!("{}: path is not valid UTF-8", path.display()))
}
