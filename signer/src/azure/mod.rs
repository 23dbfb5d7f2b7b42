//! Azure Key Vault signing backend (cargo feature `azure`).
//!
//! A run opens one [`KeyVaultBackend`]: it resolves the key version once and
//! records the versioned `kid`, reads the public key, and then signs SHA-256
//! digests with PS256 through one `KeyClient`. Every returned signature must
//! name the recorded `kid` and verify locally before it is handed back.
//!
//! The backend owns retries (the SDK's are switched off): exponential backoff
//! with jitter on 429, 503 and other transient responses, honouring
//! `Retry-After`; one credential renewal and one retry on a 401; no retry on
//! 400, 403 or 404. Everything runs under an overall deadline.

mod credential;
mod reference;
mod retry;
mod settings;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer as _;
use azure_core::http::RequestContent;
use azure_security_keyvault_keys::models::{
    Key, KeyClientGetKeyOptions, KeyClientSignOptions, KeyOperationResult, KeyType, SignParameters,
    SignatureAlgorithm,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use midcore_verifier::crypto::{PublicKey, Sha256Digest};

use crate::backend::{SignError, SigningBackend, check_signature};
use crate::keyref::{KeyInfo, OpenError};

pub use credential::{AUTH_MODES, AuthMode};
pub use reference::{KeyReference, ReferenceError, split_kid};
pub use settings::{
    BACKOFF_BASE_VAR, CA_FILE_VAR, CONCURRENCY_VAR, DEADLINE_VAR, DEFAULT_CONCURRENCY,
    DEFAULT_DEADLINE, OPS_PER_10S_VAR, RESOLVE_VAR, Settings,
};

use credential::RenewableCredential;
use retry::Failure;

/// Length of the window Key Vault counts its service limits in.
const LIMIT_WINDOW: Duration = Duration::from_secs(10);

/// Opens the Key Vault key a reference names; `auth` is the `--auth` value.
pub fn open(reference: &str, auth: Option<&str>) -> Result<Box<dyn SigningBackend>, OpenError> {
    Ok(Box::new(KeyVaultBackend::open(reference, auth)?))
}

/// Reads what Key Vault reports about the key without signing anything.
pub fn info(reference: &str, auth: Option<&str>) -> Result<KeyInfo, OpenError> {
    let backend = KeyVaultBackend::open(reference, auth)?;
    Ok(backend.key_info(reference))
}

/// Key Vault operation, named in error messages together with its permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Get,
    Sign,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Sign => "sign",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Self::Get => {
                "the keys/get permission (RBAC data action Microsoft.KeyVault/vaults/keys/read)"
            }
            Self::Sign => {
                "the keys/sign permission (RBAC data action Microsoft.KeyVault/vaults/keys/sign/action)"
            }
        }
    }
}

/// Key attributes `key info` reports.
#[derive(Debug, Clone, Default)]
struct KeyFacts {
    enabled: Option<bool>,
    expires: Option<String>,
    not_before: Option<String>,
}

/// A limit on operations started in any 10-second window, so a large batch
/// stays inside the vault's documented limits instead of provoking 429s.
#[derive(Debug)]
struct OpsWindow {
    /// Operations allowed per window; set once the key's type and size are known.
    budget: AtomicUsize,
    started: Mutex<VecDeque<Instant>>,
}

