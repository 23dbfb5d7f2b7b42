//! `midcore-kv-probe sign REF AUTH COUNT` and `midcore-kv-probe info REF AUTH`.
//!
//! Drives the signer library's key-reference API (`keyref::open_backend` and
//! `keyref::key_info`) exactly as `midcore-sign` does, in a process of its own
//! so that tests can give it a clean environment. `sign` signs COUNT digests in
//! one batch and then one more digest on its own, as a signing run does for
//! sidecars and then the manifest, and prints one JSON object. AUTH `-` means
//! no `--auth`.

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use midcore_signer::keyref;
use midcore_verifier::crypto::sha256;

fn main() -> ExitCode {
    // Logs go to stderr with the filter in MIDCORE_LOG, as midcore-sign does.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("MIDCORE_LOG"))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("midcore-kv-probe: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let auth = |text: &str| {
        if text == "-" {
            None
        } else {
            Some(text.to_owned())
        }
    };
    match args {
        [command, reference, mode] if command == "info" => {
            let info = keyref::key_info(reference, auth(mode).as_deref())
                .map_err(|err| err.to_string())?;
            serde_json::to_string(&info).map_err(|err| err.to_string())
        }
        [command, reference, mode, count] if command == "sign" => {
            let count: usize = count
                .parse()
                .map_err(|_| format!("COUNT {count:?} is not a number"))?;
            let backend = keyref::open_backend(reference, auth(mode).as_deref())
                .map_err(|err| err.to_string())?;
            let digests: Vec<[u8; 32]> = (0..count)
                .map(|index| sha256(format!("module {index}").as_bytes()))
                .collect();
            let mut signatures = backend
                .sign_digests(&digests)
                .map_err(|err| err.to_string())?;
            let last = sha256(b"manifest");
            signatures.extend(
                backend
                    .sign_digests(&[last])
                    .map_err(|err| err.to_string())?,
            );
            let mut all_digests = digests;
            all_digests.push(last);
            let output = serde_json::json!({
                "kid": backend.describe(),
                "key_id": backend.public_key().key_id().to_string(),
                "public_pem": backend.public_key().to_pem(),
                "digests": all_digests.iter().map(hex::encode).collect::<Vec<_>>(),
                "signatures": signatures.iter().map(|signature| STANDARD.encode(signature)).collect::<Vec<_>>(),
            });
            Ok(output.to_string())
        }
        _ => Err(
            "usage: midcore-kv-probe sign REF AUTH COUNT | midcore-kv-probe info REF AUTH"
                .to_owned(),
        ),
    }
}
