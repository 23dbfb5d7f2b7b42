//! Benchmark driver for the audit ledger; `scripts/bench/ledger.sh` runs it.
//!
//! ```text
//! ledger_bench generate RECEIPTS OUT.ledger OUT.pub.pem   # a ledger of RECEIPTS signed receipts (RSA-3072)
//! ledger_bench append COUNT DIR                            # durable appends per second (verification inline and on a second thread), and the fdatasync rate
//! ```
//!
//! `generate` writes the ledger file directly from the documented format
//! (frames, canonical JSON entries, entry hashes), signing in parallel, because
//! appending a million receipts one fsync at a time would take hours.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PSS_SHA256};
use base64::Engine as _;
use midcore_verifier::crypto::{PublicKey, TrustedKeys, sha256};
use midcore_verifier::json::{self, Value};
use midcore_verifier::ledger::{FILE_HEADER, FRAME_MAGIC, Ledger};
use midcore_verifier::receipt::Receipt;

const PROJECT: &str = "bench-project";
const TENANT: &str = "tenant-bench";
const OPERATIONS: [&str; 4] = [
    "ocr.page",
    "translate.kchar",
    "transcribe.minute",
    "embed.ktoken",
];
/// 2026-01-01T00:00:00Z in milliseconds.
const START_MS: i64 = 1_767_225_600_000;
const BLOCK: usize = 4096;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") if args.len() == 5 => {
            let count = args[2].parse().expect("RECEIPTS is a number");
            generate(count, Path::new(&args[3]), Path::new(&args[4]));
        }
        Some("append") if args.len() == 4 => {
            let count = args[2].parse().expect("COUNT is a number");
            append(count, Path::new(&args[3]));
        }
        _ => {
            eprintln!(
                "usage: ledger_bench generate RECEIPTS OUT.ledger OUT.pub.pem | append COUNT DIR"
            );
            std::process::exit(2);
        }
    }
}

struct Signer {
    key_pair: KeyPair,
}

impl Signer {
    fn generate() -> (Self, PublicKey) {
        let key_pair = KeyPair::generate(KeySize::Rsa3072).expect("RSA key generation");
        let der = key_pair.public_key().as_der().expect("public key DER");
        let public = PublicKey::from_spki_der(der.as_ref()).expect("valid public key");
        (Self { key_pair }, public)
    }

    /// The receipt JSON for receipt number `index`.
    fn receipt(&self, index: u64) -> Value {
        let id = format!("bench-{index:08}");
        let operation = OPERATIONS[usize::try_from(index % 4).unwrap_or(0)];
        let cents = i64::try_from(index % 500).unwrap_or(0) + 1;
        // Spread over 30 days at most, whatever the count.
        let finalized = START_MS + i64::try_from(index % 1_000_000).unwrap_or(0) * 2_592;
        let message = format!("{id}|{operation}|{TENANT}|{cents}|{finalized}");
        let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key_pair
            .sign(&RSA_PSS_SHA256, &rng, message.as_bytes(), &mut signature)
            .expect("RSA-PSS signing");
        let mut object = json::Object::new();
        object.insert("id".to_owned(), Value::String(id));
        object.insert("operation".to_owned(), Value::String(operation.to_owned()));
        object.insert("tenant_id".to_owned(), Value::String(TENANT.to_owned()));
        object.insert("actual_cents".to_owned(), json::number_i64(cents));
        object.insert("finalized_at_ms".to_owned(), json::number_i64(finalized));
        object.insert(
            "signature".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(signature)),
        );
        Value::Object(object)
    }
}

/// Encodes one entry (with its hash) as a frame, following docs/ledger.md.
fn frame(
    seq: u64,
    parent: &[u8; 32],
    domain: &str,
    kind: &str,
    body: Value,
) -> (Vec<u8>, [u8; 32]) {
    let mut object = json::Object::new();
    object.insert("seq".to_owned(), json::number_u64(seq));
    object.insert("parent".to_owned(), Value::String(hex::encode(parent)));
    object.insert("domain".to_owned(), Value::String(domain.to_owned()));
    object.insert("kind".to_owned(), Value::String(kind.to_owned()));
    object.insert("body".to_owned(), body);
    let mut hash_input = b"midcore-ledger-entry-v1\0".to_vec();
    hash_input.extend_from_slice(&json::to_canonical(&Value::Object(object.clone())));
    let hash = sha256(&hash_input);
    object.insert("hash".to_owned(), Value::String(hex::encode(hash)));
    let payload = json::to_canonical(&Value::Object(object));

    let length = u32::try_from(payload.len())
        .expect("small entry")
        .to_le_bytes();
    let mut frame = FRAME_MAGIC.to_vec();
    frame.extend_from_slice(&length);
    frame.extend_from_slice(&payload);
    frame
        .extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&length), &payload).to_le_bytes());
    (frame, hash)
}

