//! A strict JSON parser and the canonical encoder used by every signed format.
//!
//! The parser rejects duplicate object keys, invalid UTF-8, lone surrogates,
//! unescaped control characters, trailing data and nesting deeper than a limit.
//! Numbers keep their literal text, so each format decides what it accepts
//! (the manifest takes only plain non-negative integers).
//!
//! Canonical encoding: objects with keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, integers in plain decimal, and strings with only
//! `"`, `\` and U+0000..U+001F escaped (as `\"`, `\\` and `\u00xx` in lower-case
//! hex); every other character is written as its UTF-8 bytes.

use std::collections::BTreeMap;
use std::fmt;

/// Default maximum nesting depth of arrays and objects.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its literal text.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; keys are unique.
    Object(Object),
}

/// A JSON object with unique keys, ordered by their UTF-8 bytes.
pub type Object = BTreeMap<String, Value>;

/// A JSON number kept as its literal text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number(String);

impl Number {
    /// The literal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the literal is a plain integer: an optional `-`, then `0` or a
    /// non-zero digit followed by digits; no fraction, exponent or `-0`.
    pub fn is_plain_integer(&self) -> bool {
        let digits = self.0.strip_prefix('-').unwrap_or(&self.0);
        let plain = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        plain && self.0 != "-0"
    }

    /// The value as a `u64`, if the literal is a plain non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        if !self.is_plain_integer() || self.0.starts_with('-') {
            return None;
        }
        self.0.parse().ok()
    }

    /// The value as an `i64`, if the literal is a plain integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        if !self.is_plain_integer() {
            return None;
        }
        self.0.parse().ok()
    }
}

impl Value {
    /// Short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// A JSON syntax error, with the byte offset where it was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The input is not valid JSON at `offset`.
    #[error("invalid JSON at byte {offset}: {reason}")]
    Syntax {
        /// Byte offset into the input.
        offset: usize,
        /// Description of what was expected or found.
        reason: &'static str,
    },
    /// An object repeats a key.
    #[error("duplicate key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Byte offset of the second occurrence.
        offset: usize,
    },
    /// Arrays and objects are nested too deeply.
    #[error("nesting deeper than {max_depth} levels at byte {offset}")]
    TooDeep {
        /// Byte offset where the limit was passed.
        offset: usize,
        /// The limit.
        max_depth: usize,
    },
}

/// Parses `input` as exactly one JSON value, with the default depth limit.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    parse_with_depth(input, DEFAULT_MAX_DEPTH)
}

/// Parses `input` as exactly one JSON value, allowing `max_depth` levels of nesting.
pub fn parse_with_depth(input: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    parse_deferring(input, max_depth, &|_| false).map(|(value, _)| value)
}

/// A value left unparsed by [`parse_deferring`]: its key path and its bytes' range in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeferredValue {
    /// Object keys from the top level down to the value.
    pub path: Vec<String>,
    /// Byte range of the value in the input.
    pub range: std::ops::Range<usize>,
}

