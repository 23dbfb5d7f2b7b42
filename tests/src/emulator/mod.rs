//! Loopback emulator of Azure Key Vault (keys), the Entra ID token endpoint,
//! the GitHub Actions and Azure DevOps OIDC endpoints and the App Service
//! managed-identity endpoint, served over TLS with a generated test CA.
//!
//! It listens on loopback only and never contacts another host. Fault
//! injection is set through [`Faults`] in-process or `POST /_emulator/faults`.

mod entra;
mod store;
mod tls;
mod vault;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use store::StoredState;
pub use store::{KeyVersion, now_unix, random_hex};

/// Domain of the emulated vaults: a vault named `midcore` is `midcore.vault.test`.
pub const VAULT_DOMAIN: &str = "vault.test";
/// Host name of the emulated Entra ID authority.
pub const AUTHORITY_HOST: &str = "login.test";
/// Largest request body the emulator reads.
const MAX_BODY: usize = 1 << 20;

/// What the emulator prints as one JSON line when it is ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartupInfo {
    /// Address the emulator listens on.
    pub listen: SocketAddr,
    /// Vault URL, e.g. `https://midcore.vault.test:PORT`.
    pub vault_url: String,
    /// Key reference prefix for midcore-sign, e.g. `azure-kv://midcore.vault.test:PORT/keys/`.
    pub key_reference_prefix: String,
    /// Authority host for `AZURE_AUTHORITY_HOST`, e.g. `https://login.test:PORT`.
    pub authority_url: String,
    /// Path of the CA certificate (PEM) clients must trust.
    pub ca_cert: PathBuf,
    /// Host names clients must map to the listen address themselves.
    pub resolve: Vec<String>,
    /// Tenant id the token endpoint accepts.
    pub tenant_id: String,
    /// Client id of the emulated app registration.
    pub client_id: String,
    /// Client secret of the emulated app registration (test value).
    pub client_secret: String,
    /// What a GitHub runner puts in `ACTIONS_ID_TOKEN_REQUEST_URL`.
    pub github_oidc_url: String,
    /// What a GitHub runner puts in `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub github_oidc_token: String,
    /// What an Azure DevOps agent puts in `SYSTEM_OIDCREQUESTURI`.
    pub ado_oidc_url: String,
    /// The `System.AccessToken` the Azure DevOps OIDC endpoint accepts.
    pub ado_access_token: String,
    /// Any non-empty service connection id is accepted; this one is suggested.
    pub ado_service_connection_id: String,
    /// App Service managed identity `IDENTITY_ENDPOINT`.
    pub identity_endpoint: String,
    /// App Service managed identity `IDENTITY_HEADER`.
    pub identity_header: String,
    /// Base URL of the control interface (`/_emulator/...`).
    pub control_url: String,
}

/// Faults and settings that change how the emulator responds. Every field is
/// optional in `POST /_emulator/faults`; fields left out keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Respond to the next N authenticated Key Vault requests with 429 `Throttled`.
    pub throttle_next: u32,
    /// `Retry-After` seconds sent with injected 429s; none when absent.
    pub throttle_retry_after_secs: Option<u64>,
    /// Respond to every authenticated Key Vault request with 429 for this many seconds from now.
    pub throttle_for_secs: Option<u64>,
    /// Respond to the next N authenticated Key Vault requests with 503.
    pub unavailable_next: u32,
    /// `Retry-After` seconds sent with injected 503s; none when absent.
    pub unavailable_retry_after_secs: Option<u64>,
    /// Respond to the next N authenticated Key Vault requests with 400 `BadParameter`.
    pub bad_request_next: u32,
    /// Delay added before every Key Vault answer, in milliseconds.
    pub latency_ms: u64,
    /// Key names for which every Key Vault operation answers 403 `ForbiddenByRbac`
    /// (names starting with `forbidden-` always do).
    pub forbidden_keys: HashSet<String>,
    /// Key names for which only sign answers 403 `ForbiddenByRbac` (get still works).
    pub forbidden_sign_keys: HashSet<String>,
    /// Revoke every access token once this many more authenticated Key Vault requests arrived.
    pub revoke_tokens_after_requests: Option<u64>,
    /// Respond with 401 to every Key Vault request, even with a freshly issued token.
    pub reject_tokens: bool,
    /// Set `reject_tokens` once this many more authenticated Key Vault requests arrived.
    pub reject_tokens_after_requests: Option<u64>,
    /// Lifetime of access tokens issued from now on, in seconds (default 3599).
    pub token_lifetime_secs: Option<u64>,
    /// Lifetime of GitHub, Azure DevOps and workload identity assertions, in seconds (default 300).
    pub assertion_lifetime_secs: Option<u64>,
    /// Disable the per-vault rate limit that follows the documented Key Vault limits.
    pub disable_rate_limit: bool,
}

