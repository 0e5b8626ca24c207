//! Image Details: Edit, Tags and Work History.

use image_console::domain::history::{HistoryTopic, WorkResult};
use image_console::domain::image::ImageStatus;
use image_console::domain::image_spec::EditImageForm;
use image_console::service::ServiceError;

use crate::support::{Backend, Seed, SourceServer, TestApp, create_form, seed_image};

fn edit_form(name: &str, min_disk: &str) -> EditImageForm {
    EditImageForm {
        attributes: image_console::domain::image_spec::AttributesForm {
            name: name.into(),
            description: "after".into(),
            os_family: "linux".into(),
            os_platform: "rocky".into(),
            os_version: "9".into(),
            min_disk: min_disk.into(),
            min_ram: "2".into(),
            architecture: "aarch64".into(),
            boot_mode: "uefi".into(),
            cloud_init: Some("on".into()),
            qemu_guest_agent: None,
            protected: None,
        },
        visibility: String::new(),
    }
}

async fn edit_changes_attributes_with_the_create_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let id = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "before",
            ..Seed::default()
        },
    )
    .await;
    let image = app.services.get_image(&actor, &id).await.unwrap();

    let invalid = app
        .services
        .update_image(
            &actor,
            &id,
            &edit_form("bad#name", "12289"),
            image.updated_at_ms,
        )
        .await;
    let Err(ServiceError::Invalid(errors)) = invalid else {
        panic!("expected validation errors")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "min_disk"]);
    assert_eq!(
        app.services
            .get_image(&actor, &id)
            .await
            .unwrap()
            .attributes
            .name,
        "before",
        "nothing changed"
    );

    app.services
        .update_image(&actor, &id, &edit_form("after", "20"), image.updated_at_ms)
        .await
        .unwrap();
    let edited = app.services.get_image(&actor, &id).await.unwrap();
    assert_eq!(edited.attributes.name, "after");
    assert_eq!(edited.attributes.min_disk_gb, 20);
    assert_eq!(edited.attributes.architecture.as_str(), "aarch64");
    assert_eq!(edited.attributes.boot_mode.as_str(), "uefi");
    assert!(edited.attributes.features.cloud_init && !edited.attributes.features.qemu_guest_agent);
    assert_eq!(edited.updated_by, actor.user_name);
    assert!(edited.updated_at_ms > image.updated_at_ms);

    // A form filled before that edit is refused instead of silently overwriting it.
    let stale = app
        .services
        .update_image(&actor, &id, &edit_form("stale", "30"), image.updated_at_ms)
        .await;
    let Err(ServiceError::Conflict(message)) = stale else {
        panic!("expected a conflict")
    };
    assert!(
        message.starts_with("The image was changed by someone else"),
        "{message}"
    );
    assert_eq!(
        app.services
            .get_image(&actor, &id)
            .await
            .unwrap()
            .attributes
            .name,
        "after"
    );

    let other = app.sign_up("other").await;
    let foreign = app
        .services
        .update_image(&other, &id, &edit_form("hijack", "1"), edited.updated_at_ms)
        .await;
    assert!(matches!(foreign, Err(ServiceError::NotFound(_))));
}

async fn tags_are_limited_and_unique(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let id = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "tagged",
            ..Seed::default()
        },
    )
    .await;
    let tags = app.services.clone();
    tags.put_image_tag(&actor, &id, None, "env", "prod")
        .await
        .unwrap();

    let duplicate = tags
        .put_image_tag(&actor, &id, None, "env", "dev")
        .await
        .unwrap_err();
    let ServiceError::Invalid(errors) = duplicate else {
        panic!("expected a validation error")
    };
    assert_eq!(errors[0].field, "tag_key");
    assert_eq!(
        errors[0].message,
        "Tag key 'env' is already used; keys must be unique."
    );

    let too_long = tags
        .put_image_tag(&actor, &id, None, &"k".repeat(129), "")
        .await
        .unwrap_err();
    assert!(matches!(too_long, ServiceError::Invalid(_)));

    for i in 1..50 {
        tags.put_image_tag(&actor, &id, None, &format!("k{i:02}"), "v")
            .await
            .unwrap();
    }
    assert_eq!(
        app.services
            .get_image(&actor, &id)
            .await
            .unwrap()
            .tags
            .len(),
        50
    );
    let fifty_first = tags
        .put_image_tag(&actor, &id, None, "one-too-many", "v")
        .await
        .unwrap_err();
    let ServiceError::Invalid(errors) = fifty_first else {
        panic!("expected a validation error")
    };
    assert_eq!(errors[0].field, "tags");
    assert_eq!(
        errors[0].message,
        "An image can have at most 50 tags (51 given)."
    );

    // Edit a tag's key and value, then remove it.
    tags.put_image_tag(&actor, &id, Some("env"), "environment", "staging")
        .await
        .unwrap();
    let image = app.services.get_image(&actor, &id).await.unwrap();
    assert!(
        image
            .tags
            .iter()
            .any(|t| t.key == "environment" && t.value == "staging")
    );
    assert!(!image.tags.iter().any(|t| t.key == "env"));
    tags.remove_image_tag(&actor, &id, "environment")
        .await
        .unwrap();
    assert_eq!(
        app.services
            .get_image(&actor, &id)
            .await
            .unwrap()
            .tags
            .len(),
        49
    );
    let gone = tags
        .put_image_tag(&actor, &id, Some("environment"), "x", "y")
        .await
        .unwrap_err();
    assert!(matches!(gone, ServiceError::Conflict(_)));

    let other = app.sign_up("other").await;
    assert!(matches!(
        tags.put_image_tag(&other, &id, None, "mine", "").await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        tags.remove_image_tag(&other, &id, "k01").await,
        Err(ServiceError::NotFound(_))
    ));
}

