//! Lineage: a replica and a shared image of it record where they came from, through two
//! generations; with the middle image destroyed the chain is still known, shown as destroyed,
//! and an account the image is shared with sees the owner's ancestors only as "an image of
//! account X". The image API's `source_image_id` and `GET /v2/images/{id}/ancestry` say the
//! same. Deprecation at a time the test moves, and hidden images, in the Image List and the
//! image API. On SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use image_console::domain::deprecation::{DeprecateOn, Inclusion};
use image_console::domain::image::{Ancestor, AncestorState, ImageStatus};
use image_console::domain::list_query::ListQuery;
use image_console::domain::share::ShareDecision;
use image_console::service::{Actor, ServiceError};
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

async fn api_send(
    app: &TestApp,
    token: &str,
    (method, path): (Method, &str),
    body: Value,
) -> (StatusCode, Value) {
    let content_type = if method == Method::PATCH {
        "application/openstack-images-v2.1-json-patch"
    } else {
        "application/json"
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-auth-token", token)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = Client::new(app).send(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<String> {
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Deprecation at a time the test moves: before it the image is listed as any other; after
/// it the default lists (the Image List, its counters, the image API) leave it out, the
/// Deprecated filter and `deprecated=true` show it, and an account it is shared with sees the
/// date. `os_hidden` through the API hides an image the same way; `os_hidden=true` lists it.
async fn deprecated_and_hidden_images_leave_default_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let clock = s.settings().clock.clone();
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;
    let source = SourceServer::start().await;
    source.qcow2("a.qcow2", "16M");
    let mut made = Vec::new();
    for name in ["kept", "retiring"] {
        let id = s
            .create_image(&alice, &create_form(name, &source.url("files", "a.qcow2")))
            .await
            .unwrap();
        app.wait_for_import(&alice, &id).await;
        made.push(id);
    }
    let (kept, retiring) = (made[0].clone(), made[1].clone());
    let listed = |query: ListQuery| {
        let (services, actor) = (s.clone(), alice.actor.clone());
        async move {
            let page = services.list_images(&actor, &query).await.unwrap();
            let names: Vec<String> = page.images.iter().map(|i| i.name.clone()).collect();
            (page.total, names)
        }
    };
    let only_deprecated = || ListQuery {
        deprecated: Inclusion::Only,
        ..ListQuery::default()
    };

    // The rules of Deprecate on, on the server as in the form.
    let refused = |r: Result<(), ServiceError>| match r {
        Err(ServiceError::Invalid(e)) => e[0].message.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        refused(
            s.set_deprecation(&alice, &retiring, "2040-01-01T00:00")
                .await
        )
        .contains("10 years")
    );
    assert!(refused(s.set_deprecation(&alice, &retiring, "soon").await).contains("such as"));
    assert!(matches!(
        s.set_deprecation(&bob, &retiring, "2027-01-01T00:00").await,
        Err(ServiceError::NotFound(_))
    ));

    // An hour ahead: still listed.
    let in_an_hour = clock.now_ms() + 3_600_000;
    s.set_deprecation(&alice, &retiring, &DeprecateOn::input_value(in_an_hour))
        .await
        .unwrap();
    assert_eq!(listed(ListQuery::default()).await.0, 2);
    let detail = s.get_image(&alice, &retiring).await.unwrap();
    assert!(!detail.deprecated && detail.deprecate_at_ms.is_some());
    let history = s.image_history(&alice, &retiring, 1).await.unwrap();
    assert_eq!(history.entries[0].changes[0].field, "Deprecate on");

    // Two hours on: deprecated, out of the default list and its total, in the filter.
    clock.advance(std::time::Duration::from_secs(7200));
    assert_eq!(
        listed(ListQuery::default()).await,
        (1, vec!["kept".to_owned()])
    );
    assert_eq!(
        listed(only_deprecated()).await,
        (1, vec!["retiring".to_owned()])
    );
    let search = ListQuery {
        search: "ret".into(),
        ..ListQuery::default()
    };
    assert_eq!(listed(search).await.0, 0);
    let detail = s.get_image(&alice, &retiring).await.unwrap();
    assert!(detail.deprecated);
    // It still works: a download link can be made.
    s.create_download_link(&alice, &retiring).await.unwrap();
    // An account it is shared with sees the date.
    s.share_image(&alice, &retiring, "globex").await.unwrap();
    s.decide_shares(
        &bob,
        std::slice::from_ref(&retiring),
        ShareDecision::Approve,
    )
    .await
    .unwrap();
    let theirs = s.get_image(&bob, &retiring).await.unwrap();
    assert!(theirs.deprecated);
    assert_eq!(theirs.deprecate_at_ms, detail.deprecate_at_ms);

    // The image API: left out of the default list, listed with deprecated=true, its time
    // shown; removing it brings the image back.
    let token = token_for(&app, &alice).await;
    let (_, list) = api_get(&app, &token, "/v2/images").await;
    assert_eq!(ids(&list), vec![kept.clone()]);
    let (_, list) = api_get(&app, &token, "/v2/images?deprecated=true").await;
    assert_eq!(ids(&list), vec![retiring.clone()]);
    let (_, image) = api_get(&app, &token, &format!("/v2/images/{retiring}")).await;
    assert!(image["deprecation_time"].as_str().unwrap().ends_with('Z'));
    let (status, _) = api_send(
        &app,
        &token,
        (Method::PATCH, &format!("/v2/images/{retiring}")),
        serde_json::json!([{"op": "remove", "path": "/deprecation_time"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(ListQuery::default()).await.0, 2);

    // os_hidden: hidden from both default lists; os_hidden=true lists it alone.
    let (status, hidden) = api_send(
        &app,
        &token,
        (Method::POST, "/v2/images"),
        serde_json::json!({"name": "hidden", "disk_format": "qcow2", "container_format": "bare", "os_hidden": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hidden}");
    assert_eq!(hidden["os_hidden"], true);
    let hidden_id = hidden["id"].as_str().unwrap().to_owned();
    let (_, list) = api_get(&app, &token, "/v2/images").await;
    assert!(!ids(&list).contains(&hidden_id));
    let (_, list) = api_get(&app, &token, "/v2/images?os_hidden=true").await;
    assert_eq!(ids(&list), vec![hidden_id.clone()]);
    assert_eq!(listed(ListQuery::default()).await.0, 2);
    let only_hidden = ListQuery {
        hidden: Inclusion::Only,
        ..ListQuery::default()
    };
    assert_eq!(listed(only_hidden).await, (1, vec!["hidden".to_owned()]));
    let (status, _) = api_send(
        &app,
        &token,
        (Method::PATCH, &format!("/v2/images/{hidden_id}")),
        serde_json::json!([{"op": "replace", "path": "/os_hidden", "value": false}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(ListQuery::default()).await.0, 3);
    // A bad deprecation_time changes nothing.
    let (status, body) = api_send(
        &app,
        &token,
        (Method::PATCH, &format!("/v2/images/{hidden_id}")),
        serde_json::json!([{"op": "add", "path": "/deprecation_time", "value": "2099-01-01T00:00:00Z"}]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        s.get_image(&alice, &hidden_id)
            .await
            .unwrap()
            .deprecate_at_ms
            .is_none()
    );
}

on_both_databases!(
    lineage_survives_a_destroyed_middle_image,
    deprecated_and_hidden_images_leave_default_lists
);
