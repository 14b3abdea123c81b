//! Connection strings, read once and as libpq reads them: a `postgres://` URL or `key=value`
//! pairs, completed from libpq's environment (`PGHOST`, `PGPASSWORD`, ...) and password file,
//! into the driver's `Config`, the TLS parameters, and a text that shows no secret.
//!
//! Every other module takes a [`ConnInfo`]; none looks inside a connection string itself, so
//! where the password is can never be decided twice. Errors name the part that is wrong and
//! never quote a value that could be (part of) a secret.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use strum::VariantNames;
use tokio_postgres::config::{
    ChannelBinding, LoadBalanceHosts, SslNegotiation, TargetSessionAttrs,
};
use tokio_postgres::Config;

use crate::db::tls::{RootCert, SslMode, TlsParams};

/// What a secret looks like once redacted.
pub const MASK: &str = "***";

/// Every keyword libpq knows (PostgreSQL 18); anything else is an error, as in libpq.
const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "requiressl",
];

/// The keywords libpq marks as secret (`dispchar = "*"`): never shown, never logged.
const SECRETS: &[&str] = &[
    "password",
    "sslpassword",
    "scram_client_key",
    "scram_server_key",
    "oauth_client_secret",
];

/// libpq keywords whose meaning migrate does not implement: refused rather than ignored,
/// so a connection is never weaker than the string asked for.
const UNSUPPORTED: &[&str] = &[
    "require_auth",
    "replication",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "service",
    "gssdelegation",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "requiressl",
];

/// libpq's environment: the variable that supplies each keyword the string leaves unset.
/// Only keywords migrate implements; `PGSSLCERT` and the like are left to other tools.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("options", "PGOPTIONS"),
    ("application_name", "PGAPPNAME"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
];

/// The socket directories libpq treats as "localhost" in the password file (Debian's and
/// upstream's compiled-in defaults).
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// A connection string that cannot be used, and which part is wrong. The message never
/// quotes a value that could hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnInfoError {
    /// The libpq environment variable the bad value came from; None when the connection
    /// string itself is wrong.
    pub variable: Option<&'static str>,
    pub message: String,
}

impl ConnInfoError {
    fn new(message: impl Into<String>) -> ConnInfoError {
        ConnInfoError {
            variable: None,
            message: message.into(),
        }
    }
}

/// Where unset parameters come from: the process environment (libpq's `PG*` variables,
/// `HOME` for `~/.pgpass`), nowhere, or a fixed map (tests).
#[derive(Debug, Clone)]
pub enum Env {
    Process,
    Empty,
    #[cfg(test)]
    Fixed(std::collections::BTreeMap<String, String>),
}

impl Env {
    /// A variable's value; an empty one counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Empty => None,
            #[cfg(test)]
            Env::Fixed(map) => map.get(name).cloned(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// The operating-system user, libpq's default user name.
    fn os_user(&self) -> Option<String> {
        match self {
            Env::Process => process_user().or_else(|| self.var("USER")),
            _ => self.var("USER"),
        }
    }
}

fn process_user() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; the name is copied
    // out at once, and nothing else in this process calls getpwuid concurrently.
    unsafe {
        let entry = libc::getpwuid(libc::geteuid());
        if entry.is_null() || (*entry).pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Url,
    KeyValue,
}

/// One `keyword = value` as written: the decoded value and where its raw text is.
#[derive(Clone)]
struct Setting {
    keyword: &'static str,
    value: String,
    /// The raw value's bytes in the text (quotes and escapes included).
    span: Range<usize>,
    quoted: bool,
}

/// A connection string split into libpq settings, with the position of each raw value.
/// Its `Debug` shows the redacted text only.
#[derive(Clone)]
pub struct Parsed {
    text: String,
    form: Form,
    settings: Vec<Setting>,
    /// URL only: the raw database name after the first `/` (possibly empty).
    path: Option<Range<usize>>,
    /// URL only: where the host list ends (a database name would be inserted here).
    authority_end: usize,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Parsed").field(&self.redacted()).finish()
    }
}

impl Parsed {
    /// Splits `text` as libpq does: a URL when it starts with `postgresql://` or
    /// `postgres://`, else `key=value` pairs.
    pub fn new(text: &str) -> Result<Parsed, ConnInfoError> {
        for prefix in ["postgresql://", "postgres://"] {
            if text.starts_with(prefix) {
                return parse_url(text, prefix.len());
            }
        }
        if let Some((scheme, _)) = text.split_once("://") {
            let plausible = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if plausible {
                return Err(ConnInfoError::new(format!(
                    "the URL scheme `{scheme}://` is not postgres:// or postgresql://"
                )));
            }
        }
        let settings = parse_key_values(text)?;
        Ok(Parsed {
            text: text.to_string(),
            form: Form::KeyValue,
            settings,
            path: None,
            authority_end: 0,
        })
    }

