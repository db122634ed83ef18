//! HTTP/1.1 on the relay's `http` proxies: the framing of requests and responses (heads up to
//! CRLFCRLF, bodies by Content-Length or chunked), the routes HTTP toxics match, and the two
//! stages a link's bytes cross so that a decision can be made per request.
//!
//! The request stage parses each request head, asks the proxy which HTTP toxics hit it, and
//! either forwards it (perhaps late) or has it answered locally. Every request, forwarded or
//! not, leaves an [`Exchange`] in a queue; the response stage serves that queue in order,
//! framing each upstream response, so a local answer never lands inside another response even
//! when requests are pipelined, and `http_abort` counts the bytes of exactly its response.
//! Bytes are forwarded as they arrive (a body is never buffered whole), a head in one write with
//! the body bytes that came with it, so a message sent in one piece arrives in one.
//!
//! A request that does not parse is never forwarded, not even in part: the client gets a local
//! `400` with `connection: close` and the link closes. A response that does not parse ends the
//! client's side of the link (FIN). `CONNECT` and `Upgrade` requests turn the link into a
//! plain tunnel after them, as does a `101` answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::relay::{Piece, Proxy};

/// The longest head (request or response) the relay reads before calling it broken.
pub const MAX_HEAD: usize = 64 * 1024;

/// Why bytes are not HTTP/1.1 the relay can frame, or a route is not one it can match.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum HttpError {
    #[error("head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed header line")]
    Header,
    #[error("invalid content-length")]
    ContentLength,
    #[error("transfer-encoding whose last coding is not chunked")]
    TransferEncoding,
    #[error("both content-length and transfer-encoding")]
    Ambiguous,
    #[error("malformed chunked body")]
    Chunk,
    #[error("route `{route}`: {reason}")]
    Route { route: String, reason: &'static str },
}

/// Which requests an HTTP toxic acts on: `""` (all), `"/prefix"` or `"METHOD /prefix"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route<'a> {
    method: Option<&'a str>,
    prefix: &'a str,
}

impl<'a> Route<'a> {
    pub fn parse(route: &'a str) -> Result<Route<'a>, HttpError> {
        let fail = |reason| HttpError::Route {
            route: route.to_owned(),
            reason,
        };
        let trimmed = route.trim();
        let (method, prefix) = match trimmed.split_once(' ') {
            Some((m, p)) => (Some(m), p.trim_start()),
            None => (None, trimmed),
        };
        if method.is_some_and(|m| m.is_empty() || !m.bytes().all(is_tchar)) {
            return Err(fail("the method must be a token such as POST"));
        }
        let every_request = prefix.is_empty() && method.is_none();
        if !every_request && !prefix.starts_with('/') {
            return Err(fail(
                "use `/path` or `METHOD /path` (or empty for every request)",
            ));
        }
        if prefix.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(fail(
                "the path may not contain spaces or control characters",
            ));
        }
        Ok(Route { method, prefix })
    }

