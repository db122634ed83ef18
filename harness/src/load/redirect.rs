//! Following redirects as k6 does (through Go's net/http rules): 301, 302, 303, 307 and 308
//! with a `Location`, relative or absolute, to any scheme or host. 303 — and 301/302 after
//! anything but GET or HEAD — becomes a GET without body; 307 and 308 keep method and body.
//! Credentials (`Authorization`, `Cookie`) are not carried to another host.

use bytes::Bytes;
use http::{header, Method, StatusCode, Uri};

/// Whether `status` is a redirect the client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request one hop sent, enough to build the next.
#[derive(Clone)]
pub struct Hop {
    pub method: Method,
    pub uri: Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Hop {
    pub fn request(&self) -> http::Request<http_body_util::Full<Bytes>> {
        let mut req = http::Request::new(http_body_util::Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Why a redirect cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error("{status} without a Location header")]
    NoLocation { status: u16 },
    #[error("{status} to `{location}`, which is not an http(s) URL: {why}")]
    BadLocation {
        status: u16,
        location: String,
        why: String,
    },
    #[error("stopped after {0} redirects (max_redirects); the last answer was another redirect")]
    TooMany(u32),
}

/// The request a redirect answer asks for.
pub fn follow(hop: &Hop, status: u16, headers: &http::HeaderMap) -> Result<Hop, RedirectError> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(RedirectError::NoLocation { status })?;
    let bad = |why: String| RedirectError::BadLocation {
        status,
        location: location.to_owned(),
        why,
    };
    let uri = resolve(&hop.uri, location).map_err(bad)?;
    let keep_method = matches!(status, 307 | 308)
        || (status != StatusCode::SEE_OTHER.as_u16()
            && (hop.method == Method::GET || hop.method == Method::HEAD));
    let mut next = Hop {
        method: hop.method.clone(),
        uri,
        headers: hop.headers.clone(),
        body: hop.body.clone(),
    };
    if !keep_method {
        if hop.method != Method::HEAD {
            next.method = Method::GET;
        }
        next.body = Bytes::new();
        next.headers.remove(header::CONTENT_TYPE);
        next.headers.remove(header::CONTENT_LENGTH);
    }
    if next.uri.authority() != hop.uri.authority() {
        next.headers.remove(header::HOST);
        next.headers.remove(header::AUTHORIZATION);
        next.headers.remove(header::COOKIE);
    }
    Ok(next)
}

/// `location` against `base` (RFC 3986 §5.2, the forms servers send: absolute, scheme-relative,
/// absolute path, relative path).
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let text = if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri: Uri = text
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err("only http:// and https:// are followed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: Method, uri: &str) -> Hop {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        Hop {
            method,
            uri: uri.parse().unwrap(),
            headers,
            body: Bytes::from_static(b"{}"),
        }
    }

    fn at(location: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(header::LOCATION, location.parse().unwrap());
        h
    }

    #[test]
    fn locations_resolve_like_a_browser() {
        let h = hop(Method::GET, "http://a:1/x/y?q=1");
        let next = |l| follow(&h, 302, &at(l)).unwrap().uri.to_string();
        assert_eq!(next("/z"), "http://a:1/z");
        assert_eq!(next("z"), "http://a:1/x/z");
        assert_eq!(next("//b:2/p"), "http://b:2/p");
        assert_eq!(next("https://c/p"), "https://c/p");
        assert!(follow(&h, 302, &at("ftp://c/p")).is_err());
        assert!(follow(&h, 302, &http::HeaderMap::new()).is_err());
    }

    #[test]
    fn methods_follow_rfc_9110_as_go_does() {
        let post = hop(Method::POST, "http://a/orders");
        let see_other = follow(&post, 303, &at("/orders/1")).unwrap();
        assert_eq!(see_other.method, Method::GET);
        assert!(see_other.body.is_empty());
        assert!(see_other.headers.get(header::CONTENT_TYPE).is_none());
        assert_eq!(follow(&post, 301, &at("/o")).unwrap().method, Method::GET);
        let kept = follow(&post, 307, &at("/o")).unwrap();
        assert_eq!((kept.method, kept.body.len()), (Method::POST, 2));
        assert_eq!(follow(&post, 308, &at("/o")).unwrap().method, Method::POST);
        let head = hop(Method::HEAD, "http://a/");
        assert_eq!(follow(&head, 303, &at("/b")).unwrap().method, Method::HEAD);
    }

    #[test]
    fn credentials_stay_with_their_host() {
        let h = hop(Method::GET, "http://a/");
        let same = follow(&h, 302, &at("/b")).unwrap();
        assert!(same.headers.contains_key(header::AUTHORIZATION));
        let other = follow(&h, 302, &at("http://evil/b")).unwrap();
        assert!(!other.headers.contains_key(header::AUTHORIZATION));
    }
}
