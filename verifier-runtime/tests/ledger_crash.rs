//! Writers killed with SIGKILL at random moments never leave a ledger that
//! fails to verify and never lose an acknowledged entry; concurrent writer
//! processes never fork the chain.
//!
//! The writers are this test binary itself, started again with the ignored
//! test `writer_child` and an environment variable that selects its mode.

mod ledger_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ledger_support::{AwsSigner, ReceiptFields};
use midcore_verifier::crypto::TrustedKeys;
use midcore_verifier::json;
use midcore_verifier::ledger::{Ledger, ReplayError, replay};

/// Converts a sequence number or count to an index.
fn index(value: u64) -> usize {
    usize::try_from(value).expect("fits in usize")
}

const MODE_VAR: &str = "MIDCORE_LEDGER_TEST_CHILD";
const PATH_VAR: &str = "MIDCORE_LEDGER_TEST_PATH";
const RECEIPTS_VAR: &str = "MIDCORE_LEDGER_TEST_RECEIPTS";
const KEY_VAR: &str = "MIDCORE_LEDGER_TEST_KEY";
const PROJECT: &str = "crash-project";
const TENANT: &str = "tenant-crash";

/// Padding of the large evidence entries, in bytes.
const LARGE_ENTRY_LEN: usize = 512 * 1024;

/// Kills per ledger file; each group starts a fresh ledger, which keeps the
/// per-kill replay short.
const KILLS_PER_LEDGER: u64 = 25;

/// Appends a child makes before it exits on its own.
const CHILD_APPENDS: u64 = 25;

