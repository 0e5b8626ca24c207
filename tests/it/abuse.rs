//! Hardening of the HTTP surface, through the router `main` serves: sign-in and sign-up
//! limits by client address and user name, trusted proxies, request body limits, bad
//! requests, the sign-in redirect, security headers and sessions.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use image_console::server::{AppState, CookiePolicy, HttpLimits, leptos_options};
use image_console::server_fns::auth::{SignIn, SignUp};
use image_console::server_fns::error::AppError;
use image_console::server_fns::images::ListImages;
use image_console::service::ServiceSettings;
use leptos::server_fn::ServerFn;

use crate::on_both_databases;
use crate::support::text;
use crate::support::{Backend, Client, PASSWORD, TestApp, sign_up_form, test_settings};

/// The router over a test's services, called as if from given client addresses.
struct Console {
    test: TestApp,
    client: Client,
}

impl Console {
    async fn start(backend: Backend, settings: ServiceSettings) -> Self {
        Self::start_with(
            backend,
            settings,
            CookiePolicy::default(),
            HttpLimits::default(),
        )
        .await
    }

    async fn start_with(
        backend: Backend,
        settings: ServiceSettings,
        cookie_policy: CookiePolicy,
        http_limits: HttpLimits,
    ) -> Self {
        let test = TestApp::spawn_with(backend, settings).await;
        let client = Client::with_state(AppState {
            services: test.services.clone(),
            leptos_options: leptos_options(test.data.path(), "127.0.0.1:0".parse().unwrap()),
            cookie_policy,
            http_limits,
        });
        Self { test, client }
    }

    /// Sends `request` over a connection from `peer` (an address, port optional).
    async fn send_from(&self, peer: &str, request: Request<Body>) -> Response<Body> {
        self.client.as_peer(peer).send(request).await
    }

    /// Calls a server function from `peer` the way the hydrated app does (a same-origin
    /// fetch), or the way a browser without JavaScript posts a form (`html`).
    async fn call_from<K: AsRef<str>, V: AsRef<str>>(
        &self,
        peer: &str,
        path: &str,
        form: &[(K, V)],
        cookie: Option<&str>,
        html: bool,
    ) -> Response<Body> {
        let accept = if html {
            "text/html,application/xhtml+xml"
        } else {
            "application/json"
        };
        self.client
            .as_peer(peer)
            .call_with(
                path,
                form,
                cookie,
                &[("accept", accept), ("referer", "http://127.0.0.1/signin")],
            )
            .await
    }

    async fn sign_in(&self, peer: &str, user: &str, password: &str) -> Response<Body> {
        self.call_from(
            peer,
            SignIn::PATH,
            &[("user_name", user), ("password", password)],
            None,
            false,
        )
        .await
    }

    async fn sign_up(&self, peer: &str, account: &str) -> Response<Body> {
        self.call_from(peer, SignUp::PATH, &sign_up_form(account), None, false)
            .await
    }
}

fn settings_with(change: impl FnOnce(&mut ServiceSettings)) -> ServiceSettings {
    let mut settings = test_settings();
    change(&mut settings);
    settings
}

/// The error a server function answered, as the browser decodes it.
async fn app_error(response: Response<Body>) -> AppError {
    serde_json::from_str(&text(response).await).unwrap()
}