    /// The text with every secret value replaced by `***`; everything else byte for byte.
    pub fn redacted(&self) -> String {
        let mut spans: Vec<&Range<usize>> = self
            .settings
            .iter()
            .filter(|s| is_secret(s.keyword) && !s.span.is_empty())
            .map(|s| &s.span)
            .collect();
        spans.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(self.text.len());
        let mut at = 0;
        for span in spans {
            if span.start < at {
                continue;
            }
            out.push_str(&self.text[at..span.start]);
            out.push_str(MASK);
            at = span.end;
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// The secret values, decoded and as written (percent-encoded, quoted), for masking.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.settings.iter().filter(|s| is_secret(s.keyword)) {
            out.push(s.value.clone());
            out.push(self.text[s.span.clone()].to_string());
        }
        out.retain(|s| !s.is_empty());
        out.dedup();
        out
    }

    /// The same string naming database `name` instead (a later `dbname` wins in libpq).
    pub fn with_database(&self, name: &str) -> String {
        match self.form {
            Form::KeyValue => {
                let quoted = name.replace('\\', "\\\\").replace('\'', "\\'");
                if self.text.trim().is_empty() {
                    format!("dbname='{quoted}'")
                } else {
                    format!("{} dbname='{quoted}'", self.text)
                }
            }
            Form::Url => {
                let encoded = utf8_percent_encode(name, URL_VALUE).to_string();
                let in_query: Vec<&Range<usize>> = self
                    .settings
                    .iter()
                    .filter(|s| s.keyword == "dbname" && Some(&s.span) != self.path.as_ref())
                    .map(|s| &s.span)
                    .collect();
                let mut text = self.text.clone();
                if !in_query.is_empty() {
                    for span in in_query.into_iter().rev() {
                        text.replace_range(span.clone(), &encoded);
                    }
                } else if let Some(path) = &self.path {
                    text.replace_range(path.clone(), &encoded);
                } else {
                    text.insert_str(self.authority_end, &format!("/{encoded}"));
                }
                text
            }
        }
    }

    fn value(&self, keyword: &str) -> Option<&str> {
        // A later setting overrides an earlier one, as in libpq.
        self.settings
            .iter()
            .rev()
            .find(|s| s.keyword == keyword)
            .map(|s| s.value.as_str())
    }
}

/// Characters written as-is in a database name put into a URL.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.');

fn is_secret(keyword: &str) -> bool {
    SECRETS.contains(&keyword)
}

/// libpq's `isspace` (the C locale).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')
}

/// A keyword as libpq knows it, or an error that quotes the word only when it cannot be
/// the tail of a secret whose value was not quoted.
fn keyword(
    word: &str,
    previous: Option<&Setting>,
    form: Form,
    may_echo: bool,
) -> Result<&'static str, ConnInfoError> {
    if let Some(known) = KEYWORDS.iter().find(|k| **k == word) {
        return Ok(known);
    }
    // After a secret, the word may be the secret's own tail: never quote it.
    if let Some(prev) = previous.filter(|p| is_secret(p.keyword)) {
        let hint = match form {
            Form::KeyValue if prev.quoted => {
                "a quoted value ends at its first unescaped quote: write a quote inside it as \\'"
                    .to_string()
            }
            Form::KeyValue => format!(
                "single-quote a value that holds blanks ({}='…')",
                prev.keyword
            ),
            Form::Url => "percent-encode `&` in it as %26".to_string(),
        };
        return Err(ConnInfoError::new(format!(
            "what follows the value of `{}` is not a connection option: {hint}",
            prev.keyword
        )));
    }
    let safe = may_echo
        && word.len() <= 40
        && word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let named = if safe {
        format!("`{word}` is not a connection option")
    } else {
        "a word that is not a connection option appears".to_string()
    };
    Err(ConnInfoError::new(format!(
        "{named} (libpq's keywords are host, port, dbname, user, password, sslmode, sslrootcert, \
         connect_timeout, application_name, options, ...)"
    )))
}

