//! Credentials chosen explicitly with `--auth`, and a wrapper that can be
//! renewed after a 401 so the next token request really reaches Entra ID.

use std::sync::{Arc, RwLock};

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzurePipelinesCredential,
    AzurePipelinesCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

/// The `--auth` values, in the order the help lists them.
pub const AUTH_MODES: &str =
    "client-secret, github-oidc, azure-pipelines, workload-identity, managed-identity, azure-cli";

/// Source of Entra ID tokens, chosen with `--auth`. There is deliberately no default chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// GitHub Actions OIDC token as a client assertion, fetched anew for every token request.
    GithubOidc,
    /// Azure DevOps workload identity federation through a service connection.
    AzurePipelines,
    /// Federated token file (`AZURE_FEDERATED_TOKEN_FILE`), as on Kubernetes.
    WorkloadIdentity,
    /// App Service, Functions or Container Apps managed identity (`IDENTITY_ENDPOINT`); never IMDS.
    ManagedIdentity,
    /// `az account get-access-token` of a signed-in Azure CLI.
    AzureCli,
}

impl AuthMode {
    /// Parses an `--auth` value.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "client-secret" => Ok(Self::ClientSecret),
            "github-oidc" => Ok(Self::GithubOidc),
            "azure-pipelines" => Ok(Self::AzurePipelines),
            "workload-identity" => Ok(Self::WorkloadIdentity),
            "managed-identity" => Ok(Self::ManagedIdentity),
            "azure-cli" => Ok(Self::AzureCli),
            other => Err(format!(
                "unknown --auth mode {other:?}; use one of: {AUTH_MODES}"
            )),
        }
    }

    /// Returns the `--auth` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client-secret",
            Self::GithubOidc => "github-oidc",
            Self::AzurePipelines => "azure-pipelines",
            Self::WorkloadIdentity => "workload-identity",
            Self::ManagedIdentity => "managed-identity",
            Self::AzureCli => "azure-cli",
        }
    }

    /// Environment variables the mode requires, checked before any request.
    pub fn required_variables(self) -> &'static [&'static str] {
        match self {
            Self::ClientSecret => &["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"],
            Self::GithubOidc => &[
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            ],
            Self::AzurePipelines => &[
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_SERVICE_CONNECTION_ID",
                "SYSTEM_ACCESSTOKEN",
                "SYSTEM_OIDCREQUESTURI",
            ],
            Self::WorkloadIdentity => &[
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_FEDERATED_TOKEN_FILE",
            ],
            Self::ManagedIdentity => &["IDENTITY_ENDPOINT", "IDENTITY_HEADER"],
            Self::AzureCli => &[],
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Reports every missing variable of `mode` at once, by name.
pub fn check_environment(mode: AuthMode) -> Result<(), String> {
    let missing: Vec<&str> = mode
        .required_variables()
        .iter()
        .copied()
        .filter(|name| env(name).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = match mode {
        AuthMode::GithubOidc if missing.iter().any(|name| name.starts_with("ACTIONS_")) => {
            " (GitHub sets ACTIONS_ID_TOKEN_REQUEST_* only for jobs with `permissions: id-token: write`)"
        }
        AuthMode::AzurePipelines if missing.contains(&"SYSTEM_ACCESSTOKEN") => {
            " (map it in the step: `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`)"
        }
        AuthMode::ManagedIdentity => {
            " (only App Service, Functions and Container Apps managed identity is supported; the instance metadata endpoint is never used)"
        }
        _ => "",
    };
    Err(format!(
        "--auth {} needs {} to be set{hint}",
        mode.as_str(),
        missing.join(", ")
    ))
}

fn required(name: &str) -> azure_core::Result<String> {
    env(name).ok_or_else(|| {
        azure_core::Error::with_message(ErrorKind::Credential, format!("{name} is not set"))
    })
}

/// Client options for every credential: our transport, and no SDK retries,
/// because the backend owns retries under its deadline.
pub fn client_options(http: &reqwest::Client) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::none(),
        ..ClientOptions::default()
    }
}

/// Reads a required secret variable and asks the CI platform to mask its value in logs.
fn required_secret(name: &str) -> azure_core::Result<String> {
    let value = required(name)?;
    mask(&value);
    Ok(value)
}

/// Asks the CI platform (GitHub Actions or Azure Pipelines) to mask `secret`
/// in every later log line; does nothing outside CI.
fn mask(secret: &str) {
    midcore_verifier::ci::CiReporter::from_env().mask(secret);
}

/// Builds a new credential for `mode`, with an empty token cache.
pub fn build(
    mode: AuthMode,
    http: &reqwest::Client,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let options = client_options(http);
    let credential: Arc<dyn TokenCredential> = match mode {
        AuthMode::ClientSecret => ClientSecretCredential::new(
            &required("AZURE_TENANT_ID")?,
            required("AZURE_CLIENT_ID")?,
            Secret::new(required_secret("AZURE_CLIENT_SECRET")?),
            Some(ClientSecretCredentialOptions {
                client_options: options,
            }),
        )?,
        AuthMode::GithubOidc => {
            let assertion = GithubOidcAssertion::from_env(http.clone())?;
            ClientAssertionCredential::new(
                required("AZURE_TENANT_ID")?,
                required("AZURE_CLIENT_ID")?,
                assertion,
                Some(ClientAssertionCredentialOptions {
                    client_options: options,
                }),
            )?
        }
        AuthMode::AzurePipelines => {
            // The SDK reads this variable itself and sends SYSTEM_ACCESSTOKEN there.
            required_https_url("SYSTEM_OIDCREQUESTURI")?;
            AzurePipelinesCredential::new(
                required("AZURE_TENANT_ID")?,
                required("AZURE_CLIENT_ID")?,
                &required("AZURE_SERVICE_CONNECTION_ID")?,
                Secret::new(required_secret("SYSTEM_ACCESSTOKEN")?),
                Some(AzurePipelinesCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: options,
                    },
                }),
            )?
        }
        AuthMode::WorkloadIdentity => {
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options,
                },
                client_id: Some(required("AZURE_CLIENT_ID")?),
                tenant_id: Some(required("AZURE_TENANT_ID")?),
                token_file_path: Some(required("AZURE_FEDERATED_TOKEN_FILE")?.into()),
            }))?
        }
        AuthMode::ManagedIdentity => {
            // ManagedIdentityCredential picks App Service when both variables are set and
            // IMDS otherwise; checking them here is what keeps IMDS out of reach.
            required("IDENTITY_ENDPOINT")?;
            required("IDENTITY_HEADER")?;
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: env("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
                client_options: options,
            }))?
        }
        AuthMode::AzureCli => AzureCliCredential::new(Some(AzureCliCredentialOptions {
            tenant_id: env("AZURE_TENANT_ID"),
            ..AzureCliCredentialOptions::default()
        }))?,
    };
    Ok(credential)
}