/// Counters of what the emulator received and answered.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub key_vault_requests: u64,
    pub sign_requests: u64,
    pub signatures: u64,
    pub token_requests: u64,
    pub assertion_requests: u64,
    pub challenges_401: u64,
    pub rejected_tokens_401: u64,
    pub injected_429: u64,
    pub rate_limited_429: u64,
    pub injected_503: u64,
    pub forbidden_403: u64,
    /// Largest number of Key Vault requests in flight at once.
    pub max_in_flight: u64,
}

#[derive(Debug, Default)]
struct Counters {
    key_vault_requests: AtomicU64,
    sign_requests: AtomicU64,
    signatures: AtomicU64,
    token_requests: AtomicU64,
    assertion_requests: AtomicU64,
    challenges_401: AtomicU64,
    rejected_tokens_401: AtomicU64,
    injected_429: AtomicU64,
    rate_limited_429: AtomicU64,
    injected_503: AtomicU64,
    forbidden_403: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        Stats {
            key_vault_requests: load(&self.key_vault_requests),
            sign_requests: load(&self.sign_requests),
            signatures: load(&self.signatures),
            token_requests: load(&self.token_requests),
            assertion_requests: load(&self.assertion_requests),
            challenges_401: load(&self.challenges_401),
            rejected_tokens_401: load(&self.rejected_tokens_401),
            injected_429: load(&self.injected_429),
            rate_limited_429: load(&self.rate_limited_429),
            injected_503: load(&self.injected_503),
            forbidden_403: load(&self.forbidden_403),
            max_in_flight: load(&self.max_in_flight),
        }
    }

    fn reset(&self) {
        for counter in [
            &self.key_vault_requests,
            &self.sign_requests,
            &self.signatures,
            &self.token_requests,
            &self.assertion_requests,
            &self.challenges_401,
            &self.rejected_tokens_401,
            &self.injected_429,
            &self.rate_limited_429,
            &self.injected_503,
            &self.forbidden_403,
            &self.max_in_flight,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
    }
}

/// An issued access token or federated assertion.
#[derive(Debug, Clone)]
struct IssuedToken {
    audience: String,
    expires: i64,
    revoked: bool,
}

#[derive(Debug, Default)]
struct Mutable {
    faults: Faults,
    throttle_until: Option<Instant>,
    access_tokens: HashMap<String, IssuedToken>,
    assertions: HashMap<String, IssuedToken>,
    /// Times of recent cryptographic operations per vault and limit class.
    rate_window: HashMap<(String, u32), VecDeque<Instant>>,
}

/// Shared state of one running emulator.
struct Shared {
    info: StartupInfo,
    stored: Mutex<StoredState>,
    state_path: PathBuf,
    mutable: Mutex<Mutable>,
    counters: Counters,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("listen", &self.info.listen)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn mutable(&self) -> MutexGuard<'_, Mutable> {
        lock(&self.mutable)
    }

    fn stored(&self) -> MutexGuard<'_, StoredState> {
        lock(&self.stored)
    }

    fn save(&self, state: &StoredState) -> anyhow::Result<()> {
        state.save(&self.state_path)
    }
}