fn session_cookie(response: &Response<Body>) -> String {
    response
        .headers()
        .get(header::SET_COOKIE)
        .unwrap_or_else(|| panic!("no session cookie: {:?}", response.status()))
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Sign-in is limited per client address: past the limit the answer is 429 with
/// Retry-After and the form's sentence, while another address still signs in.
async fn sign_in_is_limited_per_client_address(backend: Backend) {
    let console = Console::start(
        backend,
        settings_with(|s| s.limits.sign_in_per_address_per_minute = 3),
    )
    .await;
    console.test.sign_up("acme").await;
    for _ in 0..3 {
        let wrong = console
            .sign_in("10.0.0.1", "admin@acme", "wrong password")
            .await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    }
    let limited = console.sign_in("10.0.0.1", "admin@acme", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let error = app_error(limited).await;
    assert_eq!(error, AppError::TooManyAttempts(retry_after));
    assert_eq!(
        error.to_string(),
        format!("Too many attempts; try again in {retry_after} seconds.")
    );
    // The same port or another: the address is what counts.
    assert_eq!(
        console
            .sign_in("10.0.0.1:50001", "admin@acme", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = console.sign_in("10.0.0.2", "admin@acme", PASSWORD).await;
    assert_eq!(other.status(), StatusCode::OK);
    session_cookie(&other);
}

/// Requests with wrong API tokens have their own limit per address, checked before a token
/// is looked up: past it even a valid token from that address waits, while the address's
/// people still sign in to the console and other addresses use their tokens.
async fn wrong_api_tokens_have_their_own_limit(backend: Backend) {
    let console = Console::start(
        backend,
        settings_with(|s| {
            s.limits.api_token_failures_per_address_per_minute = 3;
            s.limits.sign_in_per_address_per_minute = 3;
        }),
    )
    .await;
    let acme = console.test.sign_up("acme").await;
    let token = console
        .test
        .services
        .create_api_token(&acme, "ci job", "30")
        .await
        .unwrap()
        .secret;
    let images = |peer: &'static str, token: String| {
        let request = Request::get("/v2/images")
            .header("x-auth-token", token)
            .body(Body::empty())
            .unwrap();
        console.send_from(peer, request)
    };
    let revoked = format!("imgc_{}", "A".repeat(43));
    for _ in 0..3 {
        let refused = images("10.0.4.1", revoked.clone()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = images("10.0.4.1", token.clone()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    let body: serde_json::Value = serde_json::from_str(&text(limited).await).unwrap();
    assert_eq!(body["error"]["code"], 429, "{body}");
    // Neither sign-in nor other addresses are touched.
    let signed_in = console.sign_in("10.0.4.1", "admin@acme", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert_eq!(
        images("10.0.4.2", token.clone()).await.status(),
        StatusCode::OK
    );
}

/// Guesses at one user name from many addresses are limited too.
async fn sign_in_is_limited_per_user_name(backend: Backend) {
    let console = Console::start(
        backend,
        settings_with(|s| s.limits.sign_in_per_user_per_minute = 2),
    )
    .await;
    console.test.sign_up("acme").await;
    console.test.sign_up("other").await;
    for peer in ["10.0.1.1", "10.0.1.2"] {
        let wrong = console.sign_in(peer, "ADMIN@acme", "wrong password").await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    }
    let limited = console.sign_in("10.0.1.3", "admin@acme", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another user signs in from the same addresses.
    let other = console.sign_in("10.0.1.1", "admin@other", PASSWORD).await;
    assert_eq!(other.status(), StatusCode::OK);
}

async fn sign_up_is_limited_per_client_address(backend: Backend) {
    let console = Console::start(
        backend,
        settings_with(|s| s.limits.sign_up_per_address_per_hour = 2),
    )
    .await;
    for account in ["first", "second"] {
        assert_eq!(
            console.sign_up("10.0.2.1", account).await.status(),
            StatusCode::OK
        );
    }
    let limited = console.sign_up("10.0.2.1", "third").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert!(matches!(
        app_error(limited).await,
        AppError::TooManyAttempts(_)
    ));
    // Nothing was created for the refused sign-up; another address may create it.
    assert_eq!(
        console.sign_up("10.0.2.2", "third").await.status(),
        StatusCode::OK
    );
}

/// `X-Forwarded-For` names the client only when the connection comes from a trusted proxy.
async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    let console = Console::start_with(
        backend,
        settings_with(|s| s.limits.sign_in_per_address_per_minute = 1),
        CookiePolicy::default(),
        HttpLimits {
            trusted_proxies: Arc::new(vec!["10.9.0.0/16".parse().unwrap()]),
            ..HttpLimits::default()
        },
    )
    .await;
    let attempt = |peer: &'static str, forwarded: &'static str| {
        let body = "user_name=nobody%40acme&password=wrong+password";
        let request = Request::post(SignIn::PATH)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header("x-forwarded-for", forwarded)
            .body(Body::from(body))
            .unwrap();
        let console = &console;
        async move { console.send_from(peer, request).await.status() }
    };
    // Behind the proxy, each client has its own limit.
    assert_eq!(
        attempt("10.9.0.1", "198.51.100.1").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        attempt("10.9.0.2", "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt("10.9.0.1", "198.51.100.2").await,
        StatusCode::BAD_REQUEST
    );
    // A client that is not a proxy cannot pick its address.
    assert_eq!(
        attempt("203.0.113.5", "192.0.2.1").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        attempt("203.0.113.5", "192.0.2.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Page and server-function bodies are limited (1 MiB by default): a larger one is answered
/// 413 with a sentence the form can show, announced or not, and changes nothing.
async fn large_bodies_are_refused_with_413(backend: Backend) {
    let console = Console::start(backend, test_settings()).await;
    let big = format!("user_name=a&password={}", "x".repeat(2 << 20));
    let announced = Request::post(SignIn::PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(big.clone()))
        .unwrap();
    let refused = console.send_from("10.0.3.1", announced).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.headers()[header::CONNECTION], "close");
    assert_eq!(
        app_error(refused).await.to_string(),
        "The request is too large: this console accepts at most 1 MB for a form or a server call."
    );
    // Without a Content-Length (chunked), the limit holds while reading.
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = big
        .into_bytes()
        .chunks(64 << 10)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let streamed = Request::post(SignUp::PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from_stream(futures::stream::iter(pieces)))
        .unwrap();
    let refused = console.send_from("10.0.3.1", streamed).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(refused).await.starts_with("The request is too large"));
    // The limit is a setting.
    let roomy = Console::start_with(
        Backend::Sqlite,
        test_settings(),
        CookiePolicy::default(),
        HttpLimits {
            body_limit_bytes: 4 << 20,
            ..HttpLimits::default()
        },
    )
    .await;
    let fits = Request::post(SignIn::PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(format!(
            "user_name=a&password={}",
            "x".repeat(2 << 20)
        )))
        .unwrap();
    assert_eq!(
        roomy.send_from("10.0.3.1", fits).await.status(),
        StatusCode::BAD_REQUEST,
        "read, then refused as a wrong password"
    );
}

/// A request a server function cannot read is the client's fault: 400 with the reason.
async fn unreadable_requests_are_400_not_500(backend: Backend) {
    let console = Console::start(backend, test_settings()).await;
    let cookie = session_cookie(&console.sign_up("10.0.4.1", "acme").await);
    for (path, body) in [
        (SignIn::PATH, "user_name=only-a-name"),
        (SignIn::PATH, "%%%=%%%"),
        (ListImages::PATH, "unexpected=field&query=1&query=2"),
    ] {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::COOKIE, &cookie)
            .body(Body::from(body))
            .unwrap();
        let response = console.send_from("10.0.4.1", request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(matches!(app_error(response).await, AppError::BadRequest(_)));
    }
}

/// After signing in, `next` may only lead to a path on this site, whether the form was
/// posted by the hydrated app or by a browser without JavaScript.
async fn the_sign_in_redirect_stays_on_this_site(backend: Backend) {
    let console = Console::start(backend, test_settings()).await;
    console.test.sign_up("acme").await;
    let cases = [
        ("/images/create", "/images/create"),
        ("/images?q=web&page=2", "/images?q=web&page=2"),
        ("/\t/evil.example", "/images"),
        ("/%09/evil.example", "/images"),
        ("//evil.example", "/images"),
        ("/\\evil.example", "/images"),
        ("https://evil.example", "/images"),
        ("javascript:alert(1)", "/images"),
    ];
    for (next, expected) in cases {
        for html in [false, true] {
            let response = console
                .call_from(
                    "10.0.5.1",
                    SignIn::PATH,
                    &[
                        ("user_name", "admin@acme"),
                        ("password", PASSWORD),
                        ("next", next),
                    ],
                    None,
                    html,
                )
                .await;
            let status = response.status();
            let location = response.headers()[header::LOCATION].to_str().unwrap();
            assert_eq!(location, expected, "next={next:?} html={html}");
            if html {
                assert_eq!(status, StatusCode::FOUND, "a form post is redirected");
            } else {
                assert_eq!(status, StatusCode::OK);
                assert!(response.headers().contains_key("serverfnredirect"));
            }
        }
    }
    // The page guard sends a signed-out visitor to Sign in with a local `next` only.
    let guarded = console
        .send_from(
            "10.0.5.1",
            Request::get("/images/create?x=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        guarded.headers()[header::LOCATION],
        "/signin?next=%2Fimages%2Fcreate%3Fx%3D1"
    );
}

/// Pages carry a Content-Security-Policy whose nonce is on every inline script Leptos
/// writes, and allow no other inline script; other responses allow nothing at all.
async fn pages_carry_a_content_security_policy(backend: Backend) {
    let console = Console::start(backend, test_settings()).await;
    let page = console
        .send_from(
            "10.0.6.1",
            Request::get("/signin").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in script-src")
        .to_owned();
    assert!(nonce.len() >= 16, "{nonce}");
    let html = text(page).await;
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(
        !scripts.is_empty(),
        "the page hydrates through an inline script"
    );
    for script in scripts {
        assert!(
            script.starts_with(&format!(" type=\"module\" nonce=\"{nonce}\""))
                || script.starts_with(&format!(" nonce=\"{nonce}\"")),
            "an inline script without the nonce: <script{}",
            &script[..script.len().min(80)]
        );
    }
    assert!(!html.contains(" style="), "no inline styles");
    // Each response has its own nonce.
    let again = console
        .send_from(
            "10.0.6.1",
            Request::get("/signin").body(Body::empty()).unwrap(),
        )
        .await;
    assert!(
        !again.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );
    let other = console
        .send_from(
            "10.0.6.1",
            Request::get("/healthz").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(
        other.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert!(
        !other
            .headers()
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

/// Over HTTPS (`SECURE_COOKIES=true`) the session cookie is `__Host-` prefixed and Secure,
/// and every response asks browsers to keep to HTTPS.
async fn secure_cookies_use_the_host_prefix_and_hsts(backend: Backend) {
    let console = Console::start_with(
        backend,
        test_settings(),
        CookiePolicy {
            secure: true,
            session_ttl: Duration::from_secs(3600),
        },
        HttpLimits::default(),
    )
    .await;
    let signed_up = console.sign_up("10.0.7.1", "acme").await;
    assert_eq!(signed_up.status(), StatusCode::OK);
    let set_cookie = signed_up.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set_cookie.starts_with("__Host-console_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Secure") && set_cookie.contains("Path=/"));
    assert_eq!(
        signed_up.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = session_cookie(&signed_up);
    let list = console
        .call_from(
            "10.0.7.1",
            ListImages::PATH,
            &[("query", "")],
            Some(&cookie),
            false,
        )
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    // The cookie without its prefix is not a session.
    let unprefixed = cookie.replacen("__Host-", "", 1);
    let refused = console
        .call_from(
            "10.0.7.1",
            ListImages::PATH,
            &[("query", "")],
            Some(&unprefixed),
            false,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

/// A session ends after the idle timeout unless it is used; using it keeps it alive. A user
/// holds at most 20 sessions (signing in once more ends the oldest), and ended sessions are
/// purged in the background.
async fn sessions_end_when_idle_and_are_bounded(backend: Backend) {
    use image_console::service::accounts::MAX_SESSIONS_PER_USER;
    let settings = settings_with(|s| s.limits.session_idle = Duration::from_secs(2));
    let clock = settings.clock.clone();
    let app = TestApp::spawn_with(backend, settings).await;
    let services = &app.services;
    let actor = app.sign_up("acme").await;
    let sign_in = || services.sign_in(crate::support::CLIENT, "admin@acme", PASSWORD);

    let (_, used) = sign_in().await.unwrap();
    let (_, idle) = sign_in().await.unwrap();
    for _ in 0..6 {
        clock.advance(Duration::from_millis(500));
        assert!(services.authenticate(&used).await.unwrap().is_some());
    }
    assert!(
        services.authenticate(&idle).await.unwrap().is_none(),
        "unused for 3 s of a 2 s idle timeout"
    );
    assert!(services.authenticate(&used).await.unwrap().is_some());

    let (_, oldest) = sign_in().await.unwrap();
    let mut newest = Vec::new();
    for _ in 0..MAX_SESSIONS_PER_USER {
        newest.push(sign_in().await.unwrap().1);
    }
    assert!(services.authenticate(&oldest).await.unwrap().is_none());
    assert!(
        services
            .authenticate(newest.last().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let store = services.store();
    assert_eq!(
        store.count_sessions(&actor.user_id).await.unwrap(),
        MAX_SESSIONS_PER_USER
    );
    // Unused, they all end and the sweeper removes them.
    clock.advance(Duration::from_secs(3));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.count_sessions(&actor.user_id).await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "sessions never purged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_databases!(
    sign_in_is_limited_per_client_address,
    wrong_api_tokens_have_their_own_limit,
    sign_in_is_limited_per_user_name,
    sign_up_is_limited_per_client_address,
    forwarded_addresses_count_only_from_trusted_proxies,
    large_bodies_are_refused_with_413,
    unreadable_requests_are_400_not_500,
    the_sign_in_redirect_stays_on_this_site,
    pages_carry_a_content_security_policy,
    secure_cookies_use_the_host_prefix_and_hsts,
    sessions_end_when_idle_and_are_bounded,
);
