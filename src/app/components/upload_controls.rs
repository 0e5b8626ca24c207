//! Pause, Resume, Resume Upload and Cancel Upload for an Uploading image, with its speed and
//! time left while this tab sends it.
//!
//! The Cancel Upload dialog and the file input behind Resume Upload belong to the page
//! (`UploadActionsHost`), not to a row: the Image List redraws its rows every second while
//! uploads run, which would otherwise close the dialog or drop the chosen file.

use leptos::prelude::*;

use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::uploads::{TransferState, UploadManager};
use crate::domain::image::{ImageStatus, ImportProgress};
use crate::domain::units::format_bytes;
use crate::domain::upload::TransferRate;

/// The upload an action is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTarget {
    pub image_id: String,
    pub image_name: String,
    /// The local file the image was created with, and its size.
    pub file_name: String,
    pub size_bytes: u64,
}

impl UploadTarget {
    /// The upload of an image that is Uploading; `None` for any other status.
    pub fn of_image(
        status: ImageStatus,
        id: &str,
        name: &str,
        source_file_name: Option<&str>,
        progress: Option<ImportProgress>,
    ) -> Option<Self> {
        // A browser upload always has its file's name; data staged through the image API
        // has none and nothing to resume here.
        let file_name = source_file_name?;
        (status == ImageStatus::Uploading).then(|| Self {
            image_id: id.to_owned(),
            image_name: name.to_owned(),
            file_name: file_name.to_owned(),
            size_bytes: progress.and_then(|p| p.bytes_total).unwrap_or(0),
        })
    }
}

/// The page's upload actions: which upload the Cancel dialog or the file picker is for.
#[derive(Clone, Copy)]
pub struct UploadActions {
    cancel_target: RwSignal<Option<UploadTarget>>,
    cancel_open: RwSignal<bool>,
    cancelling: RwSignal<bool>,
    resume_target: RwSignal<Option<UploadTarget>>,
    picker: NodeRef<leptos::html::Input>,
    error: RwSignal<Option<String>>,
    /// Bumped when an upload was cancelled, so the page reloads its data.
    pub version: RwSignal<u64>,
}

impl UploadActions {
    pub fn new() -> Self {
        Self {
            cancel_target: RwSignal::new(None),
            cancel_open: RwSignal::new(false),
            cancelling: RwSignal::new(false),
            resume_target: RwSignal::new(None),
            picker: NodeRef::new(),
            error: RwSignal::new(None),
            version: RwSignal::new(0),
        }
    }

    /// While the Cancel dialog is open the page should not refresh under it.
    pub fn dialog_open(self) -> bool {
        self.cancel_open.get()
    }

    fn ask_cancel(self, target: UploadTarget) {
        self.error.set(None);
        self.cancel_target.set(Some(target));
        self.cancel_open.set(true);
    }

    fn pick_file(self, target: UploadTarget) {
        self.error.set(None);
        self.resume_target.set(Some(target));
        if let Some(input) = self.picker.get_untracked() {
            input.set_value("");
            input.click();
        }
    }
}

impl Default for UploadActions {
    fn default() -> Self {
        Self::new()
    }
}

/// The page-level parts: the Cancel Upload dialog, the hidden file input and errors.
#[component]
pub fn UploadActionsHost(actions: UploadActions) -> impl IntoView {
    let uploads = UploadManager::get();
    let on_confirm = Callback::new(move |()| {
        let Some(target) = actions.cancel_target.get_untracked() else {
            return;
        };
        actions.cancelling.set(true);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let path = crate::server_fns::images::get_image_upload(target.image_id.clone())
                .await
                .ok()
                .flatten()
                .map(|u| u.path);
            let outcome = uploads.cancel(&target.image_id, path).await;
            actions.cancelling.set(false);
            actions.cancel_open.set(false);
            if let Err(message) = outcome {
                actions.error.set(Some(message));
            }
            actions.version.update(|v| *v += 1);
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (target, uploads);
    });
    let on_pick = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            let Some(target) = actions.resume_target.get_untracked() else {
                return;
            };
            let Some(file) = actions
                .picker
                .get_untracked()
                .and_then(|input| input.files())
                .and_then(|files| files.get(0))
            else {
                return;
            };
            if file.name() != target.file_name || file.size() as u64 != target.size_bytes {
                actions.error.set(Some(format!(
                    "That is not the file this upload was started with. Choose {} ({}).",
                    target.file_name,
                    format_bytes(target.size_bytes)
                )));
                return;
            }
            uploads.start(&target.image_id, file);
        }
    };
    view! {
        <input
            type="file"
            class="visually-hidden"
            accept=crate::domain::image::DiskFormat::accept_attribute()
            tabindex="-1"
            aria-hidden="true"
            data-testid="resume-upload-file"
            node_ref=actions.picker
            on:change=on_pick
        />
        {move || actions.error.get().map(|message| view! {
            <div class="alert alert-error" role="alert"><p>{message}</p></div>
        })}
        <ConfirmDialog
            open=actions.cancel_open
            title="Cancel Upload".to_owned()
            confirm_label="Cancel Upload"
            pending=actions.cancelling
            on_confirm
        >
            {move || actions.cancel_target.get().map(|target| view! {
                <p>
                    "Stop uploading " <strong>{target.file_name}</strong> " for the image "
                    <strong>{target.image_name}</strong>
                    "? The bytes sent so far are deleted, and the image stays in the list as Failed; delete it there if you no longer need it."
                </p>
            })}
        </ConfirmDialog>
    }
}