/// libpq's `key=value` form (`conninfo_parse`): blanks around `=` allowed, values single-
/// quoted or bare, `\` escaping the next character in both.
fn parse_key_values(text: &str) -> Result<Vec<Setting>, ConnInfoError> {
    let b = text.as_bytes();
    let mut settings: Vec<Setting> = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let word = &text[key_start..i];
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(ConnInfoError::new(match settings.last() {
                None => "it is neither a postgres:// or postgresql:// URL nor key=value pairs \
                         (host=… dbname=…)"
                    .to_string(),
                Some(prev) if prev.quoted => format!(
                    "a word after the value of `{}` has no `=value`: a quoted value ends at its \
                     first unescaped quote; write a quote inside it as \\'",
                    prev.keyword
                ),
                Some(prev) => format!(
                    "a word after the value of `{}` has no `=value`: single-quote a value that \
                     holds blanks ({}='…')",
                    prev.keyword, prev.keyword
                ),
            }));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let value_start = i;
        let quoted = b.get(i) == Some(&b'\'');
        let mut value = Vec::new();
        if quoted {
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        let name = KEYWORDS
                            .iter()
                            .find(|k| **k == word)
                            .map_or("a setting".to_string(), |k| format!("`{k}`"));
                        return Err(ConnInfoError::new(format!(
                            "the value of {name} lacks its closing quote"
                        )));
                    }
                    Some(b'\\') => {
                        i += 1;
                        if let Some(&c) = b.get(i) {
                            value.push(c);
                            i += 1;
                        }
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&c) = b.get(i) {
                if is_space(c) {
                    break;
                }
                i += 1;
                if c == b'\\' {
                    if let Some(&escaped) = b.get(i) {
                        value.push(escaped);
                        i += 1;
                    }
                } else {
                    value.push(c);
                }
            }
        }
        let keyword = keyword(
            word,
            settings.last(),
            Form::KeyValue,
            // An unquoted secret may have been cut at a blank: no later word is quoted.
            !settings.iter().any(|s| is_secret(s.keyword) && !s.quoted),
        )?;
        settings.push(Setting {
            keyword,
            value: String::from_utf8_lossy(&value).into_owned(),
            span: value_start..i,
            quoted,
        });
    }
    Ok(settings)
}

/// libpq's URL form (`conninfo_uri_parse_options`):
/// `postgres://[user[:password]@][host][:port][,...][/dbname][?param=value&...]`.
/// As in libpq the user information ends at the first `@` before any `/`, so `#` and `?`
/// may stand in a password unencoded; an `@` or `/` in it must be percent-encoded, and a
/// URL where that was forgotten is refused rather than read as a different host.
fn parse_url(text: &str, prefix: usize) -> Result<Parsed, ConnInfoError> {
    let mut settings = Vec::new();
    let p = url_userinfo(text, prefix, &mut settings)?;
    // An `@` that did not end user information may mean a password with an unencoded `@`
    // or `/` was read as host, port or query: then no word of the URL is quoted in an error.
    let userinfo_ats = usize::from(p > prefix);
    let may_echo = text[prefix..].matches('@').count() <= userinfo_ats;
    let (mut p, terminator) = url_authority(text, p, &mut settings)?;
    let authority_end = p;
    let b = text.as_bytes();
    let mut path = None;
    let mut terminator = terminator;
    if terminator == Some(b'/') {
        let start = p + 1;
        p = start;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        path = Some(start..p);
        if p > start {
            settings.push(url_setting(text, "dbname", start..p, "the database name")?);
        }
        terminator = b.get(p).copied();
    }
    if terminator == Some(b'?') {
        url_query(text, p + 1, may_echo, &mut settings)?;
    }
    Ok(Parsed {
        text: text.to_string(),
        form: Form::Url,
        settings,
        path,
        authority_end,
    })
}

/// The user information before the first `@` that precedes any `/` (user and password, both
/// percent-decoded); where the authority starts.
fn url_userinfo(
    text: &str,
    prefix: usize,
    settings: &mut Vec<Setting>,
) -> Result<usize, ConnInfoError> {
    let b = text.as_bytes();
    let mut p = prefix;
    while p < b.len() && b[p] != b'@' && b[p] != b'/' {
        p += 1;
    }
    let first_slash = text[prefix..].find('/').map_or(b.len(), |i| prefix + i);
    if b.get(p) == Some(&b'@') {
        let userinfo = prefix..p;
        let query = text[p + 1..].find('?').map_or(b.len(), |i| p + 1 + i);
        if text[p + 1..query].contains('@') {
            return Err(ConnInfoError::new(
                "the URL holds more than one `@` before its query: percent-encode an `@` in the \
                 user name or password as %40 (and a `/` as %2F)",
            ));
        }
        let colon = text[userinfo.clone()].find(':').map(|i| prefix + i);
        let user = prefix..colon.unwrap_or(p);
        if text[user.clone()].contains(['?', '=', '&']) {
            return Err(ConnInfoError::new(
                "the URL has an `@` in its query but no `/` before the query: libpq would read \
                 everything before the `@` as the user name; percent-encode `@` as %40, or write \
                 postgres://host/?…",
            ));
        }
        if !user.is_empty() {
            settings.push(url_setting(text, "user", user, "the user name")?);
        }
        if let Some(colon) = colon {
            let password = colon + 1..p;
            if !password.is_empty() {
                settings.push(url_setting(text, "password", password, "the password")?);
            }
        }
        p += 1;
    } else {
        p = prefix;
        let path_end = text[first_slash..]
            .find('?')
            .map_or(b.len(), |i| first_slash + i);
        if text[first_slash..path_end].contains('@') {
            return Err(ConnInfoError::new(
                "an `@` follows a `/` in the URL: percent-encode a `/` in the user name or \
                 password as %2F (and an `@` as %40)",
            ));
        }
    }

    Ok(p)
}

