//! TLS client settings: `[target.tls]` turned into one rustls `ClientConfig`, and rustls's
//! errors put in words. Scenario validation builds the config once (so a bad CA file or a key
//! that does not match its certificate is exit 2 before anything is sent) and the HTTP client
//! uses the same function, so the two cannot disagree.
//!
//! The crypto provider is aws-lc-rs: goose's reqwest already builds it, so TLS adds no second
//! crypto library to the build.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use serde::Deserialize;

/// `[target.tls]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of the CAs to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the server (mutual TLS), with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Name sent in SNI and verified in the certificate instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any certificate (no verification); every report says so.
    #[serde(default)]
    pub insecure: bool,
}

/// Which HTTP versions the client offers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTPS: ALPN offers h2 and http/1.1; plain HTTP: HTTP/1.1.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "1.1")]
    Http1,
    /// HTTPS: h2 by ALPN; plain HTTP: h2c with prior knowledge.
    #[serde(rename = "2")]
    Http2,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Auto => "auto",
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }
}

/// What is wrong with `[target.tls]`; `field` is the key to place the error at.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: String) -> TlsError {
    TlsError { field, message }
}

/// `path` as written, or relative to the scenario file's directory.
fn resolve(path: &Path, dir: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    }
}

fn certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| err(field, format!("cannot read {shown}: {e}")))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| err(field, format!("{shown} is not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(field, format!("{shown} holds no PEM certificate")));
    }
    Ok(certs)
}

/// The client configuration `spec` describes, offering `alpn` (e.g. `h2`, `http/1.1`).
/// Relative paths are taken from `dir` (the scenario file's directory).
pub fn client_config(
    spec: &TlsSpec,
    dir: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    build(spec, dir, alpn, true)
}

/// Everything [`client_config`] checks in the scenario's files (PEMs parse, the key matches its
/// certificate), without reading the system's roots: what validation needs.
pub fn check_files(spec: &TlsSpec, dir: &Path) -> Result<(), TlsError> {
    build(spec, dir, &[], false).map(|_| ())
}

fn build(
    spec: &TlsSpec,
    dir: &Path,
    alpn: &[&[u8]],
    system_roots: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("target.tls", e.to_string()))?;
    let builder = if spec.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &spec.ca_file {
            Some(ca) => {
                for c in certs("target.tls.ca_file", &resolve(ca, dir))? {
                    roots.add(c).map_err(|e| {
                        err(
                            "target.tls.ca_file",
                            format!("{}: not a usable CA certificate: {e}", ca.display()),
                        )
                    })?;
                }
            }
            None if system_roots => {
                // Unreadable system certificates are skipped, as curl and browsers do.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
            None => {}
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&spec.client_cert, &spec.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certs("target.tls.client_cert", &resolve(cert, dir))?;
            let key_path = resolve(key, dir);
            let shown = key_path.display();
            let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                err(
                    "target.tls.client_key",
                    format!("{shown} is not a readable PEM private key: {e}"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                err(
                    "target.tls.client_key",
                    format!("{shown} does not go with client_cert: {}", words(&e)),
                )
            })?
        }
        (Some(_), None) => {
            return Err(err(
                "target.tls.client_cert",
                "client_cert needs client_key".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                "target.tls.client_key",
                "client_key needs client_cert".into(),
            ))
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to verify: `server_name`, else the URL's host.
pub fn server_name(spec: &TlsSpec, host: &str) -> Result<ServerName<'static>, TlsError> {
    let name = spec.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned())
        .map_err(|e| err("target.tls.server_name", format!("`{name}`: {e}")))
}

/// rustls's reason in the words an operator looks for.
pub fn words(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "certificate signed by an unknown issuer (not in ca_file or the system roots)"
                    .into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate name mismatch (not valid for the host or server_name)".into()
            }
            CertificateError::Revoked => "certificate revoked".into(),
            CertificateError::BadSignature => "certificate has a bad signature".into(),
            other => format!("invalid certificate: {other:?}"),
        },
        E::InconsistentKeys(_) => "the private key does not match the certificate".into(),
        E::NoCertificatesPresented => "the server asked for a client certificate".into(),
        E::AlertReceived(a) => format!("the server refused the handshake ({a:?})"),
        other => other.to_string(),
    }
}

/// The rustls error inside an I/O error from a handshake, in words; None if it is not TLS's.
pub fn io_words(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<rustls::Error>().map(words)
}

/// `insecure = true`: signatures are still checked (the handshake needs them), the
/// certificate chain and name are not.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
