//! The one request client of the tests: the console's router in this process (each request
//! as if from a client address), or a console server over the network; and signing up
//! through the Sign Up form, the way every test account is made.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use image_console::server::{AppState, CookiePolicy, HttpLimits, leptos_options, router};
use image_console::server_fns::api_tokens::CreateApiToken;
use image_console::server_fns::auth::SignUp;
use leptos::server_fn::ServerFn;
use tower::ServiceExt;

use super::TestApp;

/// Every test account's password.
pub const PASSWORD: &str = "correct horse battery";

/// The address requests come from unless a test says otherwise.
const DEFAULT_PEER: &str = "127.0.0.1:40000";

#[derive(Clone)]
pub struct Client {
    transport: Transport,
    peer: SocketAddr,
}

#[derive(Clone)]
enum Transport {
    Router(axum::Router),
    Network { base: String, http: reqwest::Client },
}

impl Client {
    /// The router `main` serves, over the test's services, with default cookies and limits.
    pub fn new(test: &TestApp) -> Self {
        Self::with_state(AppState {
            services: test.services.clone(),
            leptos_options: leptos_options(test.data.path(), "127.0.0.1:0".parse().unwrap()),
            cookie_policy: CookiePolicy::default(),
            http_limits: HttpLimits::default(),
        })
    }

    /// The router over services on the same data whose store never reads a page from the few
    /// candidates of a filter, but always walks the sort's index (the plan many matches get).
    /// They resume interrupted imports as they start, as any console process does.
    pub async fn walking(test: &TestApp) -> Self {
        let services = image_console::service::Services::start(
            test.services.store().clone().with_candidate_limit(0),
            test.services.blobs().clone(),
            test.settings.clone(),
        )
        .await
        .unwrap();
        Self::with_state(AppState {
            services,
            leptos_options: leptos_options(test.data.path(), "127.0.0.1:0".parse().unwrap()),
            cookie_policy: CookiePolicy::default(),
            http_limits: HttpLimits::default(),
        })
    }

    pub fn with_state(state: AppState) -> Self {
        Self {
            transport: Transport::Router(router(state)),
            peer: DEFAULT_PEER.parse().unwrap(),
        }
    }

    /// A console server listening at `base` (`http://127.0.0.1:PORT`).
    pub fn remote(base: &str) -> Self {
        Self {
            transport: Transport::Network {
                base: base.trim_end_matches('/').to_owned(),
                http: reqwest::Client::builder().no_proxy().build().unwrap(),
            },
            peer: DEFAULT_PEER.parse().unwrap(),
        }
    }

    /// The same client, its requests coming from `peer` (an address, port optional). Only a
    /// router in this process can be told where a request comes from.
    pub fn as_peer(&self, peer: &str) -> Self {
        assert!(matches!(self.transport, Transport::Router(_)));
        let peer = peer
            .parse()
            .unwrap_or_else(|_| format!("{peer}:40000").parse().unwrap());
        Self {
            transport: self.transport.clone(),
            peer,
        }
    }

    pub async fn send(&self, mut request: Request<Body>) -> Response<Body> {
        match &self.transport {
            Transport::Router(router) => {
                request.extensions_mut().insert(ConnectInfo(self.peer));
                router.clone().oneshot(request).await.unwrap()
            }
            Transport::Network { base, http } => {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let answer = http
                    .request(parts.method, format!("{base}{}", parts.uri))
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let mut response = Response::builder().status(answer.status());
                *response.headers_mut().unwrap() = answer.headers().clone();
                response
                    .body(Body::from_stream(answer.bytes_stream()))
                    .unwrap()
            }
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// Calls a server function as the hydrated app does: a same-origin form post that asks
    /// for JSON.
    pub async fn call<K: AsRef<str>, V: AsRef<str>>(
        &self,
        path: &str,
        form: &[(K, V)],
        cookie: Option<&str>,
    ) -> Response<Body> {
        self.call_with(path, form, cookie, &[]).await
    }

    /// `call`, with `headers` in place of the app's (`accept: text/html` for a browser
    /// without JavaScript, `sec-fetch-site: cross-site` for another site's form).
    pub async fn call_with<K: AsRef<str>, V: AsRef<str>>(
        &self,
        path: &str,
        form: &[(K, V)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response<Body> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        let mut request = Request::post(path).body(Body::from(body)).unwrap();
        let sent = request.headers_mut();
        for (name, value) in [
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
            ("sec-fetch-site", "same-origin"),
        ]
        .iter()
        .chain(headers)
        {
            sent.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        if let Some(cookie) = cookie {
            sent.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        self.send(request).await
    }

    /// Signs `account` up through the Sign Up form, as its user `admin@<account>`; the
    /// session cookie (`name=value`) the answer set.
    pub async fn sign_up(&self, account: &str) -> String {
        let response = self.call(SignUp::PATH, &sign_up_form(account), None).await;
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .unwrap_or_else(|| panic!("signing {account} up set no cookie: {response:?}"))
            .to_str()
            .unwrap()
            .to_owned();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    /// An image API token named `name`, made through the API access page's server function
    /// with the session `cookie`; its secret.
    pub async fn api_token(&self, cookie: &str, name: &str) -> String {
        let made = self
            .call(
                CreateApiToken::PATH,
                &[("name", name), ("lifetime", "30")],
                Some(cookie),
            )
            .await;
        assert_eq!(made.status(), axum::http::StatusCode::OK, "{made:?}");
        let made: serde_json::Value = serde_json::from_str(&text(made).await).unwrap();
        made["secret"].as_str().unwrap().to_owned()
    }
}

/// The Sign Up form's fields for `account`.
pub fn sign_up_form(account: &str) -> [(&'static str, String); 4] {
    [
        ("account_id", account.to_owned()),
        ("user_name", format!("admin@{account}")),
        ("password", PASSWORD.to_owned()),
        ("password_confirm", PASSWORD.to_owned()),
    ]
}

/// A response's body as text.
pub async fn text(response: Response<Body>) -> String {
    String::from_utf8(body_bytes(response).await).unwrap()
}

/// A response's whole body.
pub async fn body_bytes(response: Response<Body>) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}
