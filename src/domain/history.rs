//! Work History: every change to an image, with who made it, when, and the result.

use serde::{Deserialize, Serialize};

/// What happened (the guides' "Event topic").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HistoryTopic {
    Created,
    ImportStarted,
    ImportFinished,
    ImportFailed,
    UploadStarted,
    UploadCancelled,
    Edited,
    TagsChanged,
    ProtectedChanged,
    DownloadLinkIssued,
    DownloadLinksRevoked,
    Deleted,
    /// Shared with another account (recorded in both accounts).
    ShareRequested,
    ShareApproved,
    ShareRejected,
    ShareStopped,
    /// A share in force ended because the owner deleted the image.
    ShareEnded,
    /// A new image was made from this one's bytes with Create shared Image.
    SharedImageCreated,
}

impl HistoryTopic {
    pub const ALL: [HistoryTopic; 18] = [
        HistoryTopic::Created,
        HistoryTopic::ImportStarted,
        HistoryTopic::ImportFinished,
        HistoryTopic::ImportFailed,
        HistoryTopic::UploadStarted,
        HistoryTopic::UploadCancelled,
        HistoryTopic::Edited,
        HistoryTopic::TagsChanged,
        HistoryTopic::ProtectedChanged,
        HistoryTopic::DownloadLinkIssued,
        HistoryTopic::DownloadLinksRevoked,
        HistoryTopic::Deleted,
        HistoryTopic::ShareRequested,
        HistoryTopic::ShareApproved,
        HistoryTopic::ShareRejected,
        HistoryTopic::ShareStopped,
        HistoryTopic::ShareEnded,
        HistoryTopic::SharedImageCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HistoryTopic::Created => "created",
            HistoryTopic::ImportStarted => "import_started",
            HistoryTopic::ImportFinished => "import_finished",
            HistoryTopic::ImportFailed => "import_failed",
            HistoryTopic::UploadStarted => "upload_started",
            HistoryTopic::UploadCancelled => "upload_cancelled",
            HistoryTopic::Edited => "edited",
            HistoryTopic::TagsChanged => "tags_changed",
            HistoryTopic::ProtectedChanged => "protected_changed",
            HistoryTopic::DownloadLinkIssued => "download_link_issued",
            HistoryTopic::DownloadLinksRevoked => "download_links_revoked",
            HistoryTopic::Deleted => "deleted",
            HistoryTopic::ShareRequested => "share_requested",
            HistoryTopic::ShareApproved => "share_approved",
            HistoryTopic::ShareRejected => "share_rejected",
            HistoryTopic::ShareStopped => "share_stopped",
            HistoryTopic::ShareEnded => "share_ended",
            HistoryTopic::SharedImageCreated => "shared_image_created",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            HistoryTopic::Created => "Create Image",
            HistoryTopic::ImportStarted => "Import started",
            HistoryTopic::ImportFinished => "Import finished",
            HistoryTopic::ImportFailed => "Import failed",
            HistoryTopic::UploadStarted => "Upload started",
            HistoryTopic::UploadCancelled => "Cancel Upload",
            HistoryTopic::Edited => "Edit Image",
            HistoryTopic::TagsChanged => "Edit Tags",
            HistoryTopic::ProtectedChanged => "Change Protected",
            HistoryTopic::DownloadLinkIssued => "Create download link",
            HistoryTopic::DownloadLinksRevoked => "Revoke download links",
            HistoryTopic::Deleted => "Delete Image",
            HistoryTopic::ShareRequested => "Share to another Account",
            HistoryTopic::ShareApproved => "Approve Image Share",
            HistoryTopic::ShareRejected => "Reject Image Share",
            HistoryTopic::ShareStopped => "Stop sharing",
            HistoryTopic::ShareEnded => "Sharing ended",
            HistoryTopic::SharedImageCreated => "Create shared Image",
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// One field's change, as shown: "Minimum Disk: 10 GB → 20 GB".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// Whether the work succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkResult {
    Succeeded,
    Failed,
}

impl WorkResult {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkResult::Succeeded => "succeeded",
            WorkResult::Failed => "failed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            WorkResult::Succeeded => "Succeeded",
            WorkResult::Failed => "Failed",
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        match raw {
            "succeeded" => Some(WorkResult::Succeeded),
            "failed" => Some(WorkResult::Failed),
            _ => None,
        }
    }
}

/// The worker of events the console does by itself (imports).
pub const SYSTEM_WORKER: &str = "system";

/// A row of the Work History tab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub image_id: String,
    pub image_name: String,
    pub topic: HistoryTopic,
    pub changes: Vec<FieldChange>,
    pub message: String,
    pub result: WorkResult,
    pub worker: String,
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// Entries per Work History page.
pub const HISTORY_PAGE_SIZE: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        for t in HistoryTopic::ALL {
            assert_eq!(HistoryTopic::from_db(t.as_str()), Some(t));
        }
    }
}