/// Fetches a fresh GitHub Actions OIDC token on every call, because the token
/// lives about five minutes and a long job would otherwise present an expired one.
pub struct GithubOidcAssertion {
    http: reqwest::Client,
    url: url::Url,
    request_token: Secret,
}

impl std::fmt::Debug for GithubOidcAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubOidcAssertion")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

/// Reads the URL in the environment variable `name` and requires https,
/// because the request to it carries the job's bearer token.
fn required_https_url(name: &str) -> azure_core::Result<url::Url> {
    let raw = required(name)?;
    let url = url::Url::parse(&raw).map_err(|err| {
        azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("{name} is not a valid URL: {err}"),
        )
    })?;
    if url.scheme() != "https" {
        return Err(azure_core::Error::with_message(
            ErrorKind::Credential,
            format!("{name} must use https"),
        ));
    }
    Ok(url)
}

impl GithubOidcAssertion {
    fn from_env(http: reqwest::Client) -> azure_core::Result<Self> {
        let mut url = required_https_url("ACTIONS_ID_TOKEN_REQUEST_URL")?;
        url.query_pairs_mut()
            .append_pair("audience", "api://AzureADTokenExchange");
        Ok(Self {
            http,
            url,
            request_token: Secret::new(required_secret("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?),
        })
    }
}

#[derive(serde::Deserialize)]
struct GithubTokenResponse {
    value: String,
}

#[async_trait::async_trait]
impl ClientAssertion for GithubOidcAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        let failed =
            |message: String| azure_core::Error::with_message(ErrorKind::Credential, message);
        let response = self
            .http
            .get(self.url.clone())
            .bearer_auth(self.request_token.secret())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|err| {
                failed(format!(
                    "requesting the GitHub OIDC token from {} failed: {err}",
                    self.url.host_str().unwrap_or_default()
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!(
                "the GitHub OIDC token endpoint answered {status}; check `permissions: id-token: write` and that ACTIONS_ID_TOKEN_REQUEST_TOKEN is current"
            )));
        }
        let bytes = response.bytes().await.map_err(|err| {
            failed(format!(
                "reading the GitHub OIDC token response failed: {err}"
            ))
        })?;
        let body: GithubTokenResponse = serde_json::from_slice(&bytes)
            .map_err(|err| failed(format!("the GitHub OIDC token response is invalid: {err}")))?;
        if body.value.is_empty() {
            return Err(failed(
                "the GitHub OIDC token response holds an empty token".to_owned(),
            ));
        }
        mask(&body.value);
        tracing::debug!("fetched a fresh GitHub OIDC assertion");
        Ok(body.value)
    }
}

