//! Sharing images between accounts: every rule of Share to another Account, the Image Share
//! Request List, Get Image Share, Approve and Reject, Stop sharing, Create shared Image and
//! the Work History both accounts keep.

use axum::http::StatusCode;
use image_console::domain::history::HistoryTopic;
use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::{EditImageForm, Visibility};
use image_console::domain::list_query::{ListQuery, Ownership, SortColumn, SortDirection};
use image_console::domain::os_catalogue::OsPlatform;
use image_console::domain::share::{MAX_SHARES_PER_IMAGE, ShareDecision, ShareStatus};
use image_console::service::{Actor, ServiceError};

use crate::support::{Backend, Seed, SourceServer, TestApp, create_form, seed_image};
use crate::support::{Client, text};

fn approve() -> ShareDecision {
    ShareDecision::Approve
}

fn field_error(error: ServiceError) -> (String, String) {
    match error {
        ServiceError::Invalid(errors) => (errors[0].field.clone(), errors[0].message.clone()),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn is_not_found(result: Result<impl std::fmt::Debug, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::NotFound(_)))
}

fn is_forbidden(result: Result<impl std::fmt::Debug, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::Forbidden(_)))
}

/// The edit form of an image as it is, with another visibility.
async fn set_visibility(
    app: &TestApp,
    actor: &Actor,
    id: &str,
    visibility: Visibility,
) -> Result<(), ServiceError> {
    let image = app.services.get_image(actor, id).await?;
    let os = image.attributes.os.clone().expect("an operating system");
    let form = EditImageForm {
        attributes: image_console::domain::image_spec::AttributesForm {
            name: image.attributes.name,
            description: image.attributes.description,
            os_family: os.family().as_str().into(),
            os_platform: os.platform.as_str().into(),
            os_version: os
                .version
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            min_disk: image.attributes.min_disk_gb.to_string(),
            min_ram: image.attributes.min_ram_gb.to_string(),
            architecture: image.attributes.architecture.as_str().into(),
            boot_mode: image.attributes.boot_mode.as_str().into(),
            cloud_init: None,
            qemu_guest_agent: None,
            protected: image.attributes.protected.then(|| "on".into()),
        },
        visibility: visibility.as_str().into(),
    };
    app.services
        .update_image(actor, id, &form, image.updated_at_ms)
        .await
}

/// Topics of the account's Work History for one image, oldest first.
async fn topics(app: &TestApp, actor: &Actor, image_id: &str) -> Vec<(HistoryTopic, String)> {
    let page = app.services.account_history(actor, 1).await.unwrap();
    let mut topics: Vec<_> = page
        .entries
        .into_iter()
        .filter(|e| e.image_id == image_id)
        .map(|e| (e.topic, e.message))
        .collect();
    topics.reverse();
    topics
}

