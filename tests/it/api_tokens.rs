//! API tokens: made, listed and revoked by their user; a token acts as that user until it is
//! revoked or expires; wrong tokens are limited like wrong passwords; only a hash is stored.

use image_console::domain::api_token::{API_TOKEN_PREFIX, MAX_API_TOKENS_PER_USER};
use image_console::service::{ClientAddr, ServiceError, ServiceSettings};

use crate::support::{Backend, CLIENT, PASSWORD, TestApp, test_settings};

fn field_errors(error: ServiceError) -> Vec<String> {
    match error {
        ServiceError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected field errors, got {other:?}"),
    }
}

async fn a_token_acts_as_its_user_until_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let bob = app.sign_up("globex").await;

    let made = s
        .create_api_token(&alice, " ci-pipeline ", "90")
        .await
        .unwrap();
    assert!(made.secret.starts_with(API_TOKEN_PREFIX));
    assert_eq!(made.secret.len(), API_TOKEN_PREFIX.len() + 43);
    assert_eq!(made.summary.name, "ci-pipeline");
    let ninety_days = 90 * 86_400_000;
    assert_eq!(
        made.summary.expires_at_ms,
        Some(made.summary.created_at_ms + ninety_days)
    );
    // The list shows it, without the secret, and never used.
    let listed = s.list_api_tokens(&alice).await.unwrap();
    assert_eq!(listed, vec![made.summary.clone()]);
    assert_eq!(listed[0].last_used_at_ms, None);
    // Only a keyed hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(s.store().pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&made.secret[API_TOKEN_PREFIX.len()..]));

    // It acts as Alice, and its use is recorded.
    let actor = s
        .authenticate_api_token(CLIENT, Some(&made.secret))
        .await
        .unwrap();
    assert_eq!(actor, alice.actor);
    // It is written off the request's path, shortly after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.list_api_tokens(&alice).await.unwrap()[0]
        .last_used_at_ms
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the use was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Another user neither sees nor revokes it.
    assert!(s.list_api_tokens(&bob).await.unwrap().is_empty());
    assert!(matches!(
        s.revoke_api_token(&bob, &made.summary.id).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(
        s.authenticate_api_token(CLIENT, Some(&made.secret))
            .await
            .is_ok()
    );

    // Revoked, it is refused.
    s.revoke_api_token(&alice, &made.summary.id).await.unwrap();
    assert!(s.list_api_tokens(&alice).await.unwrap().is_empty());
    assert!(matches!(
        s.authenticate_api_token(CLIENT, Some(&made.secret)).await,
        Err(ServiceError::Unauthorized)
    ));
    assert!(matches!(
        s.revoke_api_token(&alice, &made.summary.id).await,
        Err(ServiceError::NotFound(_))
    ));
}

async fn bad_input_and_expired_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;

    // Bad input names its fields and makes nothing.
    let fields = field_errors(
        s.create_api_token(&alice, "ci/prod", "7")
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, ["name", "lifetime"]);
    assert!(s.list_api_tokens(&alice).await.unwrap().is_empty());

    // No expiry works until revoked; an expired token is refused.
    let forever = s
        .create_api_token(&alice, "forever", "never")
        .await
        .unwrap();
    assert_eq!(forever.summary.expires_at_ms, None);
    let month = s.create_api_token(&alice, "month", "30").await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(image_console::service::now_ms() - 1)
        .bind(&month.summary.id)
        .execute(s.store().pool())
        .await
        .unwrap();
    assert!(
        s.authenticate_api_token(CLIENT, Some(&forever.secret))
            .await
            .is_ok()
    );
    assert!(matches!(
        s.authenticate_api_token(CLIENT, Some(&month.secret)).await,
        Err(ServiceError::Unauthorized)
    ));
    let listed = s.list_api_tokens(&alice).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.id == month.summary.id && t.is_expired(image_console::service::now_ms()))
    );

    // At most MAX_API_TOKENS_PER_USER per user.
    for i in listed.len()..MAX_API_TOKENS_PER_USER {
        s.create_api_token(&alice, &format!("t{i}"), "30")
            .await
            .unwrap();
    }
    let fields = field_errors(
        s.create_api_token(&alice, "one more", "30")
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, ["name"]);
    assert_eq!(
        s.list_api_tokens(&alice).await.unwrap().len(),
        MAX_API_TOKENS_PER_USER
    );
}

async fn wrong_tokens_are_limited_per_address(backend: Backend) {
    let settings = ServiceSettings {
        limits: image_console::service::AbuseLimits {
            api_token_failures_per_address_per_minute: 3,
            sign_in_per_address_per_minute: 3,
            ..test_settings().limits
        },
        ..test_settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let s = &app.services;
    let alice = app.sign_up("acme").await;
    let good = s.create_api_token(&alice, "ci", "30").await.unwrap();
    let attacker = ClientAddr("198.51.100.7".parse().unwrap());
    let guess = format!("{API_TOKEN_PREFIX}{}", "A".repeat(43));
    for token in [None, Some("not-a-token"), Some(guess.as_str())] {
        assert!(matches!(
            s.authenticate_api_token(attacker, token).await,
            Err(ServiceError::Unauthorized)
        ));
    }
    assert!(matches!(
        s.authenticate_api_token(attacker, Some(&guess)).await,
        Err(ServiceError::RateLimited(_))
    ));
    // The address waits before any token is looked up, a right one too; other clients are
    // not affected, and the address's people still sign in to the console.
    assert!(matches!(
        s.authenticate_api_token(attacker, Some(&good.secret)).await,
        Err(ServiceError::RateLimited(_))
    ));
    assert!(matches!(
        s.authenticate_api_token(CLIENT, Some(&guess)).await,
        Err(ServiceError::Unauthorized)
    ));
    assert!(
        s.authenticate_api_token(CLIENT, Some(&good.secret))
            .await
            .is_ok()
    );
    assert!(s.sign_in(attacker, "admin@acme", PASSWORD).await.is_ok());
}

crate::on_both_databases!(
    a_token_acts_as_its_user_until_revoked,
    bad_input_and_expired_tokens_are_refused,
    wrong_tokens_are_limited_per_address,
);
