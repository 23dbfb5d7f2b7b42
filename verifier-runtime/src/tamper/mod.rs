//! Anti-tamper heuristics: signs that a running Electron process is being
//! debugged, inspected or made to load foreign code.
//!
//! These are heuristics against casual tampering, not guarantees:
//!
//! - a check at one moment misses a debugger attached later;
//! - no Electron fuse disables `--remote-debugging-*` or `--js-flags`;
//! - a process can rewrite its own command line;
//! - a tracer can hide from `/proc` by interposing libc;
//! - an attacker who defeats the checks can drop the findings the client
//!   writes, unless something outside the machine countersigns them.
//!
//! Linux reads `/proc`. macOS and Windows query `ps`, `lsof`, PowerShell and
//! `netstat`; that code has not been run on those systems.

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(target_os = "linux")]
mod linux;
mod platform_tools;
mod probe;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::json::{self, Value};
use crate::ledger::{AppendedEntry, Ledger, LedgerError};

pub use platform_tools::{parse_lsof_listeners, parse_netstat_listeners, ps_stat_is_traced};
pub use probe::{DebugEndpoint, probe_debug_endpoint};

/// Evidence kind of the ledger entries written for findings.
pub const FINDING_KIND: &str = "tamper-finding";

/// How long the probe of one listening port may take, connect and read together.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Heuristic that produced a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// A debugger, inspector or V8 switch on the command line.
    CommandLineSwitch,
    /// `NODE_OPTIONS` carries an inspector or code-loading option.
    NodeOptions,
    /// `ELECTRON_RUN_AS_NODE` is set, so the binary runs as plain Node.
    RunAsNode,
    /// Another process traces this one (`TracerPid` is not zero).
    Tracer,
    /// A port the process listens on responds as a Node inspector or DevTools endpoint.
    DebugEndpoint,
}

impl Check {
    /// The name written in evidence and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::CommandLineSwitch => "command-line-switch",
            Check::NodeOptions => "node-options",
            Check::RunAsNode => "electron-run-as-node",
            Check::Tracer => "tracer",
            Check::DebugEndpoint => "debug-endpoint",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sign of tampering.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The heuristic that fired.
    pub check: Check,
    /// Description of the finding.
    pub detail: String,
    /// The switch, variable or address found.
    pub value: String,
}

impl Finding {
    fn new(check: Check, detail: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            check,
            detail: detail.into(),
            value: value.into(),
        }
    }
}

/// A check that could not run, and why (for example, permission denied).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// The check or file that could not be read.
    pub what: String,
    /// Why.
    pub reason: String,
}

/// The outcome of checking one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TamperReport {
    /// The process checked.
    pub pid: u32,
    /// Everything found.
    pub findings: Vec<Finding>,
    /// Checks that could not run.
    pub skipped: Vec<Skipped>,
}

impl TamperReport {
    fn skip(&mut self, what: impl Into<String>, reason: impl fmt::Display) {
        let skipped = Skipped {
            what: what.into(),
            reason: reason.to_string(),
        };
        tracing::warn!(pid = self.pid, what = %skipped.what, reason = %skipped.reason, "tamper check skipped");
        self.skipped.push(skipped);
    }

    /// Encodes the report as canonical JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let findings = self
            .findings
            .iter()
            .map(|finding| finding_json(self.pid, finding, None))
            .collect();
        let skipped = self
            .skipped
            .iter()
            .map(|skipped| {
                let mut object = json::Object::new();
                object.insert("what".to_owned(), Value::String(skipped.what.clone()));
                object.insert("reason".to_owned(), Value::String(skipped.reason.clone()));
                Value::Object(object)
            })
            .collect();
        let mut object = json::Object::new();
        object.insert("pid".to_owned(), json::number_u64(u64::from(self.pid)));
        object.insert("findings".to_owned(), Value::Array(findings));
        object.insert("skipped".to_owned(), Value::Array(skipped));
        json::to_canonical(&Value::Object(object))
    }
}