    /// Whether a request matches: same method (if one is named) and a path that is the prefix
    /// or goes on below it (`/api/cart` matches `/api/cart/7`, not `/api/cart-old`).
    pub fn matches(&self, method: &str, target: &str) -> bool {
        if self.method.is_some_and(|m| m != method) {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        let path = path_of(target);
        match path.strip_prefix(self.prefix) {
            Some(rest) => self.prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// The path of a request target: origin-form up to `?`/`#`, or absolute-form's path.
fn path_of(target: &str) -> &str {
    let after_scheme = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        },
        _ => target,
    };
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a head's header fields say about framing and the connection.
#[derive(Debug, Default, PartialEq)]
struct Fields {
    length: Option<u64>,
    /// Transfer-Encoding was sent; `true` when its last coding is chunked.
    chunked: Option<bool>,
    close: bool,
    keep_alive: bool,
    conn_upgrade: bool,
    upgrade: bool,
    expect_continue: bool,
}

/// A head's bounds in `buf`: where its start line begins (after empty lines, which RFC 9112
/// lets a server skip) and where the head ends (after CRLFCRLF); `None` while incomplete.
fn head_bounds(buf: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    match find(&buf[start..], b"\r\n\r\n") {
        Some(i) if start + i + 4 <= MAX_HEAD => Ok(Some((start, start + i + 4))),
        Some(_) => Err(HttpError::HeadTooLarge),
        None if buf.len() > MAX_HEAD => Err(HttpError::HeadTooLarge),
        None => Ok(None),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The start line and the parsed fields of the head in `buf[start..end]`. Lines end in CRLF
/// only: a bare CR or LF, a folded line or a control character is an error, since an upstream
/// reading them differently is how requests are smuggled.
fn parse_fields(head: &[u8]) -> Result<(&[u8], Fields), HttpError> {
    let text = &head[..head.len() - 4];
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = find(rest, b"\r\n") {
        lines.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    lines.push(rest);
    let mut fields = Fields::default();
    for line in &lines[1..] {
        header(line, &mut fields)?;
    }
    if lines[0].iter().any(|b| b.is_ascii_control()) {
        return Err(HttpError::StartLine);
    }
    Ok((lines[0], fields))
}

fn header(line: &[u8], f: &mut Fields) -> Result<(), HttpError> {
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(HttpError::Header)?;
    let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
    if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
        return Err(HttpError::Header);
    }
    if value.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
        return Err(HttpError::Header);
    }
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let tokens = || value.split(|b| *b == b',').map(<[u8]>::trim_ascii);
    if is("content-length") {
        content_length(value, f)?;
    } else if is("transfer-encoding") {
        let last = tokens().rfind(|t| !t.is_empty());
        f.chunked = Some(last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")));
    } else if is("connection") {
        for t in tokens() {
            f.close |= t.eq_ignore_ascii_case(b"close");
            f.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            f.conn_upgrade |= t.eq_ignore_ascii_case(b"upgrade");
        }
    } else if is("expect") {
        f.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
    } else if is("upgrade") {
        f.upgrade = true;
    }
    Ok(())
}

/// Content-Length: digits, or a list of identical ones; a second, different one is an error.
fn content_length(value: &[u8], f: &mut Fields) -> Result<(), HttpError> {
    for item in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::ContentLength);
        }
        let n: u64 = std::str::from_utf8(item)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(HttpError::ContentLength)?;
        if f.length.is_some_and(|m| m != n) {
            return Err(HttpError::ContentLength);
        }
        f.length = Some(n);
    }
    Ok(())
}

/// One parsed request head.
#[derive(Debug, PartialEq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// Bytes of the head in the buffer, leading empty lines included.
    pub len: usize,
    pub body: Body,
    /// The client asked for the connection to end after the answer.
    pub close: bool,
    pub expect_continue: bool,
    /// CONNECT or an Upgrade: after this request the link is a tunnel.
    pub tunnel: bool,
}

impl RequestHead {
    /// The request head at the start of `buf`, or `None` while it is incomplete.
    pub fn parse(buf: &[u8]) -> Result<Option<RequestHead>, HttpError> {
        let Some((start, end)) = head_bounds(buf)? else {
            return Ok(None);
        };
        let (line, f) = parse_fields(&buf[start..end])?;
        let mut parts = line.split(|b| *b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HttpError::StartLine);
        };
        let http10 = match version {
            b"HTTP/1.1" => false,
            b"HTTP/1.0" => true,
            _ => return Err(HttpError::StartLine),
        };
        if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) || target.is_empty() {
            return Err(HttpError::StartLine);
        }
        let body = match (f.chunked, f.length) {
            (Some(_), Some(_)) => return Err(HttpError::Ambiguous),
            (Some(true), None) => Body::Chunked(Chunk::START),
            (Some(false), None) => return Err(HttpError::TransferEncoding),
            (None, length) => Body::Length(length.unwrap_or(0)),
        };
        let method = String::from_utf8_lossy(method).into_owned();
        Ok(Some(RequestHead {
            tunnel: method == "CONNECT" || (f.upgrade && f.conn_upgrade),
            method,
            target: String::from_utf8_lossy(target).into_owned(),
            len: end,
            body,
            close: f.close || (http10 && !f.keep_alive),
            expect_continue: f.expect_continue,
        }))
    }
}

