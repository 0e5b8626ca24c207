//! A restart never leaves an image stuck in Importing, and never keeps bytes without a row.

use image_console::domain::image::ImageStatus;
use image_console::service::importer::MAX_IMPORT_ATTEMPTS;

use image_console::store::images::QuotaLimits;

use crate::support::{Backend, SourceServer, TestApp, create_form, sha512_hex};

const LIMITS: QuotaLimits = QuotaLimits {
    max_images: 10,
    max_stored_bytes: 1 << 40,
};

async fn an_import_cut_off_by_a_restart_resumes_and_finishes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("slow.qcow2", "1G");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.resize(1 << 20, 0xab);
    source.file("slow.qcow2", &bytes);
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("slow", &source.url("slow", "slow.qcow2")),
        )
        .await
        .unwrap();
    app.wait_until(&actor, &id, |i| {
        i.progress.is_some_and(|p| p.bytes_done > 0)
    })
    .await;

    let app = app.restart().await;
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );
    assert_eq!(
        image.hash_value.as_deref(),
        Some(sha512_hex(&source.path("slow.qcow2")).as_str())
    );
    assert_eq!(app.stored_files().await, (vec![id.clone()], vec![]));
}

async fn an_import_interrupted_too_often_is_marked_failed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    // Record an image as a crashed server would have left it: Importing, with partial bytes,
    // after its last allowed attempt. The importer is not told about it.
    let id = uuid::Uuid::new_v4().to_string();
    let store = app.services.store();
    store
        .create_image(
            &image_console::store::images::NewImageRow {
                attributes: image_console::domain::image_spec::ImageAttributes {
                    name: "crashy".into(),
                    description: String::new(),
                    os: Some(image_console::domain::os_catalogue::OperatingSystem {
                        platform: image_console::domain::os_catalogue::OsPlatform::Rocky,
                        version: None,
                    }),
                    min_disk_gb: 0,
                    min_ram_gb: 0,
                    protected: false,
                    architecture: Default::default(),
                    boot_mode: Default::default(),
                    features: Default::default(),
                },
                id: id.clone(),
                account_id: actor.account_id.clone(),
                visibility: image_console::domain::image_spec::Visibility::Private,
                image_type: "Image-Based",
                source_url: Some(source.url("files", "disk.qcow2")),
                expected_checksum: None,
                declared_format: image_console::domain::image::DiskFormat::Qcow2,
                encryption_key: None,
                convert_to: None,
                signature: Default::default(),
                source_image_id: None,
                note: None,
                local_file: None,
                created_by: actor.user_name.clone(),
                created_at_ms: 1,
            },
            &[],
            LIMITS,
        )
        .await
        .unwrap();
    let fence = crate::support::import_fence(store, &id).await;
    for _ in 0..MAX_IMPORT_ATTEMPTS {
        store
            .requeue_import(&actor.account_id, &id, &fence, 2)
            .await
            .unwrap();
        assert!(
            store
                .claim_import(&actor.account_id, &id, &fence, 3)
                .await
                .unwrap()
                .is_some()
        );
    }
    std::fs::write(
        app.blob_dir().join("staging").join(format!("{id}.part")),
        b"partial",
    )
    .unwrap();

    let app = app.restart().await;
    let image = app.services.get_image(&actor, &id).await.unwrap();
    assert_eq!(image.status, ImageStatus::Failed);
    assert_eq!(
        image.failure_reason.as_deref(),
        Some("The import was interrupted by a server restart 3 times; create the image again.")
    );
    assert_eq!(app.stored_files().await, (vec![], vec![]));
}

async fn a_queued_image_left_by_a_restart_is_imported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    let id = uuid::Uuid::new_v4().to_string();
    app.services
        .store()
        .create_image(
            &image_console::store::images::NewImageRow {
                attributes: image_console::domain::image_spec::ImageAttributes {
                    name: "queued".into(),
                    description: String::new(),
                    os: Some(image_console::domain::os_catalogue::OperatingSystem {
                        platform: image_console::domain::os_catalogue::OsPlatform::Alma,
                        version: None,
                    }),
                    min_disk_gb: 0,
                    min_ram_gb: 0,
                    protected: false,
                    architecture: Default::default(),
                    boot_mode: Default::default(),
                    features: Default::default(),
                },
                id: id.clone(),
                account_id: actor.account_id.clone(),
                visibility: image_console::domain::image_spec::Visibility::Shared,
                image_type: "Image-Based",
                source_url: Some(source.url("files", "disk.qcow2")),
                expected_checksum: None,
                declared_format: image_console::domain::image::DiskFormat::Qcow2,
                encryption_key: None,
                convert_to: None,
                signature: Default::default(),
                source_image_id: None,
                note: None,
                local_file: None,
                created_by: actor.user_name.clone(),
                created_at_ms: 1,
            },
            &[],
            LIMITS,
        )
        .await
        .unwrap();
    let app = app.restart().await;
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );
}

async fn orphaned_bytes_are_swept_at_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("kept", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&actor, &id).await;
    let orphan = uuid::Uuid::new_v4().to_string();
    std::fs::write(
        app.blob_dir().join("images").join(&orphan),
        b"no row names me",
    )
    .unwrap();
    std::fs::write(
        app.blob_dir()
            .join("staging")
            .join(format!("{orphan}.part")),
        b"half",
    )
    .unwrap();

    let app = app.restart().await;
    assert_eq!(app.stored_files().await, (vec![id.clone()], vec![]));
    assert_eq!(
        app.services.get_image(&actor, &id).await.unwrap().status,
        ImageStatus::Active
    );
}

crate::on_both_databases!(
    an_import_cut_off_by_a_restart_resumes_and_finishes,
    an_import_interrupted_too_often_is_marked_failed,
    a_queued_image_left_by_a_restart_is_imported,
    orphaned_bytes_are_swept_at_start,
);
