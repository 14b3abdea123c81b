//! TLS as libpq defines it: the `sslmode` policy and `sslrootcert` (read by `conninfo`;
//! tokio-postgres knows only disable/prefer/require) turned into a rustls connector.

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

/// libpq's `sslmode`, spelled as libpq spells it (`verify-full`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantNames,
)]
#[strum(serialize_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        self.into()
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

/// Why no TLS connector could be made: the root certificates named are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslrootcert={path}: cannot read certificates: {error}")]
    Unreadable {
        path: String,
        error: rustls::pki_types::pem::Error,
    },
    #[error("sslrootcert={0} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate(String),
    #[error("sslrootcert={path}: unusable certificate: {error}")]
    Unusable { path: String, error: rustls::Error },
    #[error("no system CA certificates could be loaded ({0}); pass sslrootcert=/path/to/ca.pem")]
    NoSystemCertificates(String),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A rustls connector that checks the server's certificate as `verification` says.
pub fn connector(
    verification: Verification,
    root_cert: Option<&RootCert>,
) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = match verification {
        Verification::None => None,
        Verification::Chain | Verification::Full => {
            let roots = Arc::new(roots(root_cert.unwrap_or(&RootCert::System))?);
            Some(WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?)
        }
    };
    let verifier = Arc::new(Verifier {
        provider: provider.clone(),
        webpki,
        check_name: verification == Verification::Full,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(root_cert: &RootCert) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match root_cert {
        RootCert::File(path) => {
            let shown = path.display().to_string();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|error| TlsError::Unreadable {
                    path: shown.clone(),
                    error,
                })?;
            if certs.is_empty() {
                return Err(TlsError::NoCertificate(shown));
            }
            for cert in certs {
                store.add(cert).map_err(|error| TlsError::Unusable {
                    path: shown.clone(),
                    error,
                })?;
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
                return Err(TlsError::NoSystemCertificates(why));
            }
        }
    }
    Ok(store)
}

/// The one certificate verifier behind every `sslmode`: no WebPKI check for prefer/require
/// (any certificate), the chain for verify-ca (a name mismatch is accepted: WebPKI checks
/// the chain before the name, so a name error means the chain was good), chain and name for
/// verify-full. Handshake signatures are always checked, so the session key belongs to
/// whoever sent the certificate.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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