/// What the response side must know about the request a response answers.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Asked {
    pub head: bool,
    pub connect: bool,
    pub tunnel: bool,
    /// `http_abort`: reset the link after this many bytes of the response.
    pub abort: Option<u64>,
}

/// What follows a response head.
#[derive(Debug, PartialEq)]
pub enum After {
    /// A 1xx other than 101: the final response is still to come.
    Interim,
    /// 101, or a 2xx to CONNECT: bytes pass untouched from here on.
    Tunnel,
    Body(Body),
}

/// One parsed response head.
#[derive(Debug, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    pub len: usize,
    pub after: After,
}

impl ResponseHead {
    /// The response head at the start of `buf` for a request like `asked`, or `None` while it
    /// is incomplete. Framing per RFC 9112 §6.3 (Transfer-Encoding overrides Content-Length).
    pub fn parse(buf: &[u8], asked: &Asked) -> Result<Option<ResponseHead>, HttpError> {
        let Some((start, end)) = head_bounds(buf)? else {
            return Ok(None);
        };
        let (line, f) = parse_fields(&buf[start..end])?;
        let status = match line {
            [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0' | b'1', b' ', a, b, c, rest @ ..]
                if [a, b, c].iter().all(|d| d.is_ascii_digit())
                    && (rest.is_empty() || rest[0] == b' ') =>
            {
                [a, b, c]
                    .iter()
                    .fold(0u16, |n, d| n * 10 + u16::from(**d - b'0'))
            }
            _ => return Err(HttpError::StartLine),
        };
        let after = match status {
            101 => After::Tunnel,
            100..=199 => After::Interim,
            200..=299 if asked.connect => After::Tunnel,
            204 | 304 => After::Body(Body::Length(0)),
            _ if asked.head => After::Body(Body::Length(0)),
            _ => After::Body(match (f.chunked, f.length) {
                (Some(true), _) => Body::Chunked(Chunk::START),
                (Some(false), _) | (None, None) => Body::UntilClose,
                (None, Some(n)) => Body::Length(n),
            }),
        };
        Ok(Some(ResponseHead {
            status,
            len: end,
            after,
        }))
    }
}

/// A message body being framed: how much of it is still to come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Body {
    Length(u64),
    Chunked(Chunk),
    /// A response without length: it ends when the upstream closes.
    UntilClose,
}

/// Where a chunked body's framing stands; data is skipped in bulk, the rest byte by byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Chunk {
    Size { size: u64, digits: u8 },
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Trailer { empty: bool },
    TrailerLf { empty: bool },
    Done,
}

impl Chunk {
    const START: Chunk = Chunk::Size { size: 0, digits: 0 };

    fn step(self, b: u8) -> Result<Chunk, HttpError> {
        use Chunk::*;
        Ok(match (self, b) {
            // 15 hex digits fit a u64; more is an attack, not a body.
            (Size { digits: 15, .. }, _) if b.is_ascii_hexdigit() => return Err(HttpError::Chunk),
            (Size { size, digits }, _) if b.is_ascii_hexdigit() => Size {
                size: size * 16 + u64::from((b as char).to_digit(16).expect("hex digit")),
                digits: digits + 1,
            },
            (Size { digits: 0, .. }, _) => return Err(HttpError::Chunk),
            (Size { size, .. }, b';' | b' ' | b'\t') => Ext(size),
            (Size { size, .. } | Ext(size), b'\r') => SizeLf(size),
            (Ext(size), _) if b != b'\n' => Ext(size),
            (SizeLf(0), b'\n') => Trailer { empty: true },
            (SizeLf(size), b'\n') => Data(size),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Chunk::START,
            (Trailer { empty }, b'\r') => TrailerLf { empty },
            (Trailer { .. }, _) if b != b'\n' => Trailer { empty: false },
            (TrailerLf { empty: true }, b'\n') => Done,
            (TrailerLf { empty: false }, b'\n') => Trailer { empty: true },
            _ => return Err(HttpError::Chunk),
        })
    }
}