/// The hosts and ports from `p` (`host:port,host:port`, IPv6 in brackets); where the
/// authority ends, and the byte after it (`/`, `?` or none).
fn url_authority(
    text: &str,
    mut p: usize,
    settings: &mut Vec<Setting>,
) -> Result<(usize, Option<u8>), ConnInfoError> {
    let b = text.as_bytes();
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    let hosts_start = p;
    let terminator = loop {
        let host;
        if b.get(p) == Some(&b'[') {
            let start = p + 1;
            let Some(close) = text[start..].find(']').map(|i| start + i) else {
                return Err(ConnInfoError::new(
                    "an IPv6 host address in the URL lacks its closing `]`",
                ));
            };
            if close == start {
                return Err(ConnInfoError::new(
                    "an IPv6 host address in the URL is empty",
                ));
            }
            host = start..close;
            p = close + 1;
            if p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                return Err(ConnInfoError::new(
                    "an IPv6 host address in the URL is followed by something other than `:`, \
                     `/`, `?` or `,`",
                ));
            }
        } else {
            let start = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = start..p;
        }
        hosts.push(decode(text, host, "a host name")?);
        let mut next = b.get(p).copied();
        if next == Some(b':') {
            p += 1;
            let start = p;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push(decode(text, start..p, "the port")?);
            next = b.get(p).copied();
        } else {
            ports.push(String::new());
        }
        if next != Some(b',') {
            break next;
        }
        p += 1;
    };
    let authority_end = p;
    if hosts.iter().any(|h| !h.is_empty()) {
        settings.push(Setting {
            keyword: "host",
            value: hosts.join(","),
            span: hosts_start..authority_end,
            quoted: false,
        });
    }
    if ports.iter().any(|p| !p.is_empty()) {
        settings.push(Setting {
            keyword: "port",
            value: ports.join(","),
            span: hosts_start..authority_end,
            quoted: false,
        });
    }

    Ok((authority_end, terminator))
}

/// The query's `key=value` pairs from `start`, percent-decoded; `may_echo` says whether a
/// word of the URL may be quoted in an error.
fn url_query(
    text: &str,
    mut start: usize,
    may_echo: bool,
    settings: &mut Vec<Setting>,
) -> Result<(), ConnInfoError> {
    let b = text.as_bytes();
    let mut query_secret = false;
    while start <= b.len() {
        let end = text[start..].find('&').map_or(b.len(), |i| start + i);
        if end > start {
            let pair = &text[start..end];
            let Some(eq) = pair.find('=') else {
                let prev = settings.last().filter(|s: &&Setting| is_secret(s.keyword));
                return Err(ConnInfoError::new(match prev {
                    Some(prev) => format!(
                        "what follows the value of `{}` in the URL's query has no `=`: \
                             percent-encode `&` in it as %26",
                        prev.keyword
                    ),
                    None => "a parameter in the URL's query has no `=value`".to_string(),
                }));
            };
            let key = decode(text, start..start + eq, "a query parameter name")?;
            let value = start + eq + 1..end;
            if text[value.clone()].contains('=') {
                return Err(ConnInfoError::new(format!(
                    "the URL's query parameter `{}` holds a second `=`: percent-encode it as %3D",
                    if KEYWORDS.contains(&key.as_str()) {
                        key.as_str()
                    } else {
                        "?"
                    }
                )));
            }
            let (keyword, value_text) = if key == "ssl" {
                // libpq's JDBC-compatible spelling.
                let v = decode(text, value.clone(), "the value of `ssl`")?;
                if v != "true" {
                    return Err(ConnInfoError::new(
                        "the URL's query parameter `ssl` may only be `true` (sslmode=require)",
                    ));
                }
                ("sslmode", "require".to_string())
            } else {
                let keyword = keyword(&key, settings.last(), Form::Url, may_echo && !query_secret)?;
                let what = format!("the value of `{keyword}`");
                (keyword, decode(text, value.clone(), &what)?)
            };
            // A secret may have been cut at an unencoded `&`: no later word is quoted.
            query_secret |= is_secret(keyword);
            settings.push(Setting {
                keyword,
                value: value_text,
                span: value,
                quoted: false,
            });
        }
        start = end + 1;
    }
    Ok(())
}

