//! `midcore-sign`: signs a packaged app's bundle folder and manages signing keys.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use midcore_signer::keyref::{self, KeyInfo};
use midcore_signer::local::{DEFAULT_BITS, LocalKey, LocalKeyError};
use midcore_signer::sign::{self, SignOptions};
use midcore_verifier::ci::CiReporter;
use midcore_verifier::ci::{plain_json_line, plain_line};

/// Sign a packaged Midcore bundle: integrity manifest and WASM sidecars.
#[derive(Debug, Parser)]
#[command(name = "midcore-sign", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for diagnostics on stderr (e.g. `debug`); also read from `MIDCORE_LOG`.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a local RSA key pair for development and tests.
    Keygen(KeygenArgs),
    /// Sign BUNDLE: write build/integrity.json, build/integrity.pub.pem and a .sig beside every .wasm.
    Sign(SignArgs),
    /// Inspect or export a signing key.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Output path of the PKCS#8 private key, created with mode 0600 and never overwritten.
    #[arg(long, value_name = "FILE")]
    private: PathBuf,
    /// Output path of the public key (SubjectPublicKeyInfo PEM), the file the verifier pins; never overwritten.
    #[arg(long, value_name = "FILE")]
    public: PathBuf,
    /// RSA modulus size in bits: 2048, 3072, 4096 or 8192.
    #[arg(long, default_value_t = DEFAULT_BITS)]
    bits: u32,
}