impl Body {
    /// How many bytes at the start of `data` belong to the body (all of them, until it ends).
    pub fn advance(&mut self, data: &[u8]) -> Result<usize, HttpError> {
        match self {
            Body::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                Ok(n as usize)
            }
            Body::UntilClose => Ok(data.len()),
            Body::Chunked(state) => {
                let mut i = 0;
                while i < data.len() && *state != Chunk::Done {
                    if let Chunk::Data(left) = *state {
                        let n = left.min((data.len() - i) as u64);
                        i += n as usize;
                        *state = if n == left {
                            Chunk::DataCr
                        } else {
                            Chunk::Data(left - n)
                        };
                    } else {
                        *state = state.step(data[i])?;
                        i += 1;
                    }
                }
                Ok(i)
            }
        }
    }

    pub fn done(&self) -> bool {
        matches!(self, Body::Length(0) | Body::Chunked(Chunk::Done))
    }
}

/// A complete local answer: a small JSON body with its content-length (none for HEAD, 204,
/// 304), so the client's connection stays usable unless `close`.
pub fn answer(status: u16, message: &str, toxic: Option<&str>, head: bool, close: bool) -> Bytes {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Fault");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    // A toxic's name is the client's text: only a plain token goes into a header.
    if let Some(name) = toxic.filter(|n| !n.is_empty() && n.bytes().all(is_tchar)) {
        out.push_str(&format!("x-fault-toxic: {name}\r\n"));
    }
    if close {
        out.push_str("connection: close\r\n");
    }
    let body = json!({ "error": message, "status": status }).to_string();
    if status != 204 && status != 304 {
        out.push_str("content-type: application/json\r\n");
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    if !head && status != 204 && status != 304 {
        out.push_str(&body);
    }
    Bytes::from(out)
}

/// What the HTTP toxics decided for one request.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub delay: Option<Duration>,
    /// (status, toxic name): answer locally.
    pub status: Option<(u16, String)>,
    pub abort: Option<u64>,
}

/// One request's place in the answer order, as the response side serves it.
#[derive(Debug)]
pub(super) enum Exchange {
    /// Answer locally (the upstream never sees the request); `close` ends the link after it.
    Local { answer: Bytes, close: bool },
    /// The upstream's next response answers this request.
    Upstream(Asked),
}

/// The bytes one stage reads: the raw pieces from a socket and what is left unframed.
struct Feed {
    raw: mpsc::Receiver<Piece>,
    buf: BytesMut,
    /// When the latest piece was read (TCP latency downstream of the stage counts from it).
    at: Instant,
}

impl Feed {
    fn new(raw: mpsc::Receiver<Piece>) -> Feed {
        Feed {
            raw,
            buf: BytesMut::new(),
            at: Instant::now(),
        }
    }

    /// Appends the next piece; `false` at the end of the source.
    async fn fill(&mut self) -> bool {
        match self.raw.recv().await {
            Some(Piece::Data(at, d)) => {
                self.at = at;
                self.buf.extend_from_slice(&d);
                true
            }
            _ => false,
        }
    }

    /// Waits for a head `parse` accepts; `Ok(None)` if the source ends first.
    async fn head<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Option<T>, HttpError>,
    ) -> Result<Option<T>, HttpError> {
        loop {
            if let Some(h) = parse(&self.buf)? {
                return Ok(Some(h));
            }
            if !self.fill().await {
                return Ok(None);
            }
        }
    }

    /// Passes everything from now on untouched to `out`.
    async fn tunnel(&mut self, out: &mpsc::Sender<Piece>) {
        if !self.buf.is_empty() {
            let _ = out
                .send(Piece::Data(self.at, self.buf.split().freeze()))
                .await;
        }
        while let Some(Piece::Data(at, d)) = self.raw.recv().await {
            let _ = out.send(Piece::Data(at, d)).await;
        }
    }
}