/// Settings for [`Emulator::start`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Loopback address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the CA, identities and keys; created if missing.
    pub state_dir: PathBuf,
    /// Vault name; the vault host is `<name>.vault.test`.
    pub vault_name: String,
}

impl EmulatorConfig {
    /// Listens on 127.0.0.1 with a free port and keeps state in `state_dir`.
    pub fn loopback(state_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: state_dir.to_owned(),
            vault_name: "midcore".to_owned(),
        }
    }
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    handle: Arc<SharedHandle>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    /// Starts the emulator on its own runtime thread and returns once it listens.
    pub fn start(config: EmulatorConfig) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("azure-emulator")
            .build()
            .context("building the emulator runtime")?;
        let (listener, handle) = runtime.block_on(bind(&config))?;
        let (shutdown, stop) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&handle);
        let thread = std::thread::Builder::new()
            .name("azure-emulator-main".to_owned())
            .spawn(move || runtime.block_on(serve(listener, serving, stop)))
            .context("starting the emulator thread")?;
        Ok(Self {
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Addresses, credentials and endpoints of this emulator.
    pub fn info(&self) -> &StartupInfo {
        &self.handle.shared.info
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        apply_faults(&self.handle.shared, faults, true);
    }

    /// Current fault settings.
    pub fn faults(&self) -> Faults {
        self.handle.shared.mutable().faults.clone()
    }

    /// Counters since start or the last [`Emulator::reset_stats`].
    pub fn stats(&self) -> Stats {
        self.handle.shared.counters.snapshot()
    }

    /// Sets every counter to zero.
    pub fn reset_stats(&self) {
        self.handle.shared.counters.reset();
    }

    /// Marks every access token issued so far as revoked, so the vault answers 401.
    pub fn revoke_tokens(&self) {
        revoke_all(&self.handle.shared);
    }

    /// Creates a key (or a new version of it) with the given modulus size and operations.
    pub fn create_key(
        &self,
        name: &str,
        bits: usize,
        key_ops: &[&str],
    ) -> anyhow::Result<KeyVersion> {
        let ops = key_ops.iter().map(|op| (*op).to_owned()).collect();
        create_key(
            &self.handle.shared,
            name,
            "RSA-HSM",
            bits,
            ops,
            &serde_json::json!({}),
        )
    }

    /// Issues an access token for `resource` as the token endpoint would.
    pub fn issue_access_token(&self, resource: &str) -> (String, i64) {
        entra::issue_access_token(&self.handle.shared, resource)
    }

    /// Issues a federated assertion (a workload identity token) the token endpoint accepts.
    pub fn issue_assertion(&self, subject: &str) -> String {
        entra::issue_assertion(&self.handle.shared, subject)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds the listener and builds the shared state.
async fn bind(
    config: &EmulatorConfig,
) -> anyhow::Result<(tokio::net::TcpListener, Arc<SharedHandle>)> {
    // 1. Settings, state directory, CA and stored identities.
    if !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {} is not a loopback address; the emulator serves loopback only",
            config.listen
        );
    }
    if config.vault_name.is_empty()
        || !config
            .vault_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        anyhow::bail!(
            "invalid vault name {:?}: use letters, digits and '-'",
            config.vault_name
        );
    }
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let tls = tls::load_or_create(&config.state_dir)?;
    let (stored, state_path) = StoredState::load_or_create(&config.state_dir)?;

    // 2. The listener, and the endpoints named after its port.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let listen = listener.local_addr().context("reading the bound address")?;
    let port = listen.port();
    let vault_host = format!("{}.{VAULT_DOMAIN}", config.vault_name);
    let ip = listen.ip();
    let ip_host = if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let base = format!("https://{ip_host}:{port}");
    let info = StartupInfo {
        listen,
        vault_url: format!("https://{vault_host}:{port}"),
        key_reference_prefix: format!("azure-kv://{vault_host}:{port}/keys/"),
        authority_url: format!("https://{AUTHORITY_HOST}:{port}"),
        ca_cert: tls.ca_cert_path.clone(),
        resolve: vec![vault_host, AUTHORITY_HOST.to_owned()],
        tenant_id: stored.tenant_id.clone(),
        client_id: stored.client_id.clone(),
        client_secret: stored.client_secret.clone(),
        github_oidc_url: format!("https://{AUTHORITY_HOST}:{port}/_github/idtoken?api-version=2.0"),
        github_oidc_token: stored.github_request_token.clone(),
        ado_oidc_url: format!("https://{AUTHORITY_HOST}:{port}/_ado/oidctoken"),
        ado_access_token: stored.ado_access_token.clone(),
        ado_service_connection_id: "00000000-0000-0000-0000-00000000ad0c".to_owned(),
        identity_endpoint: format!("{base}/_msi/token"),
        identity_header: stored.identity_header.clone(),
        control_url: format!("{base}/_emulator"),
    };
    let shared = Arc::new(Shared {
        info,
        stored: Mutex::new(stored),
        state_path,
        mutable: Mutex::new(Mutable::default()),
        counters: Counters::default(),
    });
    Ok((
        listener,
        Arc::new(SharedHandle {
            shared,
            tls: tls.config,
        }),
    ))
}