async fn sharing_follows_the_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = seed_image(&app.services, &alice, Seed::default()).await;

    // The Account ID field's rules, and the owner's own account.
    let (field, message) = field_error(
        app.services
            .share_image(&alice, &id, "bob_1")
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "account_id");
    assert_eq!(
        message,
        "Account ID can contain only English letters, digits and '-' (found '_')."
    );
    let (_, message) = field_error(
        app.services
            .share_image(&alice, &id, &"b".repeat(65))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        message,
        "Account ID must be at most 64 characters (it has 65)."
    );
    let (field, message) = field_error(
        app.services
            .share_image(&alice, &id, "ALICE")
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "account_id");
    assert!(
        message.starts_with("This image belongs to this account."),
        "{message}"
    );
    assert_eq!(
        app.services
            .image_sharing(&alice, &id)
            .await
            .unwrap()
            .shares,
        []
    );
    assert_eq!(
        app.services
            .get_image(&alice, &id)
            .await
            .unwrap()
            .visibility,
        Visibility::Private,
        "refusals change nothing"
    );

    // Only Active images can be shared.
    for status in [
        ImageStatus::Queued,
        ImageStatus::Importing,
        ImageStatus::Uploading,
        ImageStatus::Failed,
    ] {
        let other = seed_image(
            &app.services,
            &alice,
            Seed {
                status,
                ..Seed::default()
            },
        )
        .await;
        let error = app
            .services
            .share_image(&alice, &other, "bob")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ServiceError::Conflict(m) if m.starts_with("Only an Active image can be shared")),
            "{status:?}: {error:?}"
        );
        assert_eq!(app.services.count_share_requests(&bob).await.unwrap(), 0);
    }

    // Sharing a Private image makes it Shared; the change is in the Work History.
    let before = app.services.get_image(&alice, &id).await.unwrap();
    let share = app.services.share_image(&alice, &id, "Bob").await.unwrap();
    assert_eq!(share.account_id, "bob");
    assert_eq!(share.status, ShareStatus::Pending);
    let after = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(after.visibility, Visibility::Shared);
    assert_eq!(after.active_shares, 1);
    assert!(after.updated_at_ms > before.updated_at_ms);
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    let shared = &history.entries[0];
    assert_eq!(shared.topic, HistoryTopic::ShareRequested);
    assert_eq!(shared.changes[0].field, "Visibility");
    assert_eq!(
        (
            shared.changes[0].old.as_str(),
            shared.changes[0].new.as_str()
        ),
        ("Private", "Shared")
    );

    // A second share to the same account is refused under the field.
    let (field, message) = field_error(
        app.services
            .share_image(&alice, &id, "bob")
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "account_id");
    assert_eq!(
        message,
        "This image is already shared with account bob (Pending)."
    );

    // An unknown Account ID is answered exactly like a known one, and stays Pending.
    let unknown = app
        .services
        .share_image(&alice, &id, "nobody-here")
        .await
        .unwrap();
    assert_eq!(unknown.status, share.status);
    let sharing = app.services.image_sharing(&alice, &id).await.unwrap();
    let statuses: Vec<(&str, ShareStatus)> = sharing
        .shares
        .iter()
        .map(|s| (s.account_id.as_str(), s.status))
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&("bob", ShareStatus::Pending)));
    assert!(statuses.contains(&("nobody-here", ShareStatus::Pending)));
    // An account created later with that ID does not receive it.
    let late = app.sign_up("nobody-here").await;
    assert_eq!(app.services.count_share_requests(&late).await.unwrap(), 0);
    assert!(is_not_found(
        app.services.find_shared_image(&late, &id).await
    ));
    assert_eq!(
        app.services
            .decide_shares(&late, std::slice::from_ref(&id), approve())
            .await
            .unwrap()
            .done,
        Vec::<String>::new()
    );
    assert!(is_not_found(app.services.get_image(&late, &id).await));
    assert!(topics(&app, &late, &id).await.is_empty());
    // Shared again after the account exists, it arrives.
    app.services
        .stop_sharing(&alice, &id, "nobody-here")
        .await
        .unwrap();
    app.services
        .share_image(&alice, &id, "nobody-here")
        .await
        .unwrap();
    assert_eq!(app.services.count_share_requests(&late).await.unwrap(), 1);

    // Bob sees his request; nobody else can share or look at Alice's shares.
    assert_eq!(app.services.count_share_requests(&bob).await.unwrap(), 1);
    assert!(is_not_found(
        app.services.share_image(&bob, &id, "carol").await
    ));
    assert!(is_not_found(app.services.image_sharing(&bob, &id).await));
    assert!(is_not_found(
        app.services.stop_sharing(&bob, &id, "bob").await
    ));
}

async fn at_most_256_accounts_per_image(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let id = seed_image(&app.services, &alice, Seed::default()).await;
    for n in 0..MAX_SHARES_PER_IMAGE {
        app.services
            .share_image(&alice, &id, &format!("account-{n}"))
            .await
            .unwrap();
    }
    let error = app
        .services
        .share_image(&alice, &id, "account-256")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ServiceError::Conflict(m) if m.starts_with("This image is already shared with 256 accounts")),
        "{error:?}"
    );
    let sharing = app.services.image_sharing(&alice, &id).await.unwrap();
    assert_eq!((sharing.shares.len(), sharing.active), (256, 256));
    // A stopped share frees its place; sharing it again takes one.
    app.services
        .stop_sharing(&alice, &id, "account-7")
        .await
        .unwrap();
    app.services
        .share_image(&alice, &id, "account-256")
        .await
        .unwrap();
    assert!(matches!(
        app.services.share_image(&alice, &id, "account-7").await,
        Err(ServiceError::Conflict(_))
    ));
    let sharing = app.services.image_sharing(&alice, &id).await.unwrap();
    assert_eq!((sharing.shares.len(), sharing.active), (257, 256));
}

