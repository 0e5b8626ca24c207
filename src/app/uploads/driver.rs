//! The browser side of the tus protocol: XMLHttpRequest PATCHes with progress, retries after
//! network errors, and the localStorage record that lets a reloaded page resume.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, File, XmlHttpRequest};

use super::{Transfer, TransferState, UploadManager};
use crate::domain::upload::{
    CHUNK_BYTES, OFFSET_OCTET_STREAM, TUS_VERSION, encode_metadata, upload_creation_path,
};

/// Pauses between retries after network errors, in seconds; then the driver stops.
const RETRY_SECONDS: [u32; 8] = [1, 2, 4, 8, 15, 30, 30, 30];

/// One run of the driver for an image: the file, the request in flight and whether the
/// run was stopped (Pause or Cancel Upload).
pub struct Run {
    file: File,
    url: Option<String>,
    xhr: Option<XmlHttpRequest>,
    stopped: Rc<Cell<bool>>,
}

/// An upload this browser started for a file, remembered across reloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RememberedUpload {
    pub image_id: String,
    pub path: String,
}

fn fingerprint(file: &File) -> String {
    format!(
        "image-upload:{}:{}:{}",
        file.name(),
        file.size(),
        file.last_modified()
    )
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The upload this browser started for this very file, if it remembers one.
pub fn remembered_upload(file: &File) -> Option<RememberedUpload> {
    let value = storage()?.get_item(&fingerprint(file)).ok().flatten()?;
    let (image_id, path) = value.split_once(' ')?;
    Some(RememberedUpload {
        image_id: image_id.to_owned(),
        path: path.to_owned(),
    })
}

fn remember(file: &File, image_id: &str, path: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(&fingerprint(file), &format!("{image_id} {path}"));
    }
}

fn forget(file: &File) {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(&fingerprint(file));
    }
}

/// How a request ended, short of an answer.
enum Failure {
    Network,
    Aborted,
}

/// A request's answer: its status, an Upload-Offset if it had one, and its text.
struct Answer {
    status: u16,
    offset: Option<u64>,
    /// Seconds the server asked to wait (`Retry-After`).
    retry_after: Option<u32>,
    text: String,
}

impl UploadManager {
    fn update(self, image_id: &str, change: impl FnOnce(&mut Transfer)) {
        self.transfers.update(|all| {
            if let Some(transfer) = all.get_mut(image_id) {
                change(transfer);
            }
        });
    }

    fn set_state(self, image_id: &str, state: TransferState) {
        self.update(image_id, |t| t.state = state);
    }

    /// Starts uploading `file` for an Uploading image.
    pub fn start(self, image_id: &str, file: File) {
        let total = file.size() as u64;
        self.transfers.update(|all| {
            all.insert(
                image_id.to_owned(),
                Transfer {
                    sent: 0,
                    total,
                    bytes_per_second: None,
                    state: TransferState::Starting,
                },
            );
        });
        let url = remembered_upload(&file)
            .filter(|r| r.image_id == image_id)
            .map(|r| r.path);
        let stopped = Rc::new(Cell::new(false));
        self.runs.update_value(|runs| {
            if let Some(old) = runs.remove(image_id) {
                old.stop();
            }
            runs.insert(
                image_id.to_owned(),
                Run {
                    file,
                    url,
                    xhr: None,
                    stopped: stopped.clone(),
                },
            );
        });
        let image_id = image_id.to_owned();
        leptos::task::spawn_local(async move { self.drive(&image_id, stopped).await });
    }

    /// Stops sending; the bytes the server has are kept.
    pub fn pause(self, image_id: &str) {
        self.runs.update_value(|runs| {
            if let Some(run) = runs.get_mut(image_id) {
                run.stop();
            }
        });
        self.set_state(image_id, TransferState::Paused);
    }

    /// Continues a paused or stopped upload with the file this tab still holds.
    pub fn resume(self, image_id: &str) {
        let file = self
            .runs
            .with_value(|runs| runs.get(image_id).map(|r| r.file.clone()));
        if let Some(file) = file {
            self.start(image_id, file);
        }
    }

