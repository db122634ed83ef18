//! The benchmark's "trivial endpoint": answers every request with 200 "ok" on one worker
//! thread, so the generator, not the server, is what the benchmark measures. Prints the
//! address on stdout, then on a second line a stats address: every connection to it reads the
//! number of requests answered so far (one decimal line), so the bench counts every generator's
//! requests the same way, at the server, over an interval it times itself. Paths starting
//! `/json` answer `{"id":42,"ok":true}` instead of "ok".
//! `cargo run --release --example trivial_server [ADDR] [--tls CERT KEY]`: with `--tls`,
//! HTTPS with ALPN h2 and http/1.1 (HTTP/2 or HTTP/1.1 per connection).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Requests answered since start; read through the stats listener.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// Answers every connection with the count and closes it.
async fn serve_stats(listener: tokio::net::TcpListener) {
    use tokio::io::AsyncWriteExt;
    while let Ok((mut s, _)) = listener.accept().await {
        let line = format!("{}\n", ANSWERED.load(Ordering::Relaxed));
        let _ = s.write_all(line.as_bytes()).await;
    }
}

fn tls_config(cert: &str, key: &str) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("certificate file")
        .map(|c| c.expect("PEM certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("PEM key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tls = args
        .iter()
        .position(|a| a == "--tls")
        .map(|i| tls_config(&args[i + 1], &args[i + 2]));
    let addr = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        let stats = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stats");
        println!("{}", listener.local_addr().expect("addr"));
        println!("{}", stats.local_addr().expect("stats addr"));
        tokio::spawn(serve_stats(stats));
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // `/json…` answers a small JSON object, for the bench's flow rows (extraction).
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    ANSWERED.fetch_add(1, Ordering::Relaxed);
                    let body: &'static [u8] = match req.uri().path().starts_with("/json") {
                        true => br#"{"id":42,"ok":true}"#,
                        false => b"ok",
                    };
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(body))))
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(a) => {
                        if let Ok(tls) = a.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                    // Plain HTTP stays HTTP/1.1 only, as the rows before TLS existed measured it.
                    None => {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    }
                }
            });
        }
    });
}