fn url_setting(
    text: &str,
    keyword: &'static str,
    span: Range<usize>,
    what: &str,
) -> Result<Setting, ConnInfoError> {
    Ok(Setting {
        keyword,
        value: decode(text, span.clone(), what)?,
        span,
        quoted: false,
    })
}

/// libpq's percent-decoding: `%` must be followed by two hex digits, `%00` is refused, and
/// the result must be UTF-8 (PostgreSQL's names and passwords here are text).
fn decode(text: &str, span: Range<usize>, what: &str) -> Result<String, ConnInfoError> {
    let raw = &text[span];
    let b = raw.as_bytes();
    for (i, _) in raw.match_indices('%') {
        let hex = b.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(ConnInfoError::new(format!(
                "{what} in the URL holds a `%` that does not start a percent-encoded byte \
                 (%XX): write a literal `%` as %25"
            )));
        }
        if hex == Some(b"00") {
            return Err(ConnInfoError::new(format!(
                "{what} in the URL holds %00, a NUL byte, which PostgreSQL cannot take"
            )));
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ConnInfoError::new(format!("{what} in the URL is not UTF-8 once decoded")))
}

/// Where the password of a connection came from, for the message when it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The connection string.
    ConnectionString,
    /// `PGPASSWORD`.
    Variable,
    /// A password file line.
    Passfile { path: PathBuf, line: usize },
    /// None found: the string has none, `PGPASSWORD` is unset, and the password file (if
    /// any) has no matching line or was ignored.
    Missing { passfile: Option<PathBuf> },
}

impl PasswordSource {
    /// "the password came from …", for an authentication failure.
    pub fn describe(&self) -> String {
        match self {
            PasswordSource::ConnectionString => {
                "the password came from the connection string".to_string()
            }
            PasswordSource::Variable => format!(
                "the password came from PGPASSWORD{}",
                crate::target::dotenv_origin("PGPASSWORD")
            ),
            PasswordSource::Passfile { path, line } => format!(
                "the password came from the password file {} (line {line})",
                path.display()
            ),
            PasswordSource::Missing { passfile } => format!(
                "no password was given: none in the connection string, PGPASSWORD is not set, \
                 and {}",
                match passfile {
                    Some(path) => format!(
                        "the password file {} has no line for this host:port:database:user",
                        path.display()
                    ),
                    None => "there is no password file (~/.pgpass or PGPASSFILE)".to_string(),
                }
            ),
        }
    }
}

/// A connection string resolved as libpq would: the driver's configuration, the TLS policy,
/// and the text to show. Built once per target; its secrets are registered for masking.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    parsed: Parsed,
    env: Env,
    config: Config,
    tls: TlsParams,
    password: PasswordSource,
    notes: Vec<String>,
}

impl ConnInfo {
    /// Parses `text` and completes it from `env` (libpq's precedence: the string, then the
    /// `PG*` variables, then the password file for the password, then libpq's defaults).
    pub fn new(text: &str, env: Env) -> Result<ConnInfo, ConnInfoError> {
        let parsed = Parsed::new(text)?;
        for secret in parsed.secrets() {
            crate::redact::register(secret);
        }
        resolve(parsed, env)
    }

    /// The driver's configuration (without TLS: see `tls`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// libpq's `sslmode` and `sslrootcert`, which the driver does not implement itself.
    pub fn tls(&self) -> &TlsParams {
        &self.tls
    }

    /// The connection string as written, every secret replaced by `***`.
    pub fn redacted(&self) -> String {
        self.parsed.redacted()
    }

    /// Where the password came from.
    pub fn password_source(&self) -> &PasswordSource {
        &self.password
    }

    /// Things worth knowing when the connection fails (a password file that was ignored).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The database this connects to.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The same server and credentials, database `name` (e.g. a scratch database, or the
    /// maintenance database `postgres`).
    pub fn with_database(&self, name: &str) -> Result<ConnInfo, ConnInfoError> {
        ConnInfo::new(&self.parsed.with_database(name), self.env.clone())
    }

    /// Whether both name the same database on the same server and port.
    pub fn same_database(&self, other: &ConnInfo) -> bool {
        self.config.get_hosts() == other.config.get_hosts()
            && self.config.get_ports() == other.config.get_ports()
            && self.config.get_dbname() == other.config.get_dbname()
    }
}

/// The value of `keyword`: the string's, else its libpq variable's; and which variable.
fn lookup(parsed: &Parsed, env: &Env, keyword: &str) -> Option<(String, Option<&'static str>)> {
    if let Some(v) = parsed.value(keyword) {
        return Some((v.to_string(), None));
    }
    let (_, variable) = ENVIRONMENT.iter().find(|(k, _)| *k == keyword)?;
    env.var(variable).map(|v| (v, Some(*variable)))
}