async fn private_needs_every_share_stopped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = seed_image(&app.services, &alice, Seed::default()).await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();

    for step in ["pending", "rejected"] {
        let (field, message) = field_error(
            set_visibility(&app, &alice, &id, Visibility::Private)
                .await
                .unwrap_err(),
        );
        assert_eq!(field, "visibility", "{step}");
        assert_eq!(
            message,
            "This image is shared with 1 account. Stop sharing with each of them on its Share page before making it Private."
        );
        let image = app.services.get_image(&alice, &id).await.unwrap();
        assert_eq!(image.visibility, Visibility::Shared, "{step}");
        app.services
            .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Reject)
            .await
            .unwrap();
    }
    app.services.stop_sharing(&alice, &id, "bob").await.unwrap();
    set_visibility(&app, &alice, &id, Visibility::Private)
        .await
        .unwrap();
    let image = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(image.visibility, Visibility::Private);
    let history = app.services.image_history(&alice, &id, 1).await.unwrap();
    assert_eq!(history.entries[0].topic, HistoryTopic::Edited);
    assert_eq!(history.entries[0].changes[0].field, "Visibility");
    // Shared again without any share is fine, and so is Private after it.
    set_visibility(&app, &alice, &id, Visibility::Shared)
        .await
        .unwrap();
    set_visibility(&app, &alice, &id, Visibility::Private)
        .await
        .unwrap();
}

async fn recipients_approve_reject_and_look_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let seed = |name, os_type, size_bytes| Seed {
        name,
        os_platform: os_type,
        size_bytes,
        ..Seed::default()
    };
    let web = seed_image(
        &app.services,
        &alice,
        seed("web", OsPlatform::Ubuntu, 3 << 30),
    )
    .await;
    let db = seed_image(
        &app.services,
        &alice,
        seed("db", OsPlatform::Rocky, 5 << 20),
    )
    .await;
    let cache = seed_image(
        &app.services,
        &alice,
        seed("cache", OsPlatform::Alma, 1 << 20),
    )
    .await;
    let own = seed_image(&app.services, &bob, Seed::default()).await;
    for id in [&web, &db, &cache] {
        app.services.share_image(&alice, id, "bob").await.unwrap();
    }

    let requests = app.services.list_share_requests(&bob, 1).await.unwrap();
    assert_eq!(requests.total, 3);
    let newest = &requests.requests[0];
    assert_eq!(
        (
            newest.image_name.as_str(),
            newest.owner_account_id.as_str(),
            newest.size_bytes,
            newest.os.as_ref().map(|os| os.platform),
            newest.status
        ),
        (
            "cache",
            "alice",
            Some(1 << 20),
            Some(OsPlatform::Alma),
            ShareStatus::Pending
        )
    );
    assert!(requests.requests[0].requested_at_ms >= requests.requests[2].requested_at_ms);
    assert_eq!(app.services.count_share_requests(&alice).await.unwrap(), 0);

    // Approve two at once; a malformed or unknown id is skipped with its reason.
    let result = app
        .services
        .decide_shares(
            &bob,
            &[web.clone(), db.clone(), "nonsense".into(), own.clone()],
            approve(),
        )
        .await
        .unwrap();
    assert_eq!(result.done, ["web", "db"]);
    assert_eq!(result.skipped.len(), 2);
    assert!(
        result
            .skipped
            .iter()
            .all(|s| s.reason == "No such image is shared with this account.")
    );
    assert_eq!(app.services.count_share_requests(&bob).await.unwrap(), 1);
    // Too many or none at all are refused before anything happens.
    assert!(matches!(
        app.services.decide_shares(&bob, &[], approve()).await,
        Err(ServiceError::Invalid(_))
    ));
    let many: Vec<String> = (0..51).map(|_| cache.clone()).collect();
    assert!(matches!(
        app.services.decide_shares(&bob, &many, approve()).await,
        Err(ServiceError::Invalid(_))
    ));
    assert_eq!(app.services.count_share_requests(&bob).await.unwrap(), 1);

    // Reject the third; Get Image Share still finds it, and approves it from there.
    app.services
        .decide_shares(&bob, std::slice::from_ref(&cache), ShareDecision::Reject)
        .await
        .unwrap();
    assert_eq!(app.services.count_share_requests(&bob).await.unwrap(), 0);
    let found = app
        .services
        .find_shared_image(&bob, &format!(" {} ", cache.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(
        (found.image_name.as_str(), found.status),
        ("cache", ShareStatus::Rejected)
    );
    assert!(is_not_found(app.services.get_image(&bob, &cache).await));
    let again = app
        .services
        .decide_shares(&bob, std::slice::from_ref(&cache), approve())
        .await
        .unwrap();
    assert_eq!(again.done, ["cache"]);
    assert_eq!(
        app.services
            .find_shared_image(&bob, &cache)
            .await
            .unwrap()
            .status,
        ShareStatus::Accepted
    );
    // Approving or rejecting twice changes nothing and is not an error.
    app.services
        .decide_shares(&bob, std::slice::from_ref(&cache), approve())
        .await
        .unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&db), ShareDecision::Reject)
        .await
        .unwrap();
    let twice = app
        .services
        .decide_shares(&bob, std::slice::from_ref(&db), ShareDecision::Reject)
        .await
        .unwrap();
    assert_eq!(twice.done, ["db"]);
    assert_eq!(
        app.services
            .find_shared_image(&bob, &db)
            .await
            .unwrap()
            .status,
        ShareStatus::Rejected
    );
    let events = topics(&app, &bob, &db).await;
    assert_eq!(
        events
            .iter()
            .filter(|(t, _)| *t == HistoryTopic::ShareRejected)
            .count(),
        1,
        "an answer that changes nothing is not recorded"
    );

    // Get Image Share finds only images shared with the account.
    let (field, _) = field_error(
        app.services
            .find_shared_image(&bob, "not-an-id")
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "image_id");
    assert!(is_not_found(
        app.services.find_shared_image(&bob, &own).await
    ));
    assert!(is_not_found(
        app.services.find_shared_image(&alice, &web).await
    ));
    app.services
        .stop_sharing(&alice, &web, "bob")
        .await
        .unwrap();
    assert!(is_not_found(
        app.services.find_shared_image(&bob, &web).await
    ));
    assert!(
        app.services
            .decide_shares(&bob, std::slice::from_ref(&web), approve())
            .await
            .unwrap()
            .done
            .is_empty(),
        "a stopped share cannot be approved"
    );
}

