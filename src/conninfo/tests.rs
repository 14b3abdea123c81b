//! The parser against libpq's rules, the password file, and the redaction property.

use super::*;

fn fixed(vars: &[(&str, &str)]) -> Env {
    Env::Fixed(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn info(text: &str) -> ConnInfo {
    ConnInfo::new(text, fixed(&[])).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn password(text: &str) -> Option<String> {
    info(text)
        .config()
        .get_password()
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
}

#[test]
fn key_values_follow_libpq() {
    // Blanks around `=`, quotes, backslash escapes inside and outside quotes.
    assert_eq!(
        password(r"host=h user=u password = 'it\'s a s3cret'").as_deref(),
        Some("it's a s3cret")
    );
    assert_eq!(
        password(r"host=h user=u password=a\ b\\c").as_deref(),
        Some(r"a b\c")
    );
    assert_eq!(
        password("host=h user=u password=x#tail").as_deref(),
        Some("x#tail")
    );
    let c = info("host = db.example.com port=6543 user=app dbname='my db'");
    assert_eq!(c.config().get_ports(), &[6543]);
    assert_eq!(c.config().get_user(), Some("app"));
    assert_eq!(c.dbname(), "my db");
    // A later keyword wins.
    assert_eq!(info("host=h user=a user=b").config().get_user(), Some("b"));
}

#[test]
fn urls_follow_libpq() {
    // Userinfo need not be percent-encoded: `#`, `?` and `:` may stand in a password.
    assert_eq!(
        password("postgres://u:pa#ss?w:rd@h/d").as_deref(),
        Some("pa#ss?w:rd")
    );
    assert_eq!(
        password("postgres://u:s3cr%40t@h/d").as_deref(),
        Some("s3cr@t")
    );
    assert_eq!(
        password("postgresql://u@h/d?password=q%26p").as_deref(),
        Some("q&p")
    );
    let c = info("postgres://app@[::1]:6000,db2:6001/my%20db?application_name=x&sslmode=disable");
    assert_eq!(c.config().get_ports(), &[6000, 6001]);
    assert_eq!(c.dbname(), "my db");
    assert_eq!(c.config().get_application_name(), Some("x"));
    assert_eq!(c.tls().requested, Some(SslMode::Disable));
    // Query parameters override the path, as in libpq.
    assert_eq!(info("postgres://u@h/a?dbname=b").dbname(), "b");
    assert_eq!(
        info("postgres://u@h?ssl=true").tls().requested,
        Some(SslMode::Require)
    );
}

#[test]
fn defaults_come_from_libpq_environment() {
    let env = fixed(&[
        ("PGHOST", "db.internal"),
        ("PGPORT", "6432"),
        ("PGUSER", "ci"),
        ("PGDATABASE", "app"),
        ("PGPASSWORD", "from-env-pw"),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "deploy"),
        ("PGCONNECT_TIMEOUT", "1"),
        ("PGSSLROOTCERT", "/etc/ca.pem"),
    ]);
    let c = ConnInfo::new("postgres://", env.clone()).unwrap();
    assert_eq!(c.config().get_ports(), &[6432]);
    assert_eq!(c.config().get_user(), Some("ci"));
    assert_eq!(c.dbname(), "app");
    assert_eq!(c.config().get_password(), Some(&b"from-env-pw"[..]));
    assert_eq!(c.password_source(), &PasswordSource::Variable);
    assert_eq!(c.tls().requested, Some(SslMode::Require));
    assert_eq!(
        c.tls().root_cert,
        Some(RootCert::File(PathBuf::from("/etc/ca.pem")))
    );
    assert_eq!(c.config().get_application_name(), Some("deploy"));
    // libpq raises a 1-second timeout to 2.
    assert_eq!(
        c.config().get_connect_timeout(),
        Some(&Duration::from_secs(2))
    );
    // The string wins over the environment.
    let c = ConnInfo::new("postgres://me:pw12@h:5433/x?sslmode=disable", env).unwrap();
    assert_eq!(c.config().get_user(), Some("me"));
    assert_eq!(c.config().get_password(), Some(&b"pw12"[..]));
    assert_eq!(c.password_source(), &PasswordSource::ConnectionString);
    assert_eq!(c.config().get_ports(), &[5433]);
    assert_eq!(c.tls().requested, Some(SslMode::Disable));
    // Without a database, the user's name; application_name defaults to migrate.
    let c = ConnInfo::new("host=h user=u", fixed(&[])).unwrap();
    assert_eq!(c.dbname(), "u");
    assert_eq!(c.config().get_application_name(), Some("migrate"));
}

#[test]
fn bad_environment_values_name_their_variable() {
    let e = ConnInfo::new("host=h user=u", fixed(&[("PGPORT", "none")])).unwrap_err();
    assert_eq!(e.variable, Some("PGPORT"));
    let e = ConnInfo::new("host=h user=u", fixed(&[("PGSSLMODE", "on")])).unwrap_err();
    assert_eq!(e.variable, Some("PGSSLMODE"));
    assert!(e.message.contains("sslmode=on is not one of"), "{e}");
}

#[test]
fn passfile_lines_match_as_in_libpq() {
    let file = "\
# comment
other:5432:*:*:nope
db.example.com:5432:app:ci:first
*:*:*:ci:wild\\:card\\\\
h\\:x:*:*:*:escaped
localhost:5432:*:*:socket
";
    assert_eq!(
        passfile_password(file, "db.example.com", "5432", "app", "ci"),
        Some(("first".into(), 3))
    );
    assert_eq!(
        passfile_password(file, "db.example.com", "5432", "other", "ci"),
        Some(("wild:card\\".into(), 4))
    );
    assert_eq!(
        passfile_password(file, "h:x", "1", "d", "u"),
        Some(("escaped".into(), 5))
    );
    assert_eq!(
        passfile_password(file, "/var/run/postgresql", "5432", "d", "u"),
        Some(("socket".into(), 6))
    );
    assert_eq!(
        passfile_password(file, "db.example.com", "5432", "app", "nobody"),
        None
    );
    // The password ends at an unescaped `:`.
    assert_eq!(
        passfile_password("*:*:*:*:a:b", "h", "1", "d", "u"),
        Some(("a".into(), 1))
    );
}

#[test]
fn passfile_is_read_with_its_permission_rule() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pgpass");
    std::fs::write(&path, "h:5432:d:u:from-file\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = fixed(&[("PGPASSFILE", path.to_str().unwrap())]);
    let c = ConnInfo::new("host=h user=u dbname=d", env.clone()).unwrap();
    assert_eq!(c.config().get_password(), Some(&b"from-file"[..]));
    assert_eq!(
        c.password_source(),
        &PasswordSource::Passfile {
            path: path.clone(),
            line: 1
        }
    );
    // PGPASSWORD comes before the file.
    let mut with_var = env.clone();
    if let Env::Fixed(map) = &mut with_var {
        map.insert("PGPASSWORD".into(), "var-pw".into());
    }
    let c = ConnInfo::new("host=h user=u dbname=d", with_var).unwrap();
    assert_eq!(c.config().get_password(), Some(&b"var-pw"[..]));
    // Readable by others: ignored, and the reason kept for the error message.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = ConnInfo::new("host=h user=u dbname=d", env).unwrap();
    assert_eq!(c.config().get_password(), None);
    assert!(
        c.notes()[0].contains("group or world access"),
        "{:?}",
        c.notes()
    );
    // HOME's .pgpass is the default.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&path, dir.path().join(".pgpass")).unwrap();
    let c = ConnInfo::new(
        "host=h user=u dbname=d",
        fixed(&[("HOME", dir.path().to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(c.config().get_password(), Some(&b"from-file"[..]));
}

#[test]
fn bad_strings_say_which_part_is_wrong() {
    let err = |text: &str| {
        Parsed::new(text)
            .and_then(|p| resolve(p, fixed(&[])))
            .unwrap_err()
            .message
    };
    assert!(err("not-a-url").contains("neither a postgres:// or postgresql:// URL nor key=value"));
    assert!(err("mysql://u:p@h/d").contains("scheme `mysql://`"));
    assert!(err("postgres:///db").contains("names no host"));
    assert!(err("postgres://u@h/db%00x").contains("the database name in the URL holds %00"));
    assert!(err("postgres://u@h/db%zz").contains("does not start a percent-encoded byte"));
    assert!(err("postgres://u@h:port/db").contains("the port is not a number"));
    assert!(err("postgres://u@h/d?sslmode=verify").contains("the value of `sslmode` is not one of"));
    assert!(err("host=h sslcert=/c.pem").contains("`sslcert` is not supported"));
    assert!(err("host=h user=u bogus=1").contains("`bogus` is not a connection option"));
    assert!(err("postgres://u@h/d?sslrootcert=system&sslmode=require")
        .contains("cannot be used with sslrootcert=system"));
}

#[test]
fn system_roots_mean_verify_full_as_in_libpq() {
    let c = info("postgres://u@db.example.com/d?sslrootcert=system");
    assert_eq!(c.tls().mode(false), SslMode::VerifyFull);
    assert_eq!(c.tls().mode(true), SslMode::VerifyFull);
}

#[test]
fn with_database_keeps_everything_else() {
    let p = |t: &str| Parsed::new(t).unwrap();
    assert_eq!(
        p("postgres://u:p@h:5432/postgres?sslmode=require").with_database("x y"),
        "postgres://u:p@h:5432/x%20y?sslmode=require"
    );
    assert_eq!(p("postgresql://h").with_database("x"), "postgresql://h/x");
    assert_eq!(
        p("postgresql://h?sslmode=disable").with_database("x"),
        "postgresql://h/x?sslmode=disable"
    );
    assert_eq!(
        p("postgres://h/a?dbname=b").with_database("x"),
        "postgres://h/a?dbname=x"
    );
    assert_eq!(
        p("host=h user=u dbname=postgres").with_database("it's"),
        "host=h user=u dbname=postgres dbname='it\\'s'"
    );
    assert_eq!(
        info(&p("host=h user=u dbname=a").with_database("it's")).dbname(),
        "it's"
    );
}

#[test]
fn debug_output_is_redacted_too() {
    let c = info("postgres://u:hunter22@h/d");
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter22"), "{shown}");
    let p = Parsed::new("host=h sslpassword=hunter33").unwrap();
    assert!(!format!("{p:?}").contains("hunter33"));
}

#[test]
fn redaction_examples_from_issue_9() {
    let r = |t: &str| Parsed::new(t).unwrap().redacted();
    assert_eq!(
        r(r"host=h password='it\'s a s3cret' user=u"),
        "host=h password=*** user=u"
    );
    assert_eq!(
        r("host=h password = 'x' user=u"),
        "host=h password = *** user=u"
    );
    assert_eq!(r("host=h sslpassword=keyphrase"), "host=h sslpassword=***");
    assert_eq!(
        r("host=h password=ab#cd user=u"),
        "host=h password=*** user=u"
    );
    assert_eq!(r("postgres://app:pa#ss@h/d"), "postgres://app:***@h/d");
    assert_eq!(
        r("postgres://h/d?user=a&password=hunter22&sslmode=disable"),
        "postgres://h/d?user=a&password=***&sslmode=disable"
    );
    assert_eq!(r("postgresql://app@host/db"), "postgresql://app@host/db");
}

mod property {
    //! Many generated secrets in every syntax that can carry one: the parser recovers the
    //! secret exactly, the redacted text is the string with `***` in its place, and neither
    //! the redacted text nor any error says any of it.

    use super::*;
    use proptest::prelude::*;

    /// A secret with a distinctive core (so "not shown" can be tested by substring) and
    /// any of the characters that break hand-written parsers around it.
    fn secret() -> impl Strategy<Value = String> {
        (
            "[ '\\\\#@:/?&=%$!\"é-]{0,4}",
            "[A-Za-z0-9]{6,10}",
            "[ '\\\\#@:/?&=%$!\"é-]{0,4}",
        )
            .prop_map(|(a, core, b)| format!("{a}Zq{core}{b}"))
    }

    fn kv_quote(s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    fn kv_escape(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c == '\\' || c == '\'' || c.is_whitespace() {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    fn pct(s: &str, set: &'static AsciiSet) -> String {
        utf8_percent_encode(s, set).to_string()
    }

    /// What libpq's URL user information must encode: `@` and `/` (and `%` itself).
    const USERINFO: &AsciiSet = &percent_encoding::CONTROLS
        .add(b'@')
        .add(b'/')
        .add(b'%')
        .add(b' ')
        .add(b'"');
    /// A query value: also `&` (next parameter) and `=`.
    const QUERY: &AsciiSet = &USERINFO.add(b'&').add(b'=').add(b'#');

    /// (connection string, the same with the secret's raw text replaced by `***`).
    fn syntaxes(secret: &str) -> Vec<(String, String)> {
        let keyed = |kw: &str, raw: &str| {
            (
                format!("host=db.example.com user=app {kw}{raw} dbname=app"),
                format!("host=db.example.com user=app {kw}*** dbname=app"),
            )
        };
        vec![
            keyed("password=", &kv_quote(secret)),
            keyed("password = ", &kv_quote(secret)),
            keyed("password=", &kv_escape(secret)),
            keyed("sslpassword=", &kv_quote(secret)),
            (
                format!("postgres://app:{}@db.example.com:5432/app", pct(secret, USERINFO)),
                "postgres://app:***@db.example.com:5432/app".to_string(),
            ),
            (
                format!(
                    "postgresql://app@db.example.com/app?sslmode=disable&password={}&application_name=x",
                    pct(secret, QUERY)
                ),
                "postgresql://app@db.example.com/app?sslmode=disable&password=***&application_name=x"
                    .to_string(),
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn secrets_are_parsed_exactly_and_never_shown(secret in secret()) {
            for (text, expected) in syntaxes(&secret) {
                let parsed = Parsed::new(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                let found: Vec<&str> = parsed
                    .settings
                    .iter()
                    .filter(|s| is_secret(s.keyword))
                    .map(|s| s.value.as_str())
                    .collect();
                prop_assert_eq!(found, vec![secret.as_str()], "{}", text);
                let redacted = parsed.redacted();
                prop_assert_eq!(&redacted, &expected);
                let core = &secret[secret.find("Zq").unwrap()..][..8];
                prop_assert!(!redacted.contains(core));
            }
        }

        #[test]
        fn broken_strings_never_quote_the_secret(secret in secret(), cut in 0usize..3) {
            // Secrets written the careless way: unquoted with blanks, unencoded `@`, `/`, `&`,
            // an unterminated quote. Whatever the parser makes of them, its error or its
            // redacted text holds no part of the secret's core.
            let core = secret[secret.find("Zq").unwrap()..][..8].to_string();
            let texts = [
                format!("host=h user=u password={secret} dbname=d"),
                format!("host=h user=u password='{secret}"),
                format!("postgres://u:{secret}@h/d"),
                format!("postgres://u@h/d?password={secret}&sslmode=disable"),
                format!(
                    "postgres://u:{}@h/d",
                    secret.chars().take(secret.chars().count().saturating_sub(cut)).collect::<String>()
                ),
            ];
            for text in texts {
                match Parsed::new(&text).and_then(|p| resolve(p.clone(), fixed(&[])).map(|_| p)) {
                    Ok(parsed) => {
                        let redacted = parsed.redacted();
                        prop_assert!(!redacted.contains(&core), "{} → {}", text, redacted);
                    }
                    Err(e) => prop_assert!(!e.message.contains(&core), "{} → {}", text, e),
                }
            }
        }
    }
}

/// Mutation this catches (cargo-mutants): `ConnInfo::redacted` returning anything but the
/// string as written with its secrets masked (what every message naming a target shows).
#[test]
fn a_connection_shows_its_string_with_the_secrets_masked() {
    assert_eq!(
        info("postgres://app:Sw0rdfish@db.example.com:5432/app?sslmode=require").redacted(),
        "postgres://app:***@db.example.com:5432/app?sslmode=require"
    );
    assert_eq!(
        info("host=h user=app password='it s3cret' dbname=app").redacted(),
        "host=h user=app password=*** dbname=app"
    );
}
