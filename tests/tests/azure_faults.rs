//! How the Key Vault backend reacts to the emulator's injected faults.

mod support;

use midcore_e2e::emulator::Faults;
use support::{Fixture, KEY, json, probe, stderr, verify_all};

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(key, _)| key != name).cloned().collect();
    env.push((name.to_owned(), value.to_owned()));
    env
}

#[test]
fn throttling_without_retry_after_is_retried() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        throttle_next: 3,
        ..Faults::default()
    });
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "4"],
        &fixture.client_secret_env(),
    ));
    let pem = result["public_pem"].as_str().expect("pem");
    assert_eq!(verify_all(&result, pem), 5);
    assert_eq!(fixture.emulator.stats().injected_429, 3);
}

#[test]
fn retry_after_beyond_deadline_stops_run() {
    // With a 20 ms backoff the run would succeed at once, unless Retry-After is honoured.
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        throttle_next: 1,
        throttle_retry_after_secs: Some(120),
        ..Faults::default()
    });
    let env = with(
        &fixture.client_secret_env(),
        "MIDCORE_SIGN_DEADLINE_SECS",
        "20",
    );
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "1"],
        &env,
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains("429"), "{message}");
    assert_eq!(fixture.emulator.stats().injected_429, 1);
}

#[test]
fn short_retry_after_is_waited_out() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        throttle_next: 1,
        throttle_retry_after_secs: Some(1),
        ..Faults::default()
    });
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "2"],
        &fixture.client_secret_env(),
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(3));
    assert_eq!(fixture.emulator.stats().injected_429, 1);
}

#[test]
fn unavailable_503_is_retried() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        unavailable_next: 2,
        ..Faults::default()
    });
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "3"],
        &fixture.client_secret_env(),
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(4));
    assert_eq!(fixture.emulator.stats().injected_503, 2);
}

#[test]
fn throttling_past_deadline_fails() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        throttle_for_secs: Some(120),
        ..Faults::default()
    });
    let env = with(
        &fixture.client_secret_env(),
        "MIDCORE_SIGN_DEADLINE_SECS",
        "3",
    );
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "2"],
        &env,
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("timed out") || message.contains("kept answering 429"),
        "{message}"
    );
    assert_eq!(fixture.emulator.stats().signatures, 0);
}

#[test]
fn revoked_token_is_renewed_once() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        revoke_tokens_after_requests: Some(3),
        ..Faults::default()
    });
    let env = with(&fixture.client_secret_env(), "MIDCORE_KV_CONCURRENCY", "1");
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "8"],
        &env,
    ));
    let pem = result["public_pem"].as_str().expect("pem");
    assert_eq!(verify_all(&result, pem), 9);
    let stats = fixture.emulator.stats();
    assert_eq!(stats.token_requests, 2);
    assert!(stats.rejected_tokens_401 >= 1, "{stats:?}");
}

#[test]
fn rejected_fresh_token_is_not_retried_again() {
    // The key opens with a valid token; from then on every token is rejected,
    // so the first sign gets a 401, one fresh token, a second 401 and stops.
    let fixture = Fixture::new();
    let env = with(&fixture.client_secret_env(), "MIDCORE_KV_CONCURRENCY", "1");
    fixture.emulator.set_faults(Faults {
        reject_tokens_after_requests: Some(1),
        ..Faults::default()
    });
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "3"],
        &env,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("again after a fresh token"),
        "{}",
        stderr(&output)
    );
    let stats = fixture.emulator.stats();
    assert_eq!(stats.token_requests, 2);
    assert_eq!(stats.signatures, 0);
}

#[test]
fn forbidden_get_names_permission() {
    let fixture = Fixture::new();
    fixture
        .emulator
        .create_key("forbidden-release", 2048, &["sign", "verify"])
        .expect("key created");
    fixture.emulator.reset_stats();
    let output = probe(
        &[
            "info",
            &fixture.reference("forbidden-release"),
            "client-secret",
        ],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("keys/get"), "{message}");
    assert!(message.contains("midcore.vault.test"), "{message}");
    assert!(message.contains("forbidden-release"), "{message}");
    assert_eq!(fixture.emulator.stats().forbidden_403, 1);
}

