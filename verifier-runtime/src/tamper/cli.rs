//! The `midcore-verify tamper-check` subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::ledger::Ledger;

/// Exit code when the check itself failed (no such process, ledger error).
const EXIT_ERROR: u8 = 2;

/// Look for signs that a running process is being debugged, inspected or
/// made to load foreign code. Exit 0 if nothing was found, 1 if something
/// was, 2 if the check could not run.
#[derive(Debug, clap::Args)]
pub struct TamperCheckArgs {
    /// Id of the process to check.
    #[arg(long)]
    pub pid: u32,
    /// Ledger to record each finding in, as a `system` entry of kind `tamper-finding`.
    #[arg(long, value_name = "LEDGER", requires = "project")]
    pub ledger: Option<PathBuf>,
    /// Project the ledger belongs to.
    #[arg(long, value_name = "ID", requires = "ledger")]
    pub project: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl TamperCheckArgs {
    /// Runs the check and prints the findings.
    pub fn run(self) -> ExitCode {
        let report = match super::check_process(self.pid) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("midcore-verify: error: {error}");
                return ExitCode::from(EXIT_ERROR);
            }
        };

        if let (Some(path), Some(project)) = (&self.ledger, &self.project)
            && !report.findings.is_empty()
        {
            let recorded = Ledger::open(path, project)
                .map_err(super::TamperError::from)
                .and_then(|mut ledger| super::record_findings(&mut ledger, &report));
            match recorded {
                Ok(entries) => {
                    if !self.json {
                        let first = entries.first().map_or(0, |entry| entry.seq);
                        let last = entries.last().map_or(0, |entry| entry.seq);
                        let range = if first == last {
                            format!("entry {first}")
                        } else {
                            format!("entries {first} to {last}")
                        };
                        println!(
                            "recorded {} in {} ({range})",
                            crate::cli::counted(entries.len() as u64, "finding", "findings"),
                            path.display()
                        );
                    }
                }
                Err(error) => {
                    eprintln!("midcore-verify: error: {error}");
                    return ExitCode::from(EXIT_ERROR);
                }
            }
        }

        if self.json {
            println!("{}", String::from_utf8_lossy(&report.to_json()));
        } else {
            for finding in &report.findings {
                println!(
                    "finding: {}: {}: {}",
                    finding.check, finding.detail, finding.value
                );
            }
            for skipped in &report.skipped {
                println!("not checked: {}: {}", skipped.what, skipped.reason);
            }
            if report.findings.is_empty() {
                println!("process {}: no findings", report.pid);
            }
        }
        if report.findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}