    /// Whether this tab holds the image's file (so Resume needs no new pick).
    pub fn has_file(self, image_id: &str) -> bool {
        self.runs.with_value(|runs| runs.contains_key(image_id))
    }

    /// Stops sending and terminates the upload on the server, which deletes its bytes.
    /// `path` is the upload's URL when this tab does not know it. Returns the server's
    /// refusal, if any.
    pub async fn cancel(self, image_id: &str, path: Option<String>) -> Result<(), String> {
        let run = self
            .runs
            .try_update_value(|runs| runs.remove(image_id))
            .flatten();
        let url = run.as_ref().and_then(|r| r.url.clone()).or(path);
        if let Some(run) = &run {
            run.stop();
            forget(&run.file);
        }
        self.transfers.update(|all| {
            all.remove(image_id);
        });
        let Some(url) = url else {
            // No upload was ever started: the image only waits for one.
            return crate::server_fns::lifecycle::cancel_import(image_id.to_owned())
                .await
                .map_err(|e| e.to_string());
        };
        // The server may still be finishing the request just aborted: it answers 409
        // until then.
        for attempt in 0..10 {
            match request("DELETE", &url, &[], None, None, |_| {}).await {
                Ok(answer)
                    if answer.status == 204 || answer.status == 404 || answer.status == 410 =>
                {
                    return Ok(());
                }
                Ok(answer) if answer.status != 409 => return Err(answer.text),
                _ => sleep_ms(250 * (attempt + 1)).await,
            }
        }
        Err("The upload could not be cancelled; try again.".into())
    }

