//! The HTTP client against real servers started by the tests: TLS verified by a CA generated
//! per test (rcgen), refused without it, accepted when insecure; mutual TLS; HTTP/2 by ALPN or
//! h2c, HTTP/1.1 when forced; redirects; checks on responses; k6's timing phases; bad input.

mod common;

use std::path::Path;

use common::web::{Options, Pki, WebServer};
use common::{args, harness, scenario, summary, temp_dir};

/// A constant-rate scenario of one request, with extra `[target]` lines, request lines and
/// thresholds.
fn one_request(url: &str, target: &str, request: &str, thresholds: &str) -> String {
    format!(
        r#"
name = "http"
[target]
url = "{url}"
timeout = "3s"
{target}
[executor]
type = "arrival-rate"
start_rate = 50
max_in_flight = 50
stages = [ {{ duration = "2s", target = 50 }} ]
[[requests]]
name = "r"
{request}
[thresholds]
{thresholds}
"#
    )
}

async fn run(dir: &Path, text: &str) -> (std::process::Output, std::path::PathBuf) {
    common::run_named(dir, &format!("s{}", fastrand::u32(..)), text).await
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn a_tls_target_is_verified_with_its_ca_refused_without_it_and_accepted_when_insecure() {
    let dir = temp_dir("tls");
    let pki = Pki::new(&dir);
    let server = WebServer::start(Options::tls(&pki)).await;
    let ca = format!("tls = {{ ca_file = \"{}\" }}", pki.ca.display());
    let text = one_request(
        &server.url,
        &ca,
        "path = \"/\"",
        "http_req_failed = [\"rate==0\"]",
    );
    let (o, out) = run(&dir, &text).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    let h2 = s["http"]["protocols"]["HTTP/2.0"].as_u64().unwrap_or(0);
    assert!(h2 >= 90, "HTTP/2 negotiated by ALPN: {}", s["http"]);
    assert!(server.served("HTTP/2.0") >= 90, "the server saw HTTP/2");
    assert_eq!(server.served("HTTP/1.1"), 0);
    assert!(s["http"]["data_received"].as_u64().unwrap() > 0);
    assert_eq!(s["http"]["tls_insecure"], false);

    // The same server without the CA: the preflight refuses it, naming the issuer problem.
    let text = one_request(&server.url, "", "path = \"/\"", "");
    let (o, out) = run(&dir, &text).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("unknown issuer") && e.contains(&server.url.replace("https://", "")),
        "{e}"
    );
    assert_eq!(summary(&out)["totals"]["http_reqs"], 0);

    // insecure = true: accepted, and every report says certificates were not verified.
    let text = one_request(&server.url, "tls = { insecure = true }", "path = \"/\"", "");
    let (o, out) = run(&dir, &text).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(summary(&out)["http"]["tls_insecure"], true);
    let run_dir = common::run_dir(&out);
    for file in ["report.md", "report.html", "junit.xml"] {
        let text = std::fs::read_to_string(run_dir.join(file)).unwrap();
        assert!(
            text.to_lowercase().contains("not verified"),
            "{file} says so"
        );
    }
}

