//! TLS as libpq defines it: `sslmode` and `sslrootcert` are read from the connection string
//! here (tokio-postgres knows only disable/prefer/require and rejects `sslrootcert`), removed
//! from it, and turned into a rustls connector.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which certificate authorities to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// `sslrootcert=PATH`: the CAs in that PEM file, and only those (as libpq).
    File(PathBuf),
    /// `sslrootcert=system`, or no `sslrootcert` and no `~/.postgresql/root.crt`: the
    /// operating system's trust store.
    System,
}

/// How to check the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Encrypt, but accept any certificate (libpq's prefer and require).
    None,
    /// The chain must lead to a trusted CA; the host name is not checked.
    Chain,
    /// Chain and host name.
    Full,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// The mode the string asked for, if it named one.
    pub requested: Option<SslMode>,
    pub root_cert: Option<RootCert>,
}

impl TlsParams {
    /// The mode in force: the requested one; else `verify-full` with `sslrootcert=system`
    /// (as libpq), `prefer` for a remote host and `disable` for a local one (loopback or
    /// Unix socket), where encryption buys nothing.
    pub fn mode(&self, local: bool) -> SslMode {
        match self.requested {
            Some(mode) => mode,
            None if self.root_cert == Some(RootCert::System) => SslMode::VerifyFull,
            None if local => SslMode::Disable,
            None => SslMode::Prefer,
        }
    }

    /// The certificate check `mode` implies. As libpq: `require` verifies the chain like
    /// `verify-ca` when a root certificate is given (explicitly, or `~/.postgresql/root.crt`).
    pub fn verification(&self, mode: SslMode) -> Verification {
        match mode {
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::Chain,
            SslMode::Require if matches!(self.root_cert, Some(RootCert::File(_))) => {
                Verification::Chain
            }
            _ => Verification::None,
        }
    }
}

/// libpq TLS parameters that tokio-postgres does not know and migrate does not implement.
const UNSUPPORTED: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
];

/// Splits the TLS parameters off a connection string (URL or `key=value` form); the rest is
/// what tokio-postgres parses. Errors name the parameter, never the password.
pub fn split(conninfo: &str) -> Result<(String, TlsParams), String> {
    let mut params = TlsParams {
        requested: None,
        root_cert: None,
    };
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => params.requested = Some(SslMode::parse(&value)?),
            "sslrootcert" if value == "system" => params.root_cert = Some(RootCert::System),
            "sslrootcert" => params.root_cert = Some(RootCert::File(PathBuf::from(value))),
            k if UNSUPPORTED.contains(&k) => {
                return Err(format!(
                    "{k} is not supported by migrate (it supports sslmode and sslrootcert)"
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if is_url(conninfo) {
        split_url(conninfo, &mut take)?
    } else {
        split_key_values(conninfo, &mut take)?
    };
    // libpq: the system's CAs vouch for host names, so they are trusted only with verify-full.
    if let (Some(RootCert::System), Some(mode)) = (&params.root_cert, params.requested) {
        if mode != SslMode::VerifyFull {
            return Err(format!(
                "sslmode={} cannot be used with sslrootcert=system: the system's CAs are \
                 trusted only with sslmode=verify-full (as libpq); use it, or leave sslmode out",
                mode.as_str()
            ));
        }
    }
    if params.root_cert.is_none() {
        params.root_cert = default_root_cert();
    }
    Ok((rest, params))
}

/// Whether a failed attempt reached the server and failed there: it refused TLS, the TLS
/// handshake failed, or it rejected the session (pg_hba). libpq's `prefer` and `allow` then
/// try the other way; a host that cannot be reached is not tried twice.
pub fn server_answered(error: &tokio_postgres::Error) -> bool {
    // tokio-postgres's handshake errors ("server does not support TLS", rustls's) all come
    // under this message; its error kinds are not public.
    error.as_db_error().is_some()
        || error
            .to_string()
            .starts_with("error performing TLS handshake")
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// libpq's default root certificate, `~/.postgresql/root.crt`, when it exists.
fn default_root_cert() -> Option<RootCert> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".postgresql/root.crt");
    path.is_file().then_some(RootCert::File(path))
}

type Take<'a> = dyn FnMut(&str, String) -> Result<bool, String> + 'a;

fn split_url(url: &str, take: &mut Take<'_>) -> Result<String, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_string());
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !take(key, percent_decode(value))? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// libpq's `key=value` form: values may be single-quoted, with `\'` and `\\` escapes.
fn split_key_values(conninfo: &str, take: &mut Take<'_>) -> Result<String, String> {
    let mut kept = Vec::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("`{key}` has no `=value` in the connection string"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of `{key}` lacks its closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        if !take(&key, value.clone())? {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok(kept.join(" "))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether every host of the configuration is this machine (loopback or a Unix socket).
pub fn is_local(hosts: &[Host]) -> bool {
    hosts.iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    })
}

/// A rustls connector that checks the server's certificate as `verification` says.
pub fn connector(
    verification: Verification,
    root_cert: Option<&RootCert>,
) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => Arc::new(AnyCertificate(provider.clone())),
        Verification::Chain | Verification::Full => {
            let roots = Arc::new(roots(root_cert.unwrap_or(&RootCert::System))?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
            if verification == Verification::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(root_cert: &RootCert) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root_cert {
        RootCert::File(path) => {
            let shown = path.display();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|e| format!("sslrootcert={shown}: cannot read certificates: {e}"))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert={shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                ));
            }
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert={shown}: unusable certificate: {e}"))?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or("none installed".to_string(), |e| e.to_string());
                return Err(format!(
                    "no system CA certificates could be loaded ({why}); pass sslrootcert=/path/to/ca.pem"
                ));
            }
        }
    }
    Ok(store)
}

/// libpq's prefer/require: encrypt, accept any certificate, but still check the handshake
/// signatures so the session key belongs to whoever sent the certificate.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's verify-ca: the full WebPKI check, except that a name mismatch is accepted.
/// WebPKI checks the chain before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What a failed connection says about TLS, in words a person can act on: whether the
/// server refused TLS or its certificate was rejected. None when TLS was not the problem.
pub fn explain(error: &(dyn std::error::Error + 'static), mode: SslMode) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.to_string().contains("server does not support TLS") {
            return Some(format!(
                "the server refused TLS: sslmode={} requires encryption, and the server does not \
                 offer it (ssl=off)",
                mode.as_str()
            ));
        }
        let rustls_error = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| e.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(certificate)) = rustls_error {
            return Some(format!(
                "the server's TLS certificate was rejected (sslmode={}): {}",
                mode.as_str(),
                certificate_problem(certificate)
            ));
        }
        if let Some(other) = rustls_error {
            return Some(format!("the TLS handshake failed: {other}"));
        }
        cause = e.source();
    }
    None
}

