//! One account never sees or changes another account's images.

use image_console::domain::image::ImageStatus;
use image_console::service::ServiceError;

use crate::support::{Backend, SourceServer, TestApp, create_form};

async fn accounts_cannot_reach_each_others_images(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;

    let mut form = create_form("alice image", &source.url("files", "disk.qcow2"));
    form.attributes.protected = Some("on".into());
    let id = app.services.create_image(&alice, &form).await.unwrap();
    let image = app.wait_for_import(&alice, &id).await;
    assert_eq!(image.status, ImageStatus::Active);

    assert!(
        crate::support::all_images(&app.services, &bob)
            .await
            .is_empty()
    );
    let not_found = |e: ServiceError| matches!(e, ServiceError::NotFound(_));
    assert!(not_found(
        app.services.get_image(&bob, &id).await.unwrap_err()
    ));
    assert!(not_found(
        app.services
            .set_image_protected(&bob, &id, false)
            .await
            .unwrap_err()
    ));
    assert!(not_found(
        app.services.delete_image(&bob, &id).await.unwrap_err()
    ));

    // Bob's attempts changed nothing.
    let after = app.services.get_image(&alice, &id).await.unwrap();
    assert!(after.attributes.protected);
    assert_eq!(after.updated_at_ms, image.updated_at_ms);
    assert_eq!(
        crate::support::all_images(&app.services, &alice)
            .await
            .len(),
        1
    );

    // Bob's own image is his alone.
    let bob_id = app
        .services
        .create_image(
            &bob,
            &create_form("bob image", &source.url("files", "disk.qcow2")),
        )
        .await
        .unwrap();
    app.wait_for_import(&bob, &bob_id).await;
    let alice_list: Vec<_> = crate::support::all_images(&app.services, &alice)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(alice_list, vec![id.clone()]);
    assert!(not_found(
        app.services
            .delete_image(&alice, &bob_id)
            .await
            .unwrap_err()
    ));
    app.services.delete_image(&bob, &bob_id).await.unwrap();
    assert_eq!(
        crate::support::all_images(&app.services, &alice)
            .await
            .len(),
        1
    );
}

async fn malformed_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice").await;
    for id in ["", "../../etc/passwd", "1 OR 1=1", "not-a-uuid"] {
        assert!(matches!(
            app.services.get_image(&alice, id).await,
            Err(ServiceError::NotFound(_))
        ));
        assert!(matches!(
            app.services.delete_image(&alice, id).await,
            Err(ServiceError::NotFound(_))
        ));
    }
}

crate::on_both_databases!(
    accounts_cannot_reach_each_others_images,
    malformed_ids_are_not_found
);
