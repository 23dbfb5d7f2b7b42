//! The emulator's test certificate authority and its TLS server certificate.
//!
//! The CA key is kept in the state directory, so `ca.pem` stays valid across
//! restarts; the server certificate is issued anew at every start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names the server certificate covers. Clients map these names to 127.0.0.1
/// themselves, because `.test` is reserved and never resolves through DNS.
pub const SERVER_NAMES: &[&str] = &["*.vault.test", "vault.test", "login.test", "localhost"];

const CA_KEY_FILE: &str = "ca-key.pem";
const CA_CERT_FILE: &str = "ca.pem";

/// The CA file path and the rustls server configuration built on it.
#[derive(Debug)]
pub struct ServerTls {
    /// PEM of the CA certificate that clients trust.
    pub ca_cert_path: PathBuf,
    /// TLS configuration for the listener.
    pub config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Midcore loopback emulator test CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Midcore tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Loads or creates the CA in `state_dir` and issues a server certificate for
/// [`SERVER_NAMES`], 127.0.0.1 and ::1.
pub fn load_or_create(state_dir: &Path) -> anyhow::Result<ServerTls> {
    let key_path = state_dir.join(CA_KEY_FILE);
    let ca_cert_path = state_dir.join(CA_CERT_FILE);

    // 1. The CA key: reuse the stored one so a ca.pem handed out earlier stays valid.
    let ca_key = if key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        KeyPair::from_pem(&pem).with_context(|| format!("parsing {}", key_path.display()))?
    } else {
        let key = KeyPair::generate().context("generating the test CA key")?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        key
    };

    // 2. The CA certificate: same subject and key every time, so old copies still verify.
    if !ca_cert_path.exists() {
        let cert = ca_params()
            .self_signed(&ca_key)
            .context("self-signing the test CA")?;
        std::fs::write(&ca_cert_path, cert.pem())
            .with_context(|| format!("writing {}", ca_cert_path.display()))?;
    }
    let issuer = Issuer::new(ca_params(), ca_key);

    // 3. The server certificate.
    let mut names: Vec<String> = SERVER_NAMES.iter().map(|name| (*name).to_owned()).collect();
    names.push("127.0.0.1".to_owned());
    names.push("::1".to_owned());
    let mut params =
        CertificateParams::new(names).context("building the server certificate parameters")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "midcore emulator");
    params.subject_alt_names = params
        .subject_alt_names
        .into_iter()
        .map(|san| match san {
            SanType::DnsName(name) if name.as_str() == "127.0.0.1" => {
                SanType::IpAddress([127, 0, 0, 1].into())
            }
            SanType::DnsName(name) if name.as_str() == "::1" => {
                SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into())
            }
            other => other,
        })
        .collect();
    let server_key = KeyPair::generate().context("generating the server key")?;
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    let chain = vec![CertificateDer::from(server_cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("loading the server certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        ca_cert_path,
        config: Arc::new(config),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