/// Errors that stop a check altogether.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TamperError {
    /// No process has this id, or it cannot be inspected at all.
    #[error("process {pid} cannot be inspected: {reason}")]
    Process {
        /// The process id.
        pid: u32,
        /// Why.
        reason: String,
    },
    /// This operating system has no implementation.
    #[error("tamper checks are not implemented on this operating system")]
    Unsupported,
    /// Recording a finding in the ledger failed.
    #[error("failed to record a finding in the ledger: {source}")]
    Ledger {
        /// The ledger error.
        #[from]
        source: LedgerError,
    },
}

/// Checks the process `pid` with every heuristic this platform supports.
pub fn check_process(pid: u32) -> Result<TamperReport, TamperError> {
    #[cfg(target_os = "linux")]
    return linux::check_process(pid);
    #[cfg(any(target_os = "macos", windows))]
    return platform_tools::check_process(pid);
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = pid;
        Err(TamperError::Unsupported)
    }
}

/// Appends one `system` entry of kind [`FINDING_KIND`] per finding to the ledger.
pub fn record_findings(
    ledger: &mut Ledger,
    report: &TamperReport,
) -> Result<Vec<AppendedEntry>, TamperError> {
    let observed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        });
    let mut appended = Vec::with_capacity(report.findings.len());
    for finding in &report.findings {
        let body = finding_json(report.pid, finding, Some(observed_at_ms));
        appended.push(ledger.append_evidence(FINDING_KIND, body)?);
    }
    Ok(appended)
}

fn finding_json(pid: u32, finding: &Finding, observed_at_ms: Option<u64>) -> Value {
    let mut object = json::Object::new();
    object.insert(
        "check".to_owned(),
        Value::String(finding.check.as_str().to_owned()),
    );
    object.insert("detail".to_owned(), Value::String(finding.detail.clone()));
    object.insert("value".to_owned(), Value::String(finding.value.clone()));
    object.insert("pid".to_owned(), json::number_u64(u64::from(pid)));
    if let Some(ms) = observed_at_ms {
        object.insert("observed_at_ms".to_owned(), json::number_u64(ms));
    }
    Value::Object(object)
}

/// Switch-name prefixes that enable a debugger, an inspector or raw V8 flags,
/// with what each one does.
const SUSPICIOUS_SWITCHES: &[(&str, &str)] = &[
    (
        "inspect",
        "Node inspector switch (opens a debugger, by default on 127.0.0.1:9229)",
    ),
    ("debug", "debug switch"),
    (
        "remote-debugging-port",
        "Chromium DevTools protocol on a TCP port; no Electron fuse disables it",
    ),
    (
        "remote-debugging-pipe",
        "Chromium DevTools protocol over file descriptors 3 and 4; no Electron fuse disables it",
    ),
    ("remote-debugging", "Chromium remote debugging switch"),
    ("js-flags", "raw V8 flags; no Electron fuse disables them"),
];

/// Options in `NODE_OPTIONS` that load code before the app's own.
const CODE_LOADING_OPTIONS: &[&str] = &["require", "r", "import", "loader", "experimental-loader"];

/// Returns the normalized name of a switch, or `None` if `arg` is not one.
///
/// Chromium accepts `--name` and `-name` (and `/name` on Windows); Node treats
/// `_` and `-` alike in option names. Names are compared in lower case, which
/// is wider than either parser, so that no spelling slips through.
fn switch_name(arg: &str, windows_syntax: bool) -> Option<String> {
    let rest = if let Some(rest) = arg.strip_prefix("--") {
        rest
    } else if let Some(rest) = arg.strip_prefix('-') {
        rest
    } else if windows_syntax {
        arg.strip_prefix('/')?
    } else {
        return None;
    };
    let name = rest.split('=').next().unwrap_or_default();
    if name.is_empty() {
        return None;
    }
    Some(name.replace('_', "-").to_ascii_lowercase())
}

