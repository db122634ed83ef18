//! A scripted HTTP server for the client tests, plain or TLS (a CA generated per test with
//! rcgen), HTTP/1.1 and HTTP/2 (ALPN, or h2c with prior knowledge), that counts the protocol
//! of every request it serves. Routes:
//! - `/order`: `{"id": n}`, except every 10th answer `{"error": "sold out"}` (status 200);
//! - `/big`: a 2 MiB body; `/slow`: the head after 100 ms; `/hop/<n>`: 302 to `/hop/<n-1>`,
//!   `/hop/0` answers 200; `/loop`: 302 to itself; anything else: 200 `ok`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA, a server certificate for `localhost` and 127.0.0.1, and a client pair, as PEM files.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A second client pair's key, which does not match `client_cert`.
    pub other_key: PathBuf,
    /// A server certificate that expired in 2001.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "harness test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let leaf = |params: CertificateParams, cert: &str, key: &str| {
            let k = KeyPair::generate().unwrap();
            let c = params.signed_by(&k, &issuer).unwrap();
            (write(cert, c.pem()), write(key, k.serialize_pem()))
        };
        let (server_cert, server_key) = leaf(
            CertificateParams::new(names.clone()).unwrap(),
            "server.pem",
            "server.key",
        );
        let (client_cert, client_key) = leaf(
            CertificateParams::new(vec!["client".to_owned()]).unwrap(),
            "client.pem",
            "client.key",
        );
        let other_key = write("other.key", KeyPair::generate().unwrap().serialize_pem());
        let mut old = CertificateParams::new(names).unwrap();
        old.not_before = rcgen::date_time_ymd(2000, 1, 1);
        old.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let (expired_cert, expired_key) = leaf(old, "expired.pem", "expired.key");
        Pki {
            dir: dir.to_owned(),
            ca: write("ca.pem", ca_cert.pem()),
            server_cert,
            server_key,
            client_cert,
            client_key,
            other_key,
            expired_cert,
            expired_key,
        }
    }
}

/// How the server speaks.
#[derive(Clone)]
pub struct Options {
    /// TLS with this certificate and key; None: plain TCP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require a client certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// ALPN protocols offered (TLS only).
    pub alpn: Vec<Vec<u8>>,
}

impl Options {
    pub fn plain() -> Options {
        Options {
            tls: None,
            client_ca: None,
            alpn: Vec::new(),
        }
    }

    pub fn tls(pki: &Pki) -> Options {
        Options {
            tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
            client_ca: None,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

pub struct WebServer {
    /// `https://localhost:<port>` or `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    /// Requests served per protocol (`HTTP/1.1`, `HTTP/2.0`).
    pub protocols: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Connections accepted (TCP).
    pub connections: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn server_config(o: &Options) -> Option<Arc<rustls::ServerConfig>> {
    let (cert, key) = o.tls.as_ref()?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match &o.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = o.alpn.clone();
    Some(Arc::new(config))
}

impl WebServer {
    pub async fn start(o: Options) -> WebServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match o.tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let config = server_config(&o);
        let protocols: Arc<Mutex<BTreeMap<String, u64>>> = Default::default();
        let connections = Arc::new(AtomicU64::new(0));
        let orders = Arc::new(AtomicU64::new(0));
        let (p, c) = (protocols.clone(), connections.clone());
        let handle = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Relaxed);
                let (config, p, orders) = (config.clone(), p.clone(), orders.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        answer(req, p.clone(), orders.clone())
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match config {
                        Some(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        WebServer {
            url,
            port,
            protocols,
            connections,
            handle,
        }
    }

    pub fn served(&self, proto: &str) -> u64 {
        self.protocols
            .lock()
            .unwrap()
            .get(proto)
            .copied()
            .unwrap_or(0)
    }
}

async fn answer(
    req: Request<Incoming>,
    protocols: Arc<Mutex<BTreeMap<String, u64>>>,
    orders: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let proto = format!("{:?}", req.version());
    *protocols.lock().unwrap().entry(proto).or_default() += 1;
    let path = req.uri().path().to_owned();
    let redirect = |to: String| {
        Response::builder()
            .status(302)
            .header("location", to)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let ok = |body: Bytes| Ok(Response::new(Full::new(body)));
    if path == "/order" {
        let n = orders.fetch_add(1, Relaxed) + 1;
        let body = if n.is_multiple_of(10) {
            r#"{"error": "sold out", "ok": false}"#.to_owned()
        } else {
            format!(r#"{{"id": {n}, "state": "created", "ok": true}}"#)
        };
        return ok(Bytes::from(body));
    }
    if path == "/flaky" {
        // Every tenth answer is a 503.
        let n = orders.fetch_add(1, Relaxed) + 1;
        let status = if n.is_multiple_of(10) { 503 } else { 200 };
        return Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"flaky")))
            .unwrap());
    }
    if path == "/big" {
        return ok(Bytes::from(vec![b'x'; 2 << 20]));
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return ok(Bytes::from_static(b"slow"));
    }
    if path == "/loop" {
        return Ok(redirect("/loop".into()));
    }
    if let Some(n) = path
        .strip_prefix("/hop/")
        .and_then(|n| n.parse::<u32>().ok())
    {
        if n > 0 {
            return Ok(redirect(format!("/hop/{}", n - 1)));
        }
    }
    ok(Bytes::from_static(b"ok"))
}