/// The shared state plus the TLS configuration, as [`bind`] returns them.
struct SharedHandle {
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.fmt(f)
    }
}

/// Accepts connections until `stop` fires or its sender is dropped.
async fn serve(
    listener: tokio::net::TcpListener,
    handle: Arc<SharedHandle>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&handle.tls));
    let mut stop = stop;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&handle.shared);
        tokio::spawn(async move {
            let tls_stream = match acceptor.accept(stream).await {
                Ok(tls_stream) => tls_stream,
                Err(err) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(handle_request(shared, request).await) }
            });
            let io = hyper_util::rt::TokioIo::new(tls_stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}

/// A request with its body read.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: hyper::Method,
    /// Host name without port, lowercase.
    pub host: String,
    /// Host as sent, with port.
    pub host_port: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Call {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    reply
}

async fn handle_request(shared: Arc<Shared>, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"error": {"code": "BadParameter", "message": "request body too large or unreadable"}}),
            );
        }
    };
    let host_port = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(hyper::http::uri::Authority::as_str)
        })
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = strip_port(&host_port).to_owned();
    let query = parts
        .uri
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let call = Call {
        method: parts.method,
        host,
        host_port,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body,
    };
    tracing::debug!(method = %call.method, host = %call.host, path = %call.path, "request");

    let path = call.path.clone();
    if let Some(rest) = path.strip_prefix("/_emulator/") {
        return control(&shared, &call, rest);
    }
    if path.starts_with("/_github/") || path.starts_with("/_ado/") || path.starts_with("/_msi/") {
        return entra::federation(&shared, &call).await;
    }
    if call.host == AUTHORITY_HOST
        || path.contains("/oauth2/")
        || path.contains("/.well-known/")
        || path.contains("/discovery/")
    {
        return entra::authority(&shared, &call);
    }
    vault::handle(&shared, &call).await
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host_port.split(':').next().unwrap_or_default()
}

/// Replaces the fault settings. The `throttle_for_secs` period restarts only
/// when `restart_throttle` is set, so an unrelated update keeps it running.
fn apply_faults(shared: &Shared, faults: Faults, restart_throttle: bool) {
    let mut mutable = shared.mutable();
    if restart_throttle {
        mutable.throttle_until = faults
            .throttle_for_secs
            .map(|secs| Instant::now() + Duration::from_secs(secs));
    }
    mutable.faults = faults;
}

