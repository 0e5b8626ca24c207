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
    use crate::service::accounts::SessionToken;
    use crate::service::{Actor, ServiceError, Services};

    pub fn services() -> Result<Services, AppError> {
        use_context::<Services>().ok_or_else(|| {
            tracing::error!("Services missing from the server function context");
            AppError::Internal("no-services".into())
        })
    }

    fn set_status(status: StatusCode) {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.set_status(status);
        }
    }

    /// The signed-in actor, or `Unauthorized`.
    pub async fn actor() -> Result<(Services, Actor), AppError> {
        let services = services()?;
        let parts = use_context::<http::request::Parts>()
            .ok_or_else(|| AppError::Internal("no-request".into()))?;
        match actor_from_headers(&services, &parts.headers).await {
            Ok(Some(actor)) => Ok((services, actor)),
            Ok(None) => {
                set_status(StatusCode::UNAUTHORIZED);
                Err(AppError::Unauthorized)
            }
            Err(e) => Err(to_app_error(e)),
        }
    }

    /// Converts a service error for the browser, setting the HTTP status, and logs internal
    /// faults once, here, with a reference the user can quote.
    pub fn to_app_error(error: ServiceError) -> AppError {
        let (status, app_error) = match error {
            ServiceError::Invalid(errors) => (StatusCode::BAD_REQUEST, AppError::Invalid(errors)),
            ServiceError::Unauthorized => (StatusCode::UNAUTHORIZED, AppError::Unauthorized),
            ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, AppError::NotFound(m)),
            ServiceError::Conflict(m) => (StatusCode::CONFLICT, AppError::Conflict(m)),
            ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, AppError::Forbidden(m)),
            ServiceError::Internal(e) => {
                let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                tracing::error!(%reference, error = format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    AppError::Internal(reference),
                )
            }
        };
        set_status(status);
        app_error
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
        let policy = use_context::<CookiePolicy>().unwrap_or_default();
        append_set_cookie(crate::server::auth::session_cookie(
            token,
            policy.session_ttl,
            policy.secure,
        ));
    }

    pub fn end_session() {
        let policy = use_context::<CookiePolicy>().unwrap_or_default();
        append_set_cookie(crate::server::auth::clear_session_cookie(policy.secure));
    }

    /// The session token of the current request, if any.
    pub fn request_session_token() -> Option<SessionToken> {
        use_context::<http::request::Parts>()
            .and_then(|parts| crate::server::auth::session_token(&parts.headers))
    }
}