/// Entry point of the writer processes; does nothing unless started by the tests below.
#[test]
#[ignore = "helper process started by the other tests in this file"]
fn writer_child() {
    let Ok(mode) = std::env::var(MODE_VAR) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH_VAR).expect("ledger path"));
    let mut out = std::io::stdout().lock();
    let mut acknowledge = |seq: u64, hash: [u8; 32]| {
        writeln!(out, "ACK {seq} {}", hex::encode(hash)).expect("write to the parent");
        out.flush().expect("flush to the parent");
    };
    match mode.as_str() {
        "crash" => {
            let receipts =
                std::fs::read_to_string(std::env::var(RECEIPTS_VAR).expect("receipts file"))
                    .expect("receipts");
            let key_pem = std::fs::read(std::env::var(KEY_VAR).expect("key file")).expect("key");
            let mut keys = TrustedKeys::new();
            keys.pin_text(&key_pem).expect("receipt key");
            let mut ledger = Ledger::open(&path, PROJECT).expect("open ledger");
            println!("READY");
            let mut pending = receipts.lines().filter(|line| !line.is_empty());
            for step in 0..CHILD_APPENDS {
                let next_receipt = if step % 2 == 0 {
                    pending.find(|line| {
                        let id = json_id(line);
                        ledger.receipt_seq(&id).is_none()
                    })
                } else {
                    None
                };
                let appended = match next_receipt {
                    Some(receipt) => ledger
                        .append_receipt(TENANT, receipt.as_bytes(), &keys)
                        .expect("append receipt"),
                    None => {
                        // Every fourth entry is large, so that a kill can land inside its
                        // `write` and leave a torn tail; small writes are rarely torn.
                        let padding = if step % 4 == 3 {
                            "x".repeat(LARGE_ENTRY_LEN)
                        } else {
                            String::new()
                        };
                        let body = format!(
                            "{{\"padding\":\"{padding}\",\"pid\":{},\"step\":{step}}}",
                            std::process::id()
                        );
                        ledger
                            .append_evidence(
                                "test-event",
                                json::parse(body.as_bytes()).expect("JSON"),
                            )
                            .expect("append")
                    }
                };
                acknowledge(appended.seq, appended.hash);
            }
        }
        "concurrent" => {
            for step in 0..30 {
                let mut ledger = Ledger::open(&path, PROJECT).expect("open ledger");
                let body = format!("{{\"pid\":{},\"step\":{step}}}", std::process::id());
                let appended = ledger
                    .append_evidence("test-event", json::parse(body.as_bytes()).expect("JSON"))
                    .expect("append");
                drop(ledger);
                acknowledge(appended.seq, appended.hash);
            }
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

fn json_id(receipt: &str) -> String {
    match json::parse(receipt.as_bytes()) {
        Ok(json::Value::Object(object)) => match object.get("id") {
            Some(json::Value::String(id)) => id.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// A writer process and the lines it printed.
struct Writer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn start_writer(mode: &str, path: &Path, extra: &[(&str, &Path)]) -> Writer {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            "writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(MODE_VAR, mode)
        .env(PATH_VAR, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Writer { child, lines }
}

/// Collects the acknowledged (sequence, hash) pairs from a finished writer's output.
fn acknowledgements(lines: &mpsc::Receiver<String>) -> Vec<(u64, String)> {
    let mut acks = Vec::new();
    // The reader thread ends when the child's stdout closes, which disconnects the channel.
    while let Ok(line) = lines.recv() {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (seq, hash) = rest.split_once(' ').expect("ACK seq hash");
            acks.push((seq.parse().expect("sequence number"), hash.to_owned()));
        }
    }
    acks
}

/// Small deterministic generator, so that a failing run can be repeated with its seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn seed() -> u64 {
    std::env::var("MIDCORE_LEDGER_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos());
            u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1) | 1
        })
}

/// Hashes of the entries a replay accepted, by sequence number.
fn replayed_hashes(path: &Path) -> (Vec<String>, Result<(), ReplayError>) {
    let mut hashes = Vec::new();
    let result = replay(path, None, &mut |entry| {
        hashes.push(hex::encode(entry.hash()))
    })
    .map(|_| ());
    (hashes, result)
}

#[test]
fn sigkilled_writers_lose_no_acknowledged_entry() {
    let kills: u64 = std::env::var("MIDCORE_LEDGER_CRASH_KILLS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1000);
    let seed = seed();
    let mut random = XorShift(seed);
    let dir = tempfile::tempdir().expect("temporary directory");

    // Receipts for the writers, signed once up front.
    let signer = AwsSigner::generate();
    let key_path = dir.path().join("receipt.pub.pem");
    signer.write_public_pem(&key_path);
    let receipts_path = dir.path().join("receipts.jsonl");
    let receipts: Vec<String> = (0..400)
        .map(|index| {
            signer.receipt(&ReceiptFields::new(
                &format!("r-{index}"),
                "ocr.page",
                TENANT,
                5,
                1_767_225_600_000,
            ))
        })
        .collect();
    std::fs::write(&receipts_path, receipts.join("\n")).expect("write receipts");
    let extra = [
        (RECEIPTS_VAR, receipts_path.as_path()),
        (KEY_VAR, key_path.as_path()),
    ];

    let mut keys = TrustedKeys::new();
    keys.pin_key(signer.public_key().clone());
    let mut torn_tails = 0;
    let mut total_acknowledged = 0;
    for group in 0..kills.div_ceil(KILLS_PER_LEDGER) {
        let path = dir.path().join(format!("crash-{group}.ledger"));
        let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
        for kill in group * KILLS_PER_LEDGER..((group + 1) * KILLS_PER_LEDGER).min(kills) {
            // Step 1: start a writer and kill it at a random moment; a quarter of the
            // kills land anywhere from startup on, including during recovery.
            let mut writer = start_writer("crash", &path, &extra);
            if random.below(4) == 0 {
                std::thread::sleep(Duration::from_micros(random.below(20_000)));
            } else {
                // libtest prints its own lines before the child's first line.
                let ready =
                    std::iter::from_fn(|| writer.lines.recv_timeout(Duration::from_secs(30)).ok())
                        .any(|line| line == "READY");
                assert!(ready, "seed {seed}, kill {kill}: the writer did not start");
                std::thread::sleep(Duration::from_micros(random.below(20_000)));
            }
            writer.child.kill().expect("SIGKILL the writer");
            writer.child.wait().expect("reap the writer");

            // Step 2: an acknowledged entry is never replaced by another one.
            for (seq, hash) in acknowledgements(&writer.lines) {
                let previous = acknowledged.insert(seq, hash.clone());
                assert!(
                    previous.is_none_or(|old| old == hash),
                    "seed {seed}, kill {kill}: entry {seq} was acknowledged twice with different hashes"
                );
            }

            // Step 3: the file verifies up to at most a torn tail, and contains every
            // acknowledged entry. A writer killed before it created the ledger leaves
            // no file and acknowledged nothing.
            if !path.exists() {
                assert!(
                    acknowledged.is_empty(),
                    "seed {seed}, kill {kill}: the ledger disappeared"
                );
                continue;
            }
            let (hashes, result) = replayed_hashes(&path);
            match result {
                Ok(()) => {}
                Err(ReplayError::TornTail { entry, .. }) => {
                    torn_tails += 1;
                    assert_eq!(index(entry), hashes.len(), "seed {seed}, kill {kill}");
                }
                Err(error) => {
                    panic!("seed {seed}, kill {kill}: the ledger fails to verify: {error}")
                }
            }
            for (&seq, hash) in &acknowledged {
                assert_eq!(
                    hashes.get(index(seq)),
                    Some(hash),
                    "seed {seed}, kill {kill}: acknowledged entry {seq} lost"
                );
            }
        }

        // Step 4: after recovery the whole chain verifies, signatures included.
        if path.exists() {
            drop(Ledger::open(&path, PROJECT).expect("recover the ledger"));
            let summary =
                replay(&path, Some(&keys), &mut |_| {}).expect("the recovered ledger verifies");
            assert!(
                index(summary.entries) >= acknowledged.len(),
                "seed {seed}, group {group}: fewer entries than acknowledged"
            );
        }
        total_acknowledged += acknowledged.len();
    }
    eprintln!(
        "seed {seed}: {kills} kills, {total_acknowledged} acknowledged entries, {torn_tails} torn tails seen"
    );
}

#[test]
fn concurrent_writer_processes_never_fork() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("concurrent.ledger");
    let writers: Vec<Writer> = (0..2)
        .map(|_| start_writer("concurrent", &path, &[]))
        .collect();
    let mut acknowledged = BTreeMap::new();
    for mut writer in writers {
        let status = writer.child.wait().expect("wait for writer");
        assert!(status.success(), "a writer failed: {status}");
        for (seq, hash) in acknowledgements(&writer.lines) {
            assert!(
                acknowledged.insert(seq, hash).is_none(),
                "entry {seq} acknowledged to both writers"
            );
        }
    }
    let (hashes, result) = replayed_hashes(&path);
    result.expect("one valid chain");
    assert_eq!(hashes.len(), 61);
    for (seq, hash) in &acknowledged {
        assert_eq!(hashes.get(index(*seq)), Some(hash), "entry {seq}");
    }
}
