use image_console::domain::account::SignUpForm;
use image_console::service::ServiceError;

use crate::support::{Backend, TestApp};

fn form(account_id: &str, user_name: &str) -> SignUpForm {
    SignUpForm {
        account_id: account_id.into(),
        user_name: user_name.into(),
        password: "a long passphrase".into(),
        password_confirm: "a long passphrase".into(),
    }
}

fn field_messages(error: ServiceError) -> Vec<(String, String)> {
    match error {
        ServiceError::Invalid(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

async fn sign_up_then_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, token) = app
        .services
        .sign_up(crate::support::CLIENT, &form("Acme-1", "Ada@Example.com"))
        .await
        .unwrap();
    assert_eq!(user.account_id, "acme-1");
    assert_eq!(user.user_name, "ada@example.com");
    let actor = app.services.authenticate(&token).await.unwrap().unwrap();
    assert_eq!(actor.account_id, "acme-1");

    // Names compare without case.
    let (_, second) = app
        .services
        .sign_in(
            crate::support::CLIENT,
            "ADA@example.com",
            "a long passphrase",
        )
        .await
        .unwrap();
    assert_eq!(
        app.services
            .authenticate(&second)
            .await
            .unwrap()
            .unwrap()
            .user_id,
        actor.user_id
    );

    app.services.sign_out(&token).await.unwrap();
    assert!(app.services.authenticate(&token).await.unwrap().is_none());
    assert!(app.services.authenticate(&second).await.unwrap().is_some());
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.services
        .sign_up(crate::support::CLIENT, &form("acme", "ada"))
        .await
        .unwrap();
    let wrong = field_messages(
        app.services
            .sign_in(crate::support::CLIENT, "ada", "not the password")
            .await
            .unwrap_err(),
    );
    let unknown = field_messages(
        app.services
            .sign_in(crate::support::CLIENT, "nobody", "not the password")
            .await
            .unwrap_err(),
    );
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong,
        [(
            "password".to_owned(),
            "The user name or password is incorrect.".to_owned()
        )]
    );
}

async fn taken_account_ids_and_user_names_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.services
        .sign_up(crate::support::CLIENT, &form("acme", "ada"))
        .await
        .unwrap();
    let taken = field_messages(
        app.services
            .sign_up(crate::support::CLIENT, &form("ACME", "grace"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        taken,
        [(
            "account_id".to_owned(),
            "Account ID 'acme' is already taken; choose another.".to_owned()
        )]
    );
    let name_taken = field_messages(
        app.services
            .sign_up(crate::support::CLIENT, &form("other", "Ada"))
            .await
            .unwrap_err(),
    );
    assert_eq!(name_taken[0].0, "user_name");
    // A refused sign-up leaves nothing behind: the account ID is still free.
    app.services
        .sign_up(crate::support::CLIENT, &form("other", "grace"))
        .await
        .unwrap();
}

async fn invalid_sign_up_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut bad = form("bad_id", "ada");
    bad.password_confirm = "different".into();
    let errors = field_messages(
        app.services
            .sign_up(crate::support::CLIENT, &bad)
            .await
            .unwrap_err(),
    );
    let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["account_id", "password_confirm"]);
    assert!(
        app.services
            .sign_in(crate::support::CLIENT, "ada", "a long passphrase")
            .await
            .is_err()
    );
    app.services
        .sign_up(crate::support::CLIENT, &form("good-id", "ada"))
        .await
        .unwrap();
}

crate::on_both_databases!(
    sign_up_then_sign_in,
    wrong_password_and_unknown_user_get_the_same_answer,
    taken_account_ids_and_user_names_are_refused,
    invalid_sign_up_changes_nothing,
);
