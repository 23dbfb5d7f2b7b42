//! The ledger's append rules through the library API: one entry per receipt
//! id, one tenant, one project, only verified receipts, one writer.

mod ledger_support;

use std::path::PathBuf;
use std::time::Duration;

use ledger_support::{AwsSigner, ReceiptFields};
use midcore_verifier::crypto::TrustedKeys;
use midcore_verifier::json;
use midcore_verifier::ledger::{Domain, EntryProblem, Ledger, LedgerError, replay};

struct Setup {
    dir: tempfile::TempDir,
    signer: AwsSigner,
    keys: TrustedKeys,
}

impl Setup {
    fn new() -> Self {
        let signer = AwsSigner::generate();
        let mut keys = TrustedKeys::new();
        keys.pin_key(signer.public_key().clone());
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            signer,
            keys,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("project.ledger")
    }

    fn receipt(&self, id: &str, tenant: &str) -> String {
        self.signer.receipt(&ReceiptFields::new(
            id,
            "transcribe.minute",
            tenant,
            250,
            1_767_225_600_000,
        ))
    }
}

#[test]
fn new_ledger_has_genesis_entry() {
    let setup = Setup::new();
    let ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger.project(), "project-1");
}

#[test]
fn receipt_appended_and_replayed() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let appended = ledger
        .append_receipt(
            "tenant-a",
            setup.receipt("r-1", "tenant-a").as_bytes(),
            &setup.keys,
        )
        .expect("append");
    drop(ledger);
    let mut domains = Vec::new();
    let summary = replay(&setup.path(), Some(&setup.keys), &mut |entry| {
        domains.push(entry.domain())
    })
    .expect("replay");
    assert_eq!(summary.head, appended.hash);
    assert_eq!(domains, vec![Domain::System, Domain::Billing]);
}

#[test]
fn duplicate_receipt_rejected() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let receipt = setup.receipt("r-1", "tenant-a");
    ledger
        .append_receipt("tenant-a", receipt.as_bytes(), &setup.keys)
        .expect("first append");
    let error = ledger
        .append_receipt("tenant-a", receipt.as_bytes(), &setup.keys)
        .expect_err("replay must be rejected");
    assert!(
        matches!(error, LedgerError::DuplicateReceipt { seq: 1, .. }),
        "{error}"
    );
}

#[test]
fn duplicate_rejected_after_reopen() {
    let setup = Setup::new();
    let receipt = setup.receipt("r-1", "tenant-a");
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    ledger
        .append_receipt("tenant-a", receipt.as_bytes(), &setup.keys)
        .expect("first append");
    drop(ledger);
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("reopen ledger");
    let error = ledger
        .append_receipt("tenant-a", receipt.as_bytes(), &setup.keys)
        .expect_err("replay must be rejected");
    assert!(
        matches!(error, LedgerError::DuplicateReceipt { .. }),
        "{error}"
    );
}

#[test]
fn receipt_for_other_tenant_rejected() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    ledger
        .append_receipt(
            "tenant-a",
            setup.receipt("r-1", "tenant-a").as_bytes(),
            &setup.keys,
        )
        .expect("first append");
    let error = ledger
        .append_receipt(
            "tenant-b",
            setup.receipt("r-2", "tenant-b").as_bytes(),
            &setup.keys,
        )
        .expect_err("the ledger belongs to tenant-a");
    assert!(
        matches!(error, LedgerError::TenantMismatch { .. }),
        "{error}"
    );
}

#[test]
fn receipt_not_matching_tenant_argument_rejected() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let error = ledger
        .append_receipt(
            "tenant-a",
            setup.receipt("r-1", "tenant-b").as_bytes(),
            &setup.keys,
        )
        .expect_err("the receipt is for tenant-b");
    assert!(matches!(error, LedgerError::WrongTenant { .. }), "{error}");
}

#[test]
fn tenant_survives_reopen() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    ledger
        .append_receipt(
            "tenant-a",
            setup.receipt("r-1", "tenant-a").as_bytes(),
            &setup.keys,
        )
        .expect("append");
    drop(ledger);
    let ledger = Ledger::open(&setup.path(), "project-1").expect("reopen");
    assert_eq!(ledger.tenant(), Some("tenant-a"));
}

