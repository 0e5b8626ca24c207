//! The one mapping from errors to HTTP answers, for server functions, the tus routes, the
//! image API, downloads and the CSV export: each kind of error has one status and one
//! sentence, and a fault on the server's side is logged once under the request's reference
//! (its `x-request-id`, which the response carries too) and answered with that reference. A
//! request the server cannot read is the client's fault and never a 500. An `Answer` renders
//! itself in the form its route speaks (`Form`), with the same headers everywhere.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::notices;
use crate::domain::upload::TUS_VERSION;
use crate::service::ServiceError;

/// The request id every request gets (and every response carries).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's reference: its request id.
pub fn reference(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(new_reference, str::to_owned)
}

/// A fresh reference, for work that has no request.
pub fn new_reference() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How to answer one error.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// What the client reads.
    pub message: String,
    /// How long the client should wait before trying again, if that helps.
    pub retry_after: Option<Duration>,
}

/// The body an answer takes: the form its route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Plain text: pages' routes, downloads, the CSV export.
    PlainText,
    /// The image API's `{"error": {"code", "title", "message"}}`, as Glance answers.
    GlanceJson,
    /// A tus route's answer: plain text with `Tus-Resumable`, or no body to a HEAD.
    Tus { head: bool },
}

impl Answer {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// A fault on our side: logged here, once, under `reference`.
    fn fault(reference: &str, error: &anyhow::Error) -> Self {
        tracing::error!(reference, error = format!("{error:#}"), "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, notices::fault(reference))
    }

    /// Stored image data that cannot be read: logged here, once, under `reference`.
    pub fn data_unavailable(reference: &str, error: &anyhow::Error) -> Self {
        tracing::error!(
            reference,
            error = format!("{error:#}"),
            "image data cannot be read from storage"
        );
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            notices::data_unavailable(reference),
        )
    }

    pub fn of_service(error: &ServiceError, reference: &str) -> Self {
        match error {
            ServiceError::Invalid(errors) => Self::new(
                StatusCode::BAD_REQUEST,
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ServiceError::Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Sign in again to continue.",
            ),
            ServiceError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, m),
            ServiceError::Gone(m) => Self::new(StatusCode::GONE, m),
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            ServiceError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, m),
            ServiceError::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            ServiceError::RateLimited(wait) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                notices::too_many_attempts(*wait),
            )
            .retry(*wait),
            ServiceError::Busy(wait) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, notices::busy(*wait)).retry(*wait)
            }
            ServiceError::TooManyRequests {
                message,
                retry_after,
            } => Self::new(StatusCode::TOO_MANY_REQUESTS, message).retry(*retry_after),
            ServiceError::TimedOut(m) => Self::new(StatusCode::REQUEST_TIMEOUT, m),
            ServiceError::DataUnavailable(e) => Self::data_unavailable(reference, e),
            ServiceError::Internal(e) => Self::fault(reference, e),
        }
    }

    /// The headers every answer carries, whatever its form: no caching, and `Retry-After`
    /// when there is a wait. Server functions set them on their response too.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
        if let Some(wait) = self.retry_after {
            headers.push((
                header::RETRY_AFTER,
                HeaderValue::from(notices::wait_seconds(wait)),
            ));
        }
        headers
    }

    /// The answer in `form`.
    pub fn render(self, form: Form) -> Response {
        let headers = self.headers();
        let mut response = match form {
            Form::PlainText => (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                self.message,
            )
                .into_response(),
            Form::GlanceJson => {
                let title = self.status.canonical_reason().unwrap_or("Error");
                let error = serde_json::json!({
                    "error": { "code": self.status.as_u16(), "title": title, "message": self.message }
                });
                (self.status, axum::Json(error)).into_response()
            }
            Form::Tus { head } => {
                let mut response = if head {
                    self.status.into_response()
                } else {
                    (self.status, self.message).into_response()
                };
                response
                    .headers_mut()
                    .insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
                response
            }
        };
        response.headers_mut().extend(headers);
        response
    }
}

/// tus's protocol header, which every tus answer carries.
pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");

/// Plain text, the form of every route that is not the image API or tus.
impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        self.render(Form::PlainText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_has_its_status() {
        let cases = [
            (ServiceError::Invalid(vec![]), 400),
            (ServiceError::Unauthorized, 401),
            (ServiceError::NotFound("x".into()), 404),
            (ServiceError::Gone("x".into()), 410),
            (ServiceError::Conflict("x".into()), 409),
            (ServiceError::Forbidden("x".into()), 403),
            (ServiceError::TooLarge("x".into()), 413),
            (ServiceError::RateLimited(Duration::from_secs(3)), 429),
            (ServiceError::Busy(Duration::from_secs(1)), 503),
            (
                ServiceError::TooManyRequests {
                    message: "x".into(),
                    retry_after: Duration::from_secs(5),
                },
                429,
            ),
            (ServiceError::TimedOut("x".into()), 408),
            (
                ServiceError::DataUnavailable(anyhow::anyhow!("disk on fire")),
                503,
            ),
            (ServiceError::Internal(anyhow::anyhow!("disk on fire")), 500),
        ];
        for (error, status) in cases {
            let answer = Answer::of_service(&error, "ref-1");
            assert_eq!(answer.status.as_u16(), status, "{error:?}");
            assert!(
                !answer.message.contains("disk on fire"),
                "no internals leak"
            );
        }
        let limited =
            Answer::of_service(&ServiceError::RateLimited(Duration::from_millis(2500)), "r");
        assert_eq!(
            limited.message,
            "Too many attempts; try again in 3 seconds."
        );
        let response = limited.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let fault = Answer::of_service(&ServiceError::Internal(anyhow::anyhow!("x")), "abc-123");
        assert!(fault.message.contains("reference abc-123"));
    }

    #[tokio::test]
    async fn every_form_carries_the_same_headers() {
        let busy = || Answer::of_service(&ServiceError::Busy(Duration::from_secs(2)), "r");
        for form in [
            Form::PlainText,
            Form::GlanceJson,
            Form::Tus { head: false },
            Form::Tus { head: true },
        ] {
            let response = busy().render(form);
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "2", "{form:?}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            let is_tus = matches!(form, Form::Tus { .. });
            assert_eq!(response.headers().contains_key(TUS_RESUMABLE), is_tus);
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            match form {
                Form::Tus { head: true } => assert!(body.is_empty()),
                Form::GlanceJson => {
                    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(error["error"]["code"], 503);
                    assert_eq!(error["error"]["title"], "Service Unavailable");
                    assert_eq!(
                        error["error"]["message"],
                        notices::busy(Duration::from_secs(2))
                    );
                }
                _ => assert_eq!(body, notices::busy(Duration::from_secs(2))),
            }
        }
    }

    #[test]
    fn the_reference_is_the_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("5f0c"));
        assert_eq!(reference(&headers), "5f0c");
        assert_eq!(reference(&HeaderMap::new()).len(), 36);
    }
}
