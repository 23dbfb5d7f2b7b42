//! Settings read from environment variables, and the HTTP transport built from them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Extra root CA file (PEM); when set, it replaces the system roots.
pub const CA_FILE_VAR: &str = "MIDCORE_AZURE_CA_FILE";
/// `HOST=IP[,HOST=IP...]`: connect to IP for HOST without asking DNS.
pub const RESOLVE_VAR: &str = "MIDCORE_AZURE_RESOLVE";
/// Overall deadline of a signing run, in seconds.
pub const DEADLINE_VAR: &str = "MIDCORE_SIGN_DEADLINE_SECS";
/// Maximum number of Key Vault requests in flight.
pub const CONCURRENCY_VAR: &str = "MIDCORE_KV_CONCURRENCY";
/// Maximum number of sign operations started in any 10-second window.
pub const OPS_PER_10S_VAR: &str = "MIDCORE_KV_OPS_PER_10S";
/// Base delay of the exponential backoff, in milliseconds.
pub const BACKOFF_BASE_VAR: &str = "MIDCORE_KV_BACKOFF_BASE_MS";

/// Default overall deadline: long enough for a large bundle under heavy throttling.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
/// Maximum deadline: one week, far beyond any signing run, and small
/// enough that adding it to the current time cannot overflow.
pub const MAX_DEADLINE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default concurrency: 16 requests in flight. With 50 ms of latency that is at
/// most 320 requests per second, and the 10-second budget caps the total.
pub const DEFAULT_CONCURRENCY: usize = 16;
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Run settings for the Key Vault backend.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Overall deadline from opening the backend.
    pub deadline: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Explicit budget of sign operations per 10 s; derived from the key when absent.
    pub ops_per_10s: Option<u32>,
    /// First backoff delay; doubles on every retry.
    pub backoff_base: Duration,
    /// PEM bytes of the CA roots to trust instead of the system roots.
    pub ca_pem: Option<(String, Vec<u8>)>,
    /// Host names mapped to fixed addresses.
    pub resolve: Vec<(String, IpAddr)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(name: &str) -> Result<Option<T>, String> {
    match env(name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<T>() {
            Ok(value) if value > T::default() => Ok(Some(value)),
            _ => Err(format!(
                "{name}={text:?} is invalid: expected a positive whole number"
            )),
        },
    }
}

impl Settings {
    /// Reads the settings; an invalid value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let deadline = positive::<u64>(DEADLINE_VAR)?.map_or(DEFAULT_DEADLINE, Duration::from_secs);
        if deadline > MAX_DEADLINE {
            return Err(format!(
                "{DEADLINE_VAR}={} is more than the maximum of {} seconds (one week)",
                deadline.as_secs(),
                MAX_DEADLINE.as_secs()
            ));
        }
        let concurrency = positive::<usize>(CONCURRENCY_VAR)?
            .unwrap_or(DEFAULT_CONCURRENCY)
            .min(64);
        let ops_per_10s = positive::<u32>(OPS_PER_10S_VAR)?;
        let backoff_base =
            positive::<u64>(BACKOFF_BASE_VAR)?.map_or(DEFAULT_BACKOFF_BASE, Duration::from_millis);
        let ca_pem = match env(CA_FILE_VAR) {
            None => None,
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|err| {
                    format!("{CA_FILE_VAR}={path}: cannot read the CA file: {err}")
                })?;
                Some((path, bytes))
            }
        };
        let mut resolve = Vec::new();
        if let Some(list) = env(RESOLVE_VAR) {
            for entry in list
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
            {
                let parsed = entry.split_once('=').and_then(|(host, ip)| {
                    Some((
                        host.trim().to_ascii_lowercase(),
                        ip.trim().parse::<IpAddr>().ok()?,
                    ))
                });
                match parsed {
                    Some((host, ip)) if !host.is_empty() => resolve.push((host, ip)),
                    _ => {
                        return Err(format!(
                            "{RESOLVE_VAR} entry {entry:?} is invalid: expected HOST=IP, e.g. midcore.vault.test=127.0.0.1"
                        ));
                    }
                }
            }
        }
        Ok(Self {
            deadline,
            concurrency,
            ops_per_10s,
            backoff_base,
            ca_pem,
            resolve,
        })
    }

    /// Builds the HTTP client every Azure call of the run goes through.
    pub fn http_client(&self) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60));
        if let Some((path, pem)) = &self.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
                format!("{CA_FILE_VAR}={path}: not a PEM certificate bundle: {err}")
            })?;
            if certificates.is_empty() {
                return Err(format!(
                    "{CA_FILE_VAR}={path}: the file holds no certificate"
                ));
            }
            builder = builder.tls_certs_only(certificates);
        }
        for (host, ip) in &self.resolve {
            builder = builder.resolve(host, SocketAddr::new(*ip, 0));
        }
        if !self.resolve.is_empty() {
            // Requests to mapped test hosts must not go through a proxy from the environment.
            builder = builder.no_proxy();
        }
        builder
            .build()
            .map_err(|err| format!("building the HTTPS client failed: {err}"))
    }
}
