//! Encryption keys: created, listed, disabled and enabled, scheduled for deletion and
//! cancelled, rotated, made default; the rules and the account scoping on both databases.

use image_console::domain::keys::{KeyState, MAX_KEYS_PER_ACCOUNT};
use image_console::service::ServiceError;

use crate::support::{Backend, TestApp};

fn refusal(error: ServiceError) -> String {
    match error {
        ServiceError::Invalid(errors) => errors
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join(" "),
        ServiceError::Conflict(message) | ServiceError::NotFound(message) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn keys_go_through_their_states(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;

    let first = s
        .create_key(&alice, " prod-images ", "Production", false)
        .await
        .unwrap();
    let second = s.create_key(&alice, "staging", "", true).await.unwrap();
    let keys = s.list_keys(&alice).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].name, "prod-images");
    assert_eq!(keys[0].description, "Production");
    assert_eq!(keys[0].provider, "Local");
    assert_eq!((keys[0].state, keys[0].version), (KeyState::Enabled, 1));
    // The first key was the default until the second asked to be.
    assert!(!keys[0].is_default && keys[1].is_default);
    // Only a wrapped form of each version is stored.
    let materials: Vec<String> =
        sqlx::query_scalar("SELECT material FROM encryption_key_versions ORDER BY key_id")
            .fetch_all(s.store().pool())
            .await
            .unwrap();
    assert_eq!(materials.len(), 2);
    assert!(materials.iter().all(|m| m.starts_with("m1:")));

    // Names are checked as the form checks them, and unique in the account only.
    let refused = refusal(
        s.create_key(&alice, "staging", "", false)
            .await
            .unwrap_err(),
    );
    assert!(
        refused.contains("already has a key named staging"),
        "{refused}"
    );
    assert!(
        refusal(
            s.create_key(&alice, "bad name", "", false)
                .await
                .unwrap_err()
        )
        .contains("(found a space)")
    );
    s.create_key(&bob, "staging", "", false).await.unwrap();
    assert_eq!(s.list_keys(&bob).await.unwrap().len(), 1);
    assert!(s.list_keys(&bob).await.unwrap()[0].is_default);

    // Another account's key is answered as a missing one.
    let refused = refusal(s.change_key(&bob, &first, "disable", "").await.unwrap_err());
    assert_eq!(refused, "No key with that ID exists in this account.");
    assert!(
        s.change_key(&bob, "not-a-uuid", "disable", "")
            .await
            .is_err()
    );

    // Disable and enable; a disabled key is no longer the default.
    s.change_key(&alice, &second, "disable", "").await.unwrap();
    let refused = refusal(
        s.change_key(&alice, &second, "disable", "")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        refused,
        "Key staging is Disabled and cannot be disabled: only an enabled key can be."
    );
    let keys = s.list_keys(&alice).await.unwrap();
    assert_eq!(keys[1].state, KeyState::Disabled);
    assert!(!keys.iter().any(|k| k.is_default));
    assert!(s.change_key(&alice, &second, "rotate", "").await.is_err());
    s.change_key(&alice, &second, "enable", "").await.unwrap();
    s.change_key(&alice, &first, "make_default", "")
        .await
        .unwrap();
    assert!(s.list_keys(&alice).await.unwrap()[0].is_default);

    // Scheduled for deletion from Enabled, cancelled: enabled again.
    let refused = refusal(
        s.change_key(&alice, &second, "schedule_deletion", "6")
            .await
            .unwrap_err(),
    );
    assert_eq!(refused, "Enter a waiting period from 7 to 30 days.");
    s.change_key(&alice, &second, "schedule_deletion", "7")
        .await
        .unwrap();
    let pending = s.list_keys(&alice).await.unwrap().remove(1);
    assert_eq!(pending.state, KeyState::PendingDeletion);
    let week = pending.deletion_at_ms.unwrap() - image_console::service::now_ms();
    assert!((6 * 86_400_000..=7 * 86_400_000).contains(&week), "{week}");
    s.change_key(&alice, &second, "cancel_deletion", "")
        .await
        .unwrap();
    let back = s.list_keys(&alice).await.unwrap().remove(1);
    assert_eq!((back.state, back.deletion_at_ms), (KeyState::Enabled, None));

    // Rotation adds a version, wrapped under the master key like the first.
    s.change_key(&alice, &first, "rotate", "").await.unwrap();
    let rotated = s.list_keys(&alice).await.unwrap().remove(0);
    assert_eq!(rotated.version, 2);
    assert!(rotated.rotated_at_ms.is_some());
    // Once an hour at most.
    let refused = refusal(
        s.change_key(&alice, &first, "rotate", "")
            .await
            .unwrap_err(),
    );
    assert!(refused.contains("once an hour"), "{refused}");

    // Deleted when its time comes, not before; then it is listed last and does nothing.
    s.change_key(&alice, &second, "disable", "").await.unwrap();
    s.change_key(&alice, &second, "schedule_deletion", "30")
        .await
        .unwrap();
    let now = image_console::service::now_ms();
    assert_eq!(s.delete_due_keys(now).await.unwrap(), 0);
    assert_eq!(s.delete_due_keys(now + 31 * 86_400_000).await.unwrap(), 1);
    let keys = s.list_keys(&alice).await.unwrap();
    assert_eq!(keys[1].state, KeyState::Deleted);
    for action in ["enable", "cancel_deletion", "rotate"] {
        assert!(s.change_key(&alice, &second, action, "").await.is_err());
    }
    // A deleted local key's material is erased; its name can be used again.
    let erased: Option<String> =
        sqlx::query_scalar("SELECT material FROM encryption_key_versions WHERE key_id = $1")
            .bind(&second)
            .fetch_one(s.store().pool())
            .await
            .unwrap();
    assert_eq!(erased, None);
    s.create_key(&alice, "staging", "", false).await.unwrap();
}

async fn an_account_has_at_most_its_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    for n in 0..MAX_KEYS_PER_ACCOUNT {
        s.create_key(&alice, &format!("k{n}"), "", false)
            .await
            .unwrap();
    }
    let refused = refusal(
        s.create_key(&alice, "one-more", "", false)
            .await
            .unwrap_err(),
    );
    assert!(refused.contains("the most it may have"), "{refused}");
}

crate::on_both_databases!(
    keys_go_through_their_states,
    an_account_has_at_most_its_keys
);
