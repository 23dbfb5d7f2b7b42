//! The Key Vault keys data plane: get, create, rotate, list versions, sign, verify.
#![allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP reply, built at most once per request"
)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::{self, RsaEncoding, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hyper::StatusCode;

use super::{Call, KeyVersion, Reply, Shared, VAULT_DOMAIN, json_reply};

/// API versions the emulator accepts, as the service and its SDKs send them.
pub const API_VERSIONS: &[&str] = &["7.4", "7.5", "7.6", "2025-07-01", "2026-03-01-preview"];

/// Length of the sliding window of the Key Vault service limits.
const LIMIT_WINDOW: Duration = Duration::from_secs(10);

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

/// Key names as Key Vault allows them: 1 to 127 letters, digits and '-'.
pub fn valid_key_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn valid_version(version: &str) -> bool {
    version.len() == 32 && version.chars().all(|c| c.is_ascii_hexdigit())
}

/// Returns the token audience of the vault: `https://vault.test:PORT` for `*.vault.test`.
///
/// The port is part of the resource because clients compare the challenge's
/// authority with the request's: the Python SDK compares host and port, the
/// Rust SDK the host only, and real vaults listen on the default port.
fn resource_for(shared: &Shared, call: &Call) -> String {
    if call.host.ends_with(&format!(".{VAULT_DOMAIN}")) {
        format!("https://{VAULT_DOMAIN}:{}", shared.info.listen.port())
    } else {
        "https://vault.azure.net".to_owned()
    }
}

/// Builds the 401 reply with the Bearer challenge the vault sends.
fn challenge(shared: &Shared, call: &Call, code: &str, message: &str) -> Reply {
    let mut reply = error(StatusCode::UNAUTHORIZED, code, message);
    let resource = resource_for(shared, call);
    let value = format!(
        "Bearer authorization=\"{}/{}\", resource=\"{resource}\"",
        shared.info.authority_url, shared.info.tenant_id
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
        reply
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, value);
    }
    reply
}

struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Handles one Key Vault request.
pub(super) async fn handle(shared: &Shared, call: &Call) -> Reply {
    // 1. api-version, as the service checks it before anything else.
    match call.query("api-version") {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The 'api-version' query parameter is missing.",
            );
        }
        Some(version) if !API_VERSIONS.contains(&version) => {
            let message = format!(
                "The specified version ({version}) is not recognized. Consider using the latest supported version (2025-07-01)."
            );
            return error(StatusCode::BAD_REQUEST, "BadParameter", &message);
        }
        Some(_) => {}
    }

    // 2. Authentication: no token gets the challenge, a bad token a 401 with the challenge too.
    let Some(token) = call.bearer() else {
        shared
            .counters
            .challenges_401
            .fetch_add(1, Ordering::SeqCst);
        return challenge(
            shared,
            call,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
    };
    let reject_all = shared.mutable().faults.reject_tokens;
    let checked = if reject_all {
        Err("AKV10022: Invalid token (injected fault).".to_owned())
    } else {
        check_access_token(shared, call, token)
    };
    if let Err(reason) = checked {
        shared
            .counters
            .rejected_tokens_401
            .fetch_add(1, Ordering::SeqCst);
        return challenge(shared, call, "Unauthorized", &reason);
    }

    // 3. Counters, latency and injected faults.
    let counters = &shared.counters;
    counters.key_vault_requests.fetch_add(1, Ordering::SeqCst);
    let in_flight = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counters
        .max_in_flight
        .fetch_max(in_flight, Ordering::SeqCst);
    let _in_flight = InFlight(shared);
    let latency = {
        let mut mutable = shared.mutable();
        if let Some(remaining) = mutable.faults.revoke_tokens_after_requests {
            if remaining <= 1 {
                mutable.faults.revoke_tokens_after_requests = None;
                for issued in mutable.access_tokens.values_mut() {
                    issued.revoked = true;
                }
            } else {
                mutable.faults.revoke_tokens_after_requests = Some(remaining - 1);
            }
        }
        if let Some(remaining) = mutable.faults.reject_tokens_after_requests {
            if remaining <= 1 {
                mutable.faults.reject_tokens_after_requests = None;
                mutable.faults.reject_tokens = true;
            } else {
                mutable.faults.reject_tokens_after_requests = Some(remaining - 1);
            }
        }
        mutable.faults.latency_ms
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(reply) = injected_fault(shared) {
        return reply;
    }

    // 4. Route; empty path segments are ignored as the service ignores them.
    let segments: Vec<&str> = call
        .path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let method = call.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["keys"]) => list_keys(shared, call),
        (_, ["keys", name, ..]) if !valid_key_name(name) => error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("The request URI contains an invalid name: {name}"),
        ),
        (_, ["keys", name, ..]) if is_forbidden(shared, name) => {
            forbidden(shared, call, name, &segments)
        }
        ("GET", ["keys", name]) => get_key(shared, call, name, None),
        ("GET", ["keys", name, "versions"]) => list_versions(shared, call, name),
        ("POST", ["keys", name, "create"]) => create(shared, call, name),
        ("POST", ["keys", name, "rotate"]) => rotate(shared, call, name),
        ("POST", ["keys", name, "sign"] | ["keys", name, _, "sign"])
            if is_sign_forbidden(shared, name) =>
        {
            forbidden(shared, call, name, &segments)
        }
        ("POST", ["keys", name, "sign"]) => sign(shared, call, name, None),
        ("POST", ["keys", name, "verify"]) => verify(shared, call, name, None),
        ("GET", ["keys", name, version]) if valid_version(version) => {
            get_key(shared, call, name, Some(version))
        }
        ("POST", ["keys", name, version, "sign"]) if valid_version(version) => {
            sign(shared, call, name, Some(version))
        }
        ("POST", ["keys", name, version, "verify"]) if valid_version(version) => {
            verify(shared, call, name, Some(version))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{method} {} is not a Key Vault keys operation", call.path),
        ),
    }
}