#[derive(Debug, Args)]
struct KeyArgs {
    /// Key reference: local:FILE or azure-kv://VAULT_HOST[:PORT]/keys/NAME[/VERSION].
    #[arg(long, value_name = "REF")]
    key: String,
    /// Credential for cloud keys: client-secret, github-oidc, azure-pipelines, workload-identity,
    /// managed-identity or azure-cli.
    #[arg(long, value_name = "MODE")]
    auth: Option<String>,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// Folder that contains the packaged app (for Electron, `resources/`).
    bundle: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
    /// Product name for the manifest (default: `name` from app.asar's package.json, else the folder name).
    #[arg(long, value_name = "NAME")]
    product: Option<String>,
    /// Product version for the manifest (default: `version` from app.asar's package.json, else 0.0.0).
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print the key id, size and what the backend reports about the key.
    Info {
        #[command(flatten)]
        key: KeyArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the key's public key as PEM: the file to pin with `midcore-verify --trust`.
    ExportPublic {
        #[command(flatten)]
        key: KeyArgs,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = midcore_verifier::cli::init_logging(cli.log.as_deref()) {
        eprintln!("midcore-sign: error: {message}");
        return ExitCode::from(2);
    }
    let ci = CiReporter::from_env();
    let result = match cli.command {
        Command::Keygen(args) => keygen(&args),
        Command::Sign(args) => sign(&args, &ci),
        Command::Key(KeyCommand::Info { key, json }) => key_info(&key, json),
        Command::Key(KeyCommand::ExportPublic { key, out }) => export_public(&key, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = error_message(&error);
            eprintln!("midcore-sign: error: {}", plain_line(&message));
            ci.error(&format!("midcore-sign: {message}"), None);
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Joins an error and its causes with `: `, leaving out a cause whose text the
/// message already ends with (several error types repeat their source in their own text).
fn error_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// An invalid combination of arguments, found after parsing: exit 2, as for
/// the errors the argument parser reports itself.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn keygen(args: &KeygenArgs) -> Result<()> {
    if args.private == args.public {
        return Err(UsageError(format!(
            "--private and --public both name {}; give the two keys different files",
            args.private.display()
        ))
        .into());
    }
    let key = LocalKey::generate(args.bits).map_err(|error| match error {
        LocalKeyError::UnsupportedBits { .. } => anyhow::Error::new(UsageError(error.to_string())),
        error => error.into(),
    })?;
    key.write(&args.private, &args.public)?;
    let key_id = midcore_signer::backend::SigningBackend::public_key(&key).key_id();
    println!("{key_id}");
    eprintln!(
        "wrote private key {} (mode 0600; for development and tests only) and public key {}",
        args.private.display(),
        args.public.display()
    );
    Ok(())
}

fn sign(args: &SignArgs, ci: &CiReporter) -> Result<()> {
    let backend = keyref::open_backend(&args.key.key, args.key.auth.as_deref())?;
    let (default_product, default_version) = sign::product_defaults(&args.bundle);
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => Some(text.parse::<u64>().with_context(|| {
            format!("SOURCE_DATE_EPOCH={text:?} is not a non-negative integer number of seconds")
        })?),
        _ => None,
    };
    let options = SignOptions {
        product: args.product.clone().unwrap_or(default_product),
        version: args.version.clone().unwrap_or(default_version),
        source_date_epoch,
        threads: None,
    };
    let report = sign::sign_bundle(&args.bundle, backend.as_ref(), &options)
        .with_context(|| format!("signing {} failed", args.bundle.display()))?;
    report_to_ci(ci, &args.bundle, &report)?;
    if args.json {
        println!("{}", plain_json_line(&serde_json::to_string(&report)?));
    } else {
        println!(
            "signed {}: {} ({}, {}, {}) with key {} ({}) in {} ms",
            plain_line(&args.bundle.display().to_string()),
            midcore_verifier::cli::counted(report.files as u64, "file", "files"),
            midcore_verifier::cli::counted(report.bytes, "byte", "bytes"),
            midcore_verifier::cli::counted(report.archives as u64, "archive", "archives"),
            midcore_verifier::cli::counted(report.sidecars as u64, "sidecar", "sidecars"),
            report.key_id,
            report.key,
            report.duration_ms
        );
        println!(
            "manifest: {}",
            plain_line(&report.manifest.display().to_string())
        );
        println!(
            "public key: {} (pin it with: midcore-verify launch BUNDLE --trust {})",
            plain_line(&report.public_key.display().to_string()),
            report.key_id
        );
    }
    Ok(())
}

/// Sets the step outputs `manifest`, `key-id` and `files` and adds the job summary when the
/// signer runs in GitHub Actions or Azure Pipelines; does nothing elsewhere.
fn report_to_ci(ci: &CiReporter, bundle: &Path, report: &sign::SignReport) -> Result<()> {
    let manifest = report.manifest.display().to_string();
    ci.set_output("manifest", &manifest)
        .context("cannot set the step output manifest")?;
    ci.set_output("key-id", &report.key_id)
        .context("cannot set the step output key-id")?;
    ci.set_output("files", &report.files.to_string())
        .context("cannot set the step output files")?;
    let cell = |text: &str| text.replace('|', "\\|").replace(['\r', '\n'], " ");
    let summary = format!(
        "### Midcore signature\n\n\
         | | |\n|---|---|\n\
         | Bundle | `{}` |\n\
         | Files covered | {} ({} bytes, {} archives, {} sidecars) |\n\
         | Key id | `{}` |\n\
         | Versioned key | `{}` |\n\
         | Manifest | `{}` |\n\
         | Duration | {} ms |\n",
        cell(&bundle.display().to_string()),
        report.files,
        report.bytes,
        report.archives,
        report.sidecars,
        cell(&report.key_id),
        cell(&report.key),
        cell(&manifest),
        report.duration_ms
    );
    ci.append_summary(&summary)
        .context("cannot write the job summary")?;
    Ok(())
}

fn key_info(args: &KeyArgs, json: bool) -> Result<()> {
    let info: KeyInfo = keyref::key_info(&args.key, args.auth.as_deref())?;
    if json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    println!("reference: {}", info.reference);
    println!("key id: {}", info.key_id);
    println!("size: {} bits", info.bits);
    if let Some(kid) = &info.versioned_kid {
        println!("versioned kid: {kid}");
    }
    if let Some(enabled) = info.enabled {
        println!("enabled: {enabled}");
    }
    if let Some(not_before) = &info.not_before {
        println!("not before: {not_before}");
    }
    println!("expires: {}", info.expires.as_deref().unwrap_or("never"));
    Ok(())
}

fn export_public(args: &KeyArgs, out: &Path) -> Result<()> {
    let backend = keyref::open_backend(&args.key, args.auth.as_deref())?;
    let key = backend.public_key();
    if out.exists() {
        bail!(
            "{} already exists; choose another --out path or remove it first",
            out.display()
        );
    }
    std::fs::write(out, key.to_pem()).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", key.key_id());
    eprintln!(
        "wrote public key {} ({} bits) from {}",
        out.display(),
        key.bits(),
        backend.describe()
    );
    Ok(())
}
