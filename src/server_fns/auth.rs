//! Sign up, sign in, sign out and who is signed in.

use leptos::prelude::*;

use crate::domain::account::SignedInUser;
use crate::server_fns::error::AppError;

/// Creates an account and its first user, signs them in and opens the Image List.
#[server]
pub async fn sign_up(
    account_id: String,
    user_name: String,
    password: String,
    password_confirm: String,
) -> Result<(), AppError> {
    use super::ssr;
    use crate::domain::account::SignUpForm;

    let services = ssr::services()?;
    let form = SignUpForm {
        account_id,
        user_name,
        password,
        password_confirm,
    };
    let (_, token) = services
        .sign_up(ssr::client_addr(), &form)
        .await
        .map_err(ssr::to_app_error)?;
    ssr::start_session(&token)?;
    leptos_axum::redirect("/images");
    Ok(())
}

/// Signs in and goes to `next` (a path on this site) or the Image List.
#[server]
pub async fn sign_in(
    user_name: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::ssr;

    let services = ssr::services()?;
    let (_, token) = services
        .sign_in(ssr::client_addr(), &user_name, &password)
        .await
        .map_err(ssr::to_app_error)?;
    ssr::start_session(&token)?;
    leptos_axum::redirect(&crate::domain::navigation::safe_next(next.as_deref()));
    Ok(())
}

/// Ends the session and goes to Sign In.
#[server]
pub async fn sign_out() -> Result<(), AppError> {
    use super::ssr;

    let services = ssr::services()?;
    if let Some(token) = ssr::request_session_token() {
        services.sign_out(&token).await.map_err(ssr::to_app_error)?;
    }
    ssr::end_session()?;
    leptos_axum::redirect("/signin");
    Ok(())
}

/// The signed-in user, or `None` for a visitor.
#[server]
pub async fn current_user() -> Result<Option<SignedInUser>, AppError> {
    use super::ssr;

    match ssr::actor().await {
        Ok((_, actor)) => Ok(Some(actor.signed_in_user())),
        Err(AppError::Unauthorized) => Ok(None),
        Err(e) => Err(e),
    }
}
