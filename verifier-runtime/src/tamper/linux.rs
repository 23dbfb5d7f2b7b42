//! The Linux checks, all through `/proc` (see proc(5)).

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::{Check, Finding, TamperError, TamperReport};

/// `st` value of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

pub(super) fn check_process(pid: u32) -> Result<TamperReport, TamperError> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let mut report = TamperReport {
        pid,
        ..TamperReport::default()
    };

    // Step 1: the command line. Without it the process is gone or hidden, so stop.
    let cmdline = fs::read(proc_dir.join("cmdline")).map_err(|error| TamperError::Process {
        pid,
        reason: match error.kind() {
            ErrorKind::NotFound => "no such process".to_owned(),
            _ => format!("cannot read /proc/{pid}/cmdline: {error}"),
        },
    })?;
    report
        .findings
        .extend(super::scan_command_line(&command_line_words(&cmdline)));

    // Step 2: the initial environment (readable only by the same user or root).
    match fs::read(proc_dir.join("environ")) {
        Ok(environ) => {
            let vars: Vec<(String, String)> = split_nul(&environ)
                .into_iter()
                .filter_map(|pair| {
                    pair.split_once('=')
                        .map(|(name, value)| (name.to_owned(), value.to_owned()))
                })
                .collect();
            report.findings.extend(super::scan_environment(&vars));
        }
        Err(error) => report.skip(format!("/proc/{pid}/environ"), error),
    }

    // Step 3: the tracer.
    match fs::read_to_string(proc_dir.join("status")) {
        Ok(status) => match super::parse_tracer_pid(&status) {
            Some(0) => {}
            Some(tracer) => report.findings.push(Finding::new(
                Check::Tracer,
                format!("process {tracer} traces this process (ptrace)"),
                format!("TracerPid: {tracer}"),
            )),
            None => report.skip(format!("/proc/{pid}/status"), "no TracerPid line"),
        },
        Err(error) => report.skip(format!("/proc/{pid}/status"), error),
    }

    // Step 4: listening TCP sockets owned by the process, probed on loopback.
    match socket_inodes(pid) {
        Ok(inodes) => {
            let mut listeners = Vec::new();
            for (table, v6) in [("tcp", false), ("tcp6", true)] {
                let path = proc_dir.join("net").join(table);
                match fs::read_to_string(&path) {
                    Ok(text) => listeners.extend(
                        parse_proc_net_tcp(&text, v6)
                            .into_iter()
                            .filter(|socket| inodes.contains(&socket.inode))
                            .map(|socket| socket.local),
                    ),
                    // A kernel without IPv6 has no tcp6 table.
                    Err(error) if error.kind() == ErrorKind::NotFound => {}
                    Err(error) => report.skip(path.display().to_string(), error),
                }
            }
            super::probe_listeners(&mut report, &listeners);
        }
        Err(error) => report.skip(format!("/proc/{pid}/fd"), error),
    }
    Ok(report)
}

/// Splits `/proc/<pid>/cmdline` into the words to scan. A process that
/// rewrote its title (as Chromium's zygote and renderers and `exec -a` do) can
/// carry several space-separated words in argv[0]. So argv[0] is split at
/// whitespace as well, and its first word is the program.
fn command_line_words(cmdline: &[u8]) -> Vec<String> {
    let args = split_nul(cmdline);
    let Some((first, rest)) = args.split_first() else {
        return args;
    };
    let mut words: Vec<String> = first.split_whitespace().map(str::to_owned).collect();
    words.extend(rest.iter().cloned());
    words
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// Inodes of the sockets among the process's open file descriptors.
fn socket_inodes(pid: u32) -> std::io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while we read the directory simply drops out.
        let Ok(entry) = entry else { continue };
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let inode = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|inode| inode.parse().ok());
        if let Some(inode) = inode {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// A listening socket from `/proc/<pid>/net/tcp` or `tcp6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListeningSocket {
    pub(crate) local: SocketAddr,
    pub(crate) inode: u64,
}

/// Parses the rows in LISTEN state of `/proc/net/tcp` (`v6` false) or `tcp6`.
///
/// The kernel prints each address as the hex of its 32-bit words in host
/// byte order, and the port in plain hex.
pub(crate) fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<ListeningSocket> {
    let mut sockets = Vec::new();
    for line in text.lines().skip(1) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns.len() < 10 || columns[3] != TCP_LISTEN {
            continue;
        }
        let Some((address, port)) = columns[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let Some(ip) = parse_address(address, v6) else {
            continue;
        };
        let Ok(inode) = columns[9].parse() else {
            continue;
        };
        sockets.push(ListeningSocket {
            local: SocketAddr::new(ip, port),
            inode,
        });
    }
    sockets
}

fn parse_address(hex: &str, v6: bool) -> Option<IpAddr> {
    let words = hex.len() / 8;
    if !hex.len().is_multiple_of(8) || words != if v6 { 4 } else { 1 } {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for index in 0..words {
        let word = u32::from_str_radix(hex.get(index * 8..index * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    if v6 {
        let array: [u8; 16] = bytes.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(array)))
    } else {
        let array: [u8; 4] = bytes.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(array)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2405 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:2405 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 123457 1 0000000000000000 100 0 0 10 0\n";

    #[test]
    fn rewritten_title_split_into_words() {
        let words = command_line_words(b"app --remote-debugging-port=0\x0030\x00");
        assert_eq!(words, vec!["app", "--remote-debugging-port=0", "30"]);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv4_listener_parsed() {
        let sockets = parse_proc_net_tcp(TCP, false);
        assert_eq!(
            sockets,
            vec![ListeningSocket {
                local: "127.0.0.1:9221".parse().expect("valid"),
                inode: 123456
            }]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv6_loopback_listener_parsed() {
        let text = "header\n   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1\n";
        let sockets = parse_proc_net_tcp(text, true);
        assert_eq!(
            sockets[0].local,
            "[::1]:3000".parse::<SocketAddr>().expect("valid")
        );
    }
}
