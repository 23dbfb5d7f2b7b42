//! `midcore-verify`: the launch check, sidecar checks and the runner sandbox on the command line.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use midcore_verifier::cli::{self, LaunchArgs, WasmArgs};
use midcore_verifier::ledger::cli::LedgerCommand;
use midcore_verifier::tamper::cli::TamperCheckArgs;

/// Verify a signed Midcore bundle before it runs.
#[derive(Debug, Parser)]
#[command(name = "midcore-verify", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for diagnostics on stderr (e.g. `debug`); also read from `MIDCORE_LOG`.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the manifest signature and every covered file; optionally exec COMMAND when verified.
    Launch(LaunchArgs),
    /// Check a WASM module's sidecar, and with --bundle its entry in the verified manifest.
    Wasm(WasmArgs),
    /// Replay, report on, export and append to a project's audit ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Look for debugger, inspector and code-loading switches in a running process.
    TamperCheck(TamperCheckArgs),
    /// Check the manifest signature and one runner against it, then run the runner on stdin.
    #[cfg(feature = "sandbox")]
    Run(midcore_verifier::sandbox::cli::RunArgs),
    /// Not available: this build has no runner sandbox (rebuild with `--features sandbox`).
    #[cfg(not(feature = "sandbox"))]
    #[command(hide = true, disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        ignored: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli::init_logging(cli.log.as_deref()) {
        eprintln!("midcore-verify: error: {message}");
        return ExitCode::from(cli::EXIT_ERROR);
    }
    match cli.command {
        Command::Launch(args) => cli::launch(args),
        Command::Wasm(args) => cli::wasm(args),
        Command::Ledger(command) => command.run(),
        Command::TamperCheck(args) => args.run(),
        #[cfg(feature = "sandbox")]
        Command::Run(args) => midcore_verifier::sandbox::cli::run_command(args),
        #[cfg(not(feature = "sandbox"))]
        Command::Run { .. } => {
            eprintln!(
                "midcore-verify: error: this build has no runner sandbox; rebuild with: cargo build --release --locked -p midcore-verifier --features sandbox"
            );
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