    async fn drive(self, image_id: &str, stopped: Rc<Cell<bool>>) {
        let Some(file) = self
            .runs
            .with_value(|runs| runs.get(image_id).map(|r| r.file.clone()))
        else {
            return;
        };
        let size = file.size() as u64;
        let mut retries = 0usize;
        loop {
            if stopped.get() {
                return;
            }
            match self.step(image_id, &file, size, &stopped).await {
                Ok(true) => {
                    forget(&file);
                    self.set_state(image_id, TransferState::Finished);
                    self.runs.update_value(|runs| {
                        runs.remove(image_id);
                    });
                    return;
                }
                Ok(false) => retries = 0,
                Err(Step::Stop(message)) => {
                    if !stopped.get() {
                        self.set_state(image_id, TransferState::Stopped(message));
                    }
                    return;
                }
                Err(Step::Ended(message)) => {
                    forget(&file);
                    self.set_state(image_id, TransferState::Stopped(message));
                    return;
                }
                Err(Step::Busy(wait)) => {
                    if !self
                        .count_down(image_id, wait, &stopped, "The server is busy")
                        .await
                    {
                        return;
                    }
                }
                Err(Step::Retry) => {
                    if stopped.get() {
                        return;
                    }
                    let Some(&wait) = RETRY_SECONDS.get(retries) else {
                        self.set_state(
                            image_id,
                            TransferState::Stopped(
                                "The connection to the console was lost. Select Resume to try again."
                                    .into(),
                            ),
                        );
                        return;
                    };
                    retries += 1;
                    if !self
                        .count_down(image_id, wait, &stopped, "Connection lost")
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Shows "<why>; retrying in N s." for `seconds`, counting down; `false` if the run was
    /// stopped meanwhile.
    async fn count_down(
        self,
        image_id: &str,
        seconds: u32,
        stopped: &Rc<Cell<bool>>,
        why: &str,
    ) -> bool {
        for left in (1..=seconds).rev() {
            if stopped.get() {
                return false;
            }
            self.set_state(
                image_id,
                TransferState::Retrying(format!("{why}; retrying in {left} s.")),
            );
            sleep_ms(1000).await;
        }
        true
    }

    /// Finds the upload, asks for its offset and sends one piece. `Ok(true)` once the
    /// server has every byte.
    async fn step(
        self,
        image_id: &str,
        file: &File,
        size: u64,
        stopped: &Rc<Cell<bool>>,
    ) -> Result<bool, Step> {
        let url = match self
            .runs
            .with_value(|r| r.get(image_id).and_then(|r| r.url.clone()))
        {
            Some(url) => url,
            None => self.find_or_create(image_id, file, size).await?,
        };
        let head = self.send(image_id, "HEAD", &url, &[], None, None).await?;
        let offset = match head.status {
            200 | 204 => head.offset.ok_or(Step::Retry)?,
            404 | 410 => {
                return Err(Step::Ended(
                    "The upload no longer exists on the server; create the image again.".into(),
                ));
            }
            401 => {
                return Err(Step::Stop(
                    "Your session ended. Sign in again, then select Resume Upload.".into(),
                ));
            }
            _ => return Err(Step::Retry),
        };
        self.update(image_id, |t| t.sent = offset);
        if offset >= size {
            return Ok(true);
        }
        if stopped.get() {
            return Err(Step::Stop(String::new()));
        }
        let end = (offset + CHUNK_BYTES).min(size);
        let piece: Blob = file
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|_| Step::Stop("The file could not be read.".into()))?;
        self.set_state(image_id, TransferState::Sending);
        let headers = [
            ("Upload-Offset", offset.to_string()),
            ("Content-Type", OFFSET_OCTET_STREAM.to_owned()),
        ];
        let answer = self
            .send(
                image_id,
                "PATCH",
                &url,
                &headers,
                Some(&piece),
                Some(offset),
            )
            .await?;
        match answer.status {
            204 => {
                let new_offset = answer.offset.unwrap_or(offset);
                self.update(image_id, |t| t.sent = new_offset);
                Ok(new_offset >= size)
            }
            404 | 410 => Err(Step::Ended(answer.text)),
            408 | 429 | 503 => Err(Step::Busy(answer.retry_after.unwrap_or(5).clamp(1, 60))),
            // Another request still holds the upload, or the offsets differ: ask again.
            409 | 423 | 500..=599 => Err(Step::Retry),
            _ => Err(Step::Stop(answer.text)),
        }
    }

    async fn find_or_create(self, image_id: &str, file: &File, size: u64) -> Result<String, Step> {
        let known = crate::server_fns::images::get_image_upload(image_id.to_owned())
            .await
            .map_err(|_| Step::Retry)?;
        let path = match known {
            Some(upload) => upload.path,
            None => {
                let headers = [
                    ("Upload-Length", size.to_string()),
                    ("Upload-Metadata", encode_metadata(&file.name())),
                ];
                let answer = self
                    .send(
                        image_id,
                        "POST",
                        &upload_creation_path(image_id),
                        &headers,
                        None,
                        None,
                    )
                    .await?;
                if answer.status != 201 {
                    return Err(Step::Stop(answer.text));
                }
                answer.text
            }
        };
        remember(file, image_id, &path);
        self.runs.update_value(|runs| {
            if let Some(run) = runs.get_mut(image_id) {
                run.url = Some(path.clone());
            }
        });
        Ok(path)
    }

    /// Sends one request for an image's upload; `progress_from` is the offset a PATCH
    /// starts at, so its progress moves the transfer's bar.
    async fn send(
        self,
        image_id: &str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&Blob>,
        progress_from: Option<u64>,
    ) -> Result<Answer, Step> {
        let owner = image_id.to_owned();
        let mut meter = RateMeter::default();
        let on_progress = move |loaded: f64| {
            if let Some(base) = progress_from {
                let sent = base + loaded as u64;
                let rate = meter.sample(sent);
                self.update(&owner, |t| {
                    t.sent = sent.min(t.total);
                    if rate.is_some() {
                        t.bytes_per_second = rate;
                    }
                });
            }
        };
        let owner = image_id.to_owned();
        let track = move |xhr: Option<XmlHttpRequest>| {
            self.runs.update_value(|runs| {
                if let Some(run) = runs.get_mut(&owner) {
                    run.xhr = xhr;
                }
            });
        };
        match request(method, url, headers, body, Some(&track), on_progress).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Aborted) => Err(Step::Stop(String::new())),
            Err(Failure::Network) => Err(Step::Retry),
        }
    }
}

impl Run {
    fn stop(&self) {
        self.stopped.set(true);
        if let Some(xhr) = &self.xhr {
            let _ = xhr.abort();
        }
    }
}

/// Why a step did not finish the upload.
enum Step {
    /// Try again after a pause.
    Retry,
    /// The server is at a limit (too many uploads streaming, or a stalled request was
    /// cut off): try again after the seconds it asked for.
    Busy(u32),
    /// Stop; the user may resume. An empty text means the user stopped it.
    Stop(String),
    /// The upload is gone on the server.
    Ended(String),
}

/// Speed over the last seconds, smoothed so the time left does not jump about.
#[derive(Default)]
struct RateMeter {
    last: Option<(f64, u64)>,
    rate: Option<f64>,
}

impl RateMeter {
    fn sample(&mut self, sent: u64) -> Option<f64> {
        let now = js_sys::Date::now();
        match self.last {
            None => self.last = Some((now, sent)),
            Some((at, before)) if now - at >= 500.0 => {
                let instant = (sent.saturating_sub(before)) as f64 / ((now - at) / 1000.0);
                self.rate = Some(match self.rate {
                    Some(rate) => rate * 0.7 + instant * 0.3,
                    None => instant,
                });
                self.last = Some((now, sent));
            }
            Some(_) => {}
        }
        self.rate
    }
}

/// Sends one XMLHttpRequest (which, unlike fetch, reports upload progress) and waits for
/// it to end. `track` is told of the request while it runs, so it can be aborted.
async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&Blob>,
    track: Option<&dyn Fn(Option<XmlHttpRequest>)>,
    mut on_progress: impl FnMut(f64) + 'static,
) -> Result<Answer, Failure> {
    let xhr = XmlHttpRequest::new().map_err(|_| Failure::Network)?;
    xhr.open_with_async(method, url, true)
        .map_err(|_| Failure::Network)?;
    xhr.set_request_header("Tus-Resumable", TUS_VERSION)
        .map_err(|_| Failure::Network)?;
    for (name, value) in headers {
        xhr.set_request_header(name, value)
            .map_err(|_| Failure::Network)?;
    }
    let mut resolve_slot = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| resolve_slot = Some(resolve));
    let resolve = resolve_slot.ok_or(Failure::Network)?;
    let mut listeners: Vec<Closure<dyn FnMut(web_sys::Event)>> = Vec::new();
    for event in ["load", "error", "abort", "timeout"] {
        let resolve = resolve.clone();
        let listener = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::from_str(event));
        });
        let _ = xhr.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        listeners.push(listener);
    }
    let progress = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        if let Ok(event) = event.dyn_into::<web_sys::ProgressEvent>() {
            on_progress(event.loaded());
        }
    });
    if let Ok(upload) = xhr.upload() {
        let _ =
            upload.add_event_listener_with_callback("progress", progress.as_ref().unchecked_ref());
    }
    if let Some(track) = track {
        track(Some(xhr.clone()));
    }
    let sent = match body {
        Some(body) => xhr.send_with_opt_blob(Some(body)),
        None => xhr.send(),
    };
    let outcome = match sent {
        Ok(()) => wasm_bindgen_futures::JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    if let Some(track) = track {
        track(None);
    }
    drop((listeners, progress));
    match outcome.ok().and_then(|v| v.as_string()).as_deref() {
        Some("load") => Ok(Answer {
            status: xhr.status().unwrap_or(0),
            offset: xhr
                .get_response_header("Upload-Offset")
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok()),
            retry_after: xhr
                .get_response_header("Retry-After")
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok()),
            // A creation answers with its Location; everything else with a sentence.
            text: xhr
                .get_response_header("Location")
                .ok()
                .flatten()
                .or_else(|| xhr.response_text().ok().flatten())
                .unwrap_or_default(),
        }),
        Some("abort") => Err(Failure::Aborted),
        _ => Err(Failure::Network),
    }
}

async fn sleep_ms(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
            &resolve,
            i32::try_from(ms).unwrap_or(i32::MAX),
        );
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