/// An Uploading image's progress: what this tab has sent while it sends the file, else what
/// the server last reported.
#[component]
pub fn UploadProgressBar(image_id: String, server: ImportProgress, label: String) -> impl IntoView {
    let uploads = UploadManager::get();
    move || {
        let progress = uploads
            .transfer(&image_id)
            .map(|t| ImportProgress {
                bytes_done: t.sent,
                bytes_total: Some(t.total),
            })
            .unwrap_or(server);
        view! { <ProgressBar progress label=label.clone() /> }
    }
}

/// The controls of one Uploading image.
#[component]
pub fn UploadControls(actions: UploadActions, target: UploadTarget) -> impl IntoView {
    let uploads = UploadManager::get();
    let id = target.image_id.clone();
    let status = {
        let id = id.clone();
        move || {
            let Some(transfer) = uploads.transfer(&id) else {
                return "Not being sent from this browser tab. Choose the same file again to resume.".to_owned();
            };
            match transfer.state {
                TransferState::Starting => "Starting…".to_owned(),
                TransferState::Sending => match transfer.bytes_per_second.map(|b| TransferRate {
                    bytes_per_second: b,
                }) {
                    Some(rate) => {
                        match rate.time_left(transfer.total.saturating_sub(transfer.sent)) {
                            Some(left) => format!("{} · {left}", rate.label()),
                            None => rate.label(),
                        }
                    }
                    None => "Sending…".to_owned(),
                },
                TransferState::Paused => format!("Paused at {}.", format_bytes(transfer.sent)),
                TransferState::Retrying(message) | TransferState::Stopped(message) => message,
                TransferState::Finished => "Sent. Checking the image…".to_owned(),
            }
        }
    };
    let buttons = {
        let target = target.clone();
        move || {
            let id = target.image_id.clone();
            let state = uploads.transfer(&id).map(|t| t.state);
            let running = matches!(
                state,
                Some(TransferState::Starting | TransferState::Sending | TransferState::Retrying(_))
            );
            let finished = matches!(state, Some(TransferState::Finished));
            let can_resume_here = uploads.has_file(&id);
            let pause = {
                let id = id.clone();
                move |_| uploads.pause(&id)
            };
            let resume = {
                let target = target.clone();
                move |_| {
                    if uploads.has_file(&target.image_id) {
                        uploads.resume(&target.image_id);
                    } else {
                        actions.pick_file(target.clone());
                    }
                }
            };
            let cancel = {
                let target = target.clone();
                move |_| actions.ask_cancel(target.clone())
            };
            let name = target.image_name.clone();
            (!finished).then(|| view! {
                {if running {
                    leptos::either::Either::Left(view! {
                        <button type="button" class="btn btn-small" on:click=pause aria-label=format!("Pause upload of {name}")>"Pause"</button>
                    })
                } else {
                    leptos::either::Either::Right(view! {
                        <button type="button" class="btn btn-small" on:click=resume aria-label=format!("Resume upload of {name}")>
                            {if can_resume_here { "Resume" } else { "Resume Upload" }}
                        </button>
                    })
                }}
                <button type="button" class="btn btn-small btn-danger" on:click=cancel aria-label=format!("Cancel upload of {name}")>"Cancel Upload"</button>
            })
        }
    };
    view! {
        <div class="upload-controls">
            <p class="upload-status">{status}</p>
            <div class="upload-buttons">{buttons}</div>
        </div>
    }
}