async fn shared_images_are_view_and_download_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let mut form = create_form("golden", &source.url("files", "disk.qcow2"));
    form.tags = vec![image_console::domain::tags::TagPair {
        key: "cost-center".into(),
        value: "secret".into(),
    }];
    let id = app.services.create_image(&alice, &form).await.unwrap();
    app.wait_for_import(&alice, &id).await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();

    // Pending: nothing yet.
    assert!(is_not_found(app.services.get_image(&bob, &id).await));
    assert!(is_not_found(
        app.services.create_download_link(&bob, &id).await
    ));
    assert!(
        crate::support::all_images(&app.services, &bob)
            .await
            .is_empty()
    );

    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), approve())
        .await
        .unwrap();
    let list = crate::support::all_images(&app.services, &bob).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].shared_by.as_deref(), Some("alice"));
    let mine = ListQuery {
        owner: Ownership::Mine,
        ..ListQuery::default()
    };
    assert_eq!(
        app.services.list_images(&bob, &mine).await.unwrap().total,
        0
    );
    let theirs = ListQuery {
        owner: Ownership::SharedWithMe,
        ..ListQuery::default()
    };
    assert_eq!(
        app.services.list_images(&bob, &theirs).await.unwrap().total,
        1
    );
    // The owner's list is unchanged, with nothing marked shared.
    let alice_list = crate::support::all_images(&app.services, &alice).await;
    assert_eq!(alice_list.len(), 1);
    assert_eq!(alice_list[0].shared_by, None);

    // Details: the image and its bytes, not the owner's bookkeeping.
    let seen = app.services.get_image(&bob, &id).await.unwrap();
    assert_eq!(seen.shared_by.as_deref(), Some("alice"));
    assert!(seen.tags.is_empty());
    assert_eq!(seen.source_url, None);
    assert_eq!(seen.created_by, "account alice");
    let owner_view = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(seen.hash_value, owner_view.hash_value);
    assert_eq!(owner_view.tags.len(), 1);

    // A download link of bob's works without a session.
    let client = Client::new(&app);
    let link = app.services.create_download_link(&bob, &id).await.unwrap();
    assert!(link.path.contains("&acct=bob&since="), "{}", link.path);
    let response = client.get(&link.path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Another account's name in the link breaks its signature.
    let forged = link.path.replace("acct=bob", "acct=carol");
    assert_eq!(
        client.get(&forged, None).await.status(),
        StatusCode::FORBIDDEN
    );

    // Everything else is the owner's.
    let edit = set_visibility(&app, &bob, &id, Visibility::Private).await;
    assert!(is_forbidden(edit));
    assert!(is_forbidden(
        app.services.set_image_protected(&bob, &id, true).await
    ));
    assert!(is_forbidden(
        app.services
            .put_image_tag(&bob, &id, None, "mine", "x")
            .await
    ));
    assert!(is_forbidden(
        app.services
            .remove_image_tag(&bob, &id, "cost-center")
            .await
    ));
    assert!(is_forbidden(app.services.delete_image(&bob, &id).await));
    let batch = app
        .services
        .delete_images(&bob, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(batch.deleted.is_empty());
    assert_eq!(
        batch.skipped[0].reason,
        "Account alice shares this image with this account: you can view and download it, and only account alice can change, share or delete it."
    );
    assert!(is_forbidden(
        app.services.share_image(&bob, &id, "carol").await
    ));
    assert!(is_forbidden(app.services.image_sharing(&bob, &id).await));
    assert!(is_forbidden(
        app.services.stop_sharing(&bob, &id, "bob").await
    ));
    assert!(is_forbidden(
        app.services.create_shared_image(&bob, &id, "mine").await
    ));
    assert!(is_forbidden(
        app.services.revoke_download_links(&bob, &id).await
    ));
    let after = app.services.get_image(&alice, &id).await.unwrap();
    assert_eq!(after, owner_view, "nothing changed");
    assert!(client.get(&link.path, None).await.status().is_success());
}

async fn access_ends_when_sharing_stops_or_the_image_is_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let carol = app.sign_up("carol").await;
    let id = app
        .services
        .create_image(
            &alice,
            &create_form("golden", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&alice, &id).await;
    let client = Client::new(&app);
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), approve())
        .await
        .unwrap();
    let link = app.services.create_download_link(&bob, &id).await.unwrap();
    assert_eq!(client.get(&link.path, None).await.status(), StatusCode::OK);

    // Stop sharing: the image, its details and the link are gone for bob at once.
    app.services.stop_sharing(&alice, &id, "bob").await.unwrap();
    assert!(
        crate::support::all_images(&app.services, &bob)
            .await
            .is_empty()
    );
    assert!(is_not_found(app.services.get_image(&bob, &id).await));
    assert!(is_not_found(app.services.image_history(&bob, &id, 1).await));
    assert!(is_not_found(
        app.services.create_download_link(&bob, &id).await
    ));
    let refused = client.get(&link.path, None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        text(refused).await,
        "This image is no longer shared with the account this link was issued to."
    );
    let sharing = app.services.image_sharing(&alice, &id).await.unwrap();
    assert_eq!(sharing.shares[0].status, ShareStatus::Stopped);
    assert_eq!(sharing.active, 0);

    // Shared again and approved again: the old link stays dead (it belonged to the stopped
    // share); a new one works. Bob's own Reject ends it too, until he approves again.
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    assert!(is_not_found(app.services.get_image(&bob, &id).await));
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), approve())
        .await
        .unwrap();
    assert_eq!(
        client.get(&link.path, None).await.status(),
        StatusCode::FORBIDDEN
    );
    let link = app.services.create_download_link(&bob, &id).await.unwrap();
    assert_eq!(client.get(&link.path, None).await.status(), StatusCode::OK);
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Reject)
        .await
        .unwrap();
    assert_eq!(
        client.get(&link.path, None).await.status(),
        StatusCode::FORBIDDEN
    );
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), approve())
        .await
        .unwrap();
    assert_eq!(client.get(&link.path, None).await.status(), StatusCode::OK);
    // The owner revoking links ends the recipients' links too.
    app.services
        .revoke_download_links(&alice, &id)
        .await
        .unwrap();
    assert_eq!(
        client.get(&link.path, None).await.status(),
        StatusCode::FORBIDDEN
    );
    let link = app.services.create_download_link(&bob, &id).await.unwrap();
    assert_eq!(client.get(&link.path, None).await.status(), StatusCode::OK);

    // Deleting the image ends every share: bob loses access, carol's request goes.
    app.services
        .share_image(&alice, &id, "carol")
        .await
        .unwrap();
    assert_eq!(app.services.count_share_requests(&carol).await.unwrap(), 1);
    app.services.delete_image(&alice, &id).await.unwrap();
    assert!(
        crate::support::all_images(&app.services, &bob)
            .await
            .is_empty()
    );
    assert!(is_not_found(app.services.get_image(&bob, &id).await));
    assert_eq!(
        client.get(&link.path, None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.services.count_share_requests(&carol).await.unwrap(), 0);
    assert!(is_not_found(
        app.services.find_shared_image(&bob, &id).await
    ));
    let bob_topics = topics(&app, &bob, &id).await;
    assert_eq!(bob_topics.last().unwrap().0, HistoryTopic::ShareEnded);
    assert_eq!(
        bob_topics.last().unwrap().1,
        "Account alice deleted the image; this account no longer has access to it."
    );
    let carol_topics = topics(&app, &carol, &id).await;
    assert_eq!(
        carol_topics.last().unwrap().1,
        "Account alice deleted the image; its share request ended."
    );
    let alice_topics = topics(&app, &alice, &id).await;
    let ended: Vec<&str> = alice_topics
        .iter()
        .filter(|(t, _)| *t == HistoryTopic::ShareEnded)
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(
        ended,
        [
            "Sharing with account bob ended: the image was deleted.",
            "The share request to account carol ended: the image was deleted."
        ]
    );
    assert_eq!(alice_topics.last().unwrap().0, HistoryTopic::Deleted);
}

