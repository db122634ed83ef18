//! The DevTools driver the dashboard test uses (`common::cdp`) works against this machine's
//! Chromium: a page from an in-test server loads, script answers, a click changes the DOM and
//! a screenshot is a PNG.

mod common;

use std::path::Path;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use common::cdp::{base64_decode, Browser};

const PAGE: &str = r#"<!doctype html><html><head><title>cdp smoke</title></head>
<body style="font:20px sans-serif;background:#fff">
<h1 id="title">hello from the test server</h1>
<input id="name" value="">
<button id="go" onclick="document.getElementById('out').textContent = 'clicked ' + document.getElementById('name').value">go</button>
<p id="out">not clicked</p>
<script>window.seen = []; document.getElementById('name').addEventListener('change', e => seen.push(e.target.value));</script>
</body></html>"#;

#[test]
fn base64_decoder_matches_rfc_4648_vectors() {
    for (enc, dec) in [
        ("", ""),
        ("Zg==", "f"),
        ("Zm8=", "fo"),
        ("Zm9v", "foo"),
        ("Zm9vYg==", "foob"),
        ("Zm9vYmE=", "fooba"),
        ("Zm9vYmFy", "foobar"),
        ("Zm9v\nYmFy", "foobar"),
    ] {
        assert_eq!(base64_decode(enc).unwrap(), dec.as_bytes(), "{enc}");
    }
    assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
    assert!(base64_decode("Zm9v!").is_none());
}

#[tokio::test]
async fn headless_chromium_renders_a_page_and_answers_script() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = Router::new().route("/", get(|| async { Html(PAGE) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut b = Browser::launch().await;
    b.navigate(&url).await;
    assert_eq!(b.eval("document.title").await, "cdp smoke");
    assert_eq!(b.eval("1 + 2").await, 3);
    assert_eq!(
        b.eval("new Promise(r => setTimeout(() => r({ok: true, n: [1, 2]}), 50))")
            .await,
        serde_json::json!({"ok": true, "n": [1, 2]})
    );
    assert_eq!(b.eval("undefined").await, serde_json::Value::Null);

    b.set_value("#name", "chromium").await;
    b.click("#go").await;
    assert_eq!(
        b.eval("document.getElementById('out').textContent").await,
        "clicked chromium"
    );
    assert_eq!(b.eval("seen").await, serde_json::json!(["chromium"]));
    b.wait_for(
        "document.getElementById('out').textContent.startsWith('clicked')",
        std::time::Duration::from_secs(2),
    )
    .await;

    // A thrown exception panics with its text.
    let thrown = tokio::spawn(async move {
        b.eval("(() => { throw new Error('boom from the page') })()")
            .await;
    })
    .await
    .unwrap_err();
    let msg = thrown.into_panic();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("boom from the page"), "{msg}");

    let mut b = Browser::launch().await;
    b.navigate(&url).await;
    b.click("#go").await;
    let shot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/test-artifacts/cdp-smoke.png");
    b.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &png[..png.len().min(8)]
    );
    assert!(png.len() > 1000, "a {}-byte screenshot", png.len());
    drop(b);
    server.abort();
}
