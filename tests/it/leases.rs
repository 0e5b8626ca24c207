//! Leases and their fences, as the store keeps them, on both databases: a claim refuses
//! another holder while it runs, an expired one is taken over (once in Work History), the
//! heartbeat learns which claims it lost, and a fenced write of the old claim changes nothing.

use image_console::domain::history::HistoryTopic;
use image_console::domain::image::ImageStatus;
use image_console::store::leases::{Claim, Fence, Taken, import_lease, new_token};

use crate::support::{Backend, Seed, TestApp, seed_image};

async fn claims_are_fenced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.services.store();
    let actor = app.sign_up("acme").await;
    let id = seed_image(
        &app.services,
        &actor,
        Seed {
            name: "fenced",
            status: ImageStatus::Queued,
            ..Seed::default()
        },
    )
    .await;
    let resource = import_lease(&id);
    // Times from now on, a minute's claims: no heartbeat of the console's own sees them run
    // out while the test runs.
    let base = image_console::service::now_ms();
    let at = |holder, ms: i64| Claim {
        holder,
        now_ms: base + ms * 60,
        ttl_ms: 60_000,
    };
    let first = Fence {
        resource: resource.clone(),
        token: new_token(),
    };
    assert_eq!(
        store
            .acquire_lease(&resource, &at("a", 10_000), &first.token)
            .await
            .unwrap(),
        Taken::Claimed
    );
    // Another holder waits while it runs.
    assert_eq!(
        store
            .acquire_lease(&resource, &at("b", 10_500), &new_token())
            .await
            .unwrap(),
        Taken::Refused
    );
    // The heartbeat renews it, and says so.
    let renewed = store
        .renew_leases(&at("a", 10_900), std::slice::from_ref(&first.token))
        .await
        .unwrap();
    assert_eq!(renewed, std::slice::from_ref(&first.token));
    assert!(
        store
            .claim_import(&actor.account_id, &id, &first, 11_000)
            .await
            .unwrap()
            .is_some()
    );

    // Past its expiry another holder takes it over, and Work History says so once.
    let second = Fence {
        resource: resource.clone(),
        token: new_token(),
    };
    assert_eq!(
        store
            .acquire_lease(&resource, &at("b", 12_000), &second.token)
            .await
            .unwrap(),
        Taken::TakenOver { from: "a".into() }
    );
    let history = app.services.image_history(&actor, &id, 1).await.unwrap();
    let takeovers: Vec<_> = history
        .entries
        .iter()
        .filter(|e| e.topic == HistoryTopic::TakenOver)
        .collect();
    assert_eq!(takeovers.len(), 1, "{history:?}");
    assert!(takeovers[0].message.contains("process a"), "{history:?}");

    // The old holder's heartbeat learns it lost the claim, and its writes change nothing.
    assert!(
        store
            .renew_leases(&at("a", 12_100), std::slice::from_ref(&first.token))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.holds_lease(&first).await.unwrap());
    assert!(
        !store
            .record_import_progress(&actor.account_id, &id, &first, 5, Some(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .fail_import(&actor.account_id, &id, &first, "late", 12_200)
            .await
            .unwrap()
    );
    assert!(
        !store
            .requeue_import(&actor.account_id, &id, &first, 12_200)
            .await
            .unwrap()
    );
    assert_eq!(
        app.services.get_image(&actor, &id).await.unwrap().status,
        ImageStatus::Importing
    );
    // The new holder's do.
    assert!(
        store
            .requeue_import(&actor.account_id, &id, &second, 12_300)
            .await
            .unwrap()
    );
    assert_eq!(
        app.services.get_image(&actor, &id).await.unwrap().status,
        ImageStatus::Queued
    );
    // A late release of the old claim leaves the new one alone.
    assert!(!store.release_lease(&resource, &first.token).await.unwrap());
    assert!(store.holds_lease(&second).await.unwrap());
    assert!(store.release_lease(&resource, &second.token).await.unwrap());
    assert!(!store.holds_lease(&second).await.unwrap());
}

crate::on_both_databases!(claims_are_fenced);