/// A credential that can be replaced by a freshly built one. The SDK's own
/// challenge handling re-asks the same credential after a 401, which would
/// hand back the cached token; renewing discards that cache.
pub struct RenewableCredential {
    mode: AuthMode,
    http: reqwest::Client,
    current: RwLock<(u64, Arc<dyn TokenCredential>)>,
}

impl std::fmt::Debug for RenewableCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewableCredential")
            .field("mode", &self.mode)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl RenewableCredential {
    /// Builds the first credential of `mode`.
    pub fn new(mode: AuthMode, http: reqwest::Client) -> azure_core::Result<Self> {
        let first = build(mode, &http)?;
        Ok(Self {
            mode,
            http,
            current: RwLock::new((0, first)),
        })
    }

    /// Number of renewals so far; pass it to [`RenewableCredential::renew`].
    pub fn generation(&self) -> u64 {
        self.current.read().map_or(0, |current| current.0)
    }

    /// Replaces the credential unless another task already did since `seen`.
    pub fn renew(&self, seen: u64) -> azure_core::Result<()> {
        let mut current = self.current.write().map_err(|_| {
            azure_core::Error::with_message(ErrorKind::Other, "credential lock poisoned")
        })?;
        if current.0 != seen {
            return Ok(());
        }
        let fresh = build(self.mode, &self.http)?;
        *current = (seen + 1, fresh);
        tracing::debug!(
            mode = self.mode.as_str(),
            generation = seen + 1,
            "renewed the credential after a 401"
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl TokenCredential for RenewableCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let credential = {
            let current = self.current.read().map_err(|_| {
                azure_core::Error::with_message(ErrorKind::Other, "credential lock poisoned")
            })?;
            Arc::clone(&current.1)
        };
        let token = credential.get_token(scopes, options).await?;
        mask(token.token.secret());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_mode_round_trips() {
        for text in AUTH_MODES.split(", ") {
            let mode = AuthMode::parse(text).expect("listed mode parses");
            assert_eq!(mode.as_str(), text);
        }
    }

    #[test]
    fn unknown_auth_mode_lists_modes() {
        let message = AuthMode::parse("default").expect_err("no default chain");
        assert!(message.contains("client-secret"), "{message}");
    }
}
