//! HTTP: configuration, the router, the session guards, and start-up and shutdown.

pub mod auth;
pub mod config;
pub mod downloads;
pub mod errors;
pub mod exports;
pub mod glance;
pub mod limits;
pub mod serve;
pub mod telemetry;
pub mod uploads;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, any, get};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use secrecy::ExposeSecret;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::{App, shell};
use crate::server_fns::host::Host;
use crate::service::Services;
use crate::store::{BlobStore, Store};
pub use config::Config;
pub use limits::HttpLimits;

/// How session cookies are written.
#[derive(Clone, Copy, Debug)]
pub struct CookiePolicy {
    pub secure: bool,
    pub session_ttl: Duration,
}

impl Default for CookiePolicy {
    fn default() -> Self {
        Self {
            secure: false,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub services: Services,
    pub leptos_options: LeptosOptions,
    pub cookie_policy: CookiePolicy,
    pub http_limits: HttpLimits,
}

/// Leptos' options for a site built into `site_root` by `scripts/build`.
pub fn leptos_options(
    site_root: &std::path::Path,
    bind_addr: std::net::SocketAddr,
) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(env!("CARGO_PKG_NAME"))
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(bind_addr)
        .build()
}

/// The plain HTTP routes whose responses may be compressed.
fn compressed_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/healthz", get(healthz)),
        ("/exports/images.csv", get(exports::export_images_csv)),
    ]
}

/// The routes that move image bytes. They are sent as stored: compressing them would break
/// Range requests. Uploads (tus) stream request bodies of any size; they read them as a
/// stream, never whole.
/// The image API (`glance`) is here too: its image data routes stream, and its JSON
/// handlers read their bodies with their own limit.
fn byte_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/downloads/{id}/{file}", get(downloads::download_image)),
        ("/uploads", any(uploads::upload_root)),
        ("/uploads/{id}", any(uploads::upload_resource)),
        ("/images/{id}/uploads", any(uploads::upload_collection)),
    ];
    routes.extend(glance::routes());
    routes
}

/// Every plain HTTP route, besides the pages and the server functions. The authorization
/// tests walk this list (and the registered server functions and pages), so a route added
/// without its test case fails them.
pub fn http_route_paths() -> Vec<&'static str> {
    compressed_routes()
        .into_iter()
        .chain(byte_routes())
        .map(|(path, _)| path)
        .collect()
}

/// The whole HTTP surface. Shared by `main` and the tests.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let services = state.services.clone();
        let host = Host(std::sync::Arc::new(auth::ServerFnHost {
            policy: state.cookie_policy,
        }));
        move || {
            provide_context(services.clone());
            provide_context(host.clone());
        }
    };
    let request_id = HeaderName::from_static("x-request-id");
    let pages = compressed_routes()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
        .leptos_routes_with_context(&state, routes, context, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Pages and server functions take small bodies, read whole before the handler runs.
        .layer(middleware::from_fn_with_state(
            state.http_limits.clone(),
            limits::limit_body,
        ))
        .layer(CompressionLayer::new().br(true).gzip(true));
    // The browser bundle, sent as the build compressed it (`.br`, `.gz` beside each file)
    // rather than compressed again for every response.
    let bundle = tower_http::services::ServeDir::new(
        std::path::Path::new(state.leptos_options.site_root.as_ref())
            .join(state.leptos_options.site_pkg_dir.as_ref()),
    )
    .precompressed_br()
    .precompressed_gzip();
    let bytes = byte_routes()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
        .nest_service("/pkg", bundle);
    let hsts = state
        .cookie_policy
        .secure
        .then(|| HeaderValue::from_static(limits::HSTS));
    pages
        .merge(bytes)
        .layer(middleware::from_fn_with_state(state.clone(), auth::page_guard))
        .layer(middleware::from_fn(auth::cross_origin_guard))
        .layer(middleware::from_fn_with_state(
            state.http_limits.clone(),
            limits::client_addr,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages send their own policy, with the nonce of their inline scripts.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(limits::NON_PAGE_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request.id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// What the server prints on standard output once it listens, before its address.
const ANNOUNCEMENT: &str = "Image Service Console is running at ";

/// For programs that start the server (tests, benches): reads its standard output up to the
/// line that announces its address and returns that address, then keeps draining the output
/// on a thread of its own so the server never blocks on a full pipe.
pub fn read_announced_address(stdout: std::process::ChildStdout) -> Option<std::net::SocketAddr> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let address = lines.by_ref().map_while(Result::ok).find_map(|line| {
        line.split(ANNOUNCEMENT)
            .nth(1)?
            .strip_prefix("http://")?
            .split('/')
            .next()?
            .parse()
            .ok()
    });
    std::thread::spawn(move || lines.for_each(drop));
    address
}

async fn healthz() -> impl IntoResponse {
    "ok"
}

/// Starts the console: configuration → stores → services → router → serve until Ctrl-C or
/// SIGTERM, then lets running imports stop at a resumable point.
pub async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    tracing::info!(?config, "starting");
    let store = Store::connect(config.database_url.expose_secret()).await?;
    let blobs = BlobStore::connect(&config.storage, &config.aws).await?;
    tracing::info!(storage = %blobs.describe(), "image bytes");
    let services = Services::start(store.clone(), blobs, config.service.clone()).await?;
    let state = AppState {
        services: services.clone(),
        leptos_options: leptos_options(&config.site_root, config.bind_addr),
        cookie_policy: CookiePolicy {
            secure: config.secure_cookies,
            session_ttl: config.service.session_ttl,
        },
        http_limits: HttpLimits {
            body_limit_bytes: config.request_body_limit_bytes,
            trusted_proxies: std::sync::Arc::new(config.trusted_proxies.clone()),
        },
    };
    if !config.site_root.join("pkg").exists() {
        tracing::warn!(site_root = %config.site_root.display(), "no built site found; run `./scripts/build` first");
    }
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("listening on {}", config.bind_addr))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    println!("{ANNOUNCEMENT}http://{address}/ (Ctrl-C to stop)");
    serve::serve(
        listener,
        router(state),
        config.request_header_timeout,
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopping background work");
    services.shutdown().await;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
