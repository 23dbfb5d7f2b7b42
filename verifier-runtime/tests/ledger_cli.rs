//! `midcore-verify ledger` end to end: receipts signed by OpenSSL are
//! appended, replayed, reported by month and exported; refusals exit 1 with
//! a reason.

mod ledger_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ledger_support::{OpensslKey, ReceiptFields, path_str, verifier_bin};

const PROJECT: &str = "desktop-app";
const TENANT: &str = "tenant-7";

/// 2026-01-15T12:00:00Z, 2026-02-01T00:00:00Z and 2026-01-31T23:59:59.999Z in milliseconds.
const JAN_15: i64 = 1_768_478_400_000;
const FEB_1: i64 = 1_769_904_000_000;
const JAN_31_LAST_MS: i64 = FEB_1 - 1;

struct Fixture {
    dir: tempfile::TempDir,
    key: OpensslKey,
    rotated: OpensslKey,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = OpensslKey::generate(dir.path(), "backend", 3072);
        let rotated = OpensslKey::generate(dir.path(), "backend-next", 2048);
        Self { dir, key, rotated }
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("desktop-app.ledger")
    }

    fn receipt_file(&self, fields: &ReceiptFields, key: &OpensslKey) -> PathBuf {
        let path = self.dir.path().join(format!("{}.json", fields.id));
        std::fs::write(
            &path,
            fields.to_json(&key.sign(&fields.signed_bytes()), None),
        )
        .expect("write receipt");
        path
    }

    fn append(&self, receipt: &Path, tenant: &str) -> Output {
        append_to(
            &self.ledger(),
            tenant,
            receipt,
            &[&self.key.public_pem, &self.rotated.public_pem],
        )
    }

    fn verify(&self, file: &Path) -> Output {
        run(&[
            "ledger",
            "verify",
            path_str(file),
            "--receipt-key",
            path_str(&self.key.public_pem),
            "--receipt-key",
            path_str(&self.rotated.public_pem),
        ])
    }

    /// Appends the standard set of receipts: three in January, two in February.
    fn populate(&self) {
        let receipts = [
            (
                ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
                &self.key,
            ),
            (
                ReceiptFields::new("r-2", "ocr.page", TENANT, 75, JAN_31_LAST_MS),
                &self.key,
            ),
            (
                ReceiptFields::new("r-3", "translate.kchar", TENANT, 1_000, JAN_15 + 1),
                &self.rotated,
            ),
            (
                ReceiptFields::new("r-4", "ocr.page", TENANT, 300, FEB_1),
                &self.rotated,
            ),
            (
                ReceiptFields::new("r-5", "translate.kchar", TENANT, -200, FEB_1 + 10),
                &self.key,
            ),
        ];
        for (fields, key) in receipts {
            let output = self.append(&self.receipt_file(&fields, key), TENANT);
            assert!(
                output.status.success(),
                "append {}: {}",
                fields.id,
                stderr(&output)
            );
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(verifier_bin())
        .args(args)
        .output()
        .expect("run midcore-verify")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn report_json(file: &Path, month: &str) -> midcore_verifier::json::Value {
    let output = run(&[
        "ledger",
        "report",
        path_str(file),
        "--month",
        month,
        "--json",
    ]);
    assert!(output.status.success(), "report: {}", stderr(&output));
    midcore_verifier::json::parse(stdout(&output).trim().as_bytes()).expect("report is JSON")
}

fn member<'a>(
    value: &'a midcore_verifier::json::Value,
    path: &[&str],
) -> &'a midcore_verifier::json::Value {
    path.iter().fold(value, |value, name| match value {
        midcore_verifier::json::Value::Object(object) => object.get(*name).expect("member present"),
        _ => panic!("{name} is not in an object"),
    })
}

fn integer(value: &midcore_verifier::json::Value) -> i64 {
    match value {
        midcore_verifier::json::Value::Number(number) => number.as_i64().expect("integer"),
        other => panic!("expected a number, found {other:?}"),
    }
}

