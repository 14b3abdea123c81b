//! Passwords never reach the output: URLs are shown redacted, and every secret the run has
//! seen is masked in whatever is written, as a last line of defence.

use std::sync::Mutex;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `postgres://app:secret@host/db` → `postgres://app:***@host/db`; also masks a `password=`
/// parameter in a URL query or a key/value connection string.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    mask_password_params(&out)
}

fn mask_password_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("password=") {
        let boundary_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'\t');
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if !boundary_ok {
            continue;
        }
        let end = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |j| j + 2)
        } else {
            rest.find(['&', ' ', '\t', '#']).unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The password a connection string carries, if any (percent-decoded for URLs).
pub fn password_of(url: &str) -> Option<String> {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some((_, password)) = authority[..at].split_once(':') {
                return Some(percent_decode(password));
            }
        }
        let query = url.split_once('?').map(|(_, q)| q)?;
        return query
            .split('&')
            .find_map(|kv| kv.strip_prefix("password="))
            .map(percent_decode);
    }
    url.split_whitespace()
        .find_map(|kv| kv.strip_prefix("password="))
        .map(|v| v.trim_matches('\'').to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remembers the secrets of a connection string so that `mask` hides them everywhere.
pub fn register_url(url: &str) {
    if let Some(password) = password_of(url) {
        register(password);
    }
}

pub fn register(secret: String) {
    // Very short secrets would mask ordinary words; they are still kept out of URLs above.
    if secret.len() >= 4 {
        let mut secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
        if !secrets.contains(&secret) {
            secrets.push(secret);
        }
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn mask(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.example.com:5432/app?sslmode=require"),
            "postgres://app:***@db.example.com:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://app@host/db"),
            "postgresql://app@host/db"
        );
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
    }

    #[test]
    fn redacts_password_parameters() {
        assert_eq!(
            redact_url("postgres://host/db?user=a&password=hunter22&sslmode=disable"),
            "postgres://host/db?user=a&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=localhost password='x y' user=app"),
            "host=localhost password=*** user=app"
        );
    }

    #[test]
    fn finds_passwords() {
        assert_eq!(
            password_of("postgres://a:p%40ss@h/d").as_deref(),
            Some("p@ss")
        );
        assert_eq!(
            password_of("postgres://h/d?password=zz").as_deref(),
            Some("zz")
        );
        assert_eq!(password_of("host=h password=kv").as_deref(), Some("kv"));
        assert_eq!(password_of("postgres://a@h/d"), None);
    }

    #[test]
    fn masks_registered_secrets() {
        register("Tr0ub4dor&3".into());
        assert_eq!(mask("auth failed for Tr0ub4dor&3"), "auth failed for ***");
    }
}