fn revoke_all(shared: &Shared) {
    let mut mutable = shared.mutable();
    for token in mutable.access_tokens.values_mut() {
        token.revoked = true;
    }
}

fn create_key(
    shared: &Shared,
    name: &str,
    kty: &str,
    bits: usize,
    key_ops: Vec<String>,
    attributes: &serde_json::Value,
) -> anyhow::Result<KeyVersion> {
    let vault = shared.info.resolve[0].clone();
    let mut stored = shared.stored();
    let version = stored.add_version(&vault, name, kty, bits, key_ops, attributes)?;
    shared.save(&stored)?;
    Ok(version)
}

/// Handles the control interface: `POST /_emulator/faults` (JSON [`Faults`], merged
/// field by field), `GET /_emulator/faults`, `GET /_emulator/stats`,
/// `POST /_emulator/stats/reset`, `POST /_emulator/revoke-tokens`,
/// `POST /_emulator/keys/NAME?size=3072` and `GET /_emulator/info`.
fn control(shared: &Shared, call: &Call, rest: &str) -> Reply {
    let ok = |value: serde_json::Value| json_reply(StatusCode::OK, &value);
    let bad = |message: String| {
        json_reply(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": {"code": "BadParameter", "message": message}}),
        )
    };
    match (call.method.as_str(), rest) {
        ("GET", "info") => ok(serde_json::to_value(&shared.info).unwrap_or_default()),
        ("GET", "stats") => {
            ok(serde_json::to_value(shared.counters.snapshot()).unwrap_or_default())
        }
        ("POST", "stats/reset") => {
            shared.counters.reset();
            ok(serde_json::json!({}))
        }
        ("GET", "faults") => ok(serde_json::to_value(&shared.mutable().faults).unwrap_or_default()),
        ("POST", "faults") => {
            let mut merged = serde_json::to_value(&shared.mutable().faults).unwrap_or_default();
            let update: serde_json::Value = match serde_json::from_slice(&call.body) {
                Ok(serde_json::Value::Object(update)) => serde_json::Value::Object(update),
                _ => return bad("the body must be a JSON object of fault settings".to_owned()),
            };
            if let (Some(target), Some(source)) = (merged.as_object_mut(), update.as_object()) {
                for (key, value) in source {
                    target.insert(key.clone(), value.clone());
                }
            }
            match serde_json::from_value::<Faults>(merged) {
                Ok(faults) => {
                    let restart_throttle = update.get("throttle_for_secs").is_some();
                    apply_faults(shared, faults.clone(), restart_throttle);
                    ok(serde_json::to_value(faults).unwrap_or_default())
                }
                Err(err) => bad(format!("invalid fault settings: {err}")),
            }
        }
        ("POST", "faults/clear") => {
            apply_faults(shared, Faults::default(), true);
            ok(serde_json::json!({}))
        }
        ("POST", "revoke-tokens") => {
            revoke_all(shared);
            ok(serde_json::json!({}))
        }
        ("POST", name) if name.starts_with("keys/") => {
            let name = &name["keys/".len()..];
            if !vault::valid_key_name(name) {
                return bad(format!("invalid key name {name:?}"));
            }
            let bits = call
                .query("size")
                .and_then(|size| size.parse().ok())
                .unwrap_or(3072);
            let ops = ["sign", "verify"]
                .iter()
                .map(|op| (*op).to_owned())
                .collect();
            match create_key(shared, name, "RSA-HSM", bits, ops, &serde_json::json!({})) {
                Ok(version) => ok(
                    serde_json::json!({"kid": format!("{}/keys/{name}/{}", shared.info.vault_url, version.version)}),
                ),
                Err(err) => bad(format!("{err:#}")),
            }
        }
        _ => json_reply(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "NotFound", "message": format!("no control endpoint {} /_emulator/{rest}", call.method)}}),
        ),
    }
}
