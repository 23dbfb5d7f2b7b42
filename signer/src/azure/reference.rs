//! Parsing of `azure-kv://VAULT_HOST[:PORT]/keys/NAME[/VERSION]` key references.

/// A parsed Key Vault key reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReference {
    /// Vault host name, lowercase, e.g. `release.vault.azure.net`.
    pub host: String,
    /// Port, when the reference names one.
    pub port: Option<u16>,
    /// Key name as given.
    pub name: String,
    /// Key version (32 hex digits), when the reference pins one.
    pub version: Option<String>,
}

/// Error for a reference that is not a valid Key Vault key reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The text does not follow the reference grammar.
    #[error(
        "invalid Key Vault key reference {reference:?}: {reason}; expected azure-kv://VAULT_HOST[:PORT]/keys/NAME[/VERSION]"
    )]
    Invalid {
        /// The reference as given.
        reference: String,
        /// Reason the reference is invalid.
        reason: &'static str,
    },
}

impl KeyReference {
    /// Parses a reference strictly: no user info, query, fragment or extra segments.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason| ReferenceError::Invalid {
            reference: reference.to_owned(),
            reason,
        };
        let rest = reference
            .strip_prefix("azure-kv://")
            .ok_or_else(|| invalid("the scheme is not azure-kv://"))?;
        if rest.contains(['?', '#', '@', '\\'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "it contains a query, fragment, user info, backslash or whitespace",
            ));
        }
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("the path /keys/NAME is missing"))?;

        // 1. Host and optional port.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let bad_port = || invalid("the port is not a number from 1 to 65535");
                // Plain digits only: no sign and no leading zero, so the
                // reference is printed back exactly as written.
                if !port.bytes().all(|b| b.is_ascii_digit()) || port.starts_with('0') {
                    return Err(bad_port());
                }
                let port: u16 = port.parse().map_err(|_| bad_port())?;
                (host, Some(port))
            }
            None => (authority, None),
        };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let all_numeric = host
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_digit()));
        if host.len() > 253
            || !host.contains('.')
            || all_numeric
            || !host.split('.').all(valid_label)
        {
            return Err(invalid(
                "the vault host is not a DNS name such as NAME.vault.azure.net",
            ));
        }

        // 2. /keys/NAME[/VERSION].
        let segments: Vec<&str> = path.split('/').collect();
        let (name, version) = match segments.as_slice() {
            ["keys", name] => (*name, None),
            ["keys", name, version] => (*name, Some(*version)),
            _ => return Err(invalid("the path is not /keys/NAME or /keys/NAME/VERSION")),
        };
        if name.is_empty()
            || name.len() > 127
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(
                "the key name is not 1 to 127 letters, digits or '-'",
            ));
        }
        if let Some(version) = version
            && (version.len() != 32 || !version.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(invalid("the key version is not 32 hexadecimal digits"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            name: name.to_owned(),
            version: version.map(str::to_ascii_lowercase),
        })
    }

    /// Returns the vault URL, e.g. `https://release.vault.azure.net` or `https://x.vault.test:8443`.
    pub fn vault_url(&self) -> String {
        match self.port {
            Some(port) => format!("https://{}:{port}", self.host),
            None => format!("https://{}", self.host),
        }
    }

    /// Formats the reference in its canonical text form.
    pub fn display_name(&self) -> String {
        let authority = match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        };
        match &self.version {
            Some(version) => format!("azure-kv://{authority}/keys/{}/{version}", self.name),
            None => format!("azure-kv://{authority}/keys/{}", self.name),
        }
    }
}

/// Splits a versioned key id `https://HOST[:PORT]/keys/NAME/VERSION` into name
/// and version, provided HOST is `host` (compared without regard to letter
/// case). The port is not compared: Key Vault leaves it out, and a vault
/// reached through a name override can report the port it listens on.
pub fn split_kid<'a>(kid: &'a str, host: &str) -> Option<(&'a str, &'a str)> {
    let rest = kid.strip_prefix("https://")?;
    let (kid_authority, path) = rest.split_once('/')?;
    let kid_host = match kid_authority.rsplit_once(':') {
        Some((kid_host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => kid_host,
        _ => kid_authority,
    };
    if !kid_host.eq_ignore_ascii_case(host) {
        return None;
    }
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["keys", name, version]
            if version.len() == 32 && version.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Some((name, version))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_name_and_version() {
        let parsed = KeyReference::parse(
            "azure-kv://Release.vault.azure.net/keys/midcore/0123456789abcdef0123456789ABCDEF",
        )
        .expect("valid reference");
        assert_eq!(parsed.host, "release.vault.azure.net");
        assert_eq!(parsed.port, None);
        assert_eq!(parsed.name, "midcore");
        assert_eq!(
            parsed.version.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn parses_port_without_version() {
        let parsed = KeyReference::parse("azure-kv://midcore.vault.test:8443/keys/release")
            .expect("valid reference");
        assert_eq!(parsed.port, Some(8443));
        assert_eq!(parsed.version, None);
        assert_eq!(parsed.vault_url(), "https://midcore.vault.test:8443");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "azure-kv://vault.azure.net",
            "azure-kv://vault.azure.net/keys/",
            "azure-kv://vault.azure.net/keys/a/b/c",
            "azure-kv://vault.azure.net/secrets/a",
            "azure-kv://vault.azure.net/keys/a_b",
            "azure-kv://vault.azure.net/keys/a/123",
            "azure-kv://vault.azure.net:0/keys/a",
            "azure-kv://vault.azure.net:99999/keys/a",
            "azure-kv://vault.azure.net:+443/keys/a",
            "azure-kv://vault.azure.net:0443/keys/a",
            "azure-kv://127.0.0.1:8443/keys/a",
            "azure-kv://user@vault.azure.net/keys/a",
            "azure-kv://vault.azure.net/keys/a?x=1",
            "azure-kv://localhost/keys/a",
            "azure-kv://-bad.vault.azure.net/keys/a",
            "https://vault.azure.net/keys/a",
        ] {
            assert!(KeyReference::parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn splits_versioned_kid() {
        let kid = "https://v.vault.test:1/keys/release/0123456789abcdef0123456789abcdef";
        assert_eq!(
            split_kid(kid, "V.vault.test"),
            Some(("release", "0123456789abcdef0123456789abcdef"))
        );
    }

    #[test]
    fn rejects_unversioned_kid() {
        assert_eq!(
            split_kid("https://v.vault.test/keys/release", "v.vault.test"),
            None
        );
    }

    #[test]
    fn rejects_kid_of_other_vault() {
        let kid = "https://other.vault.test/keys/release/0123456789abcdef0123456789abcdef";
        assert_eq!(split_kid(kid, "v.vault.test"), None);
        let kid = "https://v.vault.test.evil.test/keys/release/0123456789abcdef0123456789abcdef";
        assert_eq!(split_kid(kid, "v.vault.test"), None);
    }
}
