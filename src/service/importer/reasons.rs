//! Why an import failed, in words a person can act on: the source's HTTP answer, a network
//! error, a size or quota limit, or a source that sends too slowly (`SpeedCheck`).

use std::time::Duration;

use crate::domain::units::format_bytes;
use crate::service::url_guard::Refused;

pub(super) fn too_large(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(size) => format!(
            "The image file is {}, larger than the import limit of {}.",
            format_bytes(size),
            format_bytes(limit)
        ),
        None => format!(
            "The image file is larger than the import limit of {}.",
            format_bytes(limit)
        ),
    }
}

/// Fails an import whose source sends less than a minimum over each window of time, so a
/// source that trickles cannot hold an import slot for ever.
pub(super) struct SpeedCheck {
    min_bytes_per_second: u64,
    window: Duration,
    window_start: tokio::time::Instant,
    bytes_at_start: u64,
}

impl SpeedCheck {
    pub(super) fn new(min_bytes_per_second: u64, window: Duration) -> Self {
        Self {
            min_bytes_per_second,
            window,
            window_start: tokio::time::Instant::now(),
            bytes_at_start: 0,
        }
    }

    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.window_start + self.window
    }

    /// At the end of a window: the bytes it brought must reach the minimum.
    pub(super) fn check(&mut self, done: u64) -> Result<(), String> {
        let brought = done - self.bytes_at_start;
        let minimum = (self.min_bytes_per_second as f64 * self.window.as_secs_f64()) as u64;
        if brought < minimum {
            return Err(format!(
                "The source sent too slowly: {} in the last {}, under the minimum of {}/s.",
                format_bytes(brought),
                describe_window(self.window),
                format_bytes(self.min_bytes_per_second)
            ));
        }
        self.window_start = tokio::time::Instant::now();
        self.bytes_at_start = done;
        Ok(())
    }
}

/// "5 minutes", "1 minute", "30 seconds".
pub(super) fn describe_window(window: Duration) -> String {
    match window.as_secs() {
        60 => "minute".to_owned(),
        s if s >= 60 && s.is_multiple_of(60) => format!("{} minutes", s / 60),
        1 => "second".to_owned(),
        s => format!("{s} seconds"),
    }
}

pub(super) fn describe_status(status: reqwest::StatusCode) -> String {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    let hint = match code {
        401 | 403 => " The URL is not readable without credentials; use a public or presigned URL.",
        404 | 410 => " There is no file at that URL.",
        500..=599 => " The source server had a problem; try again later.",
        _ => "",
    };
    format!("The source answered HTTP {code} {reason}.{hint}")
}

/// The first error of type `T` in an error's chain of sources.
pub(super) fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// Finds the io error kind behind a reqwest error, if there is one.
pub(super) fn io_error_kind(
    error: &(dyn std::error::Error + 'static),
) -> Option<std::io::ErrorKind> {
    find_source::<std::io::Error>(error).map(std::io::Error::kind)
}

pub(super) fn error_chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut source = Some(error);
    while let Some(e) = source {
        text.push_str(&e.to_string());
        text.push(' ');
        source = e.source();
    }
    text
}

pub(super) fn describe_request_error(error: &reqwest::Error, host: &str) -> String {
    use std::io::ErrorKind;
    let chain = error_chain_text(error);
    tracing::debug!(error = chain, "request failed");
    // A check of url_guard's (in the resolver or the redirect rule) says why itself.
    if let Some(refused) = find_source::<Refused>(error) {
        return refused.0.clone();
    }
    if error.is_timeout() {
        return format!("The source at {host} did not respond in time.");
    }
    if error.is_redirect() {
        return "The source sent a redirect that could not be followed.".to_owned();
    }
    if error.is_connect() {
        return match io_error_kind(error) {
            Some(ErrorKind::ConnectionRefused) => {
                format!("Could not connect to {host}: the connection was refused.")
            }
            Some(ErrorKind::TimedOut) => format!("Could not connect to {host}: it did not answer."),
            _ if chain.contains("dns error") => {
                format!("Could not find the host {host}: the name does not resolve.")
            }
            _ => format!("Could not connect to {host}."),
        };
    }
    let closed = matches!(
        io_error_kind(error),
        Some(
            ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
        )
    ) || chain.contains("connection closed");
    if closed {
        return format!("{host} closed the connection before sending the file.");
    }
    format!("The request to {host} failed.")
}

pub(super) fn describe_body_error(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "the source stopped sending data"
    } else {
        "the connection was closed"
    }
}
