//! Keys, key ids, digests and the one signature scheme the verifier accepts.
//!
//! The scheme is fixed here and never read from input: RSASSA-PSS with SHA-256,
//! MGF1-SHA-256 and a 32-byte salt (Key Vault's `PS256`, RFC 7518 section 3.5),
//! with a modulus of 2048 to 8192 bits. There is no PKCS#1 v1.5 path.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters};
use base64::Engine as _;

/// Smallest RSA modulus, in bits, that the verifier accepts.
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus, in bits, that the verifier accepts.
pub const MAX_RSA_BITS: u32 = 8192;
/// Modulus size, in bits, for newly generated keys.
pub const DEFAULT_RSA_BITS: u32 = 3072;
/// Name of the signature scheme as written in manifests and sidecars.
pub const SIGNATURE_ALGORITHM: &str = "rsa-pss-sha256";

/// PSS salt length in bytes; `RSA_PSS_2048_8192_SHA256` uses the digest length, 32.
pub const PSS_SALT_LEN: usize = 32;

const PEM_PUBLIC_LABEL: &str = "PUBLIC KEY";
const MAX_PEM_LEN: usize = 64 * 1024;

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// Hashes `data` with SHA-256.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    to_array(digest::digest(&digest::SHA256, data))
}

fn to_array(value: digest::Digest) -> Sha256Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(value.as_ref());
    out
}

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Sha256 {
    context: digest::Context,
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256")
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// Starts an empty hash.
    pub fn new() -> Self {
        Self {
            context: digest::Context::new(&digest::SHA256),
        }
    }

    /// Adds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        self.context.update(data);
    }

    /// Finishes the hash.
    pub fn finish(self) -> Sha256Digest {
        to_array(self.context.finish())
    }

    /// Hashes everything `reader` yields and returns the digest and the byte count.
    pub fn digest_reader(mut reader: impl Read) -> std::io::Result<(Sha256Digest, u64)> {
        let mut hasher = Self::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
            total += read as u64;
        }
        Ok((hasher.finish(), total))
    }
}

/// Errors about keys and key ids.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text is malformed or has the wrong label.
    #[error("invalid PEM: {reason}")]
    InvalidPem {
        /// Reason the PEM text is invalid.
        reason: String,
    },
    /// The DER bytes are not a canonical RSA SubjectPublicKeyInfo.
    #[error("not an RSA SubjectPublicKeyInfo in canonical DER: {reason}")]
    InvalidPublicKey {
        /// Reason the parser rejected the key.
        reason: String,
    },
    /// The modulus is outside the accepted range.
    #[error(
        "RSA key of {bits} bits is not accepted: the modulus must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits"
    )]
    UnsupportedKeySize {
        /// Modulus size of the rejected key.
        bits: u32,
    },
    /// A key id string is malformed.
    #[error("invalid key id {value:?}: expected \"sha256:\" followed by 64 lower-case hex digits")]
    InvalidKeyId {
        /// The rejected text.
        value: String,
    },
}

/// Errors from checking a signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify under the key.
    #[error("RSA-PSS-SHA256 signature does not verify under key {key_id}")]
    Invalid {
        /// Key the signature was checked against.
        key_id: KeyId,
    },
    /// The signature has the wrong length for the key.
    #[error("signature is {actual} bytes, but key {key_id} makes {expected}-byte signatures")]
    WrongLength {
        /// Key the signature was checked against.
        key_id: KeyId,
        /// Length the key's modulus implies.
        expected: usize,
        /// Length of the signature given.
        actual: usize,
    },
}

/// A key id: `sha256:` followed by the lower-case hex SHA-256 of the key's
/// SubjectPublicKeyInfo DER.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(Sha256Digest);

impl KeyId {
    /// Computes the key id of a SubjectPublicKeyInfo DER encoding.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        Self(sha256(spki_der))
    }

    /// The raw fingerprint.
    pub fn fingerprint(&self) -> &Sha256Digest {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || KeyError::InvalidKeyId {
            value: value.chars().take(100).collect(),
        };
        let hex_part = value.strip_prefix("sha256:").ok_or_else(invalid)?;
        let fingerprint = parse_lower_hex_32(hex_part).ok_or_else(invalid)?;
        Ok(Self(fingerprint))
    }
}

