//! Against a real third-party server: Debian's nginx (installed by `scripts/setup.sh`), started
//! here on free ports with TLS 1.3, HTTP/2, and a 301 from its plain port to HTTPS.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::web::Pki;
use common::{summary, temp_dir};

struct Nginx {
    child: Child,
    /// The port that answers 301 to HTTPS.
    plain: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn nginx_binary() -> &'static str {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!("nginx is not installed: run scripts/setup.sh (it installs Debian's nginx-light)");
}

fn start(dir: &std::path::Path, pki: &Pki) -> Nginx {
    let (plain, tls) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{plain};
        return 301 https://localhost:{tls}$request_uri;
    }}
    server {{
        listen 127.0.0.1:{tls} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        location / {{ return 200 "ok $server_protocol\n"; }}
    }}
}}
"#,
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let child = Command::new(nginx_binary())
        .args(["-p", &d.to_string(), "-c", &file.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", tls)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx { child, plain }
}

fn text(url: &str, ca: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
name = "nginx"
[target]
url = "{url}"
tls = {{ ca_file = "{}" }}
{extra}
[executor]
type = "arrival-rate"
start_rate = 40
max_in_flight = 50
stages = [ {{ duration = "2s", target = 40 }} ]
[[requests]]
name = "home"
path = "/"
[thresholds]
http_req_failed = ["rate==0"]
"#,
        ca.display()
    )
}

#[tokio::test]
async fn a_plain_http_url_follows_nginx_s_301_to_https_over_http2_and_max_redirects_0_keeps_the_301(
) {
    let dir = temp_dir("nginx");
    let pki = Pki::new(&dir);
    let nginx = start(&dir, &pki);
    let url = format!("http://127.0.0.1:{}", nginx.plain);
    let (o, out) = common::run_named(&dir, "follow", &text(&url, &pki.ca, "")).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&out);
    let st = &s["requests"][0]["statuses"];
    let (moved, ok) = (st["301"].as_u64().unwrap(), st["200"].as_u64().unwrap());
    assert!(
        ok >= 70 && moved == ok,
        "one 301 then one 200 per request: {st}"
    );
    // The 301 came over HTTP/1.1 (plain port), the 200 over HTTP/2 (ALPN with nginx).
    assert_eq!(
        s["http"]["protocols"]["HTTP/2.0"].as_u64(),
        Some(ok),
        "{}",
        s["http"]
    );
    assert_eq!(s["http"]["protocols"]["HTTP/1.1"].as_u64(), Some(moved));

    // max_redirects = 0: the 301 is the outcome; k6 counts it as expected (200–399).
    let (o, out) = common::run_named(&dir, "stay", &text(&url, &pki.ca, "max_redirects = 0")).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = summary(&out);
    let st = &s["requests"][0]["statuses"];
    assert!(
        st.get("200").is_none() && st["301"].as_u64().unwrap() >= 70,
        "{st}"
    );
    assert_eq!(s["totals"]["http_req_failed"], 0);
    assert!(s["http"]["protocols"].get("HTTP/2.0").is_none());
}