#[test]
fn openssl_ledger_verifies() {
    let fixture = Fixture::new();
    fixture.populate();
    let output = fixture.verify(&fixture.ledger());
    assert!(output.status.success(), "verify: {}", stderr(&output));
    assert!(
        stdout(&output).contains("6 entries, 5 receipts"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn monthly_totals_are_correct() {
    let fixture = Fixture::new();
    fixture.populate();
    let january = report_json(&fixture.ledger(), "2026-01");
    assert_eq!(integer(member(&january, &["total", "actual_cents"])), 1_200);
    assert_eq!(integer(member(&january, &["total", "count"])), 3);
    let february = report_json(&fixture.ledger(), "2026-02");
    assert_eq!(integer(member(&february, &["total", "actual_cents"])), 100);
    assert_eq!(integer(member(&february, &["total", "count"])), 2);
}

#[test]
fn monthly_report_splits_operations() {
    let fixture = Fixture::new();
    fixture.populate();
    let january = report_json(&fixture.ledger(), "2026-01");
    let midcore_verifier::json::Value::Array(operations) = member(&january, &["operations"]) else {
        panic!("operations is an array")
    };
    let totals: Vec<(String, i64, i64)> = operations
        .iter()
        .map(|item| {
            let midcore_verifier::json::Value::String(name) = member(item, &["operation"]) else {
                panic!("name")
            };
            (
                name.clone(),
                integer(member(item, &["count"])),
                integer(member(item, &["actual_cents"])),
            )
        })
        .collect();
    assert_eq!(
        totals,
        vec![
            ("ocr.page".to_owned(), 2, 200),
            ("translate.kchar".to_owned(), 1, 1_000)
        ]
    );
}

#[test]
fn empty_month_reports_zero() {
    let fixture = Fixture::new();
    fixture.populate();
    let march = report_json(&fixture.ledger(), "2026-03");
    assert_eq!(integer(member(&march, &["total", "count"])), 0);
}

#[test]
fn text_report_shows_total() {
    let fixture = Fixture::new();
    fixture.populate();
    let output = run(&[
        "ledger",
        "report",
        path_str(&fixture.ledger()),
        "--month",
        "2026-01",
    ]);
    let text = stdout(&output);
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["total", "3", "1200"]),
        "{text}"
    );
}

#[test]
fn export_verifies_and_reports() {
    let fixture = Fixture::new();
    fixture.populate();
    let export = fixture.dir.path().join("audit.jsonl");
    let output = run(&[
        "ledger",
        "export",
        path_str(&fixture.ledger()),
        "--out",
        path_str(&export),
    ]);
    assert!(output.status.success(), "export: {}", stderr(&output));
    let verified = fixture.verify(&export);
    assert!(
        verified.status.success(),
        "verify export: {}",
        stderr(&verified)
    );
    let january = report_json(&export, "2026-01");
    assert_eq!(integer(member(&january, &["total", "actual_cents"])), 1_200);
}

#[test]
fn edited_export_names_the_entry() {
    let fixture = Fixture::new();
    fixture.populate();
    let export = fixture.dir.path().join("audit.jsonl");
    assert!(
        run(&[
            "ledger",
            "export",
            path_str(&fixture.ledger()),
            "--out",
            path_str(&export)
        ])
        .status
        .success()
    );
    let text = std::fs::read_to_string(&export).expect("read export");
    std::fs::write(
        &export,
        text.replacen("\"actual_cents\":1000", "\"actual_cents\":10", 1),
    )
    .expect("edit export");
    let output = fixture.verify(&export);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("entry 3 at line 5"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn duplicate_receipt_exits_1() {
    let fixture = Fixture::new();
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &fixture.key,
    );
    assert!(fixture.append(&receipt, TENANT).status.success());
    let output = fixture.append(&receipt, TENANT);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("already recorded in entry 1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn wrong_tenant_exits_1() {
    let fixture = Fixture::new();
    let first = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &fixture.key,
    );
    assert!(fixture.append(&first, TENANT).status.success());
    let other = fixture.receipt_file(
        &ReceiptFields::new("r-2", "ocr.page", "tenant-8", 125, JAN_15),
        &fixture.key,
    );
    let output = fixture.append(&other, "tenant-8");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("belongs to tenant \"tenant-7\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unpinned_signer_exits_1() {
    let fixture = Fixture::new();
    let stranger = OpensslKey::generate(fixture.dir.path(), "stranger", 2048);
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &stranger,
    );
    let output = fixture.append(&receipt, TENANT);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("verifies under none of the 2 pinned receipt keys"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn rejected_receipt_creates_no_ledger() {
    let fixture = Fixture::new();
    let stranger = OpensslKey::generate(fixture.dir.path(), "stranger", 2048);
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &stranger,
    );
    assert_eq!(fixture.append(&receipt, TENANT).status.code(), Some(1));
    assert!(!fixture.ledger().exists());
}

#[test]
fn ambiguous_receipt_exits_1() {
    let fixture = Fixture::new();
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r|1", "ocr.page", TENANT, 125, JAN_15),
        &fixture.key,
    );
    let output = fixture.append(&receipt, TENANT);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("receipt field id"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn verify_names_first_bad_entry() {
    let fixture = Fixture::new();
    fixture.populate();
    let mut bytes = std::fs::read(fixture.ledger()).expect("read ledger");
    let position = bytes
        .windows(5)
        .position(|window| window == b"r-2\",")
        .expect("receipt r-2 in the file");
    bytes[position] = b's';
    std::fs::write(fixture.ledger(), bytes).expect("write ledger");
    let output = fixture.verify(&fixture.ledger());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("entry 2 at byte offset"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn verify_json_names_first_bad_entry() {
    let fixture = Fixture::new();
    fixture.populate();
    let mut bytes = std::fs::read(fixture.ledger()).expect("read ledger");
    let position = bytes
        .windows(5)
        .position(|window| window == b"r-4\",")
        .expect("receipt r-4 in the file");
    bytes[position] = b's';
    std::fs::write(fixture.ledger(), bytes).expect("write ledger");
    let output = run(&[
        "ledger",
        "verify",
        path_str(&fixture.ledger()),
        "--receipt-key",
        path_str(&fixture.key.public_pem),
        "--receipt-key",
        path_str(&fixture.rotated.public_pem),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let result =
        midcore_verifier::json::parse(stdout(&output).trim().as_bytes()).expect("JSON output");
    assert_eq!(integer(member(&result, &["first_bad_entry"])), 4);
}

#[test]
fn verify_requires_receipt_key() {
    let fixture = Fixture::new();
    fixture.populate();
    let output = run(&["ledger", "verify", path_str(&fixture.ledger())]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn key_id_for_receipt_key_exits_2() {
    let fixture = Fixture::new();
    let key_id_file = fixture.dir.path().join("key-id.txt");
    std::fs::write(&key_id_file, fixture.key.public_key().key_id().to_string())
        .expect("write key id");
    let output = run(&[
        "ledger",
        "verify",
        path_str(&fixture.ledger()),
        "--receipt-key",
        path_str(&key_id_file),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--receipt-key takes a public-key PEM file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_ledger_exits_2() {
    let fixture = Fixture::new();
    let missing = fixture.dir.path().join("no-such.ledger");
    let output = fixture.verify(&missing);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such.ledger: failed to read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_receipt_key_file_exits_2() {
    let fixture = Fixture::new();
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &fixture.key,
    );
    let missing_key = fixture.dir.path().join("no-such-key.pem");
    let output = append_to(&fixture.ledger(), TENANT, &receipt, &[&missing_key]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such-key.pem: failed to open"),
        "{}",
        stderr(&output)
    );
    assert!(!fixture.ledger().exists());
}

#[cfg(unix)]
#[test]
fn export_never_follows_planted_temporary_files() {
    let fixture = Fixture::new();
    fixture.populate();
    let victim = fixture.dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious data\n").expect("write victim");
    let out = fixture.dir.path().join("audit.jsonl");
    for temporary in ["audit.jsonl.entries.tmp", "audit.jsonl.tmp"] {
        let planted = fixture.dir.path().join(temporary);
        std::os::unix::fs::symlink(&victim, &planted).expect("plant symlink");
        let output = run(&[
            "ledger",
            "export",
            path_str(&fixture.ledger()),
            "--out",
            path_str(&out),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(
            std::fs::read(&victim).expect("read victim"),
            b"precious data\n"
        );
        assert!(!planted.exists(), "{temporary} left behind");
        assert!(
            !std::fs::symlink_metadata(&out)
                .expect("export written")
                .file_type()
                .is_symlink()
        );
        assert!(fixture.verify(&out).status.success());
    }
}

#[cfg(unix)]
#[test]
fn export_rejects_fifo_and_folder_without_leftovers() {
    let fixture = Fixture::new();
    fixture.populate();
    let fifo_out = fixture.dir.path().join("fifo.jsonl");
    let made = std::process::Command::new("mkfifo")
        .arg(fixture.dir.path().join("fifo.jsonl.tmp"))
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let output = run(&[
        "ledger",
        "export",
        path_str(&fixture.ledger()),
        "--out",
        path_str(&fifo_out),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    let folder_out = fixture.dir.path().join("folder.jsonl");
    std::fs::create_dir(&folder_out).expect("make folder");
    let output = run(&[
        "ledger",
        "export",
        path_str(&fixture.ledger()),
        "--out",
        path_str(&folder_out),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("folder.jsonl: failed to write"),
        "{}",
        stderr(&output)
    );
    for leftover in ["folder.jsonl.tmp", "folder.jsonl.entries.tmp"] {
        assert!(
            !fixture.dir.path().join(leftover).exists(),
            "{leftover} left behind"
        );
    }
}

#[test]
fn append_into_missing_folder_names_it() {
    let fixture = Fixture::new();
    let receipt = fixture.receipt_file(
        &ReceiptFields::new("r-1", "ocr.page", TENANT, 125, JAN_15),
        &fixture.key,
    );
    let missing = fixture.dir.path().join("no-such-folder/app.ledger");
    let output = append_to(&missing, TENANT, &receipt, &[&fixture.key.public_pem]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such-folder is not an existing folder"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains(".lock"), "{}", stderr(&output));
}

/// Runs `ledger append` on `ledger` for project `PROJECT` with the given receipt keys.
fn append_to(ledger: &Path, tenant: &str, receipt: &Path, keys: &[&Path]) -> Output {
    let mut args = vec![
        "ledger",
        "append",
        path_str(ledger),
        "--project",
        PROJECT,
        "--tenant",
        tenant,
        "--receipt",
        path_str(receipt),
    ];
    for key in keys {
        args.push("--receipt-key");
        args.push(path_str(key));
    }
    run(&args)
}
