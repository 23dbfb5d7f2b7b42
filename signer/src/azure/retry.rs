//! Classification of Key Vault failures and the backoff the backend applies.

use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;

/// Maximum wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Attempts per operation for throttling and server errors (the deadline also applies).
pub const MAX_ATTEMPTS: u32 = 8;
/// Attempts per operation when the connection itself fails (TLS trust included):
/// a mistake in the setup should fail fast rather than wait out the deadline.
pub const MAX_CONNECTION_ATTEMPTS: u32 = 3;

/// Classification of a failed request, which decides whether the backend retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429, 503 and other transient server responses: wait and try again.
    Transient {
        /// HTTP status.
        status: u16,
        /// Delay the server asked for in `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// Service error code and message, for the final report.
        detail: String,
    },
    /// The connection failed before an HTTP response arrived.
    Connection(String),
    /// 401 with a token: renew the credential and retry exactly once.
    Unauthorized(String),
    /// Anything else (400, 403, 404, a credential failure): report and stop.
    Fatal {
        /// HTTP status, when the vault responded.
        status: Option<u16>,
        /// Service error code (`ForbiddenByRbac`, `KeyNotFound`, ...), if any.
        code: Option<String>,
        /// Service message or error text.
        message: String,
    },
}

/// Error code and message from a Key Vault error body `{"error":{"code","message","innererror"}}`.
fn service_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let error = &value["error"];
    let inner = error["innererror"]["code"].as_str();
    let code = inner.or_else(|| error["code"].as_str()).map(str::to_owned);
    let message = error["message"].as_str().map(|message| {
        message
            .split("\r\n")
            .next()
            .unwrap_or(message)
            .trim()
            .to_owned()
    });
    (code, message)
}

/// Parses `Retry-After` as delta-seconds (Key Vault does not send HTTP dates).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// Classifies an error returned by the SDK.
pub fn classify(error: &azure_core::Error) -> Failure {
    match error.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let (body_code, body_message) =
                raw_response.as_ref().map_or((None, None), |response| {
                    service_error(response.body().as_ref())
                });
            let code = body_code.or_else(|| error_code.clone());
            let message = body_message.unwrap_or_else(|| error.to_string());
            let retry_after = raw_response.as_ref().and_then(|response| {
                response
                    .headers()
                    .get_optional_str(&azure_core::http::headers::RETRY_AFTER)
                    .and_then(parse_retry_after)
            });
            let detail = format!("{}: {message}", code.as_deref().unwrap_or("no error code"));
            match *status {
                StatusCode::TooManyRequests
                | StatusCode::ServiceUnavailable
                | StatusCode::RequestTimeout
                | StatusCode::InternalServerError
                | StatusCode::BadGateway
                | StatusCode::GatewayTimeout => Failure::Transient {
                    status: u16::from(*status),
                    retry_after,
                    detail,
                },
                StatusCode::Unauthorized => Failure::Unauthorized(detail),
                other => Failure::Fatal {
                    status: Some(u16::from(other)),
                    code,
                    message,
                },
            }
        }
        ErrorKind::Io | ErrorKind::Connection => Failure::Connection(format!("{error:#}")),
        _ => Failure::Fatal {
            status: None,
            code: None,
            message: error_chain(error),
        },
    }
}

/// Formats the error and its sources on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Delay before retry number `retry` (1-based): exponential from `base`, capped,
/// with full jitter in [delay/2, delay]; `Retry-After` wins when it is longer.
pub fn backoff(base: Duration, retry: u32, retry_after: Option<Duration>) -> Duration {
    let exponent = retry.saturating_sub(1).min(16);
    let ceiling = base.saturating_mul(1u32 << exponent).min(MAX_DELAY);
    let mut random = [0u8; 8];
    let fraction = if aws_lc_rs::rand::fill(&mut random).is_ok() {
        // A uniform value in [0, 1) from 53 random bits.
        #[allow(
            clippy::cast_precision_loss,
            reason = "53 bits fit an f64 mantissa exactly"
        )]
        let value = (u64::from_le_bytes(random) >> 11) as f64 / (1u64 << 53) as f64;
        value
    } else {
        0.5
    };
    let jittered = ceiling.mul_f64(0.5 + fraction / 2.0);
    match retry_after {
        Some(requested) if requested > jittered => requested,
        _ => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_jitter_band() {
        let base = Duration::from_millis(100);
        for retry in 1..=5 {
            let ceiling = base * (1 << (retry - 1));
            let delay = backoff(base, retry, None);
            assert!(
                delay >= ceiling / 2,
                "retry {retry}: {delay:?} below half of {ceiling:?}"
            );
            assert!(
                delay <= ceiling,
                "retry {retry}: {delay:?} above {ceiling:?}"
            );
        }
    }

    #[test]
    fn backoff_is_capped() {
        assert!(backoff(Duration::from_secs(10), 12, None) <= MAX_DELAY);
    }

    #[test]
    fn retry_after_longer_than_backoff_wins() {
        let delay = backoff(Duration::from_millis(10), 1, Some(Duration::from_secs(3)));
        assert_eq!(delay, Duration::from_secs(3));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn service_error_prefers_inner_code() {
        let body = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized.\r\nMore","innererror":{"code":"ForbiddenByRbac"}}}"#;
        let (code, message) = service_error(body);
        assert_eq!(code.as_deref(), Some("ForbiddenByRbac"));
        assert_eq!(message.as_deref(), Some("Caller is not authorized."));
    }
}