/// Parses exactly 64 lower-case hex digits.
pub fn parse_lower_hex_32(text: &str) -> Option<Sha256Digest> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// An RSA public key accepted for RSA-PSS-SHA256 verification.
#[derive(Clone)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    key_id: KeyId,
    bits: u32,
    parsed: ParsedPublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_id", &self.key_id)
            .field("bits", &self.bits)
            .finish()
    }
}

const PSS_SHA256: &RsaParameters = &signature::RSA_PSS_2048_8192_SHA256;

impl PublicKey {
    /// Parses a SubjectPublicKeyInfo in canonical DER, rejecting other encodings,
    /// trailing bytes and moduli outside 2048 to 8192 bits.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |reason: &str| KeyError::InvalidPublicKey {
            reason: reason.to_owned(),
        };

        // Step 1: parse as an RSA key; aws-lc also accepts the bare PKCS#1 form,
        // so the re-encoding below pins the input to canonical SPKI DER.
        let rsa_key = aws_lc_rs::rsa::PublicKey::from_der(spki_der)
            .map_err(|e| invalid(&format!("aws-lc rejected the key ({e})")))?;
        let reencoded = rsa_key
            .as_der()
            .map_err(|_| invalid("the key cannot be encoded as SubjectPublicKeyInfo"))?;
        if reencoded.as_ref() != spki_der {
            return Err(invalid(
                "the bytes are not the canonical SubjectPublicKeyInfo encoding (PKCS#1 RSAPublicKey, trailing data or non-DER length)",
            ));
        }

        // Step 2: enforce the modulus range ourselves, so the error names the size.
        let bits = RsaParameters::public_modulus_len(rsa_key.as_ref())
            .map_err(|_| invalid("the modulus size cannot be read"))?;
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::UnsupportedKeySize { bits });
        }

        // Step 3: bind the key to the one verification algorithm.
        let parsed = ParsedPublicKey::new(PSS_SHA256, spki_der)
            .map_err(|e| invalid(&format!("aws-lc rejected the key for RSA-PSS ({e})")))?;
        Ok(Self {
            spki_der: spki_der.to_vec(),
            key_id: KeyId::of_spki_der(spki_der),
            bits,
            parsed,
        })
    }

    /// Parses a `-----BEGIN PUBLIC KEY-----` PEM block holding an RSA SubjectPublicKeyInfo.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let der = decode_pem(pem, PEM_PUBLIC_LABEL)?;
        Self::from_spki_der(&der)
    }

    /// Encodes the key as a `PUBLIC KEY` PEM block with 64-character lines.
    pub fn to_pem(&self) -> String {
        encode_pem(PEM_PUBLIC_LABEL, &self.spki_der)
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The SubjectPublicKeyInfo DER encoding.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Length of every signature this key makes.
    pub fn signature_len(&self) -> usize {
        (self.bits as usize).div_ceil(8)
    }

    /// Verifies an RSA-PSS-SHA256 signature (salt 32) over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.check_len(signature)?;
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| SignatureError::Invalid {
                key_id: self.key_id,
            })
    }

    /// Verifies an RSA-PSS-SHA256 signature (salt 32) given the SHA-256 digest of the message.
    pub fn verify_digest(
        &self,
        digest: &Sha256Digest,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.check_len(signature)?;
        let imported = digest::Digest::import_less_safe(digest, &digest::SHA256).map_err(|_| {
            SignatureError::Invalid {
                key_id: self.key_id,
            }
        })?;
        self.parsed
            .verify_digest_sig(&imported, signature)
            .map_err(|_| SignatureError::Invalid {
                key_id: self.key_id,
            })
    }

    fn check_len(&self, signature: &[u8]) -> Result<(), SignatureError> {
        let expected = self.signature_len();
        if signature.len() != expected {
            return Err(SignatureError::WrongLength {
                key_id: self.key_id,
                expected,
                actual: signature.len(),
            });
        }
        Ok(())
    }
}