#[test]
fn unsigned_receipt_rejected_and_not_written() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let forged = setup
        .receipt("r-1", "tenant-a")
        .replace("\"actual_cents\":250", "\"actual_cents\":1");
    let error = ledger
        .append_receipt("tenant-a", forged.as_bytes(), &setup.keys)
        .expect_err("forged receipt");
    assert!(matches!(error, LedgerError::Receipt { .. }), "{error}");
    assert_eq!(ledger.len(), 1);
}

#[test]
fn other_project_rejected() {
    let setup = Setup::new();
    drop(Ledger::open(&setup.path(), "project-1").expect("create ledger"));
    let error = Ledger::open(&setup.path(), "project-2").expect_err("ledger belongs to project-1");
    assert!(
        matches!(error, LedgerError::ProjectMismatch { .. }),
        "{error}"
    );
}

#[test]
fn invalid_project_id_rejected() {
    let setup = Setup::new();
    let error =
        Ledger::open(&setup.path(), "bad\nproject").expect_err("control character in project id");
    assert!(
        matches!(error, LedgerError::InvalidProject { .. }),
        "{error}"
    );
}

#[test]
fn evidence_appended_as_system_entry() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let body = json::parse(br#"{"path":"resources/app.asar","expected":"ab","found":"cd"}"#)
        .expect("valid JSON");
    ledger
        .append_evidence("integrity-drift", body.clone())
        .expect("append evidence");
    drop(ledger);
    let mut bodies = Vec::new();
    replay(&setup.path(), None, &mut |entry| {
        if entry.kind() == "integrity-drift" {
            bodies.push(entry.body().clone());
        }
    })
    .expect("replay");
    assert_eq!(bodies, vec![body]);
}

#[test]
fn invalid_evidence_kind_rejected() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    for kind in ["", "Drift", "drift finding", "x".repeat(65).as_str()] {
        let error = ledger
            .append_evidence(kind, json::Value::Null)
            .expect_err("invalid kind");
        assert!(
            matches!(error, LedgerError::InvalidKind { .. }),
            "{kind:?}: {error}"
        );
    }
}

#[test]
fn second_genesis_rejected() {
    let setup = Setup::new();
    let mut ledger = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let body = json::parse(br#"{"format":1,"project":"project-2"}"#).expect("valid JSON");
    let error = ledger
        .append_evidence("ledger-created", body)
        .expect_err("only entry 0 is a genesis entry");
    let LedgerError::Rejected { problem, .. } = &error else {
        panic!("expected a rejected entry, found {error}")
    };
    assert!(matches!(**problem, EntryProblem::Genesis { .. }), "{error}");
}

#[test]
fn second_writer_waits_for_lock() {
    let setup = Setup::new();
    let first = Ledger::open(&setup.path(), "project-1").expect("create ledger");
    let error = Ledger::open_with_timeout(&setup.path(), "project-1", Duration::from_millis(100))
        .expect_err("the first writer holds the lock");
    assert!(matches!(error, LedgerError::Locked { .. }), "{error}");
    drop(first);
    assert!(
        Ledger::open_with_timeout(&setup.path(), "project-1", Duration::from_millis(100)).is_ok()
    );
}

#[test]
fn concurrent_writer_threads_keep_one_chain() {
    let setup = Setup::new();
    let path = setup.path();
    drop(Ledger::open(&path, "project-1").expect("create ledger"));
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let path = &path;
            scope.spawn(move || {
                for index in 0..40 {
                    let mut ledger = Ledger::open(path, "project-1").expect("open under the lock");
                    let body = json::parse(
                        format!("{{\"writer\":{writer},\"index\":{index}}}").as_bytes(),
                    )
                    .expect("JSON");
                    ledger.append_evidence("test-event", body).expect("append");
                }
            });
        }
    });
    let summary = replay(&path, None, &mut |_| {}).expect("one valid chain");
    assert_eq!(summary.entries, 81);
}