fn check_access_token(shared: &Shared, call: &Call, token: &str) -> Result<(), String> {
    let mutable = shared.mutable();
    let Some(issued) = mutable.access_tokens.get(token) else {
        return Err(
            "AKV10032: Invalid issuer. The token was not issued by this tenant.".to_owned(),
        );
    };
    if issued.revoked {
        return Err("AKV10013: Token has been revoked.".to_owned());
    }
    if issued.expires <= super::now_unix() {
        return Err("AKV10022: Token is expired.".to_owned());
    }
    let expected = resource_for(shared, call);
    if issued.audience.trim_end_matches('/') != expected {
        return Err(format!(
            "AKV10022: Invalid audience. Expected {expected}, found: {}.",
            issued.audience
        ));
    }
    Ok(())
}

fn injected_fault(shared: &Shared) -> Option<Reply> {
    let mut mutable = shared.mutable();
    let throttled_for_period = mutable
        .throttle_until
        .is_some_and(|until| Instant::now() < until);
    if throttled_for_period || mutable.faults.throttle_next > 0 {
        if !throttled_for_period {
            mutable.faults.throttle_next -= 1;
        }
        shared.counters.injected_429.fetch_add(1, Ordering::SeqCst);
        let retry_after = mutable.faults.throttle_retry_after_secs;
        return Some(throttled(
            retry_after,
            "Operations per second limit reached (injected fault).",
        ));
    }
    if mutable.faults.bad_request_next > 0 {
        mutable.faults.bad_request_next -= 1;
        return Some(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request is invalid (injected fault).",
        ));
    }
    if mutable.faults.unavailable_next > 0 {
        mutable.faults.unavailable_next -= 1;
        shared.counters.injected_503.fetch_add(1, Ordering::SeqCst);
        let mut reply = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable (injected fault).",
        );
        if let Some(secs) = mutable.faults.unavailable_retry_after_secs {
            reply
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, secs.into());
        }
        return Some(reply);
    }
    None
}

fn throttled(retry_after: Option<u64>, detail: &str) -> Reply {
    let message = format!(
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached. {detail}"
    );
    let mut reply = error(StatusCode::TOO_MANY_REQUESTS, "Throttled", &message);
    if let Some(secs) = retry_after {
        reply
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, secs.into());
    }
    reply
}

fn is_forbidden(shared: &Shared, name: &str) -> bool {
    name.starts_with("forbidden-") || shared.mutable().faults.forbidden_keys.contains(name)
}

fn is_sign_forbidden(shared: &Shared, name: &str) -> bool {
    shared.mutable().faults.forbidden_sign_keys.contains(name)
}

