//! macOS and Windows checks through the system's own tools (`ps`, `lsof`,
//! PowerShell, `netstat`), because this crate forbids the unsafe code that
//! calling `sysctl`, libproc or `CheckRemoteDebuggerPresent` directly needs.
//!
//! The parsers below are compiled and unit-tested on every platform. The
//! command invocations are compiled only on macOS and Windows.
//! NOTE: the macOS and Windows invocations have never been run; only the parsers are tested.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Parses `lsof -nP -a -p PID -iTCP -sTCP:LISTEN -Fn` output into listening
/// addresses; `*:PORT` (all addresses) becomes `0.0.0.0:PORT`.
pub fn parse_lsof_listeners(output: &str) -> Vec<SocketAddr> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix('n'))
        .filter_map(|name| {
            if let Some(port) = name.strip_prefix("*:") {
                return port
                    .parse()
                    .ok()
                    .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
            }
            name.parse().ok()
        })
        .collect()
}

/// Parses `netstat -ano` output into the addresses that process `pid` listens on.
///
/// Rows look like `TCP  127.0.0.1:9229  0.0.0.0:0  LISTENING  1234`. The state
/// word is matched in English only.
pub fn parse_netstat_listeners(output: &str, pid: u32) -> Vec<SocketAddr> {
    let pid = pid.to_string();
    output
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            match columns.as_slice() {
                [proto, local, _, state, owner]
                    if proto.eq_ignore_ascii_case("tcp")
                        && *state == "LISTENING"
                        && *owner == pid =>
                {
                    local.parse().ok()
                }
                _ => None,
            }
        })
        .collect()
}

/// Whether a BSD `ps -o stat=` value marks the process as traced (`X`).
pub fn ps_stat_is_traced(stat: &str) -> bool {
    stat.trim().contains('X')
}

/// Picks `NAME=value` pairs out of `ps -E` output, where the environment
/// follows the command, separated by spaces. A value runs up to the next
/// word that looks like `NAME=`, so values with spaces survive unless they
/// contain such a word.
#[cfg_attr(
    not(target_os = "macos"),
    allow(dead_code, reason = "used only on macOS; tested everywhere")
)]
pub(crate) fn parse_ps_environment(output: &str) -> Vec<(String, String)> {
    let looks_like_assignment = |word: &str| {
        word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit()
        })
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    for word in output.split(' ') {
        if looks_like_assignment(word) {
            if let Some((name, value)) = word.split_once('=') {
                vars.push((name.to_owned(), value.to_owned()));
            }
        } else if let Some((_, value)) = vars.last_mut() {
            value.push(' ');
            value.push_str(word);
        }
    }
    vars
}

#[cfg(any(target_os = "macos", windows))]
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("failed to run {program}: {error}"))?;
    if !output.status.success() {
        return Err(format!("{program} exited with {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(target_os = "macos")]
pub(super) fn check_process(pid: u32) -> Result<super::TamperReport, super::TamperError> {
    use super::{Check, Finding, TamperError, TamperReport};
    let mut report = TamperReport {
        pid,
        ..TamperReport::default()
    };
    let pid_text = pid.to_string();

    let command = run("/bin/ps", &["-ww", "-o", "command=", "-p", &pid_text])
        .map_err(|reason| TamperError::Process { pid, reason })?;
    // `ps` joins the arguments with spaces, so an argument with a space splits here.
    let args: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    report.findings.extend(super::scan_command_line(&args));

    match run("/bin/ps", &["-E", "-ww", "-o", "command=", "-p", &pid_text]) {
        Ok(output) => report
            .findings
            .extend(super::scan_environment(&parse_ps_environment(
                output.trim_end(),
            ))),
        Err(reason) => report.skip("environment (ps -E)", reason),
    }
    match run("/bin/ps", &["-o", "stat=", "-p", &pid_text]) {
        Ok(stat) if ps_stat_is_traced(&stat) => report.findings.push(Finding::new(
            Check::Tracer,
            "ps reports the process as traced or debugged (stat X)",
            format!("stat {}", stat.trim()),
        )),
        Ok(_) => {}
        Err(reason) => report.skip("tracer (ps -o stat)", reason),
    }
    match run(
        "/usr/sbin/lsof",
        &["-nP", "-a", "-p", &pid_text, "-iTCP", "-sTCP:LISTEN", "-Fn"],
    ) {
        Ok(output) => super::probe_listeners(&mut report, &parse_lsof_listeners(&output)),
        // lsof exits 1 when the process has no matching socket.
        Err(reason) if reason.contains("exit status: 1") => {}
        Err(reason) => report.skip("listening sockets (lsof)", reason),
    }
    Ok(report)
}

#[cfg(windows)]
pub(super) fn check_process(pid: u32) -> Result<super::TamperReport, super::TamperError> {
    use super::{TamperError, TamperReport};
    let mut report = TamperReport {
        pid,
        ..TamperReport::default()
    };

    let script = format!("(Get-CimInstance Win32_Process -Filter 'ProcessId={pid}').CommandLine");
    let command = run(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-Command", &script],
    )
    .map_err(|reason| TamperError::Process { pid, reason })?;
    if command.trim().is_empty() {
        return Err(TamperError::Process {
            pid,
            reason: "no such process, or its command line is not readable".to_owned(),
        });
    }
    report
        .findings
        .extend(super::scan_command_line(&super::split_node_options(
            command.trim(),
        )));

    report.skip(
        "environment",
        "reading another process's environment on Windows needs its PEB, which is not implemented",
    );
    report.skip(
        "tracer",
        "CheckRemoteDebuggerPresent needs unsafe FFI, which this crate forbids",
    );
    match run("netstat.exe", &["-ano", "-p", "TCP"])
        .and_then(|v4| run("netstat.exe", &["-ano", "-p", "TCPv6"]).map(|v6| v4 + &v6))
    {
        Ok(output) => super::probe_listeners(&mut report, &parse_netstat_listeners(&output, pid)),
        Err(reason) => report.skip("listening sockets (netstat)", reason),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsof_listeners_parsed() {
        let output = "p4242\nf21\nn127.0.0.1:9229\nf22\nn*:9222\nf23\nn[::1]:3000\n";
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:9229".parse().expect("valid"),
            "0.0.0.0:9222".parse().expect("valid"),
            "[::1]:3000".parse().expect("valid"),
        ];
        assert_eq!(parse_lsof_listeners(output), expected);
    }

    #[test]
    fn netstat_listeners_of_pid_parsed() {
        let output = "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n  TCP    127.0.0.1:9229         0.0.0.0:0              LISTENING       4242\n  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       900\n  TCP    [::1]:9222             [::]:0                 LISTENING       4242\n  TCP    127.0.0.1:50000        127.0.0.1:9229         ESTABLISHED     4242\n";
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:9229".parse().expect("valid"),
            "[::1]:9222".parse().expect("valid"),
        ];
        assert_eq!(parse_netstat_listeners(output, 4242), expected);
    }

    #[test]
    fn traced_stat_recognized() {
        assert!(ps_stat_is_traced("SX+\n"));
    }

    #[test]
    fn untraced_stat_recognized() {
        assert!(!ps_stat_is_traced("Ss\n"));
    }

    #[test]
    fn ps_environment_keeps_spaces_in_values() {
        let vars = parse_ps_environment(
            "/Applications/App --flag NODE_OPTIONS=--require ./a.js HOME=/Users/x",
        );
        assert!(
            vars.contains(&("NODE_OPTIONS".to_owned(), "--require ./a.js".to_owned())),
            "{vars:?}"
        );
    }
}