/// The client→upstream stage of an http link.
pub(super) struct Requests {
    feed: Feed,
    out: mpsc::Sender<Piece>,
    exchanges: mpsc::Sender<Exchange>,
    proxy: Arc<Proxy>,
}

impl Requests {
    pub(super) fn new(
        raw: mpsc::Receiver<Piece>,
        out: mpsc::Sender<Piece>,
        exchanges: mpsc::Sender<Exchange>,
        proxy: Arc<Proxy>,
    ) -> Requests {
        Requests {
            feed: Feed::new(raw),
            out,
            exchanges,
            proxy,
        }
    }

    /// Serves requests in order until the client's side ends, then passes the end on and waits
    /// (the link's writers decide when it closes).
    pub(super) async fn run(mut self) {
        loop {
            let head = match self.feed.head(RequestHead::parse).await {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    let answer = answer(400, &format!("bad request: {e}"), None, false, true);
                    let _ = self
                        .exchanges
                        .send(Exchange::Local {
                            answer,
                            close: true,
                        })
                        .await;
                    break;
                }
            };
            if !self.serve(head).await {
                break;
            }
        }
        let _ = self.out.send(Piece::Eof).await;
        std::future::pending::<()>().await;
    }

    /// One request, by the plan the proxy's HTTP toxics make for it; `false` ends the stage.
    async fn serve(&mut self, head: RequestHead) -> bool {
        let plan = self.proxy.http_plan(&head.method, &head.target);
        if let Some(delay) = plan.delay {
            tokio::time::sleep_until(self.feed.at + delay).await;
            self.feed.at = Instant::now();
        }
        let is_head = head.method == "HEAD";
        if let Some((status, toxic)) = plan.status {
            // After a refused `Expect: 100-continue` the client may or may not send the body:
            // closing is the one answer that cannot misframe what follows.
            let close = head.close || head.expect_continue;
            let message = format!("answered by the relay's http_status toxic {toxic}");
            let answer = answer(status, &message, Some(&toxic), is_head, close);
            let _ = self.exchanges.send(Exchange::Local { answer, close }).await;
            return !close && self.body(head.len, head.body, false).await;
        }
        let asked = Asked {
            head: is_head,
            connect: head.method == "CONNECT",
            tunnel: head.tunnel,
            abort: plan.abort,
        };
        let _ = self.exchanges.send(Exchange::Upstream(asked)).await;
        if !self.body(head.len, head.body, true).await {
            return false;
        }
        if head.tunnel {
            self.feed.tunnel(&self.out).await;
            return false;
        }
        true
    }

    /// Frames the body after the `head` bytes at the front of the buffer, forwarding both or
    /// dropping both; `false` if the client's side ended or the body broke its framing (the
    /// upstream then sees the request cut short).
    ///
    /// The head leaves in one write with the part of the body that came with it, so a request
    /// the client sent in one write reaches the upstream in one, as through a tcp proxy. Split
    /// into head and body, it could arrive in two segments: a server that answers without
    /// reading the body (hyper, whenever a handler ignores it) keeps the connection only if
    /// the rest of the body is already buffered, and closes it after its answer otherwise, a
    /// close the client's pool may then race with its next request.
    async fn body(&mut self, mut head: usize, mut body: Body, forward: bool) -> bool {
        loop {
            let framed = body.advance(&self.feed.buf[head..]);
            let part = self
                .feed
                .buf
                .split_to(head + *framed.as_ref().unwrap_or(&0))
                .freeze();
            head = 0;
            if forward && !part.is_empty() {
                self.send(part).await;
            }
            if framed.is_err() {
                return false;
            }
            if body.done() {
                return true;
            }
            if !self.feed.fill().await {
                return false;
            }
        }
    }

    async fn send(&self, bytes: Bytes) {
        let _ = self.out.send(Piece::Data(self.feed.at, bytes)).await;
    }
}