#[test]
fn forbidden_sign_is_not_retried() {
    let fixture = Fixture::new();
    let faults = Faults {
        forbidden_sign_keys: [KEY.to_owned()].into_iter().collect(),
        ..Faults::default()
    };
    fixture.emulator.set_faults(faults);
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "1"],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("keys/sign"), "{message}");
    assert!(message.contains("Key Vault Crypto User"), "{message}");
    assert_eq!(fixture.emulator.stats().forbidden_403, 1);
}

#[test]
fn added_latency_keeps_results_in_order() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        latency_ms: 30,
        ..Faults::default()
    });
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "24"],
        &fixture.client_secret_env(),
    ));
    let pem = result["public_pem"].as_str().expect("pem");
    assert_eq!(verify_all(&result, pem), 25);
}

#[test]
fn concurrency_stays_within_setting() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        latency_ms: 30,
        ..Faults::default()
    });
    let env = with(&fixture.client_secret_env(), "MIDCORE_KV_CONCURRENCY", "4");
    json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "40"],
        &env,
    ));
    let stats = fixture.emulator.stats();
    assert!(stats.max_in_flight <= 4, "{stats:?}");
    assert!(stats.max_in_flight > 1, "{stats:?}");
}

#[test]
fn short_token_lifetime_still_signs() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        token_lifetime_secs: Some(2),
        latency_ms: 10,
        ..Faults::default()
    });
    let env = with(&fixture.client_secret_env(), "MIDCORE_KV_CONCURRENCY", "2");
    let result = json(&probe(
        &["sign", &fixture.reference(KEY), "client-secret", "6"],
        &env,
    ));
    assert_eq!(result["signatures"].as_array().map(Vec::len), Some(7));
    assert!(
        fixture.emulator.stats().token_requests > 1,
        "{:?}",
        fixture.emulator.stats()
    );
}

#[test]
fn budget_of_operations_is_respected() {
    // Three sign operations per 10 s and a 5 s deadline: the fourth would
    // have to wait for the next window, so the run stops after three.
    let fixture = Fixture::new();
    let env = with(&fixture.client_secret_env(), "MIDCORE_KV_OPS_PER_10S", "3");
    let env = with(&env, "MIDCORE_SIGN_DEADLINE_SECS", "5");
    let env = with(&env, "MIDCORE_KV_CONCURRENCY", "1");
    let output = probe(
        &["sign", &fixture.reference(KEY), "client-secret", "4"],
        &env,
    );
    assert!(
        !output.status.success(),
        "five signatures cannot fit a budget of three in 5 s"
    );
    assert!(
        stderr(&output).contains("MIDCORE_KV_OPS_PER_10S"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fixture.emulator.stats().signatures, 3);
}

#[test]
fn bad_request_is_not_retried() {
    let fixture = Fixture::new();
    fixture.emulator.set_faults(Faults {
        bad_request_next: 5,
        ..Faults::default()
    });
    let output = probe(
        &["info", &fixture.reference(KEY), "client-secret"],
        &fixture.client_secret_env(),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("400 BadParameter"), "{message}");
    assert!(message.contains("midcore.vault.test"), "{message}");
    assert_eq!(fixture.emulator.stats().key_vault_requests, 1);
}

#[test]
fn huge_deadline_is_rejected() {
    let fixture = Fixture::new();
    let env = with(
        &fixture.client_secret_env(),
        "MIDCORE_SIGN_DEADLINE_SECS",
        "18446744073709551615",
    );
    let output = probe(&["info", &fixture.reference(KEY), "client-secret"], &env);
    assert!(!output.status.success());
    assert_ne!(output.status.code(), Some(101), "the probe panicked");
    let message = stderr(&output);
    assert!(message.contains("MIDCORE_SIGN_DEADLINE_SECS="), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}
