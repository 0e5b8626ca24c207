//! Work History: every change to an image, with who made it, when, and the result.

use serde::{Deserialize, Serialize};

use super::share::{ShareDecision, ShareStatus};

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
    /// An import (or the image API's wait for data) was cancelled; the image is Failed.
    ImportCancelled,
    /// Back from the Recycle Bin.
    Restored,
    /// Destroyed from the Recycle Bin, by a person or by the purge after its retention.
    Destroyed,
    Deactivated,
    Reactivated,
    /// Something started or stopped using the image (in-use references).
    ReferenceAdded,
    ReferenceRemoved,
    /// A console process took an upload or import over from one that stopped renewing its
    /// lease (it died, or was paused past the lease).
    TakenOver,
    /// The image's encryption key was disabled, enabled, scheduled for deletion, taken out of
    /// deletion, rotated or deleted.
    KeyChanged,
    /// The image's data key was wrapped again under a newer version of its key.
    DataKeyRewrapped,
    /// A replica was made from this image's bytes (Replicate Image).
    Replicated,
    /// Received bytes began converting to the format the image asked for.
    ConversionStarted,
    /// The converted bytes became the image's; the file as received is kept as its source.
    ConversionFinished,
    /// The conversion failed; the image is Failed and keeps no bytes.
    ConversionFailed,
}

impl HistoryTopic {
    pub const ALL: [HistoryTopic; 32] = [
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
        HistoryTopic::ImportCancelled,
        HistoryTopic::Restored,
        HistoryTopic::Destroyed,
        HistoryTopic::Deactivated,
        HistoryTopic::Reactivated,
        HistoryTopic::ReferenceAdded,
        HistoryTopic::ReferenceRemoved,
        HistoryTopic::TakenOver,
        HistoryTopic::KeyChanged,
        HistoryTopic::DataKeyRewrapped,
        HistoryTopic::Replicated,
        HistoryTopic::ConversionStarted,
        HistoryTopic::ConversionFinished,
        HistoryTopic::ConversionFailed,
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
            HistoryTopic::ImportCancelled => "import_cancelled",
            HistoryTopic::Restored => "restored",
            HistoryTopic::Destroyed => "destroyed",
            HistoryTopic::Deactivated => "deactivated",
            HistoryTopic::Reactivated => "reactivated",
            HistoryTopic::ReferenceAdded => "reference_added",
            HistoryTopic::ReferenceRemoved => "reference_removed",
            HistoryTopic::TakenOver => "taken_over",
            HistoryTopic::KeyChanged => "key_changed",
            HistoryTopic::DataKeyRewrapped => "data_key_rewrapped",
            HistoryTopic::Replicated => "replicated",
            HistoryTopic::ConversionStarted => "conversion_started",
            HistoryTopic::ConversionFinished => "conversion_finished",
            HistoryTopic::ConversionFailed => "conversion_failed",
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
            HistoryTopic::ImportCancelled => "Cancel Import",
            HistoryTopic::Restored => "Restore",
            HistoryTopic::Destroyed => "Destroy",
            HistoryTopic::Deactivated => "Deactivate",
            HistoryTopic::Reactivated => "Reactivate",
            HistoryTopic::ReferenceAdded => "Reference added",
            HistoryTopic::ReferenceRemoved => "Reference removed",
            HistoryTopic::TakenOver => "Taken over",
            HistoryTopic::KeyChanged => "Encryption key changed",
            HistoryTopic::DataKeyRewrapped => "Data key re-wrapped",
            HistoryTopic::Replicated => "Replicate Image",
            HistoryTopic::ConversionStarted => "Conversion started",
            HistoryTopic::ConversionFinished => "Conversion finished",
            HistoryTopic::ConversionFailed => "Conversion failed",
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

/// A Work History event's sentence for the owner account and for the member account of a
/// share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareNote {
    pub owner: String,
    pub member: String,
}

impl ShareNote {
    pub fn requested(owner: &str, member: &str) -> Self {
        Self {
            owner: format!(
                "Shared with account {member}. It is Pending until that account approves it."
            ),
            member: format!(
                "Account {owner} shared this image with this account. Approve or Reject it in the Image Share Request List."
            ),
        }
    }

    /// The owner stopped a share that was `was`.
    pub fn stopped(owner: &str, member: &str, was: ShareStatus) -> Self {
        Self {
            owner: format!(
                "Stopped sharing with account {member} (it was {}).",
                was.label()
            ),
            member: if was == ShareStatus::Accepted {
                format!(
                    "Account {owner} stopped sharing this image; this account no longer has access to it."
                )
            } else {
                format!("Account {owner} stopped sharing this image; its share request ended.")
            },
        }
    }

    /// The owner deleted an image shared with `member` (`was`: the share's status then).
    pub fn ended_by_delete(owner: &str, member: &str, was: ShareStatus) -> Self {
        if was == ShareStatus::Accepted {
            Self {
                owner: format!("Sharing with account {member} ended: the image was deleted."),
                member: format!(
                    "Account {owner} deleted the image; this account no longer has access to it."
                ),
            }
        } else {
            Self {
                owner: format!(
                    "The share request to account {member} ended: the image was deleted."
                ),
                member: format!("Account {owner} deleted the image; its share request ended."),
            }
        }
    }