fn forbidden(shared: &Shared, call: &Call, name: &str, segments: &[&str]) -> Reply {
    shared.counters.forbidden_403.fetch_add(1, Ordering::SeqCst);
    let action = match segments.last() {
        Some(&"sign") => "sign/action",
        Some(&"verify") => "verify/action",
        Some(&"create") => "create/action",
        Some(&"rotate") => "rotate/action",
        _ => "read",
    };
    let message = format!(
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid=00000000-0000-0000-0000-0000000000aa;iss=https://sts.windows.net/{}/\r\nAction: 'Microsoft.KeyVault/vaults/keys/{action}'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/microsoft.keyvault/vaults/{}/keys/{name}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {};location=emulator\r\n",
        shared.info.client_id,
        shared.info.tenant_id,
        call.host.split('.').next().unwrap_or_default(),
        call.host.split('.').next().unwrap_or_default(),
    );
    let body = serde_json::json!({"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}});
    json_reply(StatusCode::FORBIDDEN, &body)
}

fn kid(call: &Call, name: &str, version: &str) -> String {
    format!("https://{}/keys/{name}/{version}", call.host_port)
}

fn not_found(name: &str) -> Reply {
    let message = format!(
        "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
    );
    error(StatusCode::NOT_FOUND, "KeyNotFound", &message)
}

fn find_version(
    shared: &Shared,
    call: &Call,
    name: &str,
    version: Option<&str>,
) -> Result<KeyVersion, Reply> {
    let stored = shared.stored();
    let versions = stored
        .vaults
        .get(&call.host)
        .and_then(|keys| keys.get(name))
        .ok_or_else(|| not_found(name))?;
    let found = match version {
        Some(version) => versions
            .iter()
            .find(|candidate| candidate.version.eq_ignore_ascii_case(version)),
        None => versions.last(),
    };
    found
        .cloned()
        .ok_or_else(|| not_found(&format!("{name}/{}", version.unwrap_or_default())))
}

fn bundle(call: &Call, name: &str, key: &KeyVersion) -> Reply {
    match key.jwk(&kid(call, name, &key.version)) {
        Ok(jwk) => {
            let mut body = serde_json::json!({"key": jwk, "attributes": key.attributes()});
            if !key.tags.is_empty() {
                body["tags"] = serde_json::to_value(&key.tags).unwrap_or_default();
            }
            json_reply(StatusCode::OK, &body)
        }
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &format!("{err:#}"),
        ),
    }
}

fn get_key(shared: &Shared, call: &Call, name: &str, version: Option<&str>) -> Reply {
    match find_version(shared, call, name, version) {
        Ok(key) => bundle(call, name, &key),
        Err(reply) => reply,
    }
}

fn list_keys(shared: &Shared, call: &Call) -> Reply {
    let stored = shared.stored();
    let value: Vec<serde_json::Value> = stored
        .vaults
        .get(&call.host)
        .into_iter()
        .flatten()
        .filter_map(|(name, versions)| {
            let latest = versions.last()?;
            Some(serde_json::json!({"kid": format!("https://{}/keys/{name}", call.host_port), "attributes": latest.attributes()}))
        })
        .collect();
    json_reply(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

/// Lists versions, two per page, so clients must follow `nextLink`.
fn list_versions(shared: &Shared, call: &Call, name: &str) -> Reply {
    const PAGE: usize = 2;
    let stored = shared.stored();
    let Some(versions) = stored
        .vaults
        .get(&call.host)
        .and_then(|keys| keys.get(name))
    else {
        return not_found(name);
    };
    let skip: usize = call
        .query("$skiptoken")
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let value: Vec<serde_json::Value> = versions
        .iter()
        .skip(skip)
        .take(PAGE)
        .map(|key| serde_json::json!({"kid": kid(call, name, &key.version), "attributes": key.attributes()}))
        .collect();
    let next = if skip + PAGE < versions.len() {
        let api_version = call.query("api-version").unwrap_or("7.4");
        serde_json::Value::String(format!(
            "https://{}/keys/{name}/versions?api-version={api_version}&$skiptoken={}",
            call.host_port,
            skip + PAGE
        ))
    } else {
        serde_json::Value::Null
    };
    json_reply(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": next}),
    )
}

fn parse_body(call: &Call) -> Result<serde_json::Value, Reply> {
    if call.body.is_empty() {
        return Ok(serde_json::json!({}));
    }
    match serde_json::from_slice::<serde_json::Value>(&call.body) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body is not a JSON object.",
        )),
    }
}