fn resolve(parsed: Parsed, env: Env) -> Result<ConnInfo, ConnInfoError> {
    for s in &parsed.settings {
        if UNSUPPORTED.contains(&s.keyword) {
            return Err(ConnInfoError::new(format!(
                "`{}` is not supported by migrate (of libpq's TLS settings it supports sslmode \
                 and sslrootcert)",
                s.keyword
            )));
        }
    }
    let get = |keyword: &str| lookup(&parsed, &env, keyword);
    let mut config = Config::new();
    let (hosts, ports) = hosts_and_ports(&get, &mut config)?;
    let user = match get("user") {
        Some((user, _)) => user,
        None => env.os_user().ok_or_else(|| {
            ConnInfoError::new(
                "it names no user, PGUSER is not set and the system user is unknown: write \
                 postgres://USER@HOST/DATABASE",
            )
        })?,
    };
    config.user(&user);
    let dbname = get("dbname").map_or_else(|| user.clone(), |(d, _)| d);
    config.dbname(&dbname);
    let mut notes = Vec::new();
    let password = password(
        &get,
        &env,
        &mut config,
        &mut notes,
        (&hosts, &ports),
        &user,
        &dbname,
    );
    session_options(&get, &mut config)?;
    let tls = tls_params(&get, &env)?;
    Ok(ConnInfo {
        parsed,
        env,
        config,
        tls,
        password,
        notes,
    })
}

/// An error about a value, naming the variable it came from (if any).
fn fail(variable: Option<&'static str>, message: String) -> ConnInfoError {
    ConnInfoError { variable, message }
}

/// `host`, `hostaddr` and `port` into `config`: the host names given (maybe none, with
/// `hostaddr`) and a port per host (or one for all).
fn hosts_and_ports(
    get: &Get<'_>,
    config: &mut Config,
) -> Result<(Vec<String>, Vec<u16>), ConnInfoError> {
    let hosts: Vec<String> = get("host")
        .map(|(v, _)| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let hostaddrs = get("hostaddr");
    if hosts.iter().all(String::is_empty) && hostaddrs.is_none() {
        return Err(ConnInfoError::new(
            "it names no host, and PGHOST is not set: write postgres://USER@HOST:PORT/DATABASE \
             (or host=HOST), or set PGHOST (a socket directory such as /var/run/postgresql \
             works too)",
        ));
    }
    if hosts.len() > 1 && hosts.iter().any(String::is_empty) {
        return Err(ConnInfoError::new("the host list has an empty entry"));
    }
    for host in hosts.iter().filter(|h| !h.is_empty()) {
        config.host(host);
    }
    if let Some((value, variable)) = &hostaddrs {
        for addr in value.split(',') {
            let ip = addr.parse().map_err(|_| {
                fail(
                    *variable,
                    "hostaddr is not a numeric IP address (use host for a name)".to_string(),
                )
            })?;
            config.hostaddr(ip);
        }
    }
    let host_count = hosts.len().max(config.get_hostaddrs().len()).max(1);
    let mut ports = Vec::new();
    if let Some((value, variable)) = get("port") {
        for port in value.split(',') {
            ports.push(if port.is_empty() {
                5432
            } else {
                match port.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => {
                        return Err(fail(
                            variable,
                            "the port is not a number from 1 to 65535 (in a URL a password \
                             needs an `@host` after it)"
                                .to_string(),
                        ))
                    }
                }
            });
        }
        if ports.len() != 1 && ports.len() != host_count {
            return Err(fail(
                variable,
                format!("{} ports are given for {host_count} hosts", ports.len()),
            ));
        }
    }
    if ports.is_empty() {
        ports.push(5432);
    }
    for port in &ports {
        config.port(*port);
    }
    Ok((hosts, ports))
}

