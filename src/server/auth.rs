//! Who is asking: the session cookie, the `Actor` it stands for, and the guards around it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};

use crate::server_fns::host::{ErrorAnswer, RequestHost};
use crate::service::accounts::SessionToken;
use crate::service::{Actor, ServiceError, ServiceResult, Services};

use super::{CookiePolicy, errors};

pub const SESSION_COOKIE: &str = "console_session";
/// The name over HTTPS: the `__Host-` prefix makes browsers refuse the cookie unless it is
/// Secure, for this host only and for every path, so no subdomain or plain-HTTP page can plant
/// or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-console_session";

impl CookiePolicy {
    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }
}

/// The session token in a request's cookies, if it has a well-formed one.
pub fn session_token(policy: &CookiePolicy, headers: &HeaderMap) -> Option<SessionToken> {
    let name = policy.session_cookie_name();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| SessionToken::from_cookie(c.value()))
}

/// The signed-in actor of a request, if any.
pub async fn actor_from_headers(
    services: &Services,
    policy: &CookiePolicy,
    headers: &HeaderMap,
) -> ServiceResult<Option<Actor>> {
    match session_token(policy, headers) {
        Some(token) => services.authenticate(&token).await,
        None => Ok(None),
    }
}

/// The `Set-Cookie` value that starts a session: HttpOnly so scripts cannot read it,
/// SameSite=Lax so other sites' forms and fetches do not carry it.
pub fn session_cookie(token: &SessionToken, policy: &CookiePolicy) -> String {
    Cookie::build((policy.session_cookie_name(), token.expose().to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(policy.secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(policy.session_ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_session_cookie(policy: &CookiePolicy) -> String {
    Cookie::build((policy.session_cookie_name(), ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(policy.secure)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// What server functions get from this server: its cookie policy and its error answers.
pub struct ServerFnHost {
    pub policy: CookiePolicy,
}

impl RequestHost for ServerFnHost {
    fn session_token(&self, headers: &HeaderMap) -> Option<SessionToken> {
        session_token(&self.policy, headers)
    }

    fn session_cookie(&self, token: &SessionToken) -> String {
        session_cookie(token, &self.policy)
    }

    fn clear_session_cookie(&self) -> String {
        clear_session_cookie(&self.policy)
    }

    fn answer(&self, error: &ServiceError, headers: &HeaderMap) -> ErrorAnswer {
        let reference = errors::reference(headers);
        let answer = errors::Answer::of_service(error, &reference);
        ErrorAnswer {
            status: answer.status,
            headers: answer.headers(),
            reference,
        }
    }
}

/// Refuses state-changing requests that a browser marks as coming from another site.
///
/// The same rule as Go's `http.CrossOriginProtection`: trust `Sec-Fetch-Site` when the browser
/// sends it; otherwise compare `Origin` with `Host`; requests with neither header come from
/// non-browser clients, which cannot carry a victim's cookie. With SameSite=Lax cookies this
/// makes server functions and forms safe against CSRF without tokens.
pub async fn cross_origin_guard(request: Request, next: Next) -> Response {
    if is_cross_origin_write(request.method(), request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "Cross-origin requests that change data are not allowed.",
        )
            .into_response();
    }
    next.run(request).await
}

pub fn is_cross_origin_write(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => url::Url::parse(origin)
            .ok()
            .and_then(|o| {
                let origin_host = o.host_str()?.to_owned();
                Some(match o.port() {
                    Some(port) => format!("{origin_host}:{port}"),
                    None => origin_host,
                })
            })
            .is_none_or(|origin_host| !origin_host.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

/// Sends a signed-out visitor of a console page to Sign In, remembering where they were going,
/// and a signed-in visitor of Sign In or Sign Up on to the Image List.
pub async fn page_guard(
    State(services): State<Services>,
    State(policy): State<CookiePolicy>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path();
    // An image API client asking for the versions document.
    if path == "/" && super::glance::wants_versions(request.headers()) {
        return next.run(request).await;
    }
    let needs_session = path == "/" || path == "/images" || path.starts_with("/images/");
    let guest_only = path == "/signin" || path == "/signup";
    if !needs_session && !guest_only {
        return next.run(request).await;
    }
    let signed_in = match actor_from_headers(&services, &policy, request.headers()).await {
        Ok(actor) => actor.is_some(),
        Err(e) => {
            let reference = super::errors::reference(request.headers());
            return super::errors::Answer::of_service(&e, &reference).into_response();
        }
    };
    match (signed_in, needs_session) {
        (false, true) => {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .filter(|p| *p != "/")
                .unwrap_or("/images");
            let next_param: String =
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            Redirect::to(&format!("/signin?next={next_param}")).into_response()
        }
        (true, false) => Redirect::to("/images").into_response(),
        (true, true) if path == "/" => Redirect::to("/images").into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_origin_writes_are_refused() {
        let post = Method::POST;
        assert!(!is_cross_origin_write(
            &post,
            &headers(&[("sec-fetch-site", "same-origin")])
        ));
        assert!(is_cross_origin_write(
            &post,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(is_cross_origin_write(
            &post,
            &headers(&[("sec-fetch-site", "same-site")])
        ));
        assert!(!is_cross_origin_write(
            &post,
            &headers(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ])
        ));
        assert!(is_cross_origin_write(
            &post,
            &headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:3000")
            ])
        ));
        assert!(is_cross_origin_write(
            &post,
            &headers(&[("origin", "null"), ("host", "a")])
        ));
        // curl and other non-browser clients send neither header and hold no victim's cookie.
        assert!(!is_cross_origin_write(&post, &headers(&[])));
        assert!(!is_cross_origin_write(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
    }

    #[test]
    fn session_cookie_attributes() {
        let token = SessionToken::from_cookie(&"a".repeat(43)).unwrap();
        let plain = CookiePolicy {
            secure: false,
            session_ttl: std::time::Duration::from_secs(60),
        };
        let cookie = session_cookie(&token, &plain);
        assert!(cookie.starts_with("console_session="), "{cookie}");
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(cookie.contains("Path=/"));
        assert!(!cookie.contains("Secure"));
        let secure = CookiePolicy {
            secure: true,
            ..plain
        };
        let cookie = session_cookie(&token, &secure);
        assert!(cookie.starts_with("__Host-console_session="), "{cookie}");
        assert!(cookie.contains("Secure") && cookie.contains("Path=/"));
        assert!(!cookie.contains("Domain"), "__Host- cookies have no Domain");
        // Each policy reads only its own cookie.
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("console_session={}", "x".repeat(43))).unwrap(),
        );
        assert!(session_token(&plain, &h).is_some());
        assert!(session_token(&secure, &h).is_none());
    }

    #[test]
    fn malformed_session_cookies_are_ignored() {
        let policy = CookiePolicy::default();
        assert!(session_token(&policy, &headers(&[("cookie", "console_session=short")])).is_none());
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("a=b; console_session={}", "x".repeat(43))).unwrap(),
        );
        assert!(session_token(&policy, &h).is_some());
    }
}