fn create(shared: &Shared, call: &Call, name: &str) -> Reply {
    let body = match parse_body(call) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let kty = body
        .get("kty")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if kty != "RSA" && kty != "RSA-HSM" {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "Property kty has invalid value {kty:?}; the emulator supports RSA and RSA-HSM."
            ),
        );
    }
    let bits = body
        .get("key_size")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(2048);
    let bits = usize::try_from(bits).unwrap_or(0);
    if ![2048, 3072, 4096].contains(&bits) {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "Property key_size has invalid value {bits}; RSA keys are 2048, 3072 or 4096 bits."
            ),
        );
    }
    let key_ops: Vec<String> = match body.get("key_ops") {
        Some(ops) => match serde_json::from_value(ops.clone()) {
            Ok(ops) => ops,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    "Property key_ops must be an array of strings.",
                );
            }
        },
        None => [
            "encrypt",
            "decrypt",
            "sign",
            "verify",
            "wrapKey",
            "unwrapKey",
        ]
        .iter()
        .map(|op| (*op).to_owned())
        .collect(),
    };
    let attributes = body
        .get("attributes")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let mut stored = shared.stored();
    match stored.add_version(&call.host, name, kty, bits, key_ops, &attributes) {
        Ok(mut key) => {
            if let Some(tags) = body
                .get("tags")
                .and_then(|tags| serde_json::from_value(tags.clone()).ok())
            {
                key.tags = tags;
                if let Some(last) = stored
                    .vaults
                    .get_mut(&call.host)
                    .and_then(|keys| keys.get_mut(name))
                    .and_then(|versions| versions.last_mut())
                {
                    last.tags = key.tags.clone();
                }
            }
            if let Err(err) = shared.save(&stored) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &format!("{err:#}"),
                );
            }
            bundle(call, name, &key)
        }
        Err(err) => error(StatusCode::BAD_REQUEST, "BadParameter", &format!("{err:#}")),
    }
}

fn rotate(shared: &Shared, call: &Call, name: &str) -> Reply {
    let latest = match find_version(shared, call, name, None) {
        Ok(latest) => latest,
        Err(reply) => return reply,
    };
    let bits = match latest.bits() {
        Ok(bits) => bits,
        Err(err) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                &format!("{err:#}"),
            );
        }
    };
    let mut stored = shared.stored();
    match stored.add_version(
        &call.host,
        name,
        &latest.kty,
        bits,
        latest.key_ops.clone(),
        &serde_json::json!({}),
    ) {
        Ok(key) => {
            if let Err(err) = shared.save(&stored) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &format!("{err:#}"),
                );
            }
            bundle(call, name, &key)
        }
        Err(err) => error(StatusCode::BAD_REQUEST, "BadParameter", &format!("{err:#}")),
    }
}

/// Decodes base64url or standard base64, with or without padding, as the service accepts.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| STANDARD.decode(text))
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

struct Algorithm {
    encoding: &'static dyn RsaEncoding,
    verification: &'static dyn VerificationAlgorithm,
    digest: &'static digest::Algorithm,
}

fn algorithm(name: &str) -> Option<Algorithm> {
    let (encoding, verification, digest): (
        &'static dyn RsaEncoding,
        &'static dyn VerificationAlgorithm,
        _,
    ) = match name {
        "PS256" => (
            &signature::RSA_PSS_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
            &digest::SHA256,
        ),
        "PS384" => (
            &signature::RSA_PSS_SHA384,
            &signature::RSA_PSS_2048_8192_SHA384,
            &digest::SHA384,
        ),
        "PS512" => (
            &signature::RSA_PSS_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
            &digest::SHA512,
        ),
        "RS256" => (
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &digest::SHA256,
        ),
        "RS384" => (
            &signature::RSA_PKCS1_SHA384,
            &signature::RSA_PKCS1_2048_8192_SHA384,
            &digest::SHA384,
        ),
        "RS512" => (
            &signature::RSA_PKCS1_SHA512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
            &digest::SHA512,
        ),
        _ => return None,
    };
    Some(Algorithm {
        encoding,
        verification,
        digest,
    })
}