impl OpsWindow {
    /// Waits until an operation may start; `Err` when that would be at or after `deadline`.
    async fn acquire(&self, deadline: Instant) -> Result<(), Duration> {
        loop {
            let wait = {
                let mut started = self
                    .started
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                while started
                    .front()
                    .is_some_and(|time| now.duration_since(*time) >= LIMIT_WINDOW)
                {
                    started.pop_front();
                }
                if started.len() < self.budget.load(Ordering::Relaxed) {
                    started.push_back(now);
                    return Ok(());
                }
                started.front().map_or(LIMIT_WINDOW, |oldest| {
                    LIMIT_WINDOW.saturating_sub(now.duration_since(*oldest))
                })
            };
            if Instant::now() + wait >= deadline {
                return Err(wait);
            }
            tracing::debug!(
                wait_ms = wait.as_millis(),
                budget = self.budget.load(Ordering::Relaxed),
                "waiting for the Key Vault operation budget"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// Documented limit per vault and 10 seconds for RSA operations, by key type and size.
fn documented_limit(hsm: bool, bits: u32) -> u32 {
    match (hsm, bits >= 3072) {
        (true, true) => 500,
        (true, false) => 2000,
        (false, true) => 1000,
        (false, false) => 4000,
    }
}

/// State shared by every request of the run.
struct Shared {
    client: KeyClient,
    credential: Arc<RenewableCredential>,
    reference: KeyReference,
    settings: Settings,
    deadline: Instant,
    window: OpsWindow,
    retries: AtomicU64,
}

impl Shared {
    fn key_label(&self) -> String {
        match &self.reference.version {
            Some(version) => format!("{}/{version}", self.reference.name),
            None => self.reference.name.clone(),
        }
    }

    fn fatal_message(
        &self,
        operation: Operation,
        status: Option<u16>,
        code: Option<&str>,
        message: &str,
    ) -> String {
        let vault = &self.reference.host;
        let key = self.key_label();
        let op = operation.name();
        let code = code.unwrap_or("no error code");
        match status {
            Some(403) => format!(
                "Key Vault {vault} denied {op} on key {key} (403 {code}): the signing identity needs {}. Assign the role \"Key Vault Crypto User\", or a custom role with only Microsoft.KeyVault/vaults/keys/read and Microsoft.KeyVault/vaults/keys/sign/action, on the key or the vault; with access policies grant the key permissions get and sign. Key Vault said: {message}",
                operation.permission()
            ),
            Some(404) => format!(
                "key {key} was not found in Key Vault {vault} (404 {code}): check the key name and version in --key and that the key is not deleted. Key Vault said: {message}"
            ),
            Some(400) => format!(
                "Key Vault {vault} rejected {op} on key {key} as invalid (400 {code}): {message}"
            ),
            Some(other) => format!(
                "Key Vault {vault} answered {other} ({code}) to {op} on key {key}: {message}"
            ),
            None => format!("{op} on key {key} in Key Vault {vault} failed: {message}"),
        }
    }

    /// Runs one Key Vault operation with the backend's retry rules under the deadline.
    async fn call<T, F, Fut>(
        &self,
        operation: Operation,
        limited: bool,
        mut attempt_once: F,
    ) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = azure_core::Result<T>>,
    {
        let vault = &self.reference.host;
        let key = self.key_label();
        let op = operation.name();
        let mut attempts = 0u32;
        let mut connection_failures = 0u32;
        let mut renewed = false;
        loop {
            attempts += 1;
            if limited && let Err(wait) = self.window.acquire(self.deadline).await {
                let when = format!(
                    "passed while waiting {} ms for the budget of {} operations per 10 s ({OPS_PER_10S_VAR})",
                    wait.as_millis(),
                    self.window.budget.load(Ordering::Relaxed)
                );
                return Err(self.deadline_message(operation, &when));
            }
            let generation = self.credential.generation();
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(
                    self.deadline_message(operation, "passed before the request could be sent")
                );
            }
            let failure = match tokio::time::timeout(remaining, attempt_once()).await {
                Err(_) => {
                    return Err(
                        self.deadline_message(operation, "passed while waiting for Key Vault")
                    );
                }
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => retry::classify(&error),
            };
            let (delay, reason) = match failure {
                Failure::Fatal {
                    status,
                    code,
                    message,
                } => return Err(self.fatal_message(operation, status, code.as_deref(), &message)),
                Failure::Unauthorized(detail) => {
                    if renewed {
                        return Err(format!(
                            "Key Vault {vault} rejected the token for {op} on key {key} again after a fresh token was requested (401 {detail}); check that the identity belongs to the vault's tenant"
                        ));
                    }
                    renewed = true;
                    tracing::warn!(%vault, %key, operation = op, "401 from Key Vault; requesting a fresh token and retrying once");
                    self.credential.renew(generation).map_err(|err| {
                        self.fatal_message(operation, None, None, &retry::error_chain(&err))
                    })?;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Failure::Connection(message) => {
                    connection_failures += 1;
                    if connection_failures >= retry::MAX_CONNECTION_ATTEMPTS {
                        return Err(format!(
                            "cannot reach Key Vault {vault} for {op} on key {key} after {connection_failures} attempts: {message} (check the vault host, the network and, for a test vault, {CA_FILE_VAR} and {RESOLVE_VAR})"
                        ));
                    }
                    (
                        retry::backoff(self.settings.backoff_base, connection_failures, None),
                        message,
                    )
                }
                Failure::Transient {
                    status,
                    retry_after,
                    detail,
                } => {
                    if attempts >= retry::MAX_ATTEMPTS {
                        return Err(format!(
                            "Key Vault {vault} kept answering {status} to {op} on key {key} after {attempts} attempts: {detail}"
                        ));
                    }
                    (
                        retry::backoff(self.settings.backoff_base, attempts, retry_after),
                        format!("{status} {detail}"),
                    )
                }
            };
            if Instant::now() + delay >= self.deadline {
                return Err(self.deadline_message(
                    operation,
                    &format!(
                        "would pass before the next retry after {reason}, due in {} ms, could start",
                        delay.as_millis()
                    ),
                ));
            }
            tracing::warn!(%vault, %key, operation = op, attempt = attempts, delay_ms = delay.as_millis(), %reason, "retrying Key Vault request");
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }

    fn deadline_message(&self, operation: Operation, when: &str) -> String {
        format!(
            "{} on key {} in Key Vault {} timed out: the run's deadline of {} s {when} (set {DEADLINE_VAR} to change it)",
            operation.name(),
            self.key_label(),
            self.reference.host,
            self.settings.deadline.as_secs()
        )
    }
}

/// A Key Vault key opened for one signing run.
pub struct KeyVaultBackend {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    kid: String,
    public_key: PublicKey,
    facts: KeyFacts,
}

impl std::fmt::Debug for KeyVaultBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultBackend")
            .field("kid", &self.kid)
            .field("key_id", &self.public_key.key_id().to_string())
            .finish_non_exhaustive()
    }
}

impl KeyVaultBackend {
    /// Opens the key: checks `--auth` and its variables, builds one client, resolves the version.
    pub fn open(reference_text: &str, auth: Option<&str>) -> Result<Self, OpenError> {
        // 1. Reference, credential mode and settings; all checked before any request.
        let reference =
            KeyReference::parse(reference_text).map_err(|err| OpenError::Cloud(err.to_string()))?;
        let Some(auth) = auth else {
            return Err(OpenError::Cloud(format!(
                "{reference_text} needs --auth MODE to choose the credential explicitly; modes: {AUTH_MODES}"
            )));
        };
        let mode = AuthMode::parse(auth).map_err(OpenError::Cloud)?;
        credential::check_environment(mode).map_err(OpenError::Cloud)?;
        let settings = Settings::from_env().map_err(OpenError::Cloud)?;
        let deadline = Instant::now() + settings.deadline;

        // 2. One HTTP client, one credential and one KeyClient for the whole run.
        let http = settings.http_client().map_err(OpenError::Cloud)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("midcore-keyvault")
            .build()
            .map_err(|err| {
                OpenError::Cloud(format!("starting the Key Vault runtime failed: {err}"))
            })?;
        let credential = {
            let _guard = runtime.enter();
            RenewableCredential::new(mode, http.clone()).map_err(|err| {
                OpenError::Cloud(format!("--auth {auth}: {}", retry::error_chain(&err)))
            })?
        };
        let credential = Arc::new(credential);
        let options = KeyClientOptions {
            client_options: credential::client_options(&http),
            ..KeyClientOptions::default()
        };
        let client = KeyClient::new(
            &reference.vault_url(),
            Arc::clone(&credential) as Arc<dyn azure_core::credentials::TokenCredential>,
            Some(options),
        )
        .map_err(|err| {
            OpenError::Cloud(format!(
                "creating the Key Vault client for {} failed: {err}",
                reference.vault_url()
            ))
        })?;
        let shared = Arc::new(Shared {
            client,
            credential,
            reference: reference.clone(),
            settings,
            deadline,
            window: OpsWindow {
                budget: AtomicUsize::new(usize::MAX),
                started: Mutex::new(VecDeque::new()),
            },
            retries: AtomicU64::new(0),
        });

        // 3. Resolve the version once and read the public key.
        let key: Key = runtime
            .block_on(async {
                let name = shared.reference.name.clone();
                let version = shared.reference.version.clone();
                let response = shared
                    .call(Operation::Get, false, || {
                        let options = KeyClientGetKeyOptions {
                            key_version: version.clone(),
                            ..KeyClientGetKeyOptions::default()
                        };
                        let client = &shared.client;
                        let name = name.clone();
                        async move { client.get_key(&name, Some(options)).await }
                    })
                    .await?;
                response.into_model().map_err(|err| {
                    format!(
                        "the key bundle from Key Vault {} is invalid: {err}",
                        shared.reference.host
                    )
                })
            })
            .map_err(OpenError::Cloud)?;
        let (kid, public_key, facts, hsm) =
            check_key(&reference, &key).map_err(OpenError::Cloud)?;

        // 4. The operation budget: the explicit setting, else 80% of the documented limit.
        let budget = shared
            .settings
            .ops_per_10s
            .unwrap_or_else(|| documented_limit(hsm, public_key.bits()) * 4 / 5);
        shared.window.budget.store(
            usize::try_from(budget).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
        tracing::debug!(%kid, key_id = %public_key.key_id(), budget, concurrency = shared.settings.concurrency, "opened Key Vault key");
        Ok(Self {
            runtime,
            shared,
            kid,
            public_key,
            facts,
        })
    }

    /// Returns the versioned key id this run signs with.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Retries made so far in this run (throttling, server errors, renewals).
    pub fn retries(&self) -> u64 {
        self.shared.retries.load(Ordering::Relaxed)
    }

    fn key_info(&self, reference: &str) -> KeyInfo {
        let mut info = KeyInfo::of_backend(reference, self);
        info.versioned_kid = Some(self.kid.clone());
        info.enabled = self.facts.enabled;
        info.expires = self.facts.expires.clone();
        info.not_before = self.facts.not_before.clone();
        info
    }
}

/// Checks the key bundle and returns the kid, public key, attributes and whether it is HSM-backed.
fn check_key(
    reference: &KeyReference,
    key: &Key,
) -> Result<(String, PublicKey, KeyFacts, bool), String> {
    let vault = &reference.host;
    let name = &reference.name;
    let jwk = key
        .key
        .as_ref()
        .ok_or_else(|| format!("Key Vault {vault} returned no key material for {name}"))?;
    let kid = jwk
        .kid
        .clone()
        .ok_or_else(|| format!("Key Vault {vault} returned key {name} without a kid"))?;

    // 1. The kid must name the requested key and, if pinned, the requested version.
    let (kid_name, kid_version) = split_kid(&kid, &reference.host).ok_or_else(|| {
        format!(
            "Key Vault {vault} returned the kid {kid:?}, which is not a versioned key id of this vault"
        )
    })?;
    if !kid_name.eq_ignore_ascii_case(name) {
        return Err(format!(
            "Key Vault {vault} returned key {kid_name:?} when {name:?} was requested"
        ));
    }
    if let Some(version) = &reference.version
        && !kid_version.eq_ignore_ascii_case(version)
    {
        return Err(format!(
            "Key Vault {vault} returned version {kid_version} of key {name} when {version} was requested"
        ));
    }

    // 2. An enabled RSA key that allows sign and is valid now.
    let hsm = match &jwk.kty {
        Some(KeyType::Rsa) => false,
        Some(KeyType::RsaHsm) => true,
        other => {
            return Err(format!(
                "key {kid} is of type {other:?}; midcore-sign needs an RSA or RSA-HSM key (PS256)"
            ));
        }
    };
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "sign")
    {
        return Err(format!(
            "key {kid} does not allow the sign operation (key_ops {ops:?}); create it with sign among its operations"
        ));
    }
    let attributes = key.attributes.clone().unwrap_or_default();
    if attributes.enabled == Some(false) {
        return Err(format!(
            "key {kid} is disabled in Key Vault {vault}; enable it or pin another version"
        ));
    }
    let now = azure_core::time::OffsetDateTime::now_utc();
    if let Some(expires) = attributes.expires
        && expires <= now
    {
        return Err(format!(
            "key {kid} expired at {}; rotate the key or pin a valid version",
            azure_core::time::to_rfc3339(&expires)
        ));
    }
    if let Some(not_before) = attributes.not_before
        && not_before > now
    {
        return Err(format!(
            "key {kid} is not valid before {}",
            azure_core::time::to_rfc3339(&not_before)
        ));
    }

    // 3. The public key, through the verifier's own checks (RSA 2048 to 8192 bits).
    let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
        return Err(format!(
            "Key Vault {vault} returned key {kid} without its modulus or exponent"
        ));
    };
    let components = aws_lc_rs::rsa::PublicKeyComponents {
        n: n.as_slice(),
        e: e.as_slice(),
    };
    let spki = components
        .as_der()
        .map_err(|_| format!("the public key of {kid} is not a valid RSA key"))?;
    let public_key = PublicKey::from_spki_der(spki.as_ref())
        .map_err(|err| format!("the public key of {kid} is rejected: {err}"))?;
    let facts = KeyFacts {
        enabled: attributes.enabled,
        expires: attributes
            .expires
            .as_ref()
            .map(azure_core::time::to_rfc3339),
        not_before: attributes
            .not_before
            .as_ref()
            .map(azure_core::time::to_rfc3339),
    };
    Ok((kid, public_key, facts, hsm))
}

/// Signs one digest, checks the returned kid and verifies the signature.
async fn sign_one(
    shared: Arc<Shared>,
    kid: Arc<str>,
    public_key: Arc<PublicKey>,
    digest: Sha256Digest,
) -> Result<Vec<u8>, SignError> {
    let failed = |reason: String| SignError::Backend {
        key: kid.to_string(),
        reason,
    };
    let Some((_, version)) = split_kid(&kid, &shared.reference.host) else {
        return Err(failed("the recorded kid has no version".to_owned()));
    };
    let version = version.to_owned();
    let name = shared.reference.name.clone();
    let response = shared
        .call(Operation::Sign, true, || {
            let parameters = SignParameters {
                algorithm: Some(SignatureAlgorithm::Ps256),
                value: Some(digest.to_vec()),
            };
            let options = KeyClientSignOptions {
                key_version: Some(version.clone()),
                ..KeyClientSignOptions::default()
            };
            let client = &shared.client;
            let name = name.clone();
            async move {
                let content: RequestContent<SignParameters> = parameters.try_into()?;
                client.sign(&name, content, Some(options)).await
            }
        })
        .await
        .map_err(failed)?;
    let result: KeyOperationResult = response
        .into_model()
        .map_err(|err| failed(format!("the sign response is invalid: {err}")))?;
    match result.kid.as_deref() {
        Some(returned) if returned == &*kid => {}
        Some(returned) => {
            return Err(failed(format!(
                "Key Vault signed with {returned}, not with the recorded {kid}; nothing was written"
            )));
        }
        None => {
            return Err(failed(
                "the sign response names no kid; nothing was written".to_owned(),
            ));
        }
    }
    let signature = result
        .result
        .ok_or_else(|| failed("the sign response holds no signature".to_owned()))?;
    check_signature(&public_key, &kid, &digest, &signature)?;
    Ok(signature)
}

impl SigningBackend for KeyVaultBackend {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn describe(&self) -> String {
        self.kid.clone()
    }

    fn sign_digests(&self, digests: &[Sha256Digest]) -> Result<Vec<Vec<u8>>, SignError> {
        let started = Instant::now();
        let kid: Arc<str> = Arc::from(self.kid.as_str());
        let public_key = Arc::new(self.public_key.clone());
        let concurrency = self.shared.settings.concurrency.max(1);
        let results = self.runtime.block_on(async {
            let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
            let mut tasks = tokio::task::JoinSet::new();
            for (index, digest) in digests.iter().enumerate() {
                let shared = Arc::clone(&self.shared);
                let kid = Arc::clone(&kid);
                let public_key = Arc::clone(&public_key);
                let permits = Arc::clone(&permits);
                let digest = *digest;
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (index, sign_one(shared, kid, public_key, digest).await)
                });
            }
            let mut signatures: Vec<Option<Vec<u8>>> = vec![None; digests.len()];
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((index, Ok(signature))) => signatures[index] = Some(signature),
                    Ok((_, Err(error))) => {
                        tasks.abort_all();
                        return Err(error);
                    }
                    Err(join_error) => {
                        tasks.abort_all();
                        return Err(SignError::Backend {
                            key: kid.to_string(),
                            reason: format!("a signing task failed: {join_error}"),
                        });
                    }
                }
            }
            Ok(signatures)
        })?;
        let signatures: Option<Vec<Vec<u8>>> = results.into_iter().collect();
        let signatures = signatures.ok_or_else(|| SignError::Backend {
            key: self.kid.clone(),
            reason: "a signature is missing".to_owned(),
        })?;
        tracing::debug!(
            count = digests.len(),
            elapsed_ms = started.elapsed().as_millis(),
            retries = self.retries(),
            "signed digests with Key Vault"
        );
        Ok(signatures)
    }
}