#[tokio::test]
async fn expired_and_misnamed_certificates_are_refused_in_words() {
    let dir = temp_dir("tls-words");
    let pki = Pki::new(&dir);
    let mut opts = Options::tls(&pki);
    opts.tls = Some((pki.expired_cert.clone(), pki.expired_key.clone()));
    let expired = WebServer::start(opts).await;
    let ca = format!("tls = {{ ca_file = \"{}\" }}", pki.ca.display());
    let (o, _) = run(&dir, &one_request(&expired.url, &ca, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("certificate expired"), "{}", stderr(&o));

    let good = WebServer::start(Options::tls(&pki)).await;
    let misnamed = format!(
        "tls = {{ ca_file = \"{}\", server_name = \"api.example.com\" }}",
        pki.ca.display()
    );
    let (o, _) = run(&dir, &one_request(&good.url, &misnamed, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("name mismatch"), "{}", stderr(&o));
}

#[tokio::test]
async fn mutual_tls_is_accepted_with_the_client_pair_and_refused_without() {
    let dir = temp_dir("mtls");
    let pki = Pki::new(&dir);
    let mut opts = Options::tls(&pki);
    opts.client_ca = Some(pki.ca.clone());
    let server = WebServer::start(opts).await;
    let pair = format!(
        "tls = {{ ca_file = \"{}\", client_cert = \"{}\", client_key = \"{}\" }}",
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let (o, _) = run(&dir, &one_request(&server.url, &pair, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ca = format!("tls = {{ ca_file = \"{}\" }}", pki.ca.display());
    let (o, out) = run(&dir, &one_request(&server.url, &ca, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(summary(&out)["totals"]["http_reqs"], 0);
}

#[tokio::test]
async fn http_1_1_is_used_when_forced_and_h2c_when_asked_on_plain_http() {
    let dir = temp_dir("versions");
    let pki = Pki::new(&dir);
    let server = WebServer::start(Options::tls(&pki)).await;
    let forced = format!(
        "http_version = \"1.1\"\ntls = {{ ca_file = \"{}\" }}",
        pki.ca.display()
    );
    let (o, out) = run(&dir, &one_request(&server.url, &forced, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.served("HTTP/2.0"), 0);
    assert!(
        summary(&out)["http"]["protocols"]["HTTP/1.1"]
            .as_u64()
            .unwrap()
            >= 90
    );

    let plain = WebServer::start(Options::plain()).await;
    let h2c = "http_version = \"2\"";
    let (o, out) = run(&dir, &one_request(&plain.url, h2c, "path = \"/\"", "")).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(plain.served("HTTP/2.0") >= 90);
    assert_eq!(plain.served("HTTP/1.1"), 0, "the preflight GET too");
    assert!(
        summary(&out)["http"]["protocols"]["HTTP/2.0"]
            .as_u64()
            .unwrap()
            >= 90
    );
    // Multiplexed: far fewer connections than requests.
    assert!(plain.connections.load(std::sync::atomic::Ordering::Relaxed) <= 10);
}

#[tokio::test]
async fn a_check_failing_on_one_in_ten_responses_gives_a_checks_rate_of_0_9_and_fails_its_gate() {
    let dir = temp_dir("checks");
    let server = WebServer::start(Options::plain()).await;
    let request =
        "path = \"/order\"\n[[requests.checks]]\nname = \"order has id\"\njsonpath = \"$.id\"";
    let gates = "checks = [\"rate>0.95\"]\n\"checks{check:order has id}\" = [\"rate>0.5\"]\nhttp_req_failed = [\"rate==0\"]";
    let (o, out) = run(&dir, &one_request(&server.url, "", request, gates)).await;
    assert_eq!(o.status.code(), Some(99), "{}", stderr(&o));
    let s = summary(&out);
    let c = &s["http"]["checks"][0];
    assert_eq!(c["name"], "order has id");
    let rate = c["rate"].as_f64().unwrap();
    assert!((rate - 0.9).abs() <= 0.01, "{rate}");
    let verdicts = s["thresholds"].as_array().unwrap();
    assert_eq!(verdicts[0]["passed"], false, "checks rate>0.95");
    assert_eq!(verdicts[1]["passed"], true, "the tagged check");
    assert_eq!(
        verdicts[2]["passed"], true,
        "checks do not fail requests by default"
    );

    // fail_request: the failed checks count in http_req_failed.
    let request = format!("{request}\nfail_request = true");
    let gate = "http_req_failed = [\"rate<0.05\"]";
    let (o, out) = run(&dir, &one_request(&server.url, "", &request, gate)).await;
    assert_eq!(o.status.code(), Some(99), "{}", stderr(&o));
    let t = &summary(&out)["totals"];
    let failed = t["http_req_failed"].as_f64().unwrap() / t["http_reqs"].as_f64().unwrap();
    assert!((failed - 0.1).abs() <= 0.01, "{failed}");
}

#[tokio::test]
async fn a_body_over_max_body_is_a_named_failure() {
    let dir = temp_dir("big");
    let server = WebServer::start(Options::plain()).await;
    let request = "path = \"/big\"\nmax_body = 65536\n[[requests.checks]]\nname = \"says x\"\nbody_contains = \"x\"";
    let (o, out) = run(&dir, &one_request(&server.url, "", request, "")).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    let n = s["totals"]["http_reqs"].as_u64().unwrap();
    assert_eq!(s["http"]["errors"]["body_too_large"].as_u64(), Some(n));
    assert_eq!(s["totals"]["http_req_failed"].as_u64(), Some(n));
    assert_eq!(s["http"]["checks"][0]["passes"], 0);
}

#[tokio::test]
async fn redirects_are_followed_each_hop_a_sample_and_a_loop_is_a_failure() {
    let dir = temp_dir("redirects");
    let server = WebServer::start(Options::plain()).await;
    // 100 requests (50/s for 2 s) of four samples each: http_reqs counts hops, iterations
    // counts requests.
    let gates = "iterations = [\"count==100\"]\nhttp_reqs = [\"count==400\"]";
    let (o, out) = run(
        &dir,
        &one_request(&server.url, "", "path = \"/hop/3\"", gates),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    let statuses = &s["requests"][0]["statuses"];
    let (redirects, final_) = (
        statuses["302"].as_u64().unwrap(),
        statuses["200"].as_u64().unwrap(),
    );
    assert_eq!(redirects, 3 * final_, "three hops per request: {statuses}");
    assert_eq!(s["totals"]["http_req_failed"], 0);

    // Fewer allowed than needed: the request fails as `redirects`, it does not hang.
    let limited = "max_redirects = 2";
    let (o, out) = run(
        &dir,
        &one_request(&server.url, limited, "path = \"/loop\"", ""),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    let failed = s["totals"]["http_req_failed"].as_u64().unwrap();
    assert!(
        failed > 0 && s["http"]["errors"]["redirects"].as_u64() == Some(failed),
        "{}",
        s["http"]
    );

    // max_redirects = 0: the 302 is the outcome and, as in k6, expected (200–399).
    let off = "max_redirects = 0";
    let (o, out) = run(
        &dir,
        &one_request(&server.url, off, "path = \"/hop/3\"", ""),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    assert!(s["requests"][0]["statuses"].get("200").is_none());
    assert_eq!(s["totals"]["http_req_failed"], 0);
}

#[tokio::test]
async fn a_100_ms_first_byte_shows_in_http_req_waiting_and_not_in_connecting() {
    let dir = temp_dir("phases");
    let server = WebServer::start(Options::plain()).await;
    let text = format!(
        r#"
name = "phases"
[target]
url = "{}"
[executor]
type = "vus"
start_vus = 2
stages = [ {{ duration = "3s", target = 2 }} ]
[[requests]]
name = "slow"
path = "/slow"
[thresholds]
http_req_waiting = ["p(50)<115", "p(50)>95"]
http_req_connecting = ["p(95)<5"]
"#,
        server.url
    );
    let (o, out) = run(&dir, &text).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    let waiting = s["http"]["phases"]["http_req_waiting"]["p50_ms"]
        .as_f64()
        .unwrap();
    assert!((95.0..=115.0).contains(&waiting), "{waiting}");
    let connecting = s["http"]["phases"]["http_req_connecting"]["p95_ms"]
        .as_f64()
        .unwrap();
    assert!(connecting < 5.0, "{connecting}");
}

/// `harness validate` on `text`: exit 2, and the message names `field`.
async fn refused(dir: &Path, text: &str, field: &str) {
    let file = scenario(dir, "bad.toml", text);
    let o = harness(args(&["validate", &file.display().to_string()])).await;
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{field}: {e}");
    assert!(e.contains("bad.toml:") && e.contains(field), "{field}: {e}");
}

#[tokio::test]
async fn bad_tls_files_checks_and_limits_are_exit_2_with_their_place() {
    let dir = temp_dir("bad-http");
    let pki = Pki::new(&dir);
    let url = "https://localhost:1";
    let t = |target: &str, request: &str| one_request(url, target, request, "");
    let path = "path = \"/\"";
    refused(
        &dir,
        &t("tls = { ca_file = \"missing.pem\" }", path),
        "target.tls.ca_file",
    )
    .await;
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    refused(
        &dir,
        &t("tls = { ca_file = \"junk.pem\" }", path),
        "target.tls.ca_file",
    )
    .await;
    let mismatch = format!(
        "tls = {{ client_cert = \"{}\", client_key = \"{}\" }}",
        pki.client_cert.display(),
        pki.other_key.display()
    );
    refused(&dir, &t(&mismatch, path), "target.tls.client_key").await;
    let jsonpath = "path = \"/\"\n[[requests.checks]]\nname = \"x\"\njsonpath = \"$[\"";
    refused(&dir, &t("", jsonpath), "requests.checks.jsonpath").await;
    let regex = "path = \"/\"\n[[requests.checks]]\nname = \"x\"\nbody_matches = \"(\"";
    refused(&dir, &t("", regex), "requests.checks.body_matches").await;
    refused(&dir, &t("max_body = 0", path), "target.max_body").await;
    refused(
        &dir,
        &t("", "path = \"/\"\nexpect_status = [700]"),
        "requests.expect_status",
    )
    .await;
    refused(&dir, &one_request("http://", "", path, ""), "target.url").await;
}

#[tokio::test]
async fn an_https_url_to_a_plain_http_server_is_refused_and_nothing_goes_in_clear_text() {
    let dir = temp_dir("no-clear-text");
    let plain = common::TestServer::start().await;
    let url = plain.url.replace("http://", "https://");
    let (o, out) = run(&dir, &one_request(&url, "", "path = \"/a\"", "")).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));
    assert_eq!(
        plain.total() + plain.count("/"),
        0,
        "no HTTP request reached the server"
    );
    assert_eq!(summary(&out)["totals"]["http_reqs"], 0);
}
