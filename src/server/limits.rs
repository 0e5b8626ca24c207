//! Request-level protections: who the client is (the socket's peer, or `X-Forwarded-For`
//! from a trusted proxy), how large a page or server-function body may be, and the security
//! headers every response carries.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::notices;
use crate::domain::units::format_bytes;
use crate::server_fns::error::AppError;
use crate::service::ClientAddr;

/// Limits the router applies before any handler runs.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// The largest body of a page or server-function request.
    pub body_limit_bytes: u64,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            trusted_proxies: Arc::default(),
        }
    }
}

/// Records the request's client address as a `ClientAddr` extension.
pub async fn client_addr(
    State(limits): State<HttpLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = match peer {
        Some(peer) => resolve_client(peer, request.headers(), &limits.trusted_proxies),
        None => ClientAddr::UNKNOWN.0,
    };
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client behind `peer`. Each proxy appends the address it received the request from to
/// `X-Forwarded-For`, so the list is read from the right: while the hop that added an entry
/// is trusted, the entry is believed; the first address not in `trusted` is the client. An
/// entry that is not an address ends the walk at the hop that added it.
pub fn resolve_client(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    let mut client = canonical(peer);
    if !is_trusted(client) {
        return client;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            break;
        };
        client = canonical(ip);
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, with or without a port.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Reads a page or server-function body up to the limit, answering 413 beyond it, before the
/// handler sees it. (Upload and download routes stream and have their own limits.)
pub async fn limit_body(
    State(limits): State<HttpLimits>,
    request: Request,
    next: Next,
) -> Response {
    let limit = limits.body_limit_bytes;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return too_large(&request, limit);
    }
    if matches!(*request.method(), Method::GET | Method::HEAD) && announced.is_none_or(|n| n == 0) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    {
        Ok(bytes) => bytes,
        Err(error) => {
            let request = Request::from_parts(parts, Body::empty());
            let over = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            return if over {
                too_large(&request, limit)
            } else {
                refusal(
                    &request,
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read; it broke off or was malformed.",
                )
            };
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(request: &Request, limit: u64) -> Response {
    refusal(
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        &notices::body_too_large(&format_bytes(limit)),
    )
}

/// A refusal before the body was read: in the form a server-function client decodes (its
/// JSON error) or as plain text, and closing the connection, since the rest of the body is
/// still on the wire.
fn refusal(request: &Request, status: StatusCode, message: &str) -> Response {
    let wants_json = request.uri().path().starts_with("/api/")
        && !request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    let mut response = if wants_json {
        let body =
            serde_json::to_string(&AppError::BadRequest(message.to_owned())).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.to_owned(),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The policy of responses that are not pages (pages send their own, with a nonce): they
/// may load nothing, and nothing may frame them.
pub const NON_PAGE_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// HTTPS only, for a year, once the console is served over HTTPS.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static(value));
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = forwarded("203.0.113.9");
        // Not a proxy: its own address, whatever it claims.
        assert_eq!(
            resolve_client(ip("198.51.100.7"), &spoofed, &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve_client(ip("10.1.2.3"), &spoofed, &proxies),
            ip("203.0.113.9")
        );
        // The client can write anything to the left of what the proxies appended.
        let chain = forwarded("1.1.1.1, 203.0.113.9, 10.0.0.5");
        assert_eq!(
            resolve_client(ip("10.1.2.3"), &chain, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve_client(ip("10.1.2.3"), &forwarded("junk, 10.0.0.5"), &proxies),
            ip("10.0.0.5")
        );
        assert_eq!(
            resolve_client(ip("10.1.2.3"), &HeaderMap::new(), &proxies),
            ip("10.1.2.3")
        );
        assert_eq!(
            resolve_client(ip("::ffff:198.51.100.7"), &spoofed, &[]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve_client(ip("10.1.2.3"), &forwarded("[2001:db8::1]:443"), &proxies),
            ip("2001:db8::1")
        );
    }
}
