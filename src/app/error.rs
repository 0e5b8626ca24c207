//! The error every server function returns, as the browser receives it.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

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
    /// A fault on our side; the reference finds the log line.
    #[error(
        "Something went wrong on the server (reference {0}). Try again; if it keeps happening, report the reference."
    )]
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
        AppError::Transport(value.to_string())
    }
}
