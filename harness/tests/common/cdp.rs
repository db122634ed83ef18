//! Headless Chromium driven over the DevTools protocol, for the dashboard's end-to-end test.
//!
//! `Browser::launch` starts `/usr/bin/chromium` (or `$HARNESS_CHROMIUM`) headless in its own
//! process group with a fresh profile directory, reads the debugging port it chose from
//! `DevToolsActivePort`, finds the page target with `GET /json/list` and connects to its
//! WebSocket. Every call has an id and a 10 s deadline; events that arrive meanwhile are kept
//! (a navigation's load event is waited for that way). Dropping the `Browser` kills the whole process
//! group and removes the profile directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long one protocol call (or the load after a navigation) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long Chromium may take to write `DevToolsActivePort`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Browser {
    child: Child,
    dir: PathBuf,
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    /// Events received while waiting for replies, oldest first.
    events: Vec<Value>,
    /// The DevTools HTTP port (`/json/list`, `/json/version`).
    pub port: u16,
}

impl Browser {
    /// Starts headless Chromium (window 1400×1000) on `about:blank` and connects to its page.
    pub async fn launch() -> Browser {
        let exe = std::env::var("HARNESS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let dir = std::env::temp_dir().join(format!(
            "harness-cdp-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("chromium.log")).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&exe)
                .args([
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--mute-audio",
                    "--hide-scrollbars",
                    "--window-size=1400,1000",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", dir.display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"))
        };
        // From here on a panic must still kill Chromium: `Guard` does until the Browser exists.
        let mut guard = Guard(Some((child, dir.clone())));
        let port = wait_for_port(&mut guard, &dir).await;
        let ws_url = page_target(port).await;
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Chromium's DevTools port {port}: {e}"));
        let (ws, _) = tokio_tungstenite::client_async(ws_url.as_str(), stream)
            .await
            .unwrap_or_else(|e| panic!("DevTools WebSocket handshake with {ws_url}: {e}"));
        let (child, dir) = guard.0.take().unwrap();
        let mut b = Browser {
            child,
            dir,
            ws,
            next_id: 0,
            events: Vec::new(),
            port,
        };
        b.call("Page.enable", json!({})).await;
        b.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }))
            .await;
        b
    }

    /// Sends one protocol command and answers its `result`; panics on an error answer or after
    /// 10 s, naming the method.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        let reply = tokio::time::timeout(CALL_TIMEOUT, async {
            self.ws
                .send(Message::text(msg))
                .await
                .unwrap_or_else(|e| panic!("{method}: sending to Chromium: {e}"));
            loop {
                let m = self.next_message(method).await;
                if m.get("id").and_then(Value::as_u64) == Some(id) {
                    return m;
                }
                if m.get("method").is_some() {
                    self.events.push(m);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method}: no answer from Chromium within {CALL_TIMEOUT:?}"));
        if let Some(err) = reply.get("error") {
            panic!("{method} failed: {err}");
        }
        reply.get("result").cloned().unwrap_or(Value::Null)
    }

    async fn next_message(&mut self, method: &str) -> Value {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("{method}: Chromium sent bad JSON ({e}): {t}"));
                }
                Some(Ok(Message::Close(c))) => {
                    panic!("{method}: Chromium closed the DevTools connection: {c:?}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("{method}: DevTools connection: {e}"),
                None => panic!("{method}: Chromium closed the DevTools connection"),
            }
        }
    }

    /// Waits (10 s) for the first event, received already or to come, that `want` accepts.
    async fn wait_event(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.events.iter().position(&want) {
            return self.events.remove(i);
        }
        tokio::time::timeout(CALL_TIMEOUT, async {
            loop {
                let m = self.next_message(what).await;
                if want(&m) {
                    return m;
                }
                if m.get("method").is_some() {
                    self.events.push(m);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: not received within {CALL_TIMEOUT:?}"))
    }

    /// Opens `url` and waits for that document's load event (matched by its loader id, so an
    /// earlier page's event never counts); a same-document navigation (only the fragment
    /// changing) has none and returns at once.
    pub async fn navigate(&mut self, url: &str) {
        self.events.retain(|e| {
            e["method"] != "Page.lifecycleEvent" && e["method"] != "Page.loadEventFired"
        });
        let r = self.call("Page.navigate", json!({ "url": url })).await;
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            panic!("Page.navigate to {url}: {err}");
        }
        if let Some(loader) = r.get("loaderId").and_then(Value::as_str).map(str::to_owned) {
            let what = format!("the load event of {url}");
            self.wait_event(&what, |e| {
                e["method"] == "Page.lifecycleEvent"
                    && e["params"]["name"] == "load"
                    && e["params"]["loaderId"] == loader.as_str()
            })
            .await;
        }
        self.events.retain(|e| e["method"] != "Page.lifecycleEvent");
    }

    /// Evaluates `js` in the page (promises awaited) and answers its value by value
    /// (`undefined` as null); panics with the exception's text if it throws.
    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or("(no description)");
            panic!("JavaScript exception in `{js}`: {text}");
        }
        r["result"].get("value").cloned().unwrap_or(Value::Null)
    }

    /// Polls `js` every 100 ms until it answers something truthy, and answers that; panics
    /// after `timeout` with the last value.
    pub async fn wait_for(&mut self, js: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(js).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if start.elapsed() > timeout {
                panic!("`{js}` still {v} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `selector`; panics if there is none.
    pub async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); \
             if (!e) throw new Error('no element matches ' + {sel}); e.click(); return true; }})()"
        ))
        .await;
    }

    /// Sets the `value` of the first element matching `selector` and dispatches `input` and
    /// `change` (bubbling); panics if there is none.
    pub async fn set_value(&mut self, selector: &str, value: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let val = serde_json::to_string(value).unwrap();
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); \
             if (!e) throw new Error('no element matches ' + {sel}); e.value = {val}; \
             e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()"
        ))
        .await;
    }

    /// Writes a PNG of the viewport to `path` (parent directories created).
    pub async fn screenshot(&mut self, path: &Path) {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let data = r["data"]
            .as_str()
            .expect("Page.captureScreenshot answered no data");
        let png = base64_decode(data).expect("Page.captureScreenshot answered bad base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills Chromium and removes its profile if launching panics before the `Browser` exists.
struct Guard(Option<(Child, PathBuf)>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((mut child, dir)) = self.0.take() {
            kill_group(&mut child);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn kill_group(child: &mut Child) {
    // The child leads its own process group (`process_group(0)`): the group id is its pid.
    let pgid = child.id() as libc::pid_t;
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Polls `<profile>/DevToolsActivePort` (first line: the port) for up to 20 s.
async fn wait_for_port(guard: &mut Guard, dir: &Path) -> u16 {
    let file = dir.join("DevToolsActivePort");
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return port;
            }
        }
        let (child, _) = guard.0.as_mut().unwrap();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "Chromium exited ({status}) before writing {}; its output:\n{}",
                file.display(),
                log_tail(dir)
            );
        }
        if start.elapsed() > START_TIMEOUT {
            panic!(
                "Chromium did not write {} within {START_TIMEOUT:?}; its output:\n{}",
                file.display(),
                log_tail(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The WebSocket URL of the first page target in `GET /json/list` (retried for up to 10 s:
/// the page may be listed a moment after the port opens).
async fn page_target(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/json/list");
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let last = match client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) => match r.json::<Value>().await {
                Ok(list) => {
                    let page = list.as_array().and_then(|l| {
                        l.iter()
                            .find(|t| t["type"] == "page")
                            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    });
                    if let Some(ws) = page {
                        return ws.to_owned();
                    }
                    format!("no page target in {list}")
                }
                Err(e) => format!("bad JSON: {e}"),
            },
            Err(e) => e.to_string(),
        };
        if start.elapsed() > CALL_TIMEOUT {
            panic!("GET {url}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Standard base64 (RFC 4648, `+/`, padding optional, whitespace ignored).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
