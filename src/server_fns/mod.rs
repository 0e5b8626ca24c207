//! Server functions: the browser's calls into the service layer. Each one authenticates,
//! calls one `Services` method and maps the error; the rules live in `service`.
//! Their URLs are public, so none trusts the UI to have checked anything.

pub mod api_tokens;
pub mod auth;
pub mod certificates;
pub mod error;
pub mod images;
pub mod keys;
pub mod lifecycle;
pub mod shares;

#[cfg(feature = "ssr")]
pub mod host;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use axum::http::{HeaderValue, StatusCode, header};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    use super::error::AppError;
    use super::host::Host;
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

    fn host() -> Result<Host, AppError> {
        use_context::<Host>().ok_or_else(|| {
            tracing::error!("Host missing from the server function context");
            AppError::Internal("no-host".into())
        })
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
        let signed_in = match host()?.session_token(&parts.headers) {
            Some(token) => services.authenticate(&token).await,
            None => Ok(None),
        };
        match signed_in {
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
            .unwrap_or(ClientAddr::UNKNOWN)
    }

    /// Converts a service error for the browser. The host answers it as it answers every
    /// other route (status, `Retry-After`, a fault logged once under the request's reference).
    pub fn to_app_error(error: ServiceError) -> AppError {
        let headers = parts().map(|parts| parts.headers).unwrap_or_default();
        let answer = match host() {
            Ok(host) => host.answer(&error, &headers),
            Err(missing) => return missing,
        };
        set_status(answer.status);
        if let Some(response) = use_context::<ResponseOptions>() {
            for (name, value) in answer.headers {
                response.insert_header(name, value);
            }
        }
        match error {
            ServiceError::Invalid(errors) => AppError::Invalid(errors),
            ServiceError::Unauthorized => AppError::Unauthorized,
            ServiceError::NotFound(m) | ServiceError::Gone(m) => AppError::NotFound(m),
            ServiceError::Conflict(m) => AppError::Conflict(m),
            ServiceError::Forbidden(m) => AppError::Forbidden(m),
            ServiceError::TooLarge(m) => AppError::BadRequest(m),
            ServiceError::RateLimited(wait) => {
                AppError::TooManyAttempts(crate::domain::notices::wait_seconds(wait))
            }
            ServiceError::Busy(wait) => AppError::Busy(crate::domain::notices::wait_seconds(wait)),
            // Server functions carry no image bytes, so neither of these reaches them; they
            // keep their sentences all the same.
            ServiceError::TooManyRequests { message, .. } | ServiceError::TimedOut(message) => {
                AppError::Conflict(message)
            }
            ServiceError::Internal(_) | ServiceError::DataUnavailable(_) => {
                AppError::Internal(answer.reference)
            }
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

    pub fn start_session(token: &SessionToken) -> Result<(), AppError> {
        append_set_cookie(host()?.session_cookie(token));
        Ok(())
    }

    pub fn end_session() -> Result<(), AppError> {
        append_set_cookie(host()?.clear_session_cookie());
        Ok(())
    }

    /// The session token of the current request, if any.
    pub fn request_session_token() -> Option<SessionToken> {
        let host = host().ok()?;
        parts().and_then(|parts| host.session_token(&parts.headers))
    }
}