fn generate(count: u64, out: &Path, key_out: &Path) {
    let started = Instant::now();
    let (signer, public) = Signer::generate();
    std::fs::write(key_out, public.to_pem()).expect("write public key");
    let mut writer = BufWriter::new(std::fs::File::create(out).expect("create ledger"));
    writer.write_all(FILE_HEADER).expect("write header");

    let mut genesis = json::Object::new();
    genesis.insert("format".to_owned(), json::number_u64(1));
    genesis.insert("project".to_owned(), Value::String(PROJECT.to_owned()));
    let (bytes, mut head) = frame(
        0,
        &[0u8; 32],
        "system",
        "ledger-created",
        Value::Object(genesis),
    );
    writer.write_all(&bytes).expect("write genesis");

    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut next = 0u64;
    while next < count {
        // Sign one block on all cores, then chain it in order.
        let block_len = usize::try_from((count - next).min(BLOCK as u64)).unwrap_or(BLOCK);
        let mut bodies: Vec<Option<Value>> = vec![None; block_len];
        std::thread::scope(|scope| {
            for (part, slots) in bodies.chunks_mut(block_len.div_ceil(threads)).enumerate() {
                let signer = &signer;
                let first = next + (part * block_len.div_ceil(threads)) as u64;
                scope.spawn(move || {
                    for (offset, slot) in slots.iter_mut().enumerate() {
                        *slot = Some(signer.receipt(first + offset as u64));
                    }
                });
            }
        });
        for (offset, body) in bodies.into_iter().enumerate() {
            let seq = next + offset as u64 + 1;
            let (bytes, hash) = frame(seq, &head, "billing", "receipt", body.expect("signed"));
            writer.write_all(&bytes).expect("write entry");
            head = hash;
        }
        next += block_len as u64;
        if next.is_multiple_of(BLOCK as u64 * 25) {
            eprintln!(
                "{next} receipts signed ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let file = writer.into_inner().expect("flush ledger");
    file.sync_all().expect("sync ledger");
    println!(
        "generated {count} receipts in {:.1} s; head {}",
        started.elapsed().as_secs_f64(),
        hex::encode(head)
    );
}

/// Rounds of the three append measurements; the disk's rate drifts between
/// runs, so the rounds interleave the three and the medians are reported.
const APPEND_ROUNDS: usize = 5;

fn append(count: u64, dir: &Path) {
    let (signer, public) = Signer::generate();
    let mut keys = TrustedKeys::new();
    keys.pin_key(public);
    let receipts: Vec<Vec<u8>> = (0..count)
        .map(|index| json::to_canonical(&signer.receipt(index)))
        .collect();
    let frame_len = receipts.first().map_or(0, Vec::len) + 200;
    let path = dir.join("append-bench.ledger");

    let mut fsyncs = Vec::new();
    let mut inline = Vec::new();
    let mut pipelined = Vec::new();
    for _ in 0..APPEND_ROUNDS {
        fsyncs.push(fsync_rate(count, frame_len, dir));
        inline.push(inline_append_rate(&receipts, &keys, &path));
        pipelined.push(pipelined_append_rate(&receipts, &keys, &path));
    }
    let (fsyncs, inline, pipelined) = (median(fsyncs), median(inline), median(pipelined));
    println!(
        "medians of {APPEND_ROUNDS} interleaved rounds of {count}: write+fdatasync of {frame_len} bytes: {fsyncs:.0}/s"
    );
    println!(
        "durable appends, verification inline: {inline:.0}/s; ratio to the disk {:.2}",
        inline / fsyncs
    );
    println!(
        "durable appends, verification on a second thread: {pipelined:.0}/s; ratio to the disk {:.2}",
        pipelined / fsyncs
    );
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Durable appends per second with `Ledger::append_receipt`: parse, verify,
/// frame, write, fdatasync, one receipt after the other.
fn inline_append_rate(receipts: &[Vec<u8>], keys: &TrustedKeys, path: &Path) -> f64 {
    let _ = std::fs::remove_file(path);
    let mut ledger = Ledger::open(path, PROJECT).expect("create ledger");
    let started = Instant::now();
    for receipt in receipts {
        ledger
            .append_receipt(TENANT, receipt, keys)
            .expect("append");
    }
    let rate = receipts.len() as f64 / started.elapsed().as_secs_f64();
    drop(ledger);
    let _ = std::fs::remove_file(path);
    rate
}

/// Durable appends per second with verification on a second thread, so the
/// check of the next receipt overlaps the fdatasync of the previous one. A
/// shell that receives receipts while it writes can arrange the same with
/// `Receipt::verify` and `Ledger::append_verified_receipt`.
fn pipelined_append_rate(receipts: &[Vec<u8>], keys: &TrustedKeys, path: &Path) -> f64 {
    let _ = std::fs::remove_file(path);
    let mut ledger = Ledger::open(path, PROJECT).expect("create ledger");
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (sender, verified) = std::sync::mpsc::sync_channel(64);
        scope.spawn(move || {
            for receipt in receipts {
                let checked = Receipt::parse(receipt)
                    .and_then(|parsed| parsed.verify(keys))
                    .expect("receipt verifies");
                if sender.send(checked).is_err() {
                    return;
                }
            }
        });
        for receipt in verified {
            ledger
                .append_verified_receipt(TENANT, &receipt)
                .expect("append");
        }
    });
    let rate = receipts.len() as f64 / started.elapsed().as_secs_f64();
    drop(ledger);
    let _ = std::fs::remove_file(path);
    rate
}

/// Measures the disk's own rate for the ledger's write pattern: append one
/// frame-sized record, then fdatasync, `count` times.
fn fsync_rate(count: u64, frame_len: usize, dir: &Path) -> f64 {
    let raw_path = dir.join("fsync-bench.bin");
    let mut raw = std::fs::File::create(&raw_path).expect("create file");
    let record = vec![b'x'; frame_len];
    let started = Instant::now();
    for _ in 0..count {
        raw.write_all(&record).expect("write");
        raw.sync_data().expect("fdatasync");
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&raw_path);
    rate
}