async fn work_history_in_both_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = seed_image(&app.services, &alice, Seed::default()).await;
    app.services.share_image(&alice, &id, "bob").await.unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), ShareDecision::Reject)
        .await
        .unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&id), approve())
        .await
        .unwrap();
    app.services.stop_sharing(&alice, &id, "bob").await.unwrap();

    let expected = [
        HistoryTopic::ShareRequested,
        HistoryTopic::ShareRejected,
        HistoryTopic::ShareApproved,
        HistoryTopic::ShareStopped,
    ];
    let bob_side = topics(&app, &bob, &id).await;
    assert_eq!(
        bob_side.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        bob_side[0].1,
        "Account alice shared this image with this account. Approve or Reject it in the Image Share Request List."
    );
    assert_eq!(
        bob_side[3].1,
        "Account alice stopped sharing this image; this account no longer has access to it."
    );
    let alice_side = topics(&app, &alice, &id).await;
    let alice_share_topics: Vec<HistoryTopic> = alice_side
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| expected.contains(t))
        .collect();
    assert_eq!(alice_share_topics, expected);
    assert!(
        alice_side
            .iter()
            .any(|(_, m)| m == "Account bob approved the share.")
    );
    // Workers: each account's own user, and the other account by its ID only.
    let page = app.services.account_history(&alice, 1).await.unwrap();
    let approved = page
        .entries
        .iter()
        .find(|e| e.topic == HistoryTopic::ShareApproved)
        .unwrap();
    assert_eq!(approved.worker, "account bob");
    let page = app.services.account_history(&bob, 1).await.unwrap();
    assert!(page.entries.iter().all(|e| e.image_id == id));
    let approved = page
        .entries
        .iter()
        .find(|e| e.topic == HistoryTopic::ShareApproved)
        .unwrap();
    assert_eq!(approved.worker, bob.user_name);
}