/// Scans a process's arguments (`args[0]` is the program) for debugger,
/// inspector and V8 switches, up to a bare `--`, which ends the switches.
pub fn scan_command_line(args: &[String]) -> Vec<Finding> {
    scan_command_line_with(args, cfg!(windows))
}

/// Same as [`scan_command_line`]; `windows_syntax` also accepts `/name` switches.
pub fn scan_command_line_with(args: &[String], windows_syntax: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    for arg in args.iter().skip(1) {
        if arg == "--" {
            break;
        }
        let Some(name) = switch_name(arg, windows_syntax) else {
            continue;
        };
        if let Some((_, meaning)) = SUSPICIOUS_SWITCHES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
        {
            findings.push(Finding::new(
                Check::CommandLineSwitch,
                *meaning,
                arg.clone(),
            ));
        }
    }
    findings
}

/// Scans a process's environment for `NODE_OPTIONS` with an inspector or
/// code-loading option, and for a non-empty `ELECTRON_RUN_AS_NODE`.
pub fn scan_environment(vars: &[(String, String)]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, value) in vars {
        match name.as_str() {
            "NODE_OPTIONS" => findings.extend(scan_node_options(value)),
            "ELECTRON_RUN_AS_NODE" if !value.is_empty() => findings.push(Finding::new(
                Check::RunAsNode,
                "ELECTRON_RUN_AS_NODE is set, so the Electron binary runs as plain Node with the app's identity",
                format!("ELECTRON_RUN_AS_NODE={value}"),
            )),
            _ => {}
        }
    }
    findings
}

fn scan_node_options(value: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut tokens = split_node_options(value).into_iter().peekable();
    while let Some(token) = tokens.next() {
        let Some(name) = switch_name(&token, false) else {
            continue;
        };
        if name.starts_with("inspect") || name.starts_with("debug") {
            findings.push(Finding::new(
                Check::NodeOptions,
                "NODE_OPTIONS enables the Node inspector",
                token,
            ));
        } else if CODE_LOADING_OPTIONS.contains(&name.as_str()) {
            // `--require x` takes its value from the next token unless written `--require=x`.
            let mut shown = token.clone();
            if !token.contains('=')
                && let Some(module) = tokens.next_if(|next| !next.starts_with('-'))
            {
                shown = format!("{token} {module}");
            }
            findings.push(Finding::new(
                Check::NodeOptions,
                "NODE_OPTIONS loads code before the app's own",
                shown,
            ));
        }
    }
    findings
}

/// Splits `NODE_OPTIONS` at whitespace outside double quotes, as Node does.
fn split_node_options(value: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Reads `TracerPid` from the text of `/proc/<pid>/status`.
pub fn parse_tracer_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Returns the loopback address to probe for a socket listening on `local`,
/// or `None` if it listens only on a non-loopback address, which is never probed.
pub fn loopback_probe_address(local: SocketAddr) -> Option<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = local.ip();
    let target = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => ip,
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_loopback() => ip,
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => IpAddr::V4(v4),
            _ => return None,
        },
        IpAddr::V4(_) => return None,
    };
    Some(SocketAddr::new(target, local.port()))
}

