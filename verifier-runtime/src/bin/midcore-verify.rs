//! `midcore-verify`: the Midcore verifier's command line.

use std::process::ExitCode;

use clap::Parser;
use midcore_verifier::ledger::cli::LedgerCommand;
use midcore_verifier::tamper::cli::TamperCheckArgs;

#[derive(Debug, Parser)]
#[command(
    name = "midcore-verify",
    version,
    about = "Verify Midcore bundles, receipts and audit ledgers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Replay, report on, export and append to a project's audit ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Look for debugger, inspector and code-loading switches in a running process.
    TamperCheck(TamperCheckArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match Cli::parse().command {
        Command::Ledger(command) => command.run(),
        Command::TamperCheck(args) => args.run(),
    }
}