fn certificate_problem(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => "unknown issuer: it is not signed by a trusted CA; \
             pass sslrootcert=/path/to/ca.pem naming the CA that signed it"
            .to_string(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "name mismatch: it is not valid for the host name connected to; connect with a name \
             the certificate carries, or use sslmode=verify-ca"
                .to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (check the clocks)".to_string()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: Option<SslMode>, root: Option<RootCert>) -> TlsParams {
        TlsParams {
            requested: mode,
            root_cert: root,
        }
    }

    #[test]
    fn strips_tls_parameters_from_urls() {
        let (rest, p) = split(
            "postgres://app:pw@db.example.com:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://app:pw@db.example.com:5432/app?application_name=x"
        );
        assert_eq!(
            p,
            params(
                Some(SslMode::VerifyFull),
                Some(RootCert::File("/etc/ca.pem".into()))
            )
        );
        let (rest, p) = split("postgresql://h/d?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://h/d");
        assert_eq!(p.requested, Some(SslMode::Require));
        let (rest, p) = split("postgres://h/d?sslrootcert=system").unwrap();
        assert_eq!(rest, "postgres://h/d");
        assert_eq!(p.root_cert, Some(RootCert::System));
        assert_eq!(split("postgres://h/d").unwrap().0, "postgres://h/d");
    }

    #[test]
    fn strips_tls_parameters_from_key_values() {
        let (rest, p) = split(
            "host=db.example.com  sslmode = verify-ca password='a b\\'c' sslrootcert='/x y/ca.pem'",
        )
        .unwrap();
        assert_eq!(rest, "host='db.example.com' password='a b\\'c'");
        assert_eq!(
            p,
            params(
                Some(SslMode::VerifyCa),
                Some(RootCert::File("/x y/ca.pem".into()))
            )
        );
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a b'c"[..]));
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = split("postgres://h/d?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        let e = split("host=h sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslcert is not supported"), "{e}");
        let e = split("host=h password='open").unwrap_err();
        assert!(e.contains("`password` lacks its closing quote"), "{e}");
        assert!(!e.contains("open"), "{e}");
    }

    #[test]
    fn defaults_follow_the_host() {
        let p = params(None, None);
        assert_eq!(p.mode(true), SslMode::Disable);
        assert_eq!(p.mode(false), SslMode::Prefer);
        assert_eq!(
            params(Some(SslMode::Require), None).mode(true),
            SslMode::Require
        );
        assert!(is_local(&[
            Host::Tcp("localhost".into()),
            Host::Tcp("127.0.0.1".into()),
            Host::Tcp("::1".into()),
            Host::Unix("/tmp".into()),
        ]));
        assert!(!is_local(&[
            Host::Tcp("127.0.0.1".into()),
            Host::Tcp("db.example.com".into())
        ]));
    }

    #[test]
    fn system_roots_mean_verify_full_as_in_libpq() {
        let (_, p) = split("postgres://db.example.com/d?sslrootcert=system").unwrap();
        assert_eq!(p.mode(false), SslMode::VerifyFull);
        assert_eq!(p.mode(true), SslMode::VerifyFull);
        assert!(split("postgres://h/d?sslrootcert=system&sslmode=verify-full").is_ok());
        for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let e =
                split(&format!("postgres://h/d?sslmode={weak}&sslrootcert=system")).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "sslmode={weak} cannot be used with sslrootcert=system"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn require_verifies_the_chain_only_with_a_root_certificate() {
        let file = Some(RootCert::File("ca.pem".into()));
        assert_eq!(
            params(None, None).verification(SslMode::Require),
            Verification::None
        );
        assert_eq!(
            params(None, file.clone()).verification(SslMode::Require),
            Verification::Chain
        );
        assert_eq!(
            params(None, file).verification(SslMode::Prefer),
            Verification::None
        );
        assert_eq!(
            params(None, None).verification(SslMode::VerifyCa),
            Verification::Chain
        );
        assert_eq!(
            params(None, None).verification(SslMode::VerifyFull),
            Verification::Full
        );
    }
}
