//! Local-file uploads driven by this browser tab over tus: the state the pages show and the
//! driver that sends the file.
//!
//! The manager lives in the console layout, so moving between console pages keeps uploads
//! running. The file is sent in `CHUNK_BYTES` pieces, one PATCH each, with the progress of
//! the piece in flight. After a network error the driver waits, asks the server for its
//! offset (HEAD) and goes on from there. Each file's upload URL is remembered in
//! localStorage under the file's name, size and modification time, so after a reload the
//! same file, picked again, continues where the server stopped.

use std::collections::HashMap;

use leptos::prelude::*;

/// Where an upload driven by this tab is.
#[derive(Clone, Debug, PartialEq)]
pub enum TransferState {
    /// Creating the upload or asking the server where it stands.
    Starting,
    Sending,
    /// Paused by the user; Resume continues from the server's offset.
    Paused,
    /// The connection failed; the driver tries again after a pause.
    Retrying(String),
    /// It cannot go on by itself; the text says why. Resume Upload may still work.
    Stopped(String),
    /// Every byte is sent; the server is checking the image.
    Finished,
}

/// One upload as the pages show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    pub sent: u64,
    pub total: u64,
    pub bytes_per_second: Option<f64>,
    pub state: TransferState,
}

/// The uploads this tab is driving, by image id.
#[derive(Clone, Copy)]
pub struct UploadManager {
    transfers: RwSignal<HashMap<String, Transfer>>,
    #[cfg(feature = "hydrate")]
    runs: StoredValue<HashMap<String, driver::Run>, LocalStorage>,
}

impl UploadManager {
    /// Makes a manager available to every console page.
    pub fn provide() {
        provide_context(Self {
            transfers: RwSignal::new(HashMap::new()),
            #[cfg(feature = "hydrate")]
            runs: StoredValue::new_local(HashMap::new()),
        });
    }

    pub fn get() -> Self {
        expect_context::<Self>()
    }

    /// The transfer of an image, if this tab drives it (reactive).
    pub fn transfer(self, image_id: &str) -> Option<Transfer> {
        self.transfers.with(|t| t.get(image_id).cloned())
    }
}

// The server renders the controls the same; they act once the page is hydrated.
#[cfg(not(feature = "hydrate"))]
impl UploadManager {
    pub fn pause(self, _image_id: &str) {}
    pub fn resume(self, _image_id: &str) {}
    pub fn has_file(self, _image_id: &str) -> bool {
        false
    }
}

#[cfg(feature = "hydrate")]
pub use driver::{RememberedUpload, remembered_upload};

#[cfg(feature = "hydrate")]
mod driver;
