//! Identifying a Node inspector or Chromium DevTools endpoint with
//! `GET /json/version`. Both respond with a JSON object that contains
//! `Protocol-Version`, and DevTools also sends `webSocketDebuggerUrl`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::json::{self, Value};

/// Largest response read from a probed port, in bytes.
const MAX_RESPONSE_LEN: u64 = 64 * 1024;

/// Endpoint found on a probed port.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DebugEndpoint {
    /// The `Browser` field of the response, such as `node.js/v20.20.2` or `Chrome/130.0`.
    pub browser: Option<String>,
    /// The `Protocol-Version` field of the response.
    pub protocol_version: Option<String>,
}

impl DebugEndpoint {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match (&self.browser, &self.protocol_version) {
            (Some(browser), _) if browser.starts_with("node") => {
                format!("a Node inspector ({browser})")
            }
            (Some(browser), _) => format!("a DevTools endpoint ({browser})"),
            (None, Some(version)) => format!("a DevTools protocol endpoint (protocol {version})"),
            (None, None) => "a DevTools protocol endpoint".to_owned(),
        }
    }
}

/// Sends `GET /json/version` to `address` and returns what answered, if it is
/// an inspector or DevTools endpoint. Refuses any address that is not loopback,
/// and gives up after `timeout` in total.
pub fn probe_debug_endpoint(address: SocketAddr, timeout: Duration) -> Option<DebugEndpoint> {
    if !address.ip().is_loopback() {
        return None;
    }
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    let remaining = timeout
        .checked_sub(started.elapsed())
        .filter(|left| !left.is_zero())?;
    stream.set_read_timeout(Some(remaining)).ok()?;
    stream.set_write_timeout(Some(remaining)).ok()?;

    // Node's inspector accepts only an IP address or "localhost" as the Host header.
    let request =
        format!("GET /json/version HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    // Read in a loop with the timeout shrinking to the time left, so a peer
    // that trickles bytes cannot stretch the probe past `timeout` in total.
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while (response.len() as u64) < MAX_RESPONSE_LEN {
        let Some(left) = timeout
            .checked_sub(started.elapsed())
            .filter(|left| !left.is_zero())
        else {
            break;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => response.extend_from_slice(&buffer[..read]),
        }
    }
    response.truncate(usize::try_from(MAX_RESPONSE_LEN).unwrap_or(usize::MAX));
    parse_version_response(&response)
}

/// Reads an HTTP response to `GET /json/version`; `None` unless it is a 200
/// whose body is a JSON object with `Protocol-Version` or `webSocketDebuggerUrl`.
pub(crate) fn parse_version_response(response: &[u8]) -> Option<DebugEndpoint> {
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") || parts.next()? != "200" {
        return None;
    }
    let body = &response[split + 4..];
    let value = json::parse(body.trim_ascii()).ok()?;
    let Value::Object(object) = value else {
        return None;
    };
    let text = |name: &str| match object.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        _ => None,
    };
    let protocol_version = text("Protocol-Version");
    if protocol_version.is_none() && !object.contains_key("webSocketDebuggerUrl") {
        return None;
    }
    Some(DebugEndpoint {
        browser: text("Browser"),
        protocol_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_answer_recognized() {
        let response = b"HTTP/1.0 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: 65\r\n\r\n{\n  \"Browser\": \"node.js/v20.20.2\",\n  \"Protocol-Version\": \"1.1\"\n}\n";
        let endpoint = parse_version_response(response).expect("a Node inspector answer");
        assert_eq!(endpoint.browser.as_deref(), Some("node.js/v20.20.2"));
    }

    #[test]
    fn other_http_server_ignored() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_version_response(response), None);
    }

    #[test]
    fn error_status_ignored() {
        let response = b"HTTP/1.1 404 Not Found\r\n\r\n{\"Protocol-Version\":\"1.3\"}";
        assert_eq!(parse_version_response(response), None);
    }

    #[test]
    fn non_loopback_address_not_probed() {
        let address: SocketAddr = "192.0.2.1:9229".parse().expect("valid address");
        assert_eq!(
            probe_debug_endpoint(address, Duration::from_millis(10)),
            None
        );
    }
}
