//! The error every server function returns, as the browser receives it: the pages match on
//! it, so it is defined here, below them.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::domain::FieldError;
use crate::domain::notices;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Input broke rules; each error belongs under its field.
    #[error("Check the highlighted fields.")]
    Invalid(Vec<FieldError>),
    #[error("Your session has ended. Sign in again to continue.")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    /// The request is valid but the current state does not allow it; the text says why.
    #[error("{0}")]
    Conflict(String),
    /// Only the image's owner account may do this (the image is shared with this one).
    #[error("{0}")]
    Forbidden(String),
    /// Over a sign-in or sign-up limit: try again after this many seconds.
    #[error("{}", notices::too_many_attempts(std::time::Duration::from_secs(*.0)))]
    TooManyAttempts(u64),
    /// The server is at a limit of its own: try again after this many seconds.
    #[error("{}", notices::busy(std::time::Duration::from_secs(*.0)))]
    Busy(u64),
    /// The request could not be read (too large, malformed); the text says why.
    #[error("{0}")]
    BadRequest(String),
    /// A fault on our side; the reference finds the log line.
    #[error("{}", notices::fault(.0))]
    Internal(String),
    /// The request did not reach the server or its answer could not be read.
    #[error("The console could not reach the server. Check your connection and try again.")]
    Transport(String),
}

impl AppError {
    /// The field errors, if this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            AppError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // On the server this is a request that could not be decoded: the client's fault,
        // answered 400 with what was wrong, never a 500.
        #[cfg(feature = "ssr")]
        if let ServerFnErrorErr::Args(why)
        | ServerFnErrorErr::MissingArg(why)
        | ServerFnErrorErr::Request(why)
        | ServerFnErrorErr::Deserialization(why) = &value
        {
            crate::server_fns::ssr::set_status(http::StatusCode::BAD_REQUEST);
            return AppError::BadRequest(format!("The request could not be read: {why}"));
        }
        AppError::Transport(value.to_string())
    }
}