/// Errors from checking a key against the pinned set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The key's fingerprint is not pinned.
    #[error(
        "key {key_id} is not trusted: it is not among the pinned keys. A key that arrives with the data proves nothing, so pin it (--trust with its PEM or key id, or the embedding application's trust set) only after the release owner confirms this key id through another channel"
    )]
    Untrusted {
        /// Id of the rejected key.
        key_id: KeyId,
    },
    /// The trust set is empty, so nothing can verify.
    #[error("no trusted keys are configured: pass at least one --trust KEY")]
    Empty,
}

/// The set of pinned key fingerprints.
///
/// A key is trusted only if its id is in the set. A key that merely sits next
/// to the data it signs is never trusted for that reason. Entries added from a
/// PEM also keep the key, so data that names only a key id can be checked.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    pinned: BTreeMap<KeyId, Option<PublicKey>>,
}

impl TrustedKeys {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pins a key id.
    pub fn pin_id(&mut self, key_id: KeyId) {
        self.pinned.entry(key_id).or_insert(None);
    }

    /// Pins a public key (its id, and the key itself for later lookup).
    pub fn pin_key(&mut self, key: PublicKey) {
        self.pinned.insert(key.key_id(), Some(key));
    }

    /// Parses a `--trust` value: a key id (`sha256:...`) or PEM text.
    pub fn pin_text(&mut self, text: &[u8]) -> Result<KeyId, KeyError> {
        let trimmed = trim_ascii(text);
        if trimmed.starts_with(b"sha256:") {
            let id: KeyId = std::str::from_utf8(trimmed)
                .map_err(|_| KeyError::InvalidKeyId {
                    value: String::from_utf8_lossy(trimmed).into_owned(),
                })?
                .parse()?;
            self.pin_id(id);
            return Ok(id);
        }
        let key = PublicKey::from_pem(text)?;
        let id = key.key_id();
        self.pin_key(key);
        Ok(id)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.pinned.is_empty()
    }

    /// The pinned key ids, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.pinned.keys().copied()
    }

    /// Checks that `key` is pinned.
    pub fn check(&self, key: &PublicKey) -> Result<(), TrustError> {
        if self.pinned.is_empty() {
            return Err(TrustError::Empty);
        }
        if self.pinned.contains_key(&key.key_id()) {
            Ok(())
        } else {
            Err(TrustError::Untrusted {
                key_id: key.key_id(),
            })
        }
    }

    /// Returns the pinned key with this id, if it was pinned from a PEM.
    pub fn key(&self, key_id: &KeyId) -> Option<&PublicKey> {
        self.pinned.get(key_id).and_then(Option::as_ref)
    }

    /// Whether this key id is pinned.
    pub fn contains(&self, key_id: &KeyId) -> bool {
        self.pinned.contains_key(key_id)
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Decodes one PEM block with the given label, strictly: one block, base64 in
/// lines of at most 76 characters, no headers, nothing but whitespace around it.
pub fn decode_pem(pem: &[u8], label: &str) -> Result<Vec<u8>, KeyError> {
    let invalid = |reason: String| KeyError::InvalidPem { reason };
    if pem.len() > MAX_PEM_LEN {
        return Err(invalid(format!(
            "{} bytes is larger than the {MAX_PEM_LEN}-byte limit",
            pem.len()
        )));
    }
    let text = std::str::from_utf8(pem).map_err(|_| invalid("not UTF-8 text".to_owned()))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");

    let mut lines = text.trim().lines().map(|line| line.trim_end_matches('\r'));
    match lines.next() {
        Some(first) if first == begin => {}
        Some(first) if first.starts_with("-----BEGIN ") => {
            return Err(invalid(format!("expected {begin:?}, found {first:?}")));
        }
        _ => return Err(invalid(format!("missing {begin:?} line"))),
    }
    let mut body = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if line.len() > 76
            || !line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(invalid("the body is not base64 in lines of at most 76 characters (PEM headers are not accepted)".to_owned()));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(invalid(format!("missing {end:?} line")));
    }
    if lines.next().is_some() {
        return Err(invalid(format!("unexpected text after {end:?}")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| invalid(format!("the body is not valid base64 ({e})")))
}

/// Encodes `der` as a PEM block with 64-character lines.
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
