//! What server functions need from the HTTP server that hosts them, and nothing more: the
//! session cookie (reading and writing it) and how an error is answered. The server puts a
//! `Host` into each request's context; server functions never reach into `server` itself.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::service::ServiceError;
use crate::service::accounts::SessionToken;

/// How the host answers one service error.
#[derive(Debug)]
pub struct ErrorAnswer {
    pub status: StatusCode,
    /// The headers every answer to an error carries (`Retry-After` when there is a wait).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The request's reference; a fault has been logged under it.
    pub reference: String,
}

pub trait RequestHost: Send + Sync + 'static {
    /// The session token a request's cookie carries, if it is well formed.
    fn session_token(&self, headers: &HeaderMap) -> Option<SessionToken>;
    /// The `Set-Cookie` value that starts a session.
    fn session_cookie(&self, token: &SessionToken) -> String;
    /// The `Set-Cookie` value that ends it in the browser.
    fn clear_session_cookie(&self) -> String;
    /// Answers `error` for the request with these headers.
    fn answer(&self, error: &ServiceError, headers: &HeaderMap) -> ErrorAnswer;
}

/// The host, as server functions find it in their context.
#[derive(Clone)]
pub struct Host(pub Arc<dyn RequestHost>);

impl std::ops::Deref for Host {
    type Target = dyn RequestHost;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}