/// The upstream→client stage of an http link: answers in the order requests came.
pub(super) struct Responses {
    feed: Feed,
    out: mpsc::Sender<Piece>,
    exchanges: mpsc::Receiver<Exchange>,
}

impl Responses {
    pub(super) fn new(
        raw: mpsc::Receiver<Piece>,
        out: mpsc::Sender<Piece>,
        exchanges: mpsc::Receiver<Exchange>,
    ) -> Responses {
        Responses {
            feed: Feed::new(raw),
            out,
            exchanges,
        }
    }

    pub(super) async fn run(mut self) {
        while let Some(exchange) = self.next().await {
            let go_on = match exchange {
                Exchange::Local { answer, close } => {
                    let _ = self.out.send(Piece::Data(Instant::now(), answer)).await;
                    !close
                }
                Exchange::Upstream(asked) => self.relay(asked).await,
            };
            if !go_on {
                break;
            }
        }
        let _ = self.out.send(Piece::Eof).await;
        std::future::pending::<()>().await;
    }

    /// The next request to answer. Upstream bytes no request asked for (a 408 before the
    /// upstream closes an idle connection) are passed on as they are. `None`: the upstream
    /// closed.
    async fn next(&mut self) -> Option<Exchange> {
        loop {
            if !self.feed.buf.is_empty() {
                // A request is queued before it is forwarded, so an answer's request is here.
                if let Ok(e) = self.exchanges.try_recv() {
                    return Some(e);
                }
                let stray = self.feed.buf.split().freeze();
                let _ = self.out.send(Piece::Data(self.feed.at, stray)).await;
            }
            tokio::select! {
                biased;
                e = self.exchanges.recv() => return e,
                more = self.feed.fill() => if !more { return None },
            }
        }
    }

    /// Passes one response (interim ones included) for `asked`; `false` ends the stage.
    async fn relay(&mut self, asked: Asked) -> bool {
        let mut budget = asked.abort;
        loop {
            let parse = |buf: &[u8]| ResponseHead::parse(buf, &asked);
            let Ok(Some(head)) = self.feed.head(parse).await else {
                return false;
            };
            // A head without a body is passed as one with an empty body.
            let bare = Body::Length(0);
            match head.after {
                After::Interim => {
                    if !self.body(head.len, bare, &mut budget).await {
                        return false;
                    }
                }
                After::Tunnel => {
                    return self.body(head.len, bare, &mut budget).await && self.tunnel().await
                }
                After::Body(body) if asked.tunnel => {
                    // The upgrade was declined, but the request side tunnels already.
                    return self.body(head.len, body, &mut budget).await && self.tunnel().await;
                }
                After::Body(body) => {
                    if !self.body(head.len, body, &mut budget).await {
                        return false;
                    }
                    break;
                }
            }
        }
        // An `http_abort` whose bytes outlast the response resets right after it.
        budget.is_none() || self.reset().await
    }

    async fn tunnel(&mut self) -> bool {
        self.feed.tunnel(&self.out).await;
        false
    }

    /// Passes the `head` bytes at the front of the buffer and the body after them, the head in
    /// one write with the part of the body that came with it (as [`Requests::body`]).
    async fn body(&mut self, mut head: usize, mut body: Body, budget: &mut Option<u64>) -> bool {
        loop {
            let framed = body.advance(&self.feed.buf[head..]);
            let n = head + *framed.as_ref().unwrap_or(&0);
            head = 0;
            if n > 0 {
                let part = self.feed.buf.split_to(n).freeze();
                if !self.pass(part, budget).await {
                    return false;
                }
            }
            if framed.is_err() {
                return false;
            }
            if body.done() {
                return true;
            }
            if !self.feed.fill().await {
                return false;
            }
        }
    }