    pub fn decided(owner: &str, member: &str, decision: ShareDecision) -> Self {
        match decision {
            ShareDecision::Approve => Self {
                owner: format!("Account {member} approved the share."),
                member: "Approved: the image is in this account's Image List.".to_owned(),
            },
            ShareDecision::Reject => Self {
                owner: format!("Account {member} rejected the share."),
                member: format!(
                    "Rejected. Approve it later with Get Image Share and its Resource ID, as long as account {owner} shares it."
                ),
            },
        }
    }
}

/// Work History's sentences for one image, besides those of shares.
pub mod notes {
    use crate::domain::conversion::SourceFile;
    use crate::domain::image::DiskFormat;
    use crate::domain::units::format_bytes;

    /// When the received file was checked and is to be converted.
    pub fn received_for_conversion(format: DiskFormat) -> String {
        format!(
            "Received and checked the {} file; it is converted next.",
            format.label()
        )
    }

    /// When received bytes begin converting.
    pub fn conversion_started(from: DiskFormat, to: DiskFormat, attempt: u32) -> String {
        let again = if attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        format!(
            "Converting the received {} file to {}{again}.",
            from.label(),
            to.label()
        )
    }

    /// When the converted bytes became the image's: what was received and what is kept.
    pub fn converted(source: &SourceFile, to: DiskFormat, size_bytes: u64, sha512: &str) -> String {
        format!(
            "Converted the received {} file ({}, SHA-512 {}, MD5 {}) to {} ({}, SHA-512 {}).",
            source.disk_format.label(),
            format_bytes(source.size_bytes),
            source.sha512,
            source.md5,
            to.label(),
            format_bytes(size_bytes),
            sha512
        )
    }

    /// On a replica: where it came from and how it is encrypted.
    pub fn replicated_from(source_name: &str, source_id: &str, encryption: &str) -> String {
        format!("Replicated from {source_name} ({source_id}); {encryption}.")
    }

    /// On the image a replica was made from.
    pub fn replicated_to(copy_name: &str, copy_id: &str, encryption: &str) -> String {
        format!(
            "Replica {copy_name} ({copy_id}) is being made from this image's bytes; {encryption}."
        )
    }

    /// How a replica is encrypted, for the two notes above.
    pub fn replica_encryption(key: Option<(&str, &str)>) -> String {
        match key {
            Some((name, id)) => format!("encrypted with key {name} ({id})"),
            None => "not encrypted".to_owned(),
        }
    }

    /// The Encryption of an image encrypted under a key.
    pub fn encrypted_with(key_name: &str, key_id: &str) -> String {
        format!("Encrypted with key {key_name} ({key_id})")
    }

    /// On the image that Create shared Image made.
    pub fn created_from_shared(source_name: &str, source_id: &str) -> String {
        format!(
            "Created with Create shared Image from {source_name} ({source_id}). It uses the same stored bytes."
        )
    }

    /// On the image whose bytes Create shared Image used.
    pub fn shared_image_made(copy_name: &str, copy_id: &str) -> String {
        format!("Shared image {copy_name} ({copy_id}) created from this image's bytes.")
    }

    /// On an upload that a client of the image API sends in one request body.
    pub const API_UPLOAD: &str =
        "Image data sent through the image API (PUT /v2/images/{id}/file).";

    /// On data sent to the image API's stage, which an import makes the image's.
    pub const API_STAGE: &str =
        "Image data staged through the image API (PUT /v2/images/{id}/stage).";

    /// On the glance-direct import of staged data.
    pub const API_IMPORT_STAGED: &str = "Staged data imported (glance-direct).";

    /// When such an upload ends before every byte arrived: the image waits again.
    pub fn api_upload_returned(reason: &str) -> String {
        format!("{reason} The image is queued again: send its data again.")
    }

    /// On Delete: where the image went and until when.
    pub fn moved_to_recycle_bin(destroy_at: &str) -> String {
        format!("Moved to the Recycle Bin; destroyed on {destroy_at} unless restored.")
    }

    /// On Restore.
    pub fn restored(status: &str) -> String {
        format!("Restored from the Recycle Bin as {status}. Its shares stay stopped.")
    }

    /// On Destroy by a person.
    pub const DESTROYED_NOW: &str = "Destroyed from the Recycle Bin (Destroy now).";

    /// On the purge's Destroy.
    pub fn destroyed_after_retention(days: u16) -> String {
        format!("Destroyed by the Recycle Bin purge after its retention ({days} days).")
    }

    /// On Cancel Import.
    pub fn import_cancelled(by: &str) -> String {
        format!("The import was cancelled by {by}.")
    }

    /// On a reference's change: "virtual machine vm-1".
    pub fn reference(kind: &str, reference_id: &str) -> String {
        format!("In use by {} {reference_id}.", kind.replace('-', " "))
    }

    /// When a console process takes work over from one that stopped renewing its lease.
    pub fn taken_over(work: &str, from: &str, by: &str) -> String {
        format!(
            "The {work} was taken over by console process {by}: process {from} stopped renewing its lease (it stopped, or was paused). Anything it writes later is refused."
        )
    }

    /// When a share ends: the account's references go with it.
    pub fn references_ended_with_share(account: &str, references: &[String]) -> String {
        format!(
            "The references of account {account} ended with its share: {}.",
            references.join(", ")
        )
    }

    /// On an image given a URL to import from through the image API.
    pub fn web_download(url: &str) -> String {
        format!("Import from {url} (web-download through the image API).")
    }

    /// On an import's start: empty the first time, the attempt after a restart.
    pub fn import_attempt(attempt: u32) -> String {
        match attempt {
            1 => String::new(),
            n => format!("Attempt {n}, after a server restart."),
        }
    }
}

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
