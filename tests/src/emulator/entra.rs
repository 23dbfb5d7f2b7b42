//! Entra ID authority (OpenID discovery and the v2.0 token endpoint) and the
//! endpoints that hand out federated assertions or tokens: GitHub Actions OIDC,
//! Azure DevOps OIDC and App Service managed identity.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::StatusCode;

use super::{Call, IssuedToken, Reply, Shared, json_reply, now_unix, random_hex};

const DEFAULT_TOKEN_LIFETIME: u64 = 3599;
const DEFAULT_ASSERTION_LIFETIME: u64 = 300;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Reply {
    let description = format!("AADSTS{code}: {description}");
    json_reply(
        status,
        &serde_json::json!({"error": error, "error_description": description, "error_codes": [code], "timestamp": "", "trace_id": random_hex(8), "correlation_id": random_hex(8)}),
    )
}

/// Builds a JWT-shaped token. The signature part is random: only the emulator checks
/// these tokens, by looking them up, never by signature.
fn jwt(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"emulator"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.{}", URL_SAFE_NO_PAD.encode(random_hex(32)))
}

fn lifetime(value: Option<u64>, default: u64) -> i64 {
    i64::try_from(value.unwrap_or(default)).unwrap_or(i64::MAX)
}

/// Issues an access token for `resource` and returns it with its lifetime in seconds.
pub(super) fn issue_access_token(shared: &Shared, resource: &str) -> (String, i64) {
    let seconds = lifetime(
        shared.mutable().faults.token_lifetime_secs,
        DEFAULT_TOKEN_LIFETIME,
    );
    let now = now_unix();
    let claims = serde_json::json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", shared.info.tenant_id),
        "tid": shared.info.tenant_id,
        "appid": shared.info.client_id,
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "iat": now, "nbf": now, "exp": now + seconds,
        "jti": random_hex(8),
    });
    let token = jwt(&claims);
    let issued = IssuedToken {
        audience: resource.to_owned(),
        expires: now + seconds,
        revoked: false,
    };
    shared.mutable().access_tokens.insert(token.clone(), issued);
    (token, seconds)
}

/// Issues a federated assertion for the token endpoint's `client_assertion`.
pub(super) fn issue_assertion(shared: &Shared, subject: &str) -> String {
    let seconds = lifetime(
        shared.mutable().faults.assertion_lifetime_secs,
        DEFAULT_ASSERTION_LIFETIME,
    );
    let now = now_unix();
    let claims = serde_json::json!({
        "iss": shared.info.authority_url,
        "sub": subject,
        "aud": "api://AzureADTokenExchange",
        "iat": now, "nbf": now, "exp": now + seconds,
        "jti": random_hex(8),
    });
    let token = jwt(&claims);
    let issued = IssuedToken {
        audience: "api://AzureADTokenExchange".to_owned(),
        expires: now + seconds,
        revoked: false,
    };
    shared.mutable().assertions.insert(token.clone(), issued);
    token
}

/// OpenID discovery, MSAL instance discovery and the token endpoint.
pub(super) fn authority(shared: &Shared, call: &Call) -> Reply {
    let segments: Vec<&str> = call
        .path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let base = &shared.info.authority_url;
    match (call.method.as_str(), segments.as_slice()) {
        ("GET", [_, "discovery", "instance"] | [_, "discovery", "v2.0", "instance"]) => {
            let authority = call.query("authorization_endpoint").unwrap_or_default();
            let tenant = authority
                .split('/')
                .nth(3)
                .unwrap_or(&shared.info.tenant_id);
            json_reply(
                StatusCode::OK,
                &serde_json::json!({
                    "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
                    "api-version": "1.1",
                    "metadata": [{"preferred_network": crate::emulator::AUTHORITY_HOST, "preferred_cache": crate::emulator::AUTHORITY_HOST, "aliases": [crate::emulator::AUTHORITY_HOST]}],
                }),
            )
        }
        (
            "GET",
            [tenant, "v2.0", ".well-known", "openid-configuration"]
            | [tenant, ".well-known", "openid-configuration"],
        ) => {
            if *tenant != shared.info.tenant_id && *tenant != "organizations" && *tenant != "common"
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    90002,
                    &format!("Tenant '{tenant}' not found."),
                );
            }
            json_reply(
                StatusCode::OK,
                &serde_json::json!({
                    "issuer": format!("{base}/{}/v2.0", shared.info.tenant_id),
                    "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                    "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
                    "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "tenant_region_scope": "EU",
                }),
            )
        }
        ("GET", [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"]) => {
            json_reply(StatusCode::OK, &serde_json::json!({"keys": []}))
        }
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(shared, call, tenant),
        _ => oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            900_561,
            &format!(
                "The endpoint {} {} is not served by this authority.",
                call.method, call.path
            ),
        ),
    }
}