async fn work_history_records_every_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("history", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(image.status, ImageStatus::Active);
    let s = &app.services;
    s.update_image(
        &actor,
        &id,
        &edit_form("history-2", "20"),
        image.updated_at_ms,
    )
    .await
    .unwrap();
    s.put_image_tag(&actor, &id, None, "env", "prod")
        .await
        .unwrap();
    s.put_image_tag(&actor, &id, Some("env"), "env", "dev")
        .await
        .unwrap();
    s.remove_image_tag(&actor, &id, "env").await.unwrap();
    s.set_image_protected(&actor, &id, true).await.unwrap();
    s.set_image_protected(&actor, &id, false).await.unwrap();
    s.create_download_link(&actor, &id).await.unwrap();
    s.revoke_download_links(&actor, &id).await.unwrap();

    let page = s.image_history(&actor, &id, 1).await.unwrap();
    let topics: Vec<HistoryTopic> = page.entries.iter().map(|e| e.topic).collect();
    use HistoryTopic::*;
    assert_eq!(
        topics,
        [
            DownloadLinksRevoked,
            DownloadLinkIssued,
            ProtectedChanged,
            ProtectedChanged,
            TagsChanged,
            TagsChanged,
            TagsChanged,
            Edited,
            ImportFinished,
            ImportStarted,
            Created,
        ],
        "newest first"
    );
    assert_eq!(page.total, 11);
    let entry = |i: usize| &page.entries[i];
    let changes = |i: usize| -> Vec<String> {
        entry(i)
            .changes
            .iter()
            .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
            .collect()
    };
    assert_eq!(
        changes(7),
        [
            "Image name: history → history-2",
            "Description: made by a test → after",
            "System platform: Ubuntu → Rocky Linux",
            "System version: Not specified → 9",
            "Minimum Disk: 10 GB → 20 GB",
            "Architecture: x86_64 → aarch64",
            "Boot mode: BIOS → UEFI",
            "Features: None → cloud-init",
        ]
    );
    assert_eq!(changes(6), ["Tag env: (none) → prod"]);
    assert_eq!(changes(5), ["Tag env: prod → dev"]);
    assert_eq!(changes(4), ["Tag env: dev → (none)"]);
    assert_eq!(changes(3), ["Protected: Not used → Use"]);
    assert_eq!(changes(2), ["Protected: Use → Not used"]);
    assert!(entry(1).message.starts_with("Valid until "));
    assert_eq!(entry(7).worker, actor.user_name);
    assert_eq!(entry(8).worker, "system");
    assert_eq!(entry(10).worker, actor.user_name);
    assert!(
        page.entries
            .iter()
            .all(|e| e.result == WorkResult::Succeeded)
    );
    assert!(page.entries.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));

    // A failed import is recorded with its reason; the deletion is kept after the image goes.
    let failed = s
        .create_image(
            &actor,
            &create_form("broken", &source.url("files", "missing.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&actor, &failed).await;
    let failed_history = s.image_history(&actor, &failed, 1).await.unwrap();
    let last = &failed_history.entries[0];
    assert_eq!(
        (last.topic, last.result),
        (ImportFailed, WorkResult::Failed)
    );
    assert!(last.message.contains("404"), "{}", last.message);

    // Delete moves it to the Recycle Bin, where its history is still read; Destroy keeps it
    // after the image goes.
    s.delete_image(&actor, &id).await.unwrap();
    let binned = s.image_history(&actor, &id, 1).await.unwrap();
    assert_eq!(binned.total, 12);
    assert_eq!(binned.entries[0].topic, Deleted);
    assert!(
        binned.entries[0].message.contains("Recycle Bin"),
        "{}",
        binned.entries[0].message
    );
    s.destroy_images(&actor, std::slice::from_ref(&id))
        .await
        .unwrap();
    let (kept, total) = s
        .store()
        .list_events(&actor.account_id, &id, 1, 50)
        .await
        .unwrap();
    assert_eq!(total, 13);
    assert_eq!(kept[0].topic, HistoryTopic::Destroyed);
    assert_eq!(kept[1].topic, Deleted);
    assert_eq!(kept[0].image_name, "history-2");
    assert!(matches!(
        s.image_history(&actor, &id, 1).await,
        Err(ServiceError::NotFound(_))
    ));

    // Pages of 20, and another account sees none of it.
    let other = app.sign_up("other").await;
    assert!(matches!(
        s.image_history(&other, &failed, 1).await,
        Err(ServiceError::NotFound(_))
    ));
}

crate::on_both_databases!(
    edit_changes_attributes_with_the_create_rules,
    tags_are_limited_and_unique,
    work_history_records_every_change,
);
