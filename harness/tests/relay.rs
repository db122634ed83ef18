//! The embedded fault relay through its Toxiproxy-compatible API, on real sockets: latency,
//! reset_peer, bandwidth, down, removal and `/reset`, and the API's status codes; and the HTTP
//! extension (`"protocol": "http"` proxies, `http_status`, `http_latency`, `http_abort`) in
//! front of a real HTTP/1.1 server that counts what reached it, driven by keep-alive clients.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::faults::{self as api, Relay};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
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
    /// Creates an http proxy to `upstream` on a free port; returns its address.
    async fn http_proxy(&self, name: &str, upstream: &str) -> String {
        let body = json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream,
            "protocol": "http"});
        let (s, v) = self.call("POST", "/proxies", Some(body)).await;
        assert_eq!((s, v["protocol"].as_str()), (201, Some("http")), "{v}");
        v["listen"].as_str().unwrap().to_owned()
    }
    /// Adds a toxic to `proxy`, which must be accepted.
    async fn toxic(&self, proxy: &str, toxic: Value) {
        let (s, v) = self
            .call("POST", &format!("/proxies/{proxy}/toxics"), Some(toxic))
            .await;
        assert_eq!(s, 200, "{v}");
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

/// Tests that time what they measure share this; the one that floods the relay with 4,000
/// requests takes it alone, so on a 2-core machine its load never skews their clocks.
static CLOCKS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

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
    let _quiet = CLOCKS.read().await;
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
    let _quiet = CLOCKS.read().await;
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
    let _quiet = CLOCKS.read().await;
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
    let _quiet = CLOCKS.read().await;
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

/// What the test shop's HTTP/1.1 server saw: connections and requests per route.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    orders: AtomicU64,
    products: AtomicU64,
}

/// A product page: long enough that an `http_abort` can cut it after its head.
const PRODUCT_BYTES: usize = 4000;

/// A real HTTP/1.1 server (hyper, keep-alive) on a free port: `POST /api/orders` reads its body
/// and answers 201, `GET /api/products/{id}` answers 200 with a 4,000-byte body.
async fn shop() -> (String, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            counts.connections.fetch_add(1, Relaxed);
            let counts = counts.clone();
            let service = service_fn(move |req| shop_answer(counts.clone(), req));
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(s), service));
        }
    });
    (addr, seen)
}

async fn shop_answer(
    seen: Arc<Seen>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let (status, text) = match (method.as_str(), path.as_str()) {
        ("POST", "/api/orders") if body.is_ok() => {
            let n = seen.orders.fetch_add(1, Relaxed) + 1;
            (201, format!("{{\"id\":{n}}}"))
        }
        ("GET", p) if p.starts_with("/api/products/") => {
            seen.products.fetch_add(1, Relaxed);
            (200, "p".repeat(PRODUCT_BYTES))
        }
        _ => (404, "no".to_owned()),
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// A keep-alive client of its own (its own connection pool).
fn keep_alive_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One order (`POST /api/orders` with a JSON body); its status.
async fn order(http: &reqwest::Client, addr: &str) -> u16 {
    let r = http
        .post(format!("http://{addr}/api/orders"))
        .header("content-type", "application/json")
        .body(r#"{"product":1,"qty":2}"#)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    r.bytes().await.unwrap();
    status
}

/// One product page, read to the end: its status and body length, or the error.
async fn product(http: &reqwest::Client, addr: &str) -> Result<(u16, usize), reqwest::Error> {
    let r = http
        .get(format!("http://{addr}/api/products/1"))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.bytes().await?.len()))
}

/// A raw HTTP/1.1 connection, so a test knows which requests share one connection.
struct Conn(BufReader<TcpStream>);

impl Conn {
    async fn open(addr: &str) -> Conn {
        Conn(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }
    async fn send(&mut self, raw: &str) {
        self.0.get_mut().write_all(raw.as_bytes()).await.unwrap();
    }
    /// Reads one content-length framed response: its status, headers (lowercase) and body.
    async fn answer(&mut self) -> std::io::Result<(u16, String, String)> {
        let mut line = String::new();
        self.0.read_line(&mut line).await?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
        let (mut head, mut length) = (String::new(), 0);
        loop {
            line.clear();
            self.0.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&lower);
        }
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).await?;
        Ok((status, head, String::from_utf8(body).unwrap()))
    }
    async fn get(&mut self, path: &str) -> u16 {
        self.send(&format!("GET {path} HTTP/1.1\r\nhost: shop\r\n\r\n"))
            .await;
        self.answer().await.unwrap().0
    }
}