fn token(shared: &Shared, call: &Call, tenant: &str) -> Reply {
    shared
        .counters
        .token_requests
        .fetch_add(1, Ordering::SeqCst);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&call.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };

    // 1. Tenant, grant and client.
    if tenant != shared.info.tenant_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check AZURE_TENANT_ID."),
        );
    }
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; the emulator serves client_credentials.",
        );
    }
    let client_id = field("client_id").unwrap_or_default();
    if client_id != shared.info.client_id {
        let message = format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. Check AZURE_CLIENT_ID."
        );
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &message,
        );
    }

    // 2. The client's proof: a secret or a federated assertion.
    if let Some(secret) = field("client_secret") {
        if secret != shared.info.client_secret {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
    } else if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(ASSERTION_TYPE) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let known = shared.mutable().assertions.get(assertion).cloned();
        match known {
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    70021,
                    "No matching federated identity record found for presented assertion.",
                );
            }
            Some(issued) if issued.expires <= now_unix() => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    700_024,
                    "Client assertion is not within its valid time range.",
                );
            }
            Some(_) => {}
        }
    } else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }

    // 3. Scope and the token.
    let scope = field("scope").unwrap_or_default();
    let Some(resource) = scope
        .split(' ')
        .find_map(|scope| scope.strip_suffix("/.default"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier."
            ),
        );
    };
    let (access_token, seconds) = issue_access_token(shared, resource);
    json_reply(
        StatusCode::OK,
        &serde_json::json!({"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": access_token}),
    )
}

/// GitHub Actions and Azure DevOps OIDC endpoints and App Service managed identity.
pub(super) async fn federation(shared: &Shared, call: &Call) -> Reply {
    let unauthorized = |message: &str| {
        json_reply(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({"message": message}),
        )
    };
    match (call.method.as_str(), call.path.as_str()) {
        ("GET", "/_github/idtoken") => {
            shared
                .counters
                .assertion_requests
                .fetch_add(1, Ordering::SeqCst);
            if call.bearer() != Some(shared.stored().github_request_token.as_str()) {
                return unauthorized(
                    "invalid or missing ACTIONS_ID_TOKEN_REQUEST_TOKEN bearer token",
                );
            }
            let audience = call
                .query("audience")
                .unwrap_or("api://AzureADTokenExchange");
            if audience != "api://AzureADTokenExchange" {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"message": format!("audience {audience} is not trusted by the emulated app registration")}),
                );
            }
            let value = issue_assertion(shared, "repo:midcore/app:ref:refs/heads/main");
            json_reply(
                StatusCode::OK,
                &serde_json::json!({"count": 1, "value": value}),
            )
        }
        ("POST", "/_ado/oidctoken") => {
            shared
                .counters
                .assertion_requests
                .fetch_add(1, Ordering::SeqCst);
            if call.bearer() != Some(shared.stored().ado_access_token.as_str()) {
                return unauthorized("invalid or missing System.AccessToken");
            }
            let Some(connection) = call
                .query("serviceConnectionId")
                .filter(|id| !id.is_empty())
            else {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"message": "serviceConnectionId is missing"}),
                );
            };
            let value = issue_assertion(shared, &format!("sc://midcore/release/{connection}"));
            json_reply(StatusCode::OK, &serde_json::json!({"oidcToken": value}))
        }
        ("GET", "/_msi/token") => {
            if call.header("x-identity-header") != Some(shared.stored().identity_header.as_str()) {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"statusCode": 400, "message": "X-IDENTITY-HEADER is missing or wrong"}),
                );
            }
            let Some(resource) = call.query("resource") else {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"statusCode": 400, "message": "resource is missing"}),
                );
            };
            shared
                .counters
                .token_requests
                .fetch_add(1, Ordering::SeqCst);
            let (access_token, seconds) = issue_access_token(shared, resource);
            json_reply(
                StatusCode::OK,
                &serde_json::json!({
                    "access_token": access_token,
                    "expires_on": (now_unix() + seconds).to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": shared.info.client_id,
                }),
            )
        }
        _ => json_reply(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"message": format!("no endpoint {} {}", call.method, call.path)}),
        ),
    }
}
