//! Passwords never reach the output: connection strings are shown redacted (`conninfo`
//! knows where their secrets are), and every secret the run has seen is masked in whatever
//! is written, as a last line of defence.

use std::sync::Mutex;

use crate::conninfo::{Parsed, MASK};

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers the secrets of a connection string so that `mask` hides them everywhere; a
/// string that cannot be parsed is never shown, so there is nothing to remember.
pub fn register_connection_string(text: &str) {
    if let Ok(parsed) = Parsed::new(text) {
        for secret in parsed.secrets() {
            register(secret);
        }
    }
}

/// Remembers one secret (a password from the URL, `PGPASSWORD` or a password file).
pub fn register(secret: String) {
    // Very short secrets would mask ordinary words; connection strings still never show
    // them, because `conninfo` redacts by position.
    if secret.len() >= 4 {
        let mut secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
        if !secrets.contains(&secret) {
            secrets.push(secret);
            // Longest first, so a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn mask(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets() {
        register("Tr0ub4dor&3".into());
        assert_eq!(mask("auth failed for Tr0ub4dor&3"), "auth failed for ***");
    }

    #[test]
    fn registers_the_secrets_of_a_connection_string() {
        register_connection_string("host=h password='c0rrect horse'");
        assert_eq!(mask("x c0rrect horse y"), "x *** y");
        register_connection_string("postgres://u:b%40ttery@h/d");
        assert_eq!(mask("b@ttery b%40ttery"), "*** ***");
    }
}