/// An order whose body comes in two chunks and a trailer.
const CHUNKED_ORDER: &str = "POST /api/orders HTTP/1.1\r\nhost: shop\r\n\
    transfer-encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n1\r\n}\r\n0\r\nx-sum: 7\r\n\r\n";

const ORDER: &str =
    "POST /api/orders HTTP/1.1\r\nhost: shop\r\ncontent-length: 13\r\n\r\n{\"product\":1}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_refuses_its_share_of_matching_requests_and_the_upstream_never_sees_them() {
    let _alone = CLOCKS.write().await;
    let api = Api::start().await;
    let (upstream, seen) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"name": "no_orders", "type": "http_status", "stream": "upstream",
        "toxicity": 0.1, "attributes": {"status": 503, "route": "POST /api/orders"}}),
    )
    .await;
    // 4 keep-alive connections, 1,000 requests each: 3 orders to 1 product page.
    let http = keep_alive_client();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, addr) = (http.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let (mut orders, mut refused, mut products) = (0u64, 0u64, Vec::new());
            for i in 0..1000 {
                if i % 4 == 3 {
                    products.push(product(&http, &addr).await.unwrap().0);
                } else {
                    orders += 1;
                    refused += u64::from(order(&http, &addr).await == 503);
                }
            }
            (orders, refused, products)
        }));
    }
    let (mut orders, mut refused, mut products) = (0, 0, Vec::new());
    for t in tasks {
        let (o, r, p) = t.await.unwrap();
        (orders, refused) = (orders + o, refused + r);
        products.extend(p);
    }
    let share = refused as f64 / orders as f64;
    assert!(
        (0.08..=0.12).contains(&share),
        "{refused} of {orders} orders refused"
    );
    assert!(products.iter().all(|s| *s == 200), "products never refused");
    assert_eq!(
        seen.orders.load(Relaxed),
        orders - refused,
        "the upstream saw no refused order"
    );
    assert_eq!(seen.products.load(Relaxed), products.len() as u64);
    // Rolled per request: the 4 connections stayed open through their 503s.
    let connections = seen.connections.load(Relaxed);
    assert!(
        connections <= 8,
        "{connections} upstream connections for 4 clients"
    );

    let mut c = Conn::open(&addr).await;
    api.call(
        "POST",
        "/proxies/shop/toxics/no_orders",
        Some(json!({"toxicity": 1.0})),
    )
    .await;
    c.send(ORDER).await;
    let (status, head, body) = c.answer().await.unwrap();
    assert_eq!(status, 503);
    assert!(head.contains("x-fault-toxic: no_orders"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 503, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_http_toxic_restores_answers_on_connections_already_open() {
    let api = Api::start().await;
    let (upstream, seen) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    let mut c = Conn::open(&addr).await;
    assert_eq!(c.get("/api/products/1").await, 200);
    api.toxic(
        "shop",
        json!({"name": "down", "type": "http_status",
        "attributes": {"status": 502, "route": "/api/products"}}),
    )
    .await;
    assert_eq!(
        c.get("/api/products/2").await,
        502,
        "added on an open connection"
    );
    assert_eq!(c.get("/api/products/3").await, 502);
    let (s, _) = api.call("DELETE", "/proxies/shop/toxics/down", None).await;
    assert_eq!(s, 204);
    assert_eq!(
        c.get("/api/products/4").await,
        200,
        "removal acts on the open connection"
    );
    // A chunked body is framed and forwarded whole, and the connection goes on after it.
    c.send(CHUNKED_ORDER).await;
    assert_eq!(c.answer().await.unwrap().0, 201);
    assert_eq!(c.get("/api/products/5").await, 200);
    let reached = (seen.products.load(Relaxed), seen.orders.load(Relaxed));
    assert_eq!(reached, (3, 1), "the refused requests never reached it");
    assert_eq!(seen.connections.load(Relaxed), 1, "all on one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_around_local_answers() {
    let api = Api::start().await;
    let (upstream, seen) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"type": "http_status",
        "attributes": {"status": 503, "route": "POST /api/orders"}}),
    )
    .await;
    let mut c = Conn::open(&addr).await;
    // Sent at once: a product, a refused order with a chunked body, a product, a HEAD.
    let head = "HEAD /api/orders HTTP/1.1\r\nhost: shop\r\n\r\n";
    let get = "GET /api/products/1 HTTP/1.1\r\nhost: shop\r\n\r\n";
    c.send(&format!("{get}{CHUNKED_ORDER}{get}{ORDER}")).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let (status, _, body) = c.answer().await.unwrap();
        got.push((status, body.len()));
    }
    assert_eq!(got[0], (200, PRODUCT_BYTES));
    assert_eq!(got[1].0, 503);
    assert_eq!(got[2], (200, PRODUCT_BYTES));
    assert_eq!(got[3].0, 503);
    c.send(head).await;
    let mut line = String::new();
    c.0.read_line(&mut line).await.unwrap();
    assert!(
        line.starts_with("HTTP/1.1 404"),
        "HEAD is forwarded (no route match): {line}"
    );
    assert_eq!(
        (seen.products.load(Relaxed), seen.orders.load(Relaxed)),
        (2, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_latency_delays_matching_requests_only() {
    let _quiet = CLOCKS.read().await;
    let api = Api::start().await;
    let (upstream, _) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"name": "slow", "type": "http_latency",
        "attributes": {"latency": 200, "jitter": 20, "route": "GET /api/products"}}),
    )
    .await;
    let http = keep_alive_client();
    let mut slow = Vec::new();
    let mut fast = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(product(&http, &addr).await.unwrap().0, 200);
        slow.push(t.elapsed().as_millis());
        let t = Instant::now();
        assert_eq!(order(&http, &addr).await, 201);
        fast.push(t.elapsed().as_millis());
    }
    assert!(slow.iter().all(|ms| *ms >= 180), "products: {slow:?} ms");
    fast.sort();
    assert!(fast[2] < 100, "orders (not matched): {fast:?} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_abort_breaks_matching_responses_only_after_the_upstream_answered() {
    let api = Api::start().await;
    let (upstream, seen) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"name": "cut", "type": "http_abort",
        "attributes": {"route": "/api/products"}}),
    )
    .await;
    let http = keep_alive_client();
    for _ in 0..3 {
        assert!(product(&http, &addr).await.is_err(), "a broken response");
        assert_eq!(order(&http, &addr).await, 201, "orders unharmed");
    }
    assert_eq!(
        seen.products.load(Relaxed),
        3,
        "aborted requests were forwarded"
    );
    // The break is a reset, before any byte of the answer (bytes 0).
    let mut c = Conn::open(&addr).await;
    c.send("GET /api/products/1 HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await;
    let e = c.answer().await.expect_err("no answer");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");

    // With `bytes`, the head and the first bytes pass, then the body breaks.
    let (s, v) = api
        .call(
            "POST",
            "/proxies/shop/toxics/cut",
            Some(json!({"attributes": {"bytes": 1000}})),
        )
        .await;
    assert_eq!(
        (s, v["attributes"]["bytes"].as_u64()),
        (200, Some(1000)),
        "{v}"
    );
    let r = http
        .get(format!("http://{addr}/api/products/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the head passed");
    assert!(r.bytes().await.is_err(), "the body was cut short");
    let (s, _) = api.call("DELETE", "/proxies/shop/toxics/cut", None).await;
    assert_eq!(s, 204);
    assert_eq!(product(&http, &addr).await.unwrap(), (200, PRODUCT_BYTES));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_toxics_still_act_on_http_proxies() {
    let api = Api::start().await;
    let (upstream, _) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"type": "latency", "attributes": {"latency": 150}}),
    )
    .await;
    let http = keep_alive_client();
    let t = Instant::now();
    assert_eq!(order(&http, &addr).await, 201);
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "{:?}",
        t.elapsed()
    );
    api.toxic(
        "shop",
        json!({"type": "reset_peer", "stream": "upstream",
        "attributes": {"timeout": 50}}),
    )
    .await;
    let mut c = Conn::open(&addr).await;
    let e = c.answer().await.expect_err("reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_parse_gets_400_and_never_reaches_the_upstream() {
    let api = Api::start().await;
    let (upstream, seen) = shop().await;
    let addr = api.http_proxy("shop", &upstream).await;
    let mut c = Conn::open(&addr).await;
    c.send("POST /api/orders HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello")
        .await;
    let (status, head, _) = c.answer().await.unwrap();
    assert_eq!(status, 400);
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    c.0.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed after the 400");
    assert_eq!(seen.orders.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_toxic_on_a_tcp_proxy_is_refused_with_400() {
    use harness::faults::{Kind, Stream, Toxic};
    use harness::faults::{ToxiproxyClient, ToxiproxyError};

    let api = Api::start().await;
    let (upstream, _) = shop().await;
    api.proxy("tcp", &upstream).await;
    let (_, v) = api.call("GET", "/proxies/tcp", None).await;
    assert_eq!(v["protocol"], "tcp");
    let status = json!({"type": "http_status", "attributes": {"status": 503}});
    let (s, v) = api
        .call("POST", "/proxies/tcp/toxics", Some(status.clone()))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("\"protocol\": \"http\""),
        "{v}"
    );

    let client = ToxiproxyClient::new(&api.base);
    let addr = client
        .create_http_proxy("web", "127.0.0.1:0", &upstream)
        .await
        .unwrap();
    let view = serde_json::to_value(client.proxy("web").await.unwrap()).unwrap();
    assert_eq!(view["protocol"], "http");
    let toxic = Toxic {
        name: "slow".into(),
        kind: Kind::HttpLatency {
            route: "GET /".into(),
            latency: 10,
            jitter: 0,
        },
        stream: Stream::Upstream,
        toxicity: 1.0,
    };
    assert_eq!(client.add_toxic("web", &toxic).await.unwrap(), toxic);
    assert!(matches!(
        client.add_toxic("tcp", &toxic).await,
        Err(ToxiproxyError::Status { status: 400, .. })
    ));
    for bad in [
        json!({"type": "http_status", "attributes": {"status": 99}}),
        json!({"type": "http_status", "attributes": {"status": 600}}),
        json!({"type": "http_status", "attributes": {}}),
        json!({"type": "http_abort", "attributes": {"route": "api/orders"}}),
        json!({"type": "http_latency", "toxicity": 1.5, "attributes": {"latency": 5}}),
    ] {
        let (s, v) = api
            .call("POST", "/proxies/web/toxics", Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} → {v}");
    }
    let body = json!({"name": "u", "listen": "127.0.0.1:0", "upstream": upstream,
        "protocol": "udp"});
    assert_eq!(api.call("POST", "/proxies", Some(body)).await.0, 400);
    assert_eq!(Conn::open(&addr).await.get("/api/products/1").await, 200);
}

/// A hyper HTTP/1.1 server whose handler answers 200 without reading the request body, as
/// many do (the test servers' fallback, most GET-style handlers): hyper then keeps the
/// connection only if the rest of the body is already in its read buffer, and closes it after
/// the answer otherwise. Counts the connections it accepted.
async fn body_ignoring_server() -> (String, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicU64::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let _ = s.set_nodelay(true);
            count.fetch_add(1, Relaxed);
            let service = service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(s), service));
        }
    });
    (addr, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_link_survives_local_answers_and_forwarded_bodies_the_upstream_ignores() {
    let api = Api::start().await;
    let (upstream, connections) = body_ignoring_server().await;
    let addr = api.http_proxy("shop", &upstream).await;
    api.toxic(
        "shop",
        json!({"name": "refuse", "type": "http_status",
        "attributes": {"status": 503, "route": "POST /api/refused"}}),
    )
    .await;
    // 10 KB/s toward the upstream: each write the relay makes is followed by its share of
    // time (≈ 6 ms for a request head), so a request forwarded in more writes than the client
    // made reaches the upstream in pieces every time, not only when a loaded relay is slow.
    api.toxic(
        "shop",
        json!({"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 10}}),
    )
    .await;
    let post =
        |path: &str| format!("POST {path} HTTP/1.1\r\nhost: shop\r\ncontent-length: 2\r\n\r\n{{}}");
    let get = "GET /api/products/1 HTTP/1.1\r\nhost: shop\r\n\r\n";
    // One keep-alive connection, each request in one write (as clients send them), answered
    // locally, forwarded with a body, forwarded without: every answer comes on it, and the
    // upstream, which got every forwarded request whole, never had a reason to close.
    let mut c = Conn::open(&addr).await;
    for i in 0..150 {
        let (raw, want) = match i % 3 {
            0 => (post("/api/refused"), 503),
            1 => (post("/api/orders"), 200),
            _ => (get.to_owned(), 200),
        };
        c.send(&raw).await;
        let answer = c.answer().await;
        assert!(
            matches!(answer, Ok((status, _, _)) if status == want),
            "request {i} ({}): {answer:?}; the upstream accepted {} connections",
            raw.lines().next().unwrap(),
            connections.load(Relaxed)
        );
    }
    assert_eq!(connections.load(Relaxed), 1, "one upstream connection");
}
