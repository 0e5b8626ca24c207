//! `GET /downloads/{id}/{file}?exp=&gen=&sig=`: an image's bytes for whoever holds a valid
//! signed link, with HTTP Range so interrupted downloads resume. No session needed.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::errors::{self, Answer};
use crate::service::Services;
use crate::service::downloads::{DownloadFile, DownloadRefusal};

#[derive(Debug, Deserialize)]
pub struct LinkParams {
    exp: Option<String>,
    #[serde(rename = "gen")]
    generation: Option<String>,
    /// The account a shared image's link was issued to, and when the image was shared with it.
    acct: Option<String>,
    since: Option<String>,
    sig: Option<String>,
}

pub async fn download_image(
    State(services): State<Services>,
    Path((id, _file)): Path<(String, String)>,
    Query(params): Query<LinkParams>,
    headers: HeaderMap,
) -> Response {
    match services
        .open_download(
            &id,
            params.exp.as_deref(),
            params.generation.as_deref(),
            params.acct.as_deref(),
            params.since.as_deref(),
            params.sig.as_deref(),
        )
        .await
    {
        Ok(file) => serve_file(file, &headers).await,
        Err(refusal) => refuse(refusal, &headers),
    }
}

fn refuse(refusal: DownloadRefusal, headers: &HeaderMap) -> Response {
    match &refusal {
        DownloadRefusal::Fault(what) => {
            let reference = errors::reference(headers);
            Answer::data_unavailable(&reference, &anyhow::anyhow!("{what}")).into_response()
        }
        _ => Answer::new(StatusCode::FORBIDDEN, refusal.to_string()).into_response(),
    }
}

/// The byte range to send: the whole file, one range, or unsatisfiable.
enum Selection {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn select(range: Option<&HeaderValue>, size: u64) -> Selection {
    use http_range_header::RangeUnsatisfiableError;
    let Some(raw) = range.and_then(|r| r.to_str().ok()) else {
        return Selection::Whole;
    };
    let Ok(parsed) = http_range_header::parse_range_header(raw) else {
        // A malformed Range header is ignored (RFC 9110 §14.2).
        return Selection::Whole;
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Selection::Part(*ranges[0].start(), *ranges[0].end()),
        // Several ranges would need multipart/byteranges; the whole file serves them all.
        Ok(_) => Selection::Whole,
        // A suffix longer than the file means the whole file.
        Err(RangeUnsatisfiableError::FileSuffixOutOfBounds) if size > 0 => {
            Selection::Part(0, size - 1)
        }
        Err(_) => Selection::Unsatisfiable,
    }
}

/// Sends the file, whole or the one range `headers` ask for. Bytes that cannot be read, or
/// sealed bytes that fail authentication, end the response where they are (the client sees
/// it cut short, never a wrong byte), logged with the request's reference.
pub(crate) async fn serve_file(file: DownloadFile, headers: &HeaderMap) -> Response {
    use futures::TryStreamExt;
    let range = headers.get(header::RANGE);
    let reference = errors::reference(headers);
    let size = file.size_bytes;
    let (status, start, len) = match select(range, size) {
        Selection::Whole => (StatusCode::OK, 0, size),
        Selection::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Selection::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response();
        }
    };
    let bytes = file.blob.range(start, len).map_err(move |error| {
        tracing::error!(%reference, %error, "a download stopped: its stored bytes could not be read");
        error
    });
    let encoded: String = url::form_urlencoded::byte_serialize(file.file_name.as_bytes()).collect();
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        file.file_name.replace(['"', '\\'], "_"),
        encoded.replace('+', "%20")
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-transform")
        .header(header::REFERRER_POLICY, "no-referrer");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response = response.header(header::CONTENT_DISPOSITION, value);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    response
        .body(Body::from_stream(bytes))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(range: &str, size: u64) -> Option<(u64, u64)> {
        match select(Some(&HeaderValue::from_str(range).unwrap()), size) {
            Selection::Whole => Some((0, u64::MAX)),
            Selection::Part(a, b) => Some((a, b)),
            Selection::Unsatisfiable => None,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(pick("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(pick("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(pick("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(pick("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(pick("bytes=-5000", 1000), Some((0, 999)));
        assert_eq!(pick("bytes=1000-", 1000), None);
        assert_eq!(pick("bytes=5000-6000", 1000), None);
        assert_eq!(pick("bytes=0-1,5-6", 1000), Some((0, u64::MAX)));
        assert_eq!(pick("pages=1-2", 1000), Some((0, u64::MAX)));
    }
}
