//! Conformance: `toxiproxy_rust` 0.1.6, a third-party Toxiproxy client, drives our relay's API
//! unchanged — populate, find, latency with apply (which removes the toxic afterwards), down,
//! reset. Its client is blocking and must not run inside a tokio runtime, so this is a plain
//! test with the relay on a runtime of its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use harness::faults::{self as api, Relay};
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

fn round_trip(addr: &str) -> Duration {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let started = Instant::now();
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    started.elapsed()
}

#[test]
fn toxiproxy_rust_drives_our_api() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (api_addr, upstream) = rt.block_on(async {
        let relay = Relay::new();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_addr = l.local_addr().unwrap().to_string();
        tokio::spawn(api::serve_api(l, relay, std::future::pending()));
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (api_addr, upstream)
    });
    let client = Client::new(api_addr.as_str());
    assert!(client.is_running());
    assert!(client.version().unwrap().contains("version"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let proxies = client
        .populate(vec![ProxyPack::new(
            "echo".into(),
            listen.clone(),
            upstream,
        )])
        .unwrap();
    assert_eq!(proxies.len(), 1);
    assert_eq!(client.all().unwrap().len(), 1);
    let direct = round_trip(&listen);

    let mut slowed = Duration::ZERO;
    client
        .find_and_reset_proxy("echo")
        .unwrap()
        .with_latency("downstream".into(), 200, 0, 1.0)
        .apply(|| slowed = round_trip(&listen))
        .unwrap();
    assert!(
        slowed >= Duration::from_millis(180),
        "latency through toxiproxy_rust: {slowed:?} (direct {direct:?})"
    );
    assert!(
        round_trip(&listen) < Duration::from_millis(100),
        "apply() removed the toxic"
    );

    let mut refused = false;
    client
        .find_proxy("echo")
        .unwrap()
        .with_down(|| refused = TcpStream::connect(&listen).is_err())
        .unwrap();
    assert!(refused, "with_down() took the proxy down");
    assert!(client.reset().is_ok());
    assert!(
        round_trip(&listen) < Duration::from_millis(100),
        "up again after with_down/reset"
    );
}