/// The password: from the connection string or `PGPASSWORD`, else from the password file
/// (`passfile`, `~/.pgpass`) line that matches the first host, port, database and user that
/// has one; where it came from, for the advice on a failed login. Why a password file was
/// ignored goes to `notes`.
fn password(
    get: &Get<'_>,
    env: &Env,
    config: &mut Config,
    notes: &mut Vec<String>,
    (hosts, ports): (&[String], &[u16]),
    user: &str,
    dbname: &str,
) -> PasswordSource {
    match get("password").filter(|(p, _)| !p.is_empty()) {
        Some((password, variable)) => {
            crate::redact::register(password.clone());
            config.password(password);
            match variable {
                None => PasswordSource::ConnectionString,
                Some(_) => PasswordSource::Variable,
            }
        }
        None => {
            let passfile = get("passfile")
                .map(|(p, _)| PathBuf::from(p))
                .or_else(|| env.var("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
            let mut found = None;
            if let Some(path) = &passfile {
                let port = ports[0].to_string();
                let lookup_hosts: Vec<&str> = if hosts.is_empty() {
                    vec![""]
                } else {
                    hosts.iter().map(String::as_str).collect()
                };
                match read_passfile(path) {
                    Ok(Some(text)) => {
                        found = lookup_hosts.iter().enumerate().find_map(|(i, host)| {
                            let port = ports.get(i).map_or(port.clone(), u16::to_string);
                            passfile_password(&text, host, &port, dbname, user)
                        });
                    }
                    Ok(None) => {}
                    Err(note) => notes.push(note.to_string()),
                }
            }
            match (found, passfile) {
                (Some((password, line)), Some(path)) => {
                    crate::redact::register(password.clone());
                    config.password(password);
                    PasswordSource::Passfile { path, line }
                }
                (_, passfile) => PasswordSource::Missing {
                    passfile: passfile.filter(|p| p.is_file()),
                },
            }
        }
    }
}

/// The session's other settings: timeouts, application name, options, the fixed-choice
/// keywords libpq knows, keepalives.
fn session_options(get: &Get<'_>, config: &mut Config) -> Result<(), ConnInfoError> {
    let timeout = match get("connect_timeout") {
        Some((value, variable)) => {
            let seconds: i64 = value.trim().parse().map_err(|_| {
                fail(
                    variable,
                    "connect_timeout is not a whole number of seconds".to_string(),
                )
            })?;
            // libpq: 0 or less waits forever; 1 is raised to 2.
            (seconds > 0).then(|| Duration::from_secs(seconds.max(2) as u64))
        }
        None => Some(Duration::from_secs(10)),
    };
    if let Some(timeout) = timeout {
        config.connect_timeout(timeout);
    }
    let application_name = get("application_name")
        .or_else(|| get("fallback_application_name"))
        .map_or_else(|| "migrate".to_string(), |(v, _)| v);
    config.application_name(application_name);
    if let Some((options, _)) = get("options") {
        config.options(options);
    }

    let choice = |keyword: &str, allowed: &[&str]| -> Result<Option<String>, ConnInfoError> {
        match get(keyword) {
            Some((value, _)) if allowed.contains(&value.as_str()) => Ok(Some(value)),
            Some((value, variable)) => Err(not_one_of(keyword, &value, variable, allowed)),
            None => Ok(None),
        }
    };
    if let Some(v) = choice("target_session_attrs", &["any", "read-write", "read-only"])? {
        config.target_session_attrs(match v.as_str() {
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            _ => TargetSessionAttrs::Any,
        });
    }
    if let Some(v) = choice("channel_binding", &["disable", "prefer", "require"])? {
        config.channel_binding(match v.as_str() {
            "disable" => ChannelBinding::Disable,
            "require" => ChannelBinding::Require,
            _ => ChannelBinding::Prefer,
        });
    }
    if let Some(v) = choice("load_balance_hosts", &["disable", "random"])? {
        config.load_balance_hosts(match v.as_str() {
            "random" => LoadBalanceHosts::Random,
            _ => LoadBalanceHosts::Disable,
        });
    }
    if let Some(v) = choice("sslnegotiation", &["postgres", "direct"])? {
        config.ssl_negotiation(match v.as_str() {
            "direct" => SslNegotiation::Direct,
            _ => SslNegotiation::Postgres,
        });
    }
    if choice("gssencmode", &["disable", "prefer", "require"])?.as_deref() == Some("require") {
        return Err(ConnInfoError::new(
            "gssencmode=require is not supported by migrate (no GSSAPI encryption)",
        ));
    }
    if let Some((value, _)) = get("client_encoding") {
        if !matches!(
            value.to_ascii_lowercase().as_str(),
            "utf8" | "utf-8" | "unicode" | "auto"
        ) {
            return Err(ConnInfoError::new(
                "client_encoding must be UTF8: migrate always talks UTF-8 to the server",
            ));
        }
    }
    let seconds = |keyword: &str| -> Result<Option<Duration>, ConnInfoError> {
        match get(keyword) {
            Some((value, variable)) => match value.trim().parse::<i64>() {
                Ok(s) => Ok((s > 0).then(|| Duration::from_secs(s as u64))),
                Err(_) => Err(fail(
                    variable,
                    format!("{keyword} is not a whole number of seconds"),
                )),
            },
            None => Ok(None),
        }
    };
    if let Some((value, _)) = get("keepalives") {
        config.keepalives(value.trim() != "0");
    }
    if let Some(d) = seconds("keepalives_idle")? {
        config.keepalives_idle(d);
    }
    if let Some(d) = seconds("keepalives_interval")? {
        config.keepalives_interval(d);
    }
    if let Some(d) = seconds("keepalives_count")? {
        config.keepalives_retries(d.as_secs().min(u32::MAX as u64) as u32);
    }
    if let Some(ms) = seconds("tcp_user_timeout")? {
        // libpq's tcp_user_timeout is in milliseconds.
        config.tcp_user_timeout(Duration::from_millis(ms.as_secs()));
    }
    Ok(())
}

/// A value outside a keyword's fixed set. A value from the connection string is not quoted
/// (after an unquoted password it may be the password's tail); a variable's is.
fn not_one_of(
    keyword: &str,
    value: &str,
    variable: Option<&'static str>,
    allowed: &[&str],
) -> ConnInfoError {
    let what = match variable {
        Some(_) => format!("{keyword}={value}"),
        None => format!("the value of `{keyword}`"),
    };
    ConnInfoError {
        variable,
        message: format!("{what} is not one of {}", allowed.join(", ")),
    }
}

type Get<'a> = dyn Fn(&str) -> Option<(String, Option<&'static str>)> + 'a;

/// `sslmode` and `sslrootcert` as libpq reads them.
fn tls_params(get: &Get<'_>, env: &Env) -> Result<TlsParams, ConnInfoError> {
    let requested = match get("sslmode") {
        Some((value, variable)) => Some(
            value
                .parse::<SslMode>()
                .map_err(|_| not_one_of("sslmode", &value, variable, SslMode::VARIANTS))?,
        ),
        None => None,
    };
    let root_cert = match get("sslrootcert") {
        Some((value, _)) if value == "system" => Some(RootCert::System),
        Some((value, _)) => Some(RootCert::File(PathBuf::from(value))),
        // libpq's default root certificate, `~/.postgresql/root.crt`, when it exists.
        None => env
            .var("HOME")
            .map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
            .filter(|path| path.is_file())
            .map(RootCert::File),
    };
    // libpq: the system's CAs vouch for host names, so they are trusted only with verify-full.
    if let (Some(RootCert::System), Some(mode)) = (&root_cert, requested) {
        if mode != SslMode::VerifyFull {
            return Err(ConnInfoError::new(format!(
                "sslmode={} cannot be used with sslrootcert=system: the system's CAs are \
                 trusted only with sslmode=verify-full (as libpq); use it, or leave sslmode out",
                mode.as_str()
            )));
        }
    }
    Ok(TlsParams {
        requested,
        root_cert,
    })
}

/// Why a password file was ignored (a note on a failed connection, never an error).
#[derive(Debug, thiserror::Error)]
enum PassfileIgnored {
    #[error("the password file {} is not a plain file, so it was ignored", .0.display())]
    NotPlain(PathBuf),
    #[error(
        "the password file {shown} has group or world access, so it was ignored (as libpq \
         does); permissions should be u=rw (0600) or less: chmod 600 {shown}",
        shown = .0.display()
    )]
    Permissions(PathBuf),
    #[error("the password file {} cannot be read: {error}", .path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The password file's text, None when there is no such file, or why it was ignored
