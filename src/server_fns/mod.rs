//! Server functions: the browser's calls into the service layer. Each one authenticates,
//! calls one `Services` method and maps the error; the rules live in `service`.
//! Their URLs are public, so none trusts the UI to have checked anything.

pub mod auth;
pub mod images;
pub mod shares;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use axum::http::{HeaderValue, StatusCode, header};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    use crate::app::error::AppError;
    use crate::server::CookiePolicy;
    use crate::server::auth::actor_from_headers;
    use crate::server::errors;
    use crate::service::accounts::SessionToken;
    use crate::service::{Actor, ClientAddr, ServiceError, Services};

    pub fn services() -> Result<Services, AppError> {
        use_context::<Services>().ok_or_else(|| {
            tracing::error!("Services missing from the server function context");
            AppError::Internal("no-services".into())
        })
    }

    fn parts() -> Option<http::request::Parts> {
        use_context::<http::request::Parts>()
    }

    fn cookie_policy() -> CookiePolicy {
        use_context::<CookiePolicy>().unwrap_or_default()
    }

    pub(crate) fn set_status(status: StatusCode) {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.set_status(status);
        }
    }

    /// The signed-in actor, or `Unauthorized`.
    pub async fn actor() -> Result<(Services, Actor), AppError> {
        let services = services()?;
        let parts = parts().ok_or_else(|| AppError::Internal("no-request".into()))?;
        match actor_from_headers(&services, &cookie_policy(), &parts.headers).await {
            Ok(Some(actor)) => Ok((services, actor)),
            Ok(None) => {
                set_status(StatusCode::UNAUTHORIZED);
                Err(AppError::Unauthorized)
            }
            Err(e) => Err(to_app_error(e)),
        }
    }

    /// Where the request came from, as the router established it.
    pub fn client_addr() -> ClientAddr {
        parts()
            .and_then(|parts| parts.extensions.get::<ClientAddr>().copied())
            .unwrap_or(errors::UNKNOWN_CLIENT)
    }

    /// Converts a service error for the browser through the one mapping in
    /// `server::errors`, which sets the status (and `Retry-After`) and logs faults once under
    /// the request's reference.
    pub fn to_app_error(error: ServiceError) -> AppError {
        let reference = parts()
            .map(|parts| errors::reference(&parts.headers))
            .unwrap_or_else(errors::new_reference);
        let answer = errors::Answer::of_service(&error, &reference);
        set_status(answer.status);
        if let Some(wait) = answer.retry_after
            && let Some(response) = use_context::<ResponseOptions>()
        {
            response.insert_header(
                header::RETRY_AFTER,
                HeaderValue::from(crate::domain::notices::wait_seconds(wait)),
            );
        }
        match error {
            ServiceError::Invalid(errors) => AppError::Invalid(errors),
            ServiceError::Unauthorized => AppError::Unauthorized,
            ServiceError::NotFound(m) => AppError::NotFound(m),
            ServiceError::Conflict(m) => AppError::Conflict(m),
            ServiceError::Forbidden(m) => AppError::Forbidden(m),
            ServiceError::RateLimited(wait) => {
                AppError::TooManyAttempts(crate::domain::notices::wait_seconds(wait))
            }
            ServiceError::Busy(wait) => AppError::Busy(crate::domain::notices::wait_seconds(wait)),
            ServiceError::Internal(_) => AppError::Internal(reference),
        }
    }

    fn append_set_cookie(value: String) {
        if let (Some(response), Ok(value)) = (
            use_context::<ResponseOptions>(),
            HeaderValue::from_str(&value),
        ) {
            response.append_header(header::SET_COOKIE, value);
        }
    }

    pub fn start_session(token: &SessionToken) {
        append_set_cookie(crate::server::auth::session_cookie(token, &cookie_policy()));
    }

    pub fn end_session() {
        append_set_cookie(crate::server::auth::clear_session_cookie(&cookie_policy()));
    }

    /// The session token of the current request, if any.
    pub fn request_session_token() -> Option<SessionToken> {
        parts()
            .and_then(|parts| crate::server::auth::session_token(&cookie_policy(), &parts.headers))
    }
}