/// Parses `input` like [`parse_with_depth`], except that an object member whose
/// key path `defer` accepts is only checked for JSON syntax (duplicate keys
/// inside it are not detected) and appears in the tree as [`Value::Null`]; its
/// byte range is returned so the caller can parse it strictly when it needs it.
pub fn parse_deferring(
    input: &[u8],
    max_depth: usize,
    defer: &dyn Fn(&[String]) -> bool,
) -> Result<(Value, Vec<DeferredValue>), JsonError> {
    let mut parser = Parser {
        input,
        position: 0,
        max_depth,
        path: Vec::new(),
        defer,
        deferred: Vec::new(),
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.position != input.len() {
        return Err(parser.error("unexpected data after the JSON value"));
    }
    Ok((value, parser.deferred))
}

struct Parser<'a> {
    input: &'a [u8],
    position: usize,
    max_depth: usize,
    path: Vec<String>,
    defer: &'a dyn Fn(&[String]) -> bool,
    deferred: Vec<DeferredValue>,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError::Syntax {
            offset: self.position,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.position += 1;
        }
    }

    fn expect_literal(&mut self, literal: &[u8], value: Value) -> Result<Value, JsonError> {
        if self.input[self.position..].starts_with(literal) {
            self.position += literal.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_literal(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), JsonError> {
        if depth > self.max_depth {
            return Err(JsonError::TooDeep {
                offset: self.position,
                max_depth: self.max_depth,
            });
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.position += 1;
        let mut object = Object::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(Value::Object(object));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key_offset = self.position;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after an object key"));
            }
            self.position += 1;
            self.skip_whitespace();
            self.path.push(key);
            let value = if (self.defer)(&self.path) {
                let start = self.position;
                self.skip_value(depth)?;
                let range = start..self.position;
                if std::str::from_utf8(&self.input[range.clone()]).is_err() {
                    return Err(JsonError::Syntax {
                        offset: start,
                        reason: "string is not valid UTF-8",
                    });
                }
                self.deferred.push(DeferredValue {
                    path: self.path.clone(),
                    range,
                });
                Value::Null
            } else {
                self.value(depth)?
            };
            let key = self.path.pop().unwrap_or_default();
            if object.contains_key(&key) {
                return Err(JsonError::DuplicateKey {
                    key,
                    offset: key_offset,
                });
            }
            object.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(Value::Object(object));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    /// Checks the syntax of one value without building it.
    fn skip_value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(open @ (b'{' | b'[')) => {
                self.check_depth(depth + 1)?;
                let close = if open == b'{' { b'}' } else { b']' };
                self.position += 1;
                self.skip_whitespace();
                if self.peek() == Some(close) {
                    self.position += 1;
                    return Ok(());
                }
                loop {
                    self.skip_whitespace();
                    if open == b'{' {
                        if self.peek() != Some(b'"') {
                            return Err(self.error("expected a string key"));
                        }
                        self.skip_string()?;
                        self.skip_whitespace();
                        if self.peek() != Some(b':') {
                            return Err(self.error("expected ':' after an object key"));
                        }
                        self.position += 1;
                        self.skip_whitespace();
                    }
                    self.skip_value(depth + 1)?;
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b',') => self.position += 1,
                        Some(byte) if byte == close => {
                            self.position += 1;
                            return Ok(());
                        }
                        _ => return Err(self.error("expected ',' or a closing bracket")),
                    }
                }
            }
            Some(b'"') => self.skip_string(),
            Some(b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => self.value(depth).map(|_| ()),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    /// Checks the syntax of one string without building it. Its UTF-8 is
    /// checked by the caller, once for the whole skipped value.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        self.position += 1;
        loop {
            // Runs of plain bytes are skipped in one tight loop.
            let rest = &self.input[self.position..];
            let plain = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len());
            self.position += plain;
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.position += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.position += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.position += 1
                        }
                        Some(b'u') => {
                            self.position += 1;
                            self.unicode_escape()?;
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(_) => return Err(self.error("unescaped control character in a string")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        match self.peek() {
            Some(b'0') => self.position += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.position += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit after '.'"));
            }
            self.skip_digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.position += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.position += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.skip_digits();
        }
        // The bytes matched above are ASCII, so this cannot fail.
        let text = std::str::from_utf8(&self.input[start..self.position])
            .map_err(|_| self.error("invalid number"))?;
        Ok(Value::Number(Number(text.to_owned())))
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.position += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .input
            .get(self.position..self.position + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut value = 0u32;
        for &digit in digits {
            let nibble = (digit as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid hex digit in \\u escape"))?;
            value = value * 16 + nibble;
        }
        self.position += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.position += 1;
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match byte {
                b'"' => {
                    self.position += 1;
                    break;
                }
                b'\\' => {
                    self.position += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.position += 1;
                    let decoded = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => {
                            self.position -= 1;
                            return Err(self.error("invalid escape"));
                        }
                    };
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(decoded.encode_utf8(&mut buffer).as_bytes());
                }
                0x00..=0x1f => return Err(self.error("unescaped control character in a string")),
                _ => {
                    out.push(byte);
                    self.position += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not valid UTF-8"))
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.input[self.position..].starts_with(b"\\u") {
                    return Err(self.error("lone high surrogate in \\u escape"));
                }
                self.position += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("high surrogate not followed by a low surrogate"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone low surrogate in \\u escape")),
            _ => first,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid code point in \\u escape"))
    }
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => out.extend_from_slice(number.0.as_bytes()),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(object) => {
            out.push(b'{');
            for (index, (key, item)) in object.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
    }
}

/// Returns the canonical encoding of `value`.
pub fn to_canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Builds a number value from an unsigned integer.
pub fn number_u64(value: u64) -> Value {
    Value::Number(Number(value.to_string()))
}

/// Builds a number value from a signed integer.
pub fn number_i64(value: i64) -> Value {
    Value::Number(Number(value.to_string()))
}

/// An error about one field of a parsed document, naming the field by its path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FieldError {
    /// Field path such as `files["app.asar"].sha256`.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Typed, strict access to an object's fields: every field must be taken
/// exactly once, and [`Fields::finish`] rejects any field left untaken.
pub struct Fields<'a> {
    object: &'a Object,
    path: String,
    taken: Vec<&'a str>,
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'a> Fields<'a> {
    /// Starts reading `value`, which must be an object, at field path `path`.
    pub fn new(value: &'a Value, path: impl Into<String>) -> Result<Self, FieldError> {
        let path = path.into();
        match value {
            Value::Object(object) => Ok(Self {
                object,
                path,
                taken: Vec::new(),
            }),
            other => Err(FieldError {
                path,
                reason: format!("expected an object, found {}", other.type_name()),
            }),
        }
    }

    /// Path of a member, for error messages.
    pub fn member_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Error for a member.
    pub fn error(&self, name: &str, reason: impl Into<String>) -> FieldError {
        FieldError {
            path: self.member_path(name),
            reason: reason.into(),
        }
    }

    /// Takes an optional member.
    pub fn optional(&mut self, name: &'a str) -> Option<&'a Value> {
        let value = self.object.get(name)?;
        self.taken.push(name);
        Some(value)
    }

    /// Takes a required member.
    pub fn required(&mut self, name: &'a str) -> Result<&'a Value, FieldError> {
        self.optional(name)
            .ok_or_else(|| self.error(name, "missing required field"))
    }

    /// Takes a required string member.
    pub fn string(&mut self, name: &'a str) -> Result<&'a str, FieldError> {
        match self.required(name)? {
            Value::String(text) => Ok(text),
            other => Err(self.error(
                name,
                format!("expected a string, found {}", other.type_name()),
            )),
        }
    }

    /// Takes a required non-negative integer member.
    pub fn u64(&mut self, name: &'a str) -> Result<u64, FieldError> {
        let value = self.required(name)?;
        self.as_u64(name, value)
    }

    /// Takes an optional non-negative integer member.
    pub fn optional_u64(&mut self, name: &'a str) -> Result<Option<u64>, FieldError> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => self.as_u64(name, value).map(Some),
        }
    }

    fn as_u64(&self, name: &str, value: &Value) -> Result<u64, FieldError> {
        match value {
            Value::Number(number) => number.as_u64().ok_or_else(|| {
                self.error(
                    name,
                    format!(
                        "expected a plain non-negative integer, found {}",
                        number.as_str()
                    ),
                )
            }),
            other => Err(self.error(
                name,
                format!("expected an integer, found {}", other.type_name()),
            )),
        }
    }

    /// Takes a required boolean member.
    pub fn bool(&mut self, name: &'a str) -> Result<bool, FieldError> {
        match self.required(name)? {
            Value::Bool(flag) => Ok(*flag),
            other => Err(self.error(
                name,
                format!("expected a boolean, found {}", other.type_name()),
            )),
        }
    }

    /// Takes a required object member.
    pub fn object(&mut self, name: &'a str) -> Result<&'a Object, FieldError> {
        match self.required(name)? {
            Value::Object(object) => Ok(object),
            other => Err(self.error(
                name,
                format!("expected an object, found {}", other.type_name()),
            )),
        }
    }

    /// Rejects any member that was not taken.
    pub fn finish(self) -> Result<(), FieldError> {
        for key in self.object.keys() {
            if !self.taken.contains(&key.as_str()) {
                return Err(self.error(key, "unknown field"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Value, JsonError> {
        parse(text.as_bytes())
    }

    #[test]
    fn duplicate_keys_rejected() {
        let error = parse_str(r#"{"a":1,"b":2,"a":3}"#).unwrap_err();
        assert_eq!(
            error,
            JsonError::DuplicateKey {
                key: "a".to_owned(),
                offset: 13
            }
        );
    }

    #[test]
    fn escaped_duplicate_keys_rejected() {
        let error = parse_str(r#"{"a":1,"\u0061":2}"#).unwrap_err();
        assert!(matches!(error, JsonError::DuplicateKey { .. }), "{error}");
    }

    #[test]
    fn trailing_data_rejected() {
        assert!(parse_str("{} x").is_err());
        assert!(parse_str("{}{}").is_err());
    }

    #[test]
    fn lone_surrogates_rejected() {
        assert!(parse_str(r#""\ud800""#).is_err());
        assert!(parse_str(r#""\udc00""#).is_err());
        assert!(parse_str(r#""\ud800\u0041""#).is_err());
    }

    #[test]
    fn surrogate_pair_decoded() {
        assert_eq!(
            parse_str(r#""\ud83d\ude00""#).unwrap(),
            Value::String("\u{1F600}".to_owned())
        );
    }

    #[test]
    fn control_characters_rejected() {
        assert!(parse_str("\"a\nb\"").is_err());
    }

    #[test]
    fn invalid_utf8_rejected() {
        assert!(parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn depth_limit_enforced() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse_str(&deep), Err(JsonError::TooDeep { .. })));
        let shallow = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_str(&shallow).is_ok());
    }

    #[test]
    fn number_forms_classified() {
        let plain = |text: &str| match parse_str(text).unwrap() {
            Value::Number(number) => number.as_i64(),
            _ => None,
        };
        assert_eq!(plain("12"), Some(12));
        assert_eq!(plain("-5"), Some(-5));
        assert_eq!(plain("0"), Some(0));
        assert_eq!(plain("-0"), None);
        assert_eq!(plain("1.0"), None);
        assert_eq!(plain("1e3"), None);
        assert!(parse_str("01").is_err());
        assert!(parse_str("+5").is_err());
        assert!(parse_str("1.").is_err());
    }

    #[test]
    fn canonical_encoding_sorts_and_escapes() {
        let value =
            parse_str("{ \"b\" : [1, true, null], \"a\" : \"x\\u0001\\\"\\\\/\u{e9}\" }").unwrap();
        assert_eq!(
            to_canonical(&value),
            "{\"a\":\"x\\u0001\\\"\\\\/\u{e9}\",\"b\":[1,true,null]}".as_bytes()
        );
    }

    #[test]
    fn canonical_encoding_round_trips() {
        let text = "{\"a\":{\"z\":\"\\u001f\",\"\u{5973}\":[]},\"b\":18446744073709551615}";
        let value = parse_str(text).unwrap();
        assert_eq!(to_canonical(&value), text.as_bytes());
    }

    #[test]
    fn deferred_members_keep_their_bytes() {
        let text = r#"{"a":{"keep":1,"skip":{"x":[1,"\u00e9",{"y":null}]}},"skip":2}"#;
        let defer = |path: &[String]| path.len() == 2 && path[1] == "skip";
        let (value, deferred) =
            parse_deferring(text.as_bytes(), DEFAULT_MAX_DEPTH, &defer).unwrap();
        assert_eq!(deferred.len(), 1);
        assert_eq!(
            &text[deferred[0].range.clone()],
            r#"{"x":[1,"\u00e9",{"y":null}]}"#
        );
        assert_eq!(deferred[0].path, vec!["a".to_owned(), "skip".to_owned()]);
        assert_eq!(
            to_canonical(&value),
            br#"{"a":{"keep":1,"skip":null},"skip":2}"#
        );
    }

    #[test]
    fn deferred_members_still_checked_for_syntax() {
        let defer = |path: &[String]| path == ["skip"];
        for bad in [
            r#"{"skip":{"x":}}"#,
            r#"{"skip":"\q"}"#,
            r#"{"skip":[1,]}"#,
            "{\"skip\":\"a\u{1}\"}",
            r#"{"skip":"\ud800"}"#,
        ] {
            assert!(
                parse_deferring(bad.as_bytes(), DEFAULT_MAX_DEPTH, &defer).is_err(),
                "{bad}"
            );
        }
        assert!(parse_deferring(b"{\"skip\":\"\xff\"}", DEFAULT_MAX_DEPTH, &defer).is_err());
        let deep = format!("{{\"skip\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse_deferring(deep.as_bytes(), DEFAULT_MAX_DEPTH, &defer),
            Err(JsonError::TooDeep { .. })
        ));
    }

    #[test]
    fn fields_reject_unknown_members() {
        let value = parse_str(r#"{"known":1,"extra":2}"#).unwrap();
        let mut fields = Fields::new(&value, "doc").unwrap();
        assert_eq!(fields.u64("known").unwrap(), 1);
        let error = fields.finish().unwrap_err();
        assert_eq!(error.path, "doc.extra");
    }

    #[test]
    fn fields_name_the_bad_member() {
        let value = parse_str(r#"{"size":1.5}"#).unwrap();
        let mut fields = Fields::new(&value, "files[\"a\"]").unwrap();
        let error = fields.u64("size").unwrap_err();
        assert_eq!(error.path, "files[\"a\"].size");
        assert!(error.reason.contains("1.5"), "{}", error.reason);
    }
}
