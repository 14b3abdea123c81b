//! Environments against a real PostgreSQL: TLS modes on a cluster with ssl=on, protected
//! environments, `plan` and `promote` between two databases playing staging and production.

use std::path::PathBuf;
use std::sync::OnceLock;

use migrate::local::ServerOptions;

use crate::support::{server, throwaway_cluster, Project};

// ---------------------------------------------------------------------------------------
// TLS

/// A second cluster with `ssl=on`, serving a certificate for `localhost` signed by a CA made
/// here; `ca` is that CA's certificate (PEM).
struct TlsServer {
    port: u16,
    ca: PathBuf,
}

fn tls_server() -> &'static TlsServer {
    static TLS: OnceLock<TlsServer> = OnceLock::new();
    TLS.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "migrate test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let mut ca = PathBuf::new();
        let (_, port) = throwaway_cluster("-tls", |cluster| {
            let write = |name: &str, text: String| {
                cluster
                    .write_server_file(name, text.as_bytes())
                    .unwrap()
                    .display()
                    .to_string()
            };
            ca = PathBuf::from(write("ca.crt", ca_cert.pem()));
            ServerOptions {
                fast: true,
                settings: vec![
                    ("ssl".into(), "on".into()),
                    (
                        "ssl_cert_file".into(),
                        write("server.crt", server_cert.pem()),
                    ),
                    (
                        "ssl_key_file".into(),
                        write("server.key", server_key.serialize_pem()),
                    ),
                ],
            }
        });
        TlsServer { port, ca }
    })
}

impl TlsServer {
    /// A URL to the TLS cluster through `host`, with `params` as its query.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres:Sw0rdfish-42@{host}:{}/postgres?{params}",
            self.port
        )
    }

    fn ca(&self) -> String {
        self.ca.display().to_string()
    }
}

/// Connects with the library's own `connect`; whether the session is encrypted, or the
/// whole error.
fn encrypted(url: &str) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = migrate::db::connect(url)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    })
}

#[test]
fn tls_require_encrypts_without_checking_the_certificate() {
    let tls = tls_server();
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", "sslmode=require")),
        Ok(true)
    );
    // prefer takes TLS when offered; disable and the local default stay plain.
    assert_eq!(encrypted(&tls.url("127.0.0.1", "sslmode=prefer")), Ok(true));
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", "sslmode=disable")),
        Ok(false)
    );
    assert_eq!(encrypted(&tls.url("127.0.0.1", "")), Ok(false));
    // The same through the binary.
    let p = Project::new("tls_require");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &tls.url("127.0.0.1", "sslmode=require"),
        ],
        &[],
    )
    .success()
    .stdout_has("postgres:***@127.0.0.1");
}

#[test]
fn tls_verify_full_with_the_right_root_certificate_connects() {
    let tls = tls_server();
    let ca = format!("sslrootcert={}", tls.ca());
    assert_eq!(
        encrypted(&tls.url("localhost", &format!("sslmode=verify-full&{ca}"))),
        Ok(true)
    );
    // verify-ca checks the chain only: the certificate names localhost, not 127.0.0.1.
    assert_eq!(
        encrypted(&tls.url("127.0.0.1", &format!("sslmode=verify-ca&{ca}"))),
        Ok(true)
    );
    // key=value connection strings carry the same parameters.
    let conninfo = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        tls.port,
        tls.ca()
    );
    assert_eq!(encrypted(&conninfo), Ok(true));
}

#[test]
fn tls_verify_full_without_the_root_certificate_fails_naming_the_certificate() {
    let tls = tls_server();
    let p = Project::new("tls_unknown_issuer");
    let run = p.migrate_raw(
        &[
            "status",
            "--database-url",
            &tls.url("localhost", "sslmode=verify-full"),
        ],
        &[],
    );
    run.code(3)
        .stderr_has("cannot connect to postgres://postgres:***@localhost:")
        .stderr_has(
            "the server's TLS certificate was rejected (sslmode=verify-full): unknown issuer",
        )
        .stderr_has("sslrootcert=")
        .stderr_has("invalid peer certificate: UnknownIssuer");
    assert!(!run.stderr.contains("Sw0rdfish-42"), "{}", run.stderr);

    // With the CA but the wrong name: verify-full checks the host name.
    let url = tls.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", tls.ca()),
    );
    let e = encrypted(&url).unwrap_err();
    assert!(e.contains("name mismatch"), "{e}");
    // require with sslrootcert verifies the chain, as libpq does.
    let other_ca = p.path().join("other-ca.pem");
    let rcgen::CertifiedKey { cert, .. } =
        rcgen::generate_simple_self_signed(vec!["elsewhere".to_string()]).unwrap();
    std::fs::write(&other_ca, cert.pem()).unwrap();
    let url = tls.url(
        "localhost",
        &format!("sslmode=require&sslrootcert={}", other_ca.display()),
    );
    let e = encrypted(&url).unwrap_err();
    assert!(e.contains("unknown issuer"), "{e}");
}

#[test]
fn tls_require_against_a_server_without_tls_says_the_server_refused() {
    // The main test cluster runs with ssl=off.
    let p = Project::new("tls_refused");
    let url = format!("{}?sslmode=require", p.db.url).replacen(
        "postgres://postgres@",
        "postgres://postgres:Sw0rdfish-42@",
        1,
    );
    let run = p.migrate_raw(&["up", "--database-url", &url], &[]);
    run.code(3)
        .stderr_has("the server refused TLS: sslmode=require requires encryption")
        .stderr_has("error performing TLS handshake: server does not support TLS");
    assert!(!run.stderr.contains("Sw0rdfish-42"), "{}", run.stderr);
    // prefer falls back to a plain session.
    assert_eq!(
        encrypted(&format!("{}?sslmode=prefer", p.db.url)),
        Ok(false)
    );
    let _ = server();
}

#[test]
fn tls_parameter_errors_exit_2() {
    let p = Project::new("tls_params");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &format!("{}?sslmode=verify", p.db.url),
        ],
        &[],
    )
    .code(2)
    .stderr_has("sslmode=verify is not one of");
    p.migrate_raw(
        &[
            "status",
            "--database-url",
            &format!(
                "{}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                p.db.url
            ),
        ],
        &[],
    )
    .code(2)
    .stderr_has("sslrootcert=/nonexistent/ca.pem: cannot read certificates");
}
