//! URL imports never reach the console's own network: addresses in the URL, names that
//! resolve to them and redirects to them are all refused, before any connection is made.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use image_console::domain::image::ImageStatus;
use image_console::service::{ServiceError, ServiceSettings};

use crate::support::{Backend, SourceServer, TestApp, create_form, test_settings};

/// A listener on 127.0.0.1 standing for an internal service: it counts the connections it
/// accepts and closes them.
struct Bystander {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Bystander {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self {
            addr,
            connections,
            task,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Without an allow-list, loopback is as forbidden as any internal network.
fn no_allow_list() -> ServiceSettings {
    ServiceSettings {
        import_allowed_networks: Vec::new(),
        ..test_settings()
    }
}

async fn blocked_addresses_are_refused_without_a_connection(backend: Backend) {
    let app = TestApp::spawn_with(backend, no_allow_list()).await;
    let actor = app.sign_up("acme").await;
    let bystander = Bystander::start().await;
    let port = bystander.addr.port();

    // An address in the URL is refused on the form, and no image is created.
    let targets = [
        (
            format!("http://127.0.0.1:{port}/a.qcow2"),
            "Imports may not reach 127.0.0.1: it is a loopback address.",
        ),
        (
            format!("http://[::1]:{port}/a.qcow2"),
            "Imports may not reach ::1: it is a loopback address.",
        ),
        (
            "http://169.254.169.254/latest/meta-data/a.qcow2".to_owned(),
            "Imports may not reach 169.254.169.254: it is a link-local address",
        ),
        (
            "http://10.0.0.1/a.qcow2".to_owned(),
            "Imports may not reach 10.0.0.1: it is a private network address.",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/a.qcow2"),
            "Imports may not reach ::ffff:127.0.0.1: it is a loopback address.",
        ),
        (
            format!("http://2130706433:{port}/a.qcow2"),
            "Imports may not reach 127.0.0.1: it is a loopback address.",
        ),
        (
            "http://[fd00:ec2::254]/a.qcow2".to_owned(),
            "Imports may not reach fd00:ec2::254: it is a private network address.",
        ),
        (
            "http://100.100.100.200/a.qcow2".to_owned(),
            "Imports may not reach 100.100.100.200: it is a carrier-grade NAT address.",
        ),
    ];
    for (url, reason) in &targets {
        let error = app
            .services
            .create_image(&actor, &create_form("internal", url))
            .await
            .expect_err(url);
        let ServiceError::Invalid(errors) = error else {
            panic!("{url}: expected a field error, got {error:?}");
        };
        assert_eq!(errors.len(), 1, "{url}");
        assert_eq!(errors[0].field, "source_url", "{url}");
        assert!(
            errors[0].message.starts_with(reason),
            "{url}: {}",
            errors[0].message
        );
    }
    assert!(
        crate::support::all_images(&app.services, &actor)
            .await
            .is_empty()
    );

    // A name that resolves only to loopback is refused when it resolves: the image fails.
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("by name", &format!("http://localhost:{port}/a.qcow2")),
        )
        .await
        .unwrap();
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(image.status, ImageStatus::Failed);
    let reason = image.failure_reason.unwrap();
    assert!(
        reason.starts_with("localhost resolves to ") && reason.contains("loopback address"),
        "{reason}"
    );

    assert_eq!(
        bystander.connections(),
        0,
        "nothing connected to the bystander"
    );
}

async fn redirect(UrlPath(target): UrlPath<String>) -> impl IntoResponse {
    let target = URL_SAFE_NO_PAD
        .decode(&target)
        .expect("the tests encode targets in base64url");
    let target = String::from_utf8(target).unwrap();
    (StatusCode::FOUND, [(header::LOCATION, target)])
}

/// Redirects from an allowed source (127.0.0.1, as the test settings allow) to blocked
/// addresses are refused at the hop; chains are cut after 5 redirects.
async fn redirects_are_checked_at_every_hop(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let source = SourceServer::start().await;
    source.qcow2("small.qcow2", "1M");
    let redirector = Router::new().route("/to/{target}/a.qcow2", get(redirect));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });
    // A redirector URL that answers 302 to `target`.
    let via = |target: &str| format!("{base}/to/{}/a.qcow2", URL_SAFE_NO_PAD.encode(target));

    for (target, reason) in [
        (
            "http://127.0.0.2:9/a.qcow2".to_owned(),
            "Imports may not reach 127.0.0.2: it is a loopback address.",
        ),
        (
            "http://169.254.169.254/a.qcow2".to_owned(),
            "Imports may not reach 169.254.169.254: it is a link-local address",
        ),
        (
            "http://[::1]/a.qcow2".to_owned(),
            "Imports may not reach ::1: it is a loopback address.",
        ),
        (
            "http://10.0.0.1/a.qcow2".to_owned(),
            "Imports may not reach 10.0.0.1: it is a private network address.",
        ),
    ] {
        let image = import_url(&app, &actor, &via(&target)).await;
        assert_eq!(image.status, ImageStatus::Failed, "{target}");
        let shown = image.failure_reason.unwrap();
        assert!(shown.starts_with(reason), "{target}: {shown}");
    }

    // Five hops to a real file are followed; six are not.
    let file = source.url("files", "small.qcow2");
    let chain = |hops: usize| (0..hops).fold(file.clone(), |target, _| via(&target));
    let image = import_url(&app, &actor, &chain(5)).await;
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );
    let image = import_url(&app, &actor, &chain(6)).await;
    assert_eq!(image.status, ImageStatus::Failed);
    assert_eq!(
        image.failure_reason.as_deref(),
        Some("The source redirected more than 5 times.")
    );
    server.abort();
}

async fn import_url(
    app: &TestApp,
    actor: &image_console::service::Actor,
    url: &str,
) -> image_console::domain::image::ImageDetail {
    let id = app
        .services
        .create_image(actor, &create_form("redirected", url))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    app.wait_for_import(actor, &id).await
}

crate::on_both_databases!(
    blocked_addresses_are_refused_without_a_connection,
    redirects_are_checked_at_every_hop,
);