/// Checks the parts common to sign and verify and returns the key, algorithm and digest.
fn prepare(
    shared: &Shared,
    call: &Call,
    name: &str,
    version: Option<&str>,
    operation: &str,
    digest_field: &str,
) -> Result<(KeyVersion, Algorithm, Vec<u8>, serde_json::Value), Reply> {
    // 1. The key, its permitted operations and its state.
    let body = parse_body(call)?;
    let key = find_version(shared, call, name, version)?;
    if !key.key_ops.iter().any(|op| op == operation) {
        let message = format!("Operation {operation} is not allowed on this key.");
        return Err(error(StatusCode::FORBIDDEN, "Forbidden", &message));
    }
    let now = super::now_unix();
    if !key.enabled {
        let message = format!("Operation {operation} is not allowed on a disabled key.");
        return Err(error(StatusCode::FORBIDDEN, "Forbidden", &message));
    }
    if key.not_before.is_some_and(|nbf| now < nbf) || key.expires.is_some_and(|exp| now >= exp) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation is not allowed on a key that is not yet valid or has expired.",
        ));
    }

    // 2. The algorithm and a digest of its exact length.
    let alg_name = body
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let alg = algorithm(alg_name)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "BadParameter", &format!("Invalid algorithm {alg_name:?}; the emulator supports PS256, PS384, PS512, RS256, RS384 and RS512.")))?;
    let value = body
        .get(digest_field)
        .and_then(serde_json::Value::as_str)
        .and_then(decode_base64)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                &format!("Property '{digest_field}' is missing or not base64."),
            )
        })?;
    if value.len() != alg.digest.output_len() {
        let message = format!(
            "Invalid length of '{digest_field}': {} bytes; {alg_name} needs a {}-byte digest.",
            value.len(),
            alg.digest.output_len()
        );
        return Err(error(StatusCode::BAD_REQUEST, "BadParameter", &message));
    }

    // 3. The vault's per-10-second limit for this key type.
    let bits = key.bits().unwrap_or(0);
    rate_limit(shared, call, &key.kty, bits)?;
    Ok((key, alg, value, body))
}

/// Applies the documented per-vault limits for RSA operations per 10 seconds.
fn rate_limit(shared: &Shared, call: &Call, kty: &str, bits: usize) -> Result<(), Reply> {
    let hsm = kty.ends_with("-HSM");
    let limit: u32 = match (hsm, bits >= 3072) {
        (true, true) => 500,
        (true, false) => 2000,
        (false, true) => 1000,
        (false, false) => 4000,
    };
    let mut mutable = shared.mutable();
    if mutable.faults.disable_rate_limit {
        return Ok(());
    }
    let now = Instant::now();
    let window = mutable
        .rate_window
        .entry((call.host.clone(), limit))
        .or_default();
    while window
        .front()
        .is_some_and(|time| now.duration_since(*time) >= LIMIT_WINDOW)
    {
        window.pop_front();
    }
    if window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
        shared
            .counters
            .rate_limited_429
            .fetch_add(1, Ordering::SeqCst);
        return Err(throttled(
            None,
            &format!("Limit {limit} per 10 seconds for this key type."),
        ));
    }
    window.push_back(now);
    Ok(())
}

fn sign(shared: &Shared, call: &Call, name: &str, version: Option<&str>) -> Reply {
    shared.counters.sign_requests.fetch_add(1, Ordering::SeqCst);
    let (key, alg, value, _) = match prepare(shared, call, name, version, "sign", "value") {
        Ok(prepared) => prepared,
        Err(reply) => return reply,
    };
    let result = key.key_pair().and_then(|pair| {
        let digest = digest::Digest::import_less_safe(&value, alg.digest)
            .map_err(|_| anyhow::anyhow!("digest import failed"))?;
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign_digest(alg.encoding, &digest, &mut signature)
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(signature)
    });
    match result {
        Ok(signature) => {
            shared.counters.signatures.fetch_add(1, Ordering::SeqCst);
            json_reply(
                StatusCode::OK,
                &serde_json::json!({"kid": kid(call, name, &key.version), "value": URL_SAFE_NO_PAD.encode(signature)}),
            )
        }
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &format!("{err:#}"),
        ),
    }
}

fn verify(shared: &Shared, call: &Call, name: &str, version: Option<&str>) -> Reply {
    let (key, alg, digest_bytes, body) =
        match prepare(shared, call, name, version, "verify", "digest") {
            Ok(prepared) => prepared,
            Err(reply) => return reply,
        };
    let Some(signature) = body
        .get("value")
        .and_then(serde_json::Value::as_str)
        .and_then(decode_base64)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property 'value' (the signature) is missing or not base64.",
        );
    };
    let valid = key.key_pair().is_ok_and(|pair| {
        let Ok(digest) = digest::Digest::import_less_safe(&digest_bytes, alg.digest) else {
            return false;
        };
        signature::UnparsedPublicKey::new(alg.verification, pair.public_key().as_ref())
            .verify_digest(&digest, &signature)
            .is_ok()
    });
    json_reply(StatusCode::OK, &serde_json::json!({"value": valid}))
}
