//! The end of an image's life: the Recycle Bin (Delete, Restore, Destroy, the purge after the
//! account's retention, with the time given to it), in-use references, and Deactivate.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use image_console::domain::history::HistoryTopic;
use image_console::domain::image::ImageStatus;
use image_console::domain::lifecycle::field;
use image_console::domain::list_query::ListQuery;
use image_console::domain::share::ShareDecision;
use image_console::domain::tags::TagPair;
use image_console::service::{Actor, ServiceError, now_ms};

use crate::support::Client;
use crate::support::{Backend, SourceServer, TestApp, create_form};

const DAY_MS: i64 = 86_400_000;

/// An Active image of `actor` imported from a 16 MiB qcow2, with a tag.
async fn imported(app: &TestApp, source: &SourceServer, actor: &Actor, name: &str) -> String {
    let mut form = create_form(name, &source.url("files", "disk.qcow2"));
    form.tags = vec![TagPair {
        key: "env".into(),
        value: "prod".into(),
    }];
    let id = app.services.create_image(actor, &form).await.unwrap();
    app.wait_for_import(actor, &id).await;
    id
}

/// GETs a download link: its status and body.
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, Vec<u8>) {
    let response = Client::new(app).get(path, None).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// A request to the image API with `actor`'s new token.
async fn api(app: &TestApp, token: &str, method: Method, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-auth-token", token)
        .body(Body::empty())
        .unwrap();
    let response = Client::new(app).send(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn conflict(error: ServiceError) -> String {
    match error {
        ServiceError::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn count_rows(app: &TestApp, table: &str, id: &str) -> i64 {
    use sqlx::Row;
    let column = if table == "images" { "id" } else { "image_id" };
    sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1"
    ))
    .bind(id)
    .fetch_one(app.services.store().pool())
    .await
    .unwrap()
    .try_get("n")
    .unwrap()
}

async fn restore_brings_back_bytes_tags_and_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = imported(&app, &source, &alice, "golden").await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    let owner_link = app
        .services
        .create_download_link(&alice, &id)
        .await
        .unwrap();
    let bob_link = app.services.create_download_link(&bob, &id).await.unwrap();
    let before = app.services.get_image(&alice, &id).await.unwrap();
    let history_before = app.services.image_history(&alice, &id, 1).await.unwrap();

    app.services.delete_image(&alice, &id).await.unwrap();
    let binned = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(binned.status, ImageStatus::Deleted);
    let deleted = binned.deleted.clone().unwrap();
    assert_eq!(deleted.deleted_by, "admin@alice");
    assert_eq!(deleted.restores_to, ImageStatus::Active);
    assert_eq!(deleted.destroy_at_ms - deleted.deleted_at_ms, 7 * DAY_MS);
    // Off the list unless asked for; counted in the usage; the share and the links end.
    assert!(
        crate::support::all_images(&app.services, &alice)
            .await
            .is_empty()
    );
    let deleted_view = ListQuery {
        status: Some(ImageStatus::Deleted),
        ..ListQuery::default()
    };
    let page = app
        .services
        .list_images(&alice, &deleted_view)
        .await
        .unwrap();
    assert_eq!((page.total, page.images[0].id.as_str()), (1, id.as_str()));
    let searched = ListQuery {
        search: "gold".into(),
        ..deleted_view.clone()
    };
    assert_eq!(
        app.services
            .list_images(&alice, &searched)
            .await
            .unwrap()
            .total,
        1
    );
    let csv = app
        .services
        .export_images_csv(&alice, &deleted_view)
        .await
        .unwrap();
    let csv = String::from_utf8_lossy(&csv);
    assert!(csv.contains("golden") && csv.contains(",Deleted,"), "{csv}");
    let usage = app.services.account_usage(&alice).await.unwrap();
    assert_eq!(usage.image_count, 1);
    assert_eq!(usage.recycle_bin_images, 1);
    assert_eq!(usage.recycle_bin_bytes, before.size_bytes.unwrap());
    assert_eq!(usage.stored_bytes, before.size_bytes.unwrap());
    assert!(matches!(
        app.services.get_image(&bob, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    let (status, body) = fetch(&app, &owner_link.path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("Recycle Bin"));
    assert_eq!(fetch(&app, &bob_link.path).await.0, StatusCode::FORBIDDEN);
    // Nothing about it can change while it is there.
    let refused = app
        .services
        .put_image_tag(&alice, &id, None, "tier", "web")
        .await
        .unwrap_err();
    assert!(conflict(refused).contains("restore it"));

    let restored = app
        .services
        .restore_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(restored.done, ["golden"]);
    let after = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(after.status, ImageStatus::Active);
    assert_eq!(after.deleted, None);
    assert_eq!(after.tags, before.tags);
    assert_eq!(after.attributes, before.attributes);
    assert_eq!(after.hash_value, before.hash_value);
    assert_eq!(after.active_shares, 0, "its shares stay stopped");
    assert!(matches!(
        app.services.get_image(&bob, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let topics: Vec<HistoryTopic> = history.entries.iter().map(|e| e.topic).collect();
    assert_eq!(topics[0], HistoryTopic::Restored);
    assert!(topics.contains(&HistoryTopic::Deleted));
    assert!(topics.contains(&HistoryTopic::ShareEnded));
    for entry in &history_before.entries {
        assert!(history.entries.contains(entry), "{entry:?} lost");
    }
    // The same bytes, through the owner's old link and a new one.
    let (status, body) = fetch(&app, &owner_link.path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, std::fs::read(&file).unwrap());
    let link = app
        .services
        .create_download_link(&alice, &id)
        .await
        .unwrap();
    assert_eq!(fetch(&app, &link.path).await.1, body);
    // Restore again is refused: it is not in the Recycle Bin.
    let again = app
        .services
        .restore_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        again.skipped[0].reason,
        "This image is not in the Recycle Bin."
    );
}

async fn the_purge_destroys_after_the_retention(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let refused = app.services.set_retention(&alice, "366").await.unwrap_err();
    assert!(
        matches!(&refused, ServiceError::Invalid(e) if e[0].field == field::RETENTION_DAYS),
        "{refused:?}"
    );
    app.services.set_retention(&alice, "3").await.unwrap();
    assert_eq!(
        app.services
            .account_settings(&alice)
            .await
            .unwrap()
            .retention
            .days(),
        3
    );
    let id = imported(&app, &source, &alice, "old").await;
    let kept = imported(&app, &source, &alice, "kept").await;
    app.services.delete_image(&alice, &id).await.unwrap();
    let deleted_at = app
        .services
        .get_image(&alice, &id)
        .await
        .unwrap()
        .deleted
        .unwrap();
    assert_eq!(
        deleted_at.destroy_at_ms - deleted_at.deleted_at_ms,
        3 * DAY_MS
    );

    // Not yet: two days on, nothing is destroyed.
    let now = now_ms();
    assert_eq!(
        app.services
            .purge_recycle_bin(now + 2 * DAY_MS)
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.stored_files().await.0.len(), 2);
    // Past its retention: destroyed, bytes and rows, and only its history stays.
    assert_eq!(
        app.services
            .purge_recycle_bin(now + 3 * DAY_MS + 60_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(app.stored_files().await.0, vec![kept.clone()]);
    for table in [
        "images",
        "image_tags",
        "image_properties",
        "image_references",
        "image_shares",
    ] {
        assert_eq!(count_rows(&app, table, &id).await, 0, "{table}");
    }
    assert!(
        app.services
            .recycle_bin(&alice)
            .await
            .unwrap()
            .images
            .is_empty()
    );
    let (events, _) = app
        .services
        .store()
        .list_events(&alice.account_id, &id, 1, 50)
        .await
        .unwrap();
    assert_eq!(events[0].topic, HistoryTopic::Destroyed);
    assert_eq!(events[0].worker, "system");
    assert!(
        events[0].message.contains("3 days"),
        "{}",
        events[0].message
    );
    assert!(matches!(
        app.services.get_image(&alice, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    // The image that was not deleted is untouched.
    assert_eq!(
        app.services.get_image(&alice, &kept).await.unwrap().status,
        ImageStatus::Active
    );
}

async fn destroy_keeps_bytes_another_image_uses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let id = imported(&app, &source, &alice, "source").await;
    let copy = app
        .services
        .create_shared_image(&alice, &id, "copy")
        .await
        .unwrap();
    app.services.delete_image(&alice, &id).await.unwrap();
    let destroyed = app
        .services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(destroyed.done, ["source"]);
    assert_eq!(
        app.stored_files().await.0.len(),
        1,
        "the copy uses the file"
    );
    let link = app
        .services
        .create_download_link(&alice, &copy)
        .await
        .unwrap();
    let (status, body) = fetch(&app, &link.path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, std::fs::read(&file).unwrap());
    // The last image using them takes them along.
    app.services.delete_image(&alice, &copy).await.unwrap();
    app.services
        .destroy_images(&alice, std::slice::from_ref(&copy))
        .await
        .unwrap();
    assert_eq!(app.stored_files().await, (vec![], vec![]));
}

async fn references_block_delete_and_destroy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = imported(&app, &source, &alice, "base").await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    let alice_token = app
        .services
        .create_api_token(&alice, "vm service", "30")
        .await
        .unwrap()
        .secret;
    let bob_token = app
        .services
        .create_api_token(&bob, "vm service", "30")
        .await
        .unwrap()
        .secret;

    // Added through the API by the owner and by the account it is shared with.
    let path = format!("/v2/images/{id}/references/virtual-machine/vm-1");
    assert_eq!(
        api(&app, &alice_token, Method::PUT, &path).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        api(&app, &alice_token, Method::PUT, &path).await.0,
        StatusCode::NO_CONTENT
    );
    let bobs = format!("/v2/images/{id}/references/virtual-machine/vm-b");
    assert_eq!(
        api(&app, &bob_token, Method::PUT, &bobs).await.0,
        StatusCode::CREATED
    );
    let (status, body) = api(
        &app,
        &alice_token,
        Method::PUT,
        &format!("/v2/images/{id}/references/VM/x"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("lower-case letters"), "{body}");
    let (_, listed) = api(
        &app,
        &bob_token,
        Method::GET,
        &format!("/v2/images/{id}/references"),
    )
    .await;
    assert!(
        listed.contains("vm-b") && !listed.contains("vm-1"),
        "{listed}"
    );
    // Bob cannot remove the owner's reference.
    assert_eq!(
        api(&app, &bob_token, Method::DELETE, &path).await.0,
        StatusCode::NOT_FOUND
    );

    let detail = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(detail.references.len(), 2);
    let reason = conflict(app.services.delete_image(&alice, &id).await.unwrap_err());
    assert_eq!(
        reason,
        "This image is in use by virtual machine vm-1 (added by admin@alice of account alice), virtual machine vm-b (added by account bob). Remove those references before deleting it."
    );
    assert_eq!(
        detail.delete_blocked_reason().as_deref(),
        Some(reason.as_str())
    );
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let added: Vec<&str> = history
        .entries
        .iter()
        .filter(|e| e.topic == HistoryTopic::ReferenceAdded)
        .map(|e| e.worker.as_str())
        .collect();
    assert_eq!(added, ["account bob", "admin@alice"]);

    // Gone once both are removed; then Delete works.
    assert_eq!(
        api(&app, &alice_token, Method::DELETE, &path).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api(&app, &bob_token, Method::DELETE, &bobs).await.0,
        StatusCode::NO_CONTENT
    );
    app.services.delete_image(&alice, &id).await.unwrap();
    // A binned image's references and members are not there for the API...
    for (method, path) in [
        (Method::PUT, path.as_str()),
        (Method::DELETE, path.as_str()),
        (Method::GET, &format!("/v2/images/{id}/references")),
        (Method::GET, &format!("/v2/images/{id}/members")),
        (Method::GET, &format!("/v2/images/{id}/members/bob")),
        (Method::DELETE, &format!("/v2/images/{id}/members/bob")),
    ] {
        let (status, body) = api(&app, &alice_token, method.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    assert!(matches!(
        app.services
            .add_image_reference(&alice, &id, "virtual-machine", "vm-2")
            .await,
        Err(ServiceError::NotFound(_))
    ));
    // ...and should one be there, Destroy and the purge leave it alone.
    sqlx::query(
        "INSERT INTO image_references (image_id, kind, reference_id, account_id, added_by, added_at) \
         VALUES ($1, 'volume', 'vol-9', 'alice', 'admin@alice', 1)",
    )
    .bind(&id)
    .execute(app.services.store().pool())
    .await
    .unwrap();
    let destroy = app
        .services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(destroy.done.is_empty());
    assert!(
        destroy.skipped[0]
            .reason
            .starts_with("This image is in use by volume vol-9"),
        "{}",
        destroy.skipped[0].reason
    );
    assert_eq!(
        app.services
            .purge_recycle_bin(now_ms() + 30 * DAY_MS)
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.stored_files().await.0.len(), 1);
    // The way out: Restore, remove the reference, Delete and Destroy.
    app.services
        .restore_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    app.services
        .remove_image_reference(&alice, &id, "volume", "vol-9")
        .await
        .unwrap();
    app.services.delete_image(&alice, &id).await.unwrap();
    app.services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(app.stored_files().await, (vec![], vec![]));
}

/// Each account has its own references: one the image is shared with cannot squat an id the
/// owner will use, learn which ids the owner uses, or remove the owner's; its references end
/// with its share; the owner sees them by account only.
async fn references_belong_to_their_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = imported(&app, &source, &alice, "base").await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    let token = |actor: Actor| {
        let services = app.services.clone();
        async move {
            services
                .create_api_token(&actor, "vm service", "30")
                .await
                .unwrap()
                .secret
        }
    };
    let (alice_token, bob_token) = (
        token(alice.actor.clone()).await,
        token(bob.actor.clone()).await,
    );
    let vm12 = format!("/v2/images/{id}/references/virtual-machine/vm-12");
    let listing = format!("/v2/images/{id}/references");

    // Bob adds vm-12 first; Alice's own vm-12 is new to her account and recorded.
    assert_eq!(
        api(&app, &bob_token, Method::PUT, &vm12).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        api(&app, &alice_token, Method::PUT, &vm12).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        api(&app, &alice_token, Method::PUT, &vm12).await.0,
        StatusCode::NO_CONTENT
    );
    // Bob learns nothing of Alice's: his answers are about his own reference only.
    assert_eq!(
        api(&app, &bob_token, Method::PUT, &vm12).await.0,
        StatusCode::NO_CONTENT
    );
    let vm7 = format!("/v2/images/{id}/references/virtual-machine/vm-7");
    assert_eq!(
        api(&app, &alice_token, Method::PUT, &vm7).await.0,
        StatusCode::CREATED
    );
    let (status, bobs_view) = api(&app, &bob_token, Method::GET, &listing).await;
    assert_eq!(status, StatusCode::OK);
    let bobs_view: serde_json::Value = serde_json::from_str(&bobs_view).unwrap();
    assert_eq!(
        bobs_view["references"],
        serde_json::json!([{
            "kind": "virtual-machine",
            "id": "vm-12",
            "account_id": "bob",
            "added_by": "admin@bob",
            "added_at": bobs_view["references"][0]["added_at"],
        }])
    );
    assert_eq!(
        api(&app, &bob_token, Method::DELETE, &vm7).await.0,
        StatusCode::NOT_FOUND,
        "another account's reference is as missing as an unknown one"
    );

    // The owner sees both accounts' references, Bob's by his account only.
    let (_, alices_view) = api(&app, &alice_token, Method::GET, &listing).await;
    let alices_view: serde_json::Value = serde_json::from_str(&alices_view).unwrap();
    let seen: Vec<(String, String, String)> = alices_view["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account_id"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
                r["added_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected = vec![
        (
            "alice".to_owned(),
            "vm-12".to_owned(),
            "admin@alice".to_owned(),
        ),
        (
            "alice".to_owned(),
            "vm-7".to_owned(),
            "admin@alice".to_owned(),
        ),
        (
            "bob".to_owned(),
            "vm-12".to_owned(),
            "account bob".to_owned(),
        ),
    ];
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    expected.sort();
    assert_eq!(seen_sorted, expected);
    assert!(!alices_view.to_string().contains("admin@bob"));
    let detail = app.services.get_image(&alice, &id).await.unwrap();
    assert!(
        detail
            .references
            .iter()
            .all(|r| r.account_id == "alice" || r.added_by.is_none()),
        "{:?}",
        detail.references
    );

    // Bob removes his vm-12: Alice's stays in force.
    assert_eq!(
        api(&app, &bob_token, Method::DELETE, &vm12).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api(&app, &bob_token, Method::DELETE, &vm12).await.0,
        StatusCode::NOT_FOUND
    );
    let reason = conflict(app.services.delete_image(&alice, &id).await.unwrap_err());
    assert!(
        reason.contains("vm-12 (added by admin@alice of account alice)"),
        "{reason}"
    );

    // Bob's references end with his share, and both accounts' Work History says so.
    let vm99 = format!("/v2/images/{id}/references/virtual-machine/vm-99");
    assert_eq!(
        api(&app, &bob_token, Method::PUT, &vm99).await.0,
        StatusCode::CREATED
    );
    app.services.stop_sharing(&alice, &id, "bob").await.unwrap();
    let after: Vec<String> = app
        .services
        .get_image(&alice, &id)
        .await
        .unwrap()
        .references
        .iter()
        .map(|r| format!("{}:{}", r.account_id, r.reference_id))
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|r| r.starts_with("alice:")), "{after:?}");
    assert_eq!(
        api(&app, &bob_token, Method::GET, &listing).await.0,
        StatusCode::NOT_FOUND
    );
    let ended = "The references of account bob ended with its share: virtual-machine/vm-99.";
    let alices = app.services.image_history(&alice, &id, 1).await.unwrap();
    assert!(
        alices
            .entries
            .iter()
            .any(|e| e.topic == HistoryTopic::ReferenceRemoved && e.message == ended),
        "{alices:?}"
    );
    let bobs = app.services.image_history(&bob, &id, 1).await.unwrap_err();
    assert!(matches!(bobs, ServiceError::NotFound(_)));
    let bobs_log = app.services.account_history(&bob, 1).await.unwrap();
    assert!(
        bobs_log.entries.iter().any(|e| e.message == ended),
        "{:?}",
        bobs_log.entries
    );

    // Shared again and rejected: his new references end too.
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    assert_eq!(
        api(&app, &bob_token, Method::PUT, &vm99).await.0,
        StatusCode::CREATED
    );
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Reject)
        .await
        .unwrap();
    assert!(
        app.services
            .get_image(&alice, &id)
            .await
            .unwrap()
            .references
            .iter()
            .all(|r| r.account_id == "alice")
    );
}

async fn deactivated_images_refuse_downloads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = imported(&app, &source, &alice, "frozen").await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Approve)
        .await
        .unwrap();
    let link = app
        .services
        .create_download_link(&alice, &id)
        .await
        .unwrap();
    let bob_link = app.services.create_download_link(&bob, &id).await.unwrap();
    let token = app
        .services
        .create_api_token(&alice, "client", "30")
        .await
        .unwrap()
        .secret;

    // Only the owner deactivates.
    assert!(matches!(
        app.services.set_image_activation(&bob, &id, true).await,
        Err(ServiceError::Forbidden(_))
    ));
    let (status, _) = api(
        &app,
        &token,
        Method::POST,
        &format!("/v2/images/{id}/actions/deactivate"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Deactivated);
    assert!(image.share_blocked_reason().is_some());

    for path in [&link.path, &bob_link.path] {
        let (status, body) = fetch(&app, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            String::from_utf8_lossy(&body).contains("Deactivated"),
            "{body:?}"
        );
    }
    assert!(matches!(
        app.services.create_download_link(&alice, &id).await,
        Err(ServiceError::Forbidden(m)) if m.contains("Deactivated")
    ));
    let (status, body) = api(&app, &token, Method::GET, &format!("/v2/images/{id}/file")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, shown) = api(&app, &token, Method::GET, &format!("/v2/images/{id}")).await;
    assert!(shown.contains("\"status\":\"deactivated\""), "{shown}");
    assert!(
        app.services
            .share_image(&alice, &id, "carol")
            .await
            .is_err()
    );
    assert!(
        app.services
            .create_shared_image(&alice, &id, "copy")
            .await
            .is_err()
    );
    let listed = crate::support::all_images(&app.services, &alice).await;
    assert_eq!(listed[0].status, ImageStatus::Deactivated);
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    assert_eq!(history.entries[0].topic, HistoryTopic::Deactivated);

    // Reactivated, the links work again.
    app.services
        .set_image_activation(&alice, &id, false)
        .await
        .unwrap();
    let (status, body) = fetch(&app, &link.path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, std::fs::read(&file).unwrap());
    let refused = conflict(app.services.cancel_import(&alice, &id).await.unwrap_err());
    assert!(refused.contains("Active"), "{refused}");
}

crate::on_every_backend!(
    restore_brings_back_bytes_tags_and_history,
    the_purge_destroys_after_the_retention,
    destroy_keeps_bytes_another_image_uses,
);

mod references {
    use super::*;
    crate::on_both_databases!(
        references_block_delete_and_destroy,
        references_belong_to_their_account,
        deactivated_images_refuse_downloads,
    );
}