async fn shared_images_reuse_the_bytes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = app
        .services
        .create_image(
            &alice,
            &create_form("golden", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    let source_image = app.wait_for_import(&alice, &id).await;
    let usage_before = app.services.account_usage(&alice).await.unwrap();

    let copy = app
        .services
        .create_shared_image(&alice, &id, "golden-shared")
        .await
        .unwrap();
    let shared = app.services.get_image(&alice, &copy).await.unwrap();
    assert_eq!(shared.visibility, Visibility::Shared);
    assert_eq!(shared.status, ImageStatus::Active);
    assert_eq!(shared.source_image_id.as_deref(), Some(id.as_str()));
    assert_eq!(shared.hash_value, source_image.hash_value);
    assert_eq!(shared.size_bytes, source_image.size_bytes);
    assert!(!shared.attributes.protected);
    // One file, counted once against storage; two images.
    assert_eq!(app.stored_files().await.0.len(), 1);
    let usage = app.services.account_usage(&alice).await.unwrap();
    assert_eq!(usage.stored_bytes, usage_before.stored_bytes);
    assert_eq!(usage.image_count, usage_before.image_count + 1);
    // Each has its own history.
    assert_eq!(
        topics(&app, &alice, &copy).await[0].1,
        format!(
            "Created with Create shared Image from golden ({id}). It uses the same stored bytes."
        )
    );
    assert_eq!(
        topics(&app, &alice, &id).await.last().unwrap().0,
        HistoryTopic::SharedImageCreated
    );

    // Only from a Private, Active image of the account.
    let refuse = |r: Result<String, ServiceError>| match r {
        Err(ServiceError::Conflict(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refuse(
            app.services
                .create_shared_image(&alice, &copy, "again")
                .await
        ),
        "A shared image can be created only from a Private image."
    );
    let queued = seed_image(
        &app.services,
        &alice,
        Seed {
            status: ImageStatus::Queued,
            ..Seed::default()
        },
    )
    .await;
    assert_eq!(
        refuse(app.services.create_shared_image(&alice, &queued, "q").await),
        "A shared image can be created once the image is Active."
    );
    assert!(is_not_found(
        app.services.create_shared_image(&bob, &id, "theft").await
    ));
    let (field, _) = field_error(
        app.services
            .create_shared_image(&alice, &id, "bad/name")
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "name");

    // The copy is shared and downloaded; deleting the source keeps the bytes.
    app.services
        .share_image(&alice, &copy, "bob")
        .await
        .unwrap();
    app.services
        .decide_shares(&bob, std::slice::from_ref(&copy), approve())
        .await
        .unwrap();
    // Destroying the source keeps the bytes the copy still uses.
    app.services.delete_image(&alice, &id).await.unwrap();
    app.services
        .destroy_images(&alice, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(
        app.stored_files().await.0.len(),
        1,
        "the copy still uses the file"
    );
    let client = Client::new(&app);
    let link = app
        .services
        .create_download_link(&bob, &copy)
        .await
        .unwrap();
    let response = client.get(&link.path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body.as_ref(), std::fs::read(&file).unwrap().as_slice());
    // Without the source, the copy now counts the bytes.
    assert_eq!(
        app.services
            .account_usage(&alice)
            .await
            .unwrap()
            .stored_bytes,
        usage_before.stored_bytes
    );
    // The last image using them takes them along when it is destroyed, not before.
    app.services.delete_image(&alice, &copy).await.unwrap();
    assert_eq!(
        app.stored_files().await.0.len(),
        1,
        "kept in the Recycle Bin"
    );
    app.services
        .destroy_images(&alice, std::slice::from_ref(&copy))
        .await
        .unwrap();
    assert!(app.stored_files().await.0.is_empty());

    // After a restart nothing is swept that an image still uses.
    let id = app
        .services
        .create_image(
            &alice,
            &create_form("second", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&alice, &id).await;
    let copy = app
        .services
        .create_shared_image(&alice, &id, "second-shared")
        .await
        .unwrap();
    app.services.delete_image(&alice, &id).await.unwrap();
    let app = app.restart().await;
    assert_eq!(app.stored_files().await.0.len(), 1);
    assert!(
        app.services
            .create_download_link(&alice, &copy)
            .await
            .is_ok()
    );
}

/// The Image List of an account with images shared with it: every page of every sort, with
/// each query plan, equals the plain answer (one filter over the rows the account may see,
/// sorted and sliced).
async fn merged_pages_match_the_plain_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    let carol = app.sign_up("carol").await;
    let dave = app.sign_up("dave").await;
    let sizes = [10u64, 900, 50, 700, 3, 600, 45, 20, 300, 80];
    let os = [
        OsPlatform::Ubuntu,
        OsPlatform::Rocky,
        OsPlatform::Alma,
        OsPlatform::Rhel,
    ];
    let mut at = 1_700_000_000_000;
    let mut seed = |owner: &'static str, n: usize| {
        at += 1000;
        Seed {
            name: Box::leak(
                format!(
                    "{}-{owner}-{n:02}",
                    if n.is_multiple_of(3) { "web" } else { "db" }
                )
                .into_boxed_str(),
            ),
            os_platform: os[n % os.len()],
            size_bytes: sizes[n % sizes.len()],
            status: if n % 7 == 6 {
                ImageStatus::Failed
            } else {
                ImageStatus::Active
            },
            visibility: if n.is_multiple_of(2) {
                Visibility::Private
            } else {
                Visibility::Shared
            },
            created_at_ms: at,
            ..Seed::default()
        }
    };
    let mut own = Vec::new();
    for n in 0..23 {
        own.push(seed_image(&app.services, &alice, seed("alice", n)).await);
    }
    let mut theirs = Vec::new();
    for n in 0..9usize {
        let (owner, name) = if n.is_multiple_of(2) {
            (&carol, "carol")
        } else {
            (&dave, "dave")
        };
        let mut s = seed(name, n);
        s.status = ImageStatus::Active;
        let id = seed_image(&app.services, owner, s).await;
        app.services.share_image(owner, &id, "alice").await.unwrap();
        theirs.push(id);
    }
    // Seven approved; one left Pending and one Rejected, which are not in the list.
    app.services
        .decide_shares(&alice, &theirs[..7], approve())
        .await
        .unwrap();
    app.services
        .decide_shares(&alice, &theirs[8..], ShareDecision::Reject)
        .await
        .unwrap();
    // Interleave creation times: more own images after the shared ones.
    for n in 23..30 {
        own.push(seed_image(&app.services, &alice, seed("alice", n)).await);
    }
    app.services
        .put_image_tag(&alice, &own[0], None, "env", "prod")
        .await
        .unwrap();

    let store = app.services.store().clone();
    let plans = [store.clone(), store.clone().with_candidate_limit(0)];
    let mut checked = 0;
    for owner in Ownership::ALL {
        for (search, status, tag) in [
            ("", None, ""),
            ("web", None, ""),
            ("", Some(ImageStatus::Active), ""),
            ("db", Some(ImageStatus::Active), ""),
            ("", None, "env"),
        ] {
            for sort in SortColumn::ALL {
                for direction in [SortDirection::Asc, SortDirection::Desc] {
                    let base = ListQuery {
                        search: search.into(),
                        status,
                        tag_key: tag.into(),
                        owner,
                        sort,
                        direction,
                        per_page: 10,
                        ..ListQuery::default()
                    };
                    let all = store
                        .list_matching_images(&alice.account_id, &base, 0)
                        .await
                        .unwrap();
                    let expected_total = store
                        .count_images_exactly(&alice.account_id, &base, 0)
                        .await
                        .unwrap();
                    assert_eq!(all.len() as u64, expected_total);
                    let pages = all.len().div_ceil(10).max(1) as u32 + 1;
                    for plan in &plans {
                        for page in 1..=pages {
                            let query = ListQuery {
                                page,
                                ..base.clone()
                            };
                            let (rows, total) = plan
                                .list_images(&alice.account_id, &query, 0)
                                .await
                                .unwrap();
                            assert_eq!(total.count, expected_total, "{query:?}");
                            assert!(!total.more);
                            let got: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                            let want: Vec<&str> = all
                                .iter()
                                .skip((page as usize - 1) * 10)
                                .take(10)
                                .map(|r| r.id.as_str())
                                .collect();
                            assert_eq!(got, want, "{query:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 500);
    // The reference itself: all 30 own images, the 7 approved ones, and the tag matches only
    // alice's own tag.
    let all = ListQuery {
        per_page: 100,
        ..ListQuery::default()
    };
    assert_eq!(
        store
            .count_images_exactly(&alice.account_id, &all, 0)
            .await
            .unwrap(),
        37
    );
    let tagged = ListQuery {
        tag_key: "env".into(),
        ..all.clone()
    };
    assert_eq!(
        store
            .count_images_exactly(&alice.account_id, &tagged, 0)
            .await
            .unwrap(),
        1
    );
    let page = app.services.list_images(&alice, &all).await.unwrap();
    let marked: Vec<&str> = page
        .images
        .iter()
        .filter_map(|i| i.shared_by.as_deref())
        .collect();
    assert_eq!(marked.len(), 7);
    assert!(marked.iter().all(|o| *o == "carol" || *o == "dave"));
}

crate::on_every_backend!(
    sharing_follows_the_rules,
    at_most_256_accounts_per_image,
    private_needs_every_share_stopped,
    recipients_approve_reject_and_look_up,
    shared_images_are_view_and_download_only,
    access_ends_when_sharing_stops_or_the_image_is_deleted,
    work_history_in_both_accounts,
    shared_images_reuse_the_bytes,
    merged_pages_match_the_plain_answer,
);
