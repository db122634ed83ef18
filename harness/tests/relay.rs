//! The embedded fault relay through its Toxiproxy-compatible API, on real sockets: latency,
//! reset_peer, bandwidth, down, removal and `/reset`, and the API's status codes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::faults::{self as api, Relay};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream on a free port that runs `handle` for every connection.
async fn upstream<F, Fut>(handle: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(handle(s));
        }
    });
    addr
}

/// An upstream that echoes every byte back.
async fn echo_server() -> String {
    upstream(|mut s| async move {
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

/// An upstream that sends `n` bytes to every client, then closes.
async fn source_server(n: usize) -> String {
    upstream(move |mut s| async move {
        let _ = s.write_all(&vec![7u8; n]).await;
        let _ = s.shutdown().await;
    })
    .await
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        let relay = Relay::new();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(api::serve_api(l, relay.clone(), std::future::pending()));
        let _keep: Arc<Relay> = relay;
        Api {
            base,
            http: reqwest::Client::new(),
        }
    }
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    /// Creates a proxy to `upstream` on a free port; returns its address.
    async fn proxy(&self, name: &str, upstream: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/proxies",
                Some(json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["listen"].as_str().unwrap().to_owned()
    }
}

/// Round trip of one small message through `addr`, in ms.
async fn round_trip_ms(addr: &str) -> f64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let started = Instant::now();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    started.elapsed().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_adds_what_it_says_and_removal_restores() {
    let api = Api::start().await;
    let addr = api.proxy("echo", &echo_server().await).await;
    let direct = round_trip_ms(&addr).await;
    let (s, _) = api.call("POST", "/proxies/echo/toxics", Some(json!({"name": "lat", "type": "latency", "stream": "downstream", "attributes": {"latency": 200}}))).await;
    assert_eq!(s, 200);
    let slowed = round_trip_ms(&addr).await;
    assert!(
        (180.0..=220.0).contains(&(slowed - direct)),
        "added {:.1} ms (direct {direct:.1}, with toxic {slowed:.1})",
        slowed - direct
    );
    // Pipelined: two chunks read 50 ms apart arrive ~50 ms apart, not 200 ms.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let t0 = Instant::now();
    c.write_all(b"a").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(b"b").await.unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).await.unwrap();
    c.read_exact(&mut one).await.unwrap();
    let both = t0.elapsed().as_millis();
    assert!((240..=300).contains(&both), "second chunk after {both} ms");

    let (s, _) = api.call("DELETE", "/proxies/echo/toxics/lat", None).await;
    assert_eq!(s, 204);
    let restored = round_trip_ms(&addr).await;
    assert!(
        restored < direct + 20.0,
        "after removal {restored:.1} ms vs direct {direct:.1} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_gives_econnreset() {
    let api = Api::start().await;
    let addr = api.proxy("rp", &echo_server().await).await;
    let (s, _) = api
        .call(
            "POST",
            "/proxies/rp/toxics",
            Some(json!({"type": "reset_peer", "attributes": {"timeout": 100}})),
        )
        .await;
    assert_eq!(s, 200);
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
        .await
        .expect("reset within 3 s");
    let e = r.expect_err("a reset, not data or EOF");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limits_throughput() {
    let api = Api::start().await;
    let addr = api.proxy("bw", &source_server(200_000).await).await;
    let (s, _) = api
        .call(
            "POST",
            "/proxies/bw/toxics",
            Some(json!({"name": "bw", "type": "bandwidth", "attributes": {"rate": 100}})),
        )
        .await;
    assert_eq!(s, 200);
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(got.len(), 200_000);
    assert!(
        (1.8..=2.2).contains(&secs),
        "200 KB at 100 KB/s took {secs:.2} s"
    );

    api.call("DELETE", "/proxies/bw/toxics/bw", None).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "direct speed restored: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_clears_toxics_in_both_directions_and_down_refuses() {
    let api = Api::start().await;
    let addr = api.proxy("both", &echo_server().await).await;
    for (name, stream) in [("up", "upstream"), ("down", "downstream")] {
        let (s, _) = api.call("POST", "/proxies/both/toxics", Some(json!({"name": name, "type": "latency", "stream": stream, "attributes": {"latency": 150}}))).await;
        assert_eq!(s, 200);
    }
    let slowed = round_trip_ms(&addr).await;
    assert!(slowed >= 290.0, "both directions delay: {slowed:.1} ms");
    let (s, _) = api
        .call("POST", "/proxies/both", Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, 200);
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "a down proxy refuses connections"
    );

    let (s, _) = api.call("POST", "/reset", None).await;
    assert_eq!(s, 204);
    let (_, v) = api.call("GET", "/proxies/both", None).await;
    assert_eq!(v["enabled"], true);
    assert_eq!(v["toxics"].as_array().unwrap().len(), 0);
    let fast = round_trip_ms(&addr).await;
    assert!(fast < 50.0, "after /reset: {fast:.1} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_status_codes_match_toxiproxy() {
    let api = Api::start().await;
    let (s, v) = api.call("GET", "/version", None).await;
    assert_eq!((s, v["version"].is_string()), (200, true));
    api.proxy("p", &echo_server().await).await;
    let (s, _) = api
        .call(
            "POST",
            "/proxies",
            Some(json!({"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})),
        )
        .await;
    assert_eq!(s, 409, "duplicate proxy");
    let toxic = json!({"name": "t", "type": "latency", "attributes": {"latency": 10}});
    assert_eq!(
        api.call("POST", "/proxies/p/toxics", Some(toxic.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        api.call("POST", "/proxies/p/toxics", Some(toxic)).await.0,
        409,
        "duplicate toxic"
    );
    assert_eq!(api.call("GET", "/proxies/nope", None).await.0, 404);
    assert_eq!(
        api.call("DELETE", "/proxies/p/toxics/nope", None).await.0,
        404
    );
    assert_eq!(
        api.call(
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "melt", "attributes": {}}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api.call(
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "bandwidth", "attributes": {"rate": 0}}))
        )
        .await
        .0,
        400
    );
    let (s, v) = api
        .call(
            "POST",
            "/proxies/p/toxics/t",
            Some(json!({"attributes": {"latency": 99}})),
        )
        .await;
    assert_eq!((s, v["attributes"]["latency"].as_u64()), (200, Some(99)));
    let (_, list) = api.call("GET", "/proxies", None).await;
    assert_eq!(list["p"]["toxics"][0]["attributes"]["latency"], 99);
    assert_eq!(api.call("DELETE", "/proxies/p", None).await.0, 204);
    assert_eq!(api.call("GET", "/proxies/p", None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_limit_data_slicer_and_slow_close() {
    let api = Api::start().await;
    let addr = api.proxy("src", &source_server(10_000).await).await;

    api.call(
        "POST",
        "/proxies/src/toxics",
        Some(json!({"name": "lim", "type": "limit_data", "attributes": {"bytes": 1234}})),
    )
    .await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got).await;
    assert_eq!(got.len(), 1234, "limit_data closes after its bytes");
    api.call("DELETE", "/proxies/src/toxics/lim", None).await;

    api.call(
        "POST",
        "/proxies/src/toxics",
        Some(json!({"name": "to", "type": "timeout", "attributes": {"timeout": 300}})),
    )
    .await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got).await;
    assert!(got.is_empty(), "timeout lets nothing through");
    let waited = started.elapsed().as_millis();
    assert!((280..=600).contains(&waited), "closed after {waited} ms");
    api.call("DELETE", "/proxies/src/toxics/to", None).await;

    api.call("POST", "/proxies/src/toxics", Some(json!({"name": "sl", "type": "slicer", "attributes": {"average_size": 100, "size_variation": 10, "delay": 1000}}))).await;
    api.call(
        "POST",
        "/proxies/src/toxics",
        Some(json!({"name": "sc", "type": "slow_close", "attributes": {"delay": 300}})),
    )
    .await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 10_000, "slicer delivers everything");
    // ~100 slices 1 ms apart, then a 300 ms delayed close.
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_async_client_checks_every_status_code() {
    use harness::faults::{Kind, Stream, Toxic};
    use harness::faults::{ToxiproxyClient, ToxiproxyError};

    let api = Api::start().await;
    let c = ToxiproxyClient::new(&api.base);
    assert!(!c.version().await.unwrap().is_empty());
    let listen = c
        .create_proxy("db", "127.0.0.1:0", &echo_server().await)
        .await
        .unwrap();
    assert!(matches!(
        c.create_proxy("db", "127.0.0.1:0", "127.0.0.1:1").await,
        Err(ToxiproxyError::Status { status: 409, .. })
    ));
    let toxic = Toxic {
        name: "lat".into(),
        kind: Kind::Latency {
            latency: 150,
            jitter: 0,
        },
        stream: Stream::Downstream,
        toxicity: 1.0,
    };
    assert_eq!(c.add_toxic("db", &toxic).await.unwrap(), toxic);
    let duplicate = c.add_toxic("db", &toxic).await.unwrap_err();
    assert!(
        matches!(&duplicate, ToxiproxyError::Status { status: 409, .. }),
        "a duplicate toxic is an error, not lost: {duplicate}"
    );
    assert!(matches!(
        c.add_toxic("nope", &toxic).await,
        Err(ToxiproxyError::Status { status: 404, .. })
    ));
    assert!(round_trip_ms(&listen).await >= 140.0);
    assert_eq!(c.proxy("db").await.unwrap().toxics.len(), 1);
    c.remove_toxic("db", "lat").await.unwrap();
    assert!(matches!(
        c.remove_toxic("db", "lat").await,
        Err(ToxiproxyError::Status { status: 404, .. })
    ));
    c.set_enabled("db", false).await.unwrap();
    assert!(TcpStream::connect(&listen).await.is_err());
    c.reset().await.unwrap();
    assert!(c.proxy("db").await.unwrap().enabled);
    c.delete_proxy("db").await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = ToxiproxyClient::new(&format!("http://127.0.0.1:{port}"));
    assert!(matches!(
        dead.reset().await,
        Err(ToxiproxyError::Unreachable { .. })
    ));
}