/// (libpq's rules: a plain file, no access for group or others).
fn read_passfile(path: &Path) -> Result<Option<String>, PassfileIgnored> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(PassfileIgnored::NotPlain(path.to_path_buf()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(PassfileIgnored::Permissions(path.to_path_buf()));
        }
    }
    std::fs::read(path)
        .map(|bytes| Some(String::from_utf8_lossy(&bytes).into_owned()))
        .map_err(|error| PassfileIgnored::Unreadable {
            path: path.to_path_buf(),
            error,
        })
}

/// The password the first matching line of a password file gives, and that line's number.
/// Lines are `hostname:port:database:username:password`; `*` matches anything in the first
/// four fields, `\` escapes `:` and `\`, and lines starting with `#` are comments. A Unix
/// socket in the default directory, or no host, matches `localhost` (as libpq).
pub fn passfile_password(
    text: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<(String, usize)> {
    let host = if host.is_empty() || DEFAULT_SOCKET_DIRS.contains(&host.trim_end_matches('/')) {
        "localhost"
    } else {
        host
    };
    let port = if port.is_empty() { "5432" } else { port };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut rest = line;
        let mut matched = true;
        for wanted in [host, port, dbname, user] {
            match match_field(rest, wanted) {
                Some(after) => rest = after,
                None => {
                    matched = false;
                    break;
                }
            }
        }
        if !matched {
            continue;
        }
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(escaped) => password.push(escaped),
                    None => password.push('\\'),
                },
                c => password.push(c),
            }
        }
        return Some((password, n + 1));
    }
    None
}

/// libpq's `pwdfMatchesString`: the rest of the line after this field when it matches.
fn match_field<'a>(line: &'a str, wanted: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut wanted = wanted.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let c = match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => escaped,
                None => return None,
            },
            ':' => {
                return wanted.next().is_none().then(|| &line[i + 1..]);
            }
            c => c,
        };
        if wanted.next() != Some(c) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests;