/// Probes each listening address of the process and adds a finding for each
/// that responds as a debug endpoint.
fn probe_listeners(report: &mut TamperReport, listeners: &[SocketAddr]) {
    let mut probed = Vec::new();
    for &local in listeners {
        let Some(target) = loopback_probe_address(local) else {
            tracing::debug!(pid = report.pid, %local, "not probing a listener on a non-loopback address");
            continue;
        };
        if probed.contains(&target) {
            continue;
        }
        probed.push(target);
        if let Some(endpoint) = probe_debug_endpoint(target, PROBE_TIMEOUT) {
            report.findings.push(Finding::new(
                Check::DebugEndpoint,
                format!(
                    "{target} answers GET /json/version as {}",
                    endpoint.describe()
                ),
                local.to_string(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn inspector_spellings_found() {
        for spelling in [
            "--inspect",
            "--inspect=9229",
            "--inspect-brk",
            "--inspect_brk=0",
            "-inspect",
            "--inspect-port=1",
            "--inspect-publish-uid=http",
            "--debug-brk",
            "--INSPECT",
        ] {
            let findings = scan_command_line_with(&args(&["electron", spelling]), false);
            assert_eq!(findings.len(), 1, "{spelling}");
        }
    }

    #[test]
    fn chromium_switches_found() {
        for spelling in [
            "--remote-debugging-port=0",
            "--remote-debugging-pipe",
            "--js-flags=--allow-natives-syntax",
            "-remote-debugging-port=9222",
            "--remote_debugging_port=1",
        ] {
            let findings = scan_command_line_with(&args(&["electron", spelling]), false);
            assert_eq!(findings.len(), 1, "{spelling}");
        }
    }

    #[test]
    fn windows_slash_switch_found() {
        let findings =
            scan_command_line_with(&args(&["app.exe", "/remote-debugging-port=9222"]), true);
        assert_eq!(findings.len(), 1);
    }

    #[test]
    fn slash_switch_ignored_outside_windows() {
        let findings = scan_command_line_with(&args(&["app", "/inspect"]), false);
        assert!(findings.is_empty());
    }

    #[test]
    fn switches_after_double_dash_ignored() {
        let findings =
            scan_command_line_with(&args(&["electron", "app", "--", "--inspect"]), false);
        assert!(findings.is_empty());
    }

    #[test]
    fn program_name_not_scanned() {
        let findings = scan_command_line_with(&args(&["--inspect"]), false);
        assert!(findings.is_empty());
    }

    #[test]
    fn harmless_switches_ignored() {
        let findings = scan_command_line_with(
            &args(&["electron", "--no-sandbox", "--enable-logging", "inspect"]),
            false,
        );
        assert!(findings.is_empty());
    }

    #[test]
    fn node_options_inspect_found() {
        let vars = vec![(
            "NODE_OPTIONS".to_owned(),
            "--max-old-space-size=100 --inspect_brk".to_owned(),
        )];
        let findings = scan_environment(&vars);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].check, Check::NodeOptions);
    }

    #[test]
    fn node_options_require_found() {
        for value in [
            "--require ./hook.js",
            "-r hook",
            "--require=\"a b.js\"",
            "--import=x.mjs",
        ] {
            let vars = vec![("NODE_OPTIONS".to_owned(), value.to_owned())];
            assert_eq!(scan_environment(&vars).len(), 1, "{value}");
        }
    }

    #[test]
    fn quoted_node_options_stay_one_token() {
        assert_eq!(
            split_node_options(r#"--title="a --inspect" --x"#),
            vec!["--title=a --inspect", "--x"]
        );
    }

    #[test]
    fn run_as_node_found() {
        let vars = vec![("ELECTRON_RUN_AS_NODE".to_owned(), "1".to_owned())];
        assert_eq!(scan_environment(&vars)[0].check, Check::RunAsNode);
    }

    #[test]
    fn empty_run_as_node_ignored() {
        let vars = vec![("ELECTRON_RUN_AS_NODE".to_owned(), String::new())];
        assert!(scan_environment(&vars).is_empty());
    }

    #[test]
    fn tracer_pid_parsed() {
        let status = "Name:\tapp\nState:\tS (sleeping)\nTracerPid:\t4242\nUid:\t1000\n";
        assert_eq!(parse_tracer_pid(status), Some(4242));
    }

    #[test]
    fn wildcard_listener_probed_on_loopback() {
        let local: SocketAddr = "0.0.0.0:9229".parse().expect("valid address");
        assert_eq!(
            loopback_probe_address(local),
            Some("127.0.0.1:9229".parse().expect("valid address"))
        );
    }

    #[test]
    fn external_listener_not_probed() {
        let local: SocketAddr = "192.0.2.7:9229".parse().expect("valid address");
        assert_eq!(loopback_probe_address(local), None);
    }
}
