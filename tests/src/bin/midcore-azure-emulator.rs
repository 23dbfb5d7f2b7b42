//! `midcore-azure-emulator --listen 127.0.0.1:0 --state-dir DIR [--vault NAME] [--key NAME[:BITS]]...`
//!
//! Starts the loopback Azure emulator and prints one JSON line with its
//! addresses, credentials and CA path on stdout, then serves until stopped.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use midcore_e2e::emulator::{self, EmulatorConfig};

/// Loopback emulator of Azure Key Vault keys, Entra ID and the OIDC endpoints of CI systems.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory for the test CA, identities and keys; created if missing.
    #[arg(long)]
    state_dir: PathBuf,
    /// Vault name; the vault host is NAME.vault.test.
    #[arg(long, default_value = "midcore")]
    vault: String,
    /// Create a key (RSA-HSM, sign and verify) before serving, as NAME or NAME:BITS; repeatable.
    #[arg(long = "key")]
    keys: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env(
            "MIDCORE_EMULATOR_LOG",
        ))
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        listen: args.listen,
        state_dir: args.state_dir,
        vault_name: args.vault,
    };
    let running = emulator::Emulator::start(config)?;
    for key in &args.keys {
        let (name, bits) = match key.split_once(':') {
            Some((name, bits)) => (
                name,
                bits.parse()
                    .with_context(|| format!("invalid key size in --key {key}"))?,
            ),
            None => (key.as_str(), 3072),
        };
        running
            .create_key(name, bits, &["sign", "verify"])
            .with_context(|| format!("creating key {name}"))?;
    }
    let line = serde_json::to_string(running.info()).context("serialising the startup line")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("writing the startup line")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);

    // Serve until the process is stopped; the server runs on the emulator's own threads.
    loop {
        std::thread::park();
    }
}