    /// Sends `bytes` toward the client, or, once an `http_abort`'s budget is spent, what fits
    /// and then the reset; `false` after a reset.
    async fn pass(&mut self, mut bytes: Bytes, budget: &mut Option<u64>) -> bool {
        if let Some(left) = budget {
            if bytes.len() as u64 >= *left {
                bytes.truncate(*left as usize);
                if !bytes.is_empty() {
                    let _ = self.out.send(Piece::Data(self.feed.at, bytes)).await;
                }
                return self.reset().await;
            }
            *left -= bytes.len() as u64;
        }
        let _ = self.out.send(Piece::Data(self.feed.at, bytes)).await;
        true
    }

    async fn reset(&mut self) -> bool {
        let _ = self.out.send(Piece::Reset).await;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_method_and_path_prefix_by_segment() {
        let any = Route::parse("").unwrap();
        assert!(any.matches("GET", "/") && any.matches("POST", "*"));
        let orders = Route::parse("/api/orders").unwrap();
        assert!(orders.matches("GET", "/api/orders"));
        assert!(orders.matches("POST", "/api/orders/7?x=1"));
        assert!(orders.matches("POST", "/api/orders?x=1"));
        assert!(orders.matches("POST", "http://shop:8080/api/orders/7"));
        assert!(!orders.matches("POST", "/api/orders-old"));
        assert!(!orders.matches("POST", "/api/order"));
        assert!(!orders.matches("POST", "/api"));
        let post = Route::parse("POST /api/orders").unwrap();
        assert!(post.matches("POST", "/api/orders"));
        assert!(!post.matches("GET", "/api/orders"));
        assert!(
            !post.matches("post", "/api/orders"),
            "methods are case-sensitive"
        );
        let slash = Route::parse("GET /api/").unwrap();
        assert!(slash.matches("GET", "/api/products/1"));
        assert!(Route::parse("/").unwrap().matches("DELETE", "/x"));
        for bad in [
            "api/orders",
            "POST",
            "PO ST /x",
            "(x) /a",
            "/a b",
            "GET api",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_heads_parse_with_their_framing() {
        assert_eq!(
            RequestHead::parse(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Ok(None)
        );
        let raw = b"\r\nPOST /api/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let h = RequestHead::parse(raw).unwrap().unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str()),
            ("POST", "/api/orders")
        );
        assert_eq!(
            (h.len, h.body, h.close),
            (raw.len() - 5, Body::Length(5), false)
        );
        let chunked = b"PUT /x HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n";
        let h = RequestHead::parse(chunked).unwrap().unwrap();
        assert_eq!(h.body, Body::Chunked(Chunk::START));
        let old = RequestHead::parse(b"GET / HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(old.close && old.body == Body::Length(0));
        let kept = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(!RequestHead::parse(kept).unwrap().unwrap().close);
        let ws = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert!(RequestHead::parse(ws).unwrap().unwrap().tunnel);
        let expect = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\ncontent-length: 1\r\n\r\n";
        assert!(RequestHead::parse(expect).unwrap().unwrap().expect_continue);
        let same = b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(
            RequestHead::parse(same).unwrap().unwrap().body,
            Body::Length(3)
        );
    }

    #[test]
    fn malformed_requests_are_errors_never_guesses() {
        let cases: [(&[u8], HttpError); 9] = [
            (b"GET /\r\n\r\n", HttpError::StartLine),
            (b"GET / HTTP/2.0\r\n\r\n", HttpError::StartLine),
            (b"GET  / HTTP/1.1\r\n\r\n", HttpError::StartLine),
            (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", HttpError::Header),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HttpError::Header),
            (
                b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
                HttpError::Header,
            ),
            (b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", HttpError::Header),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n",
                HttpError::ContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::Ambiguous,
            ),
        ];
        for (raw, want) in cases {
            let got = RequestHead::parse(raw);
            assert_eq!(got, Err(want), "{}", String::from_utf8_lossy(raw));
        }
        let te = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(RequestHead::parse(te), Err(HttpError::TransferEncoding));
        let cl = b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(RequestHead::parse(cl), Err(HttpError::ContentLength));
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(RequestHead::parse(&huge), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let get = Asked::default();
        let parse = |raw: &[u8], asked: &Asked| ResponseHead::parse(raw, asked).unwrap().unwrap();
        let ok = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", &get);
        assert_eq!((ok.status, ok.after), (200, After::Body(Body::Length(12))));
        let head = Asked { head: true, ..get };
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", &head);
        assert_eq!(h.after, After::Body(Body::Length(0)));
        let te = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            &get,
        );
        assert_eq!(te.after, After::Body(Body::Chunked(Chunk::START)));
        let open = parse(b"HTTP/1.0 200 OK\r\n\r\n", &get);
        assert_eq!(open.after, After::Body(Body::UntilClose));
        assert_eq!(
            parse(b"HTTP/1.1 204 \r\n\r\n", &get).after,
            After::Body(Body::Length(0))
        );
        assert_eq!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\n", &get).after,
            After::Interim
        );
        assert_eq!(
            parse(b"HTTP/1.1 101 Switching\r\n\r\n", &get).after,
            After::Tunnel
        );
        let connect = Asked {
            connect: true,
            ..get
        };
        assert_eq!(
            parse(b"HTTP/1.1 200\r\n\r\n", &connect).after,
            After::Tunnel
        );
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 2000 OK\r\n\r\n", &get),
            Err(HttpError::StartLine)
        );
        assert_eq!(ResponseHead::parse(b"HTTP/1.1 200 OK\r\n", &get), Ok(None));
    }

    #[test]
    fn chunked_bodies_end_exactly_after_their_trailers_in_any_split() {
        let body =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n";
        let mut stream = body.to_vec();
        stream.extend_from_slice(b"GET /next");
        for split in 1..body.len() {
            let mut b = Body::Chunked(Chunk::START);
            let first = b.advance(&stream[..split]).unwrap();
            assert_eq!((first, b.done()), (split, false), "split at {split}");
            let second = b.advance(&stream[split..]).unwrap();
            assert_eq!(
                (first + second, b.done()),
                (body.len(), true),
                "split at {split}"
            );
        }
        let mut b = Body::Chunked(Chunk::START);
        assert_eq!(b.advance(b"0\r\n\r\nX").unwrap(), 5);
        assert!(b.done());
        for bad in [
            &b"x\r\n"[..],
            b"5\nhello",
            b"1\r\nab\r\n",
            b"1234567890abcdef0\r\n",
        ] {
            let mut b = Body::Chunked(Chunk::START);
            assert_eq!(b.advance(bad), Err(HttpError::Chunk), "{bad:?}");
        }
        let mut fixed = Body::Length(3);
        assert_eq!((fixed.advance(b"abcdef").unwrap(), fixed.done()), (3, true));
    }

    #[test]
    fn local_answers_are_complete_responses() {
        let a = answer(503, "no", Some("orders_down"), false, false);
        let text = std::str::from_utf8(&a).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("x-fault-toxic: orders_down\r\n"));
        let h = ResponseHead::parse(&a, &Asked::default()).unwrap().unwrap();
        let After::Body(Body::Length(n)) = h.after else {
            panic!("{text}")
        };
        assert_eq!(h.len + n as usize, a.len());
        let head = answer(503, "no", Some("bad\r\nname"), true, true);
        let text = std::str::from_utf8(&head).unwrap();
        assert!(text.ends_with("\r\n\r\n") && text.contains("connection: close"));
        assert!(!text.contains("x-fault-toxic"));
        assert!(std::str::from_utf8(&answer(204, "", None, false, false))
            .unwrap()
            .ends_with("No Content\r\n\r\n"));
    }
}
