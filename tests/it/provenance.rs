//! Lineage: a replica and a shared image of it record where they came from, through two
//! generations; with the middle image destroyed the chain is still known, shown as destroyed,
//! and an account the image is shared with sees the owner's ancestors only as "an image of
//! account X". The image API's `source_image_id` and `GET /v2/images/{id}/ancestry` say the
//! same. On SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use image_console::domain::image::{Ancestor, AncestorState, ImageStatus};
use image_console::domain::share::ShareDecision;
use image_console::service::Actor;
use serde_json::Value;

use crate::on_both_databases;
use crate::support::{Backend, Client, SourceServer, TestApp, create_form};

async fn api_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("x-auth-token", token)
        .body(Body::empty())
        .unwrap();
    let response = Client::new(app).send(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn token_for(app: &TestApp, actor: &Actor) -> String {
    app.services
        .create_api_token(actor, "provenance tests", "30")
        .await
        .unwrap()
        .secret
}

fn seen(lineage: &[Ancestor]) -> Vec<(u32, String, AncestorState)> {
    lineage
        .iter()
        .map(|a| (a.depth, a.id.clone(), a.seen.clone()))
        .collect()
}

async fn lineage_survives_a_destroyed_middle_image(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let source = SourceServer::start().await;
    source.qcow2("root.qcow2", "16M");

    // The root, imported; a replica of it; a shared image of the replica.
    let root = s
        .create_image(
            &alice,
            &create_form("root", &source.url("files", "root.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&alice, &root).await;
    let middle = s
        .replicate_image(&alice, &root, "middle", "on", "")
        .await
        .unwrap();
    assert_eq!(
        app.wait_for_import(&alice, &middle).await.status,
        ImageStatus::Active
    );
    let leaf = s
        .create_shared_image(&alice, &middle, "leaf")
        .await
        .unwrap();

    let detail = s.get_image(&alice, &leaf).await.unwrap();
    let active = |name: &str| AncestorState::Image {
        name: name.into(),
        status: ImageStatus::Active,
    };
    assert_eq!(
        seen(&detail.lineage),
        vec![
            (1, middle.clone(), active("middle")),
            (2, root.clone(), active("root"))
        ]
    );
    assert_eq!(
        seen(&s.get_image(&alice, &middle).await.unwrap().lineage),
        vec![(1, root.clone(), active("root"))]
    );
    assert!(s.get_image(&alice, &root).await.unwrap().lineage.is_empty());

    // The middle image destroyed: the leaf still knows its whole chain.
    s.delete_image(&alice, &middle).await.unwrap();
    s.destroy_images(&alice, std::slice::from_ref(&middle))
        .await
        .unwrap();
    let detail = s.get_image(&alice, &leaf).await.unwrap();
    assert_eq!(
        seen(&detail.lineage),
        vec![
            (1, middle.clone(), AncestorState::Destroyed),
            (2, root.clone(), active("root"))
        ]
    );
    assert_eq!(detail.lineage[0].describe(), "destroyed");

    // Shared with another account: it sees the owner's root only as an image of acme.
    s.share_image(&alice, &leaf, "globex").await.unwrap();
    s.decide_shares(&bob, std::slice::from_ref(&leaf), ShareDecision::Approve)
        .await
        .unwrap();
    let theirs = s.get_image(&bob, &leaf).await.unwrap();
    assert_eq!(
        seen(&theirs.lineage),
        vec![
            (1, middle.clone(), AncestorState::Destroyed),
            (2, root.clone(), AncestorState::OtherAccount)
        ]
    );
    assert_eq!(theirs.lineage[1].describe(), "an image of account acme");

    // The image API: source_image_id on the image, the chain at /ancestry.
    let token = token_for(&app, &alice).await;
    let (status, image) = api_get(&app, &token, &format!("/v2/images/{leaf}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(image["source_image_id"], middle.as_str());
    let (status, ancestry) = api_get(&app, &token, &format!("/v2/images/{leaf}/ancestry")).await;
    assert_eq!(status, StatusCode::OK, "{ancestry}");
    let chain = ancestry["ancestry"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["id"], middle.as_str());
    assert_eq!(chain[0]["state"], "destroyed");
    assert_eq!(chain[1]["id"], root.as_str());
    assert_eq!(chain[1]["state"], "visible");
    assert_eq!(chain[1]["name"], "root");
    assert_eq!(chain[1]["status"], "active");
    let bob_token = token_for(&app, &bob).await;
    let (_, theirs) = api_get(&app, &bob_token, &format!("/v2/images/{leaf}/ancestry")).await;
    assert_eq!(theirs["ancestry"][1]["state"], "other_account");
    assert_eq!(theirs["ancestry"][1]["owner"], "acme");
    assert!(theirs["ancestry"][1].get("name").is_none());
    // An account the image is not shared with learns nothing.
    let carol = app.sign_up("initech").await;
    let carol_token = token_for(&app, &carol).await;
    let (status, _) = api_get(&app, &carol_token, &format!("/v2/images/{leaf}/ancestry")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_databases!(lineage_survives_a_destroyed_middle_image);
