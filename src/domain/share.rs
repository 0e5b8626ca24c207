//! Sharing an image with another account: the owner shares, the other account approves or
//! rejects, the owner can stop sharing at any time (Share to another Account, Image Share
//! Request List and Get Image Share in the guides).

use serde::{Deserialize, Serialize};

use super::image::ImageStatus;
use super::image_spec::Visibility;
use super::os_catalogue::OperatingSystem;
use super::validation::{FieldError, with_thousands};

pub mod field {
    /// The Account ID to share with (the same rules as the sign-up form's Account ID).
    pub const ACCOUNT_ID: &str = "account_id";
    /// The resource ID typed into Get Image Share.
    pub const IMAGE_ID: &str = "image_id";
}

/// At most this many accounts can hold a share of one image at a time (Pending, Accepted or
/// Rejected). Stopped shares do not count. Glance allows 128 members by default; 256 is this
/// console's limit.
pub const MAX_SHARES_PER_IMAGE: u64 = 256;

/// Where a share stands, seen from either account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShareStatus {
    /// Shared by the owner; the other account has not answered yet.
    Pending,
    /// Approved: the image is in the other account's Image List.
    Accepted,
    /// Declined by the other account; it can still approve it through Get Image Share.
    Rejected,
    /// The owner stopped sharing; the other account has no access. It can be shared again.
    Stopped,
}

impl ShareStatus {
    pub const ALL: [ShareStatus; 4] = [
        ShareStatus::Pending,
        ShareStatus::Accepted,
        ShareStatus::Rejected,
        ShareStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Pending => "pending",
            ShareStatus::Accepted => "accepted",
            ShareStatus::Rejected => "rejected",
            ShareStatus::Stopped => "stopped",
        }
    }

    /// The statuses an image API member can have (Glance's); a stopped share is no member.
    pub const MEMBER: [ShareStatus; 3] = [
        ShareStatus::Pending,
        ShareStatus::Accepted,
        ShareStatus::Rejected,
    ];

    /// The member status an image API client names.
    pub fn from_member(raw: &str) -> Option<Self> {
        Self::MEMBER.into_iter().find(|s| s.as_str() == raw)
    }

    /// The guides' words.
    pub fn label(self) -> &'static str {
        match self {
            ShareStatus::Pending => "Pending",
            ShareStatus::Accepted => "Accepted",
            ShareStatus::Rejected => "Rejected",
            ShareStatus::Stopped => "Sharing stopped",
        }
    }

    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the share is still in force: it counts towards the limit and keeps the image
    /// from being made Private. Only Sharing stopped is not.
    pub fn is_active(self) -> bool {
        self != ShareStatus::Stopped
    }

    /// Whether the other account can approve it (again).
    pub fn can_approve(self) -> bool {
        matches!(self, ShareStatus::Pending | ShareStatus::Rejected)
    }

    /// Whether the other account can reject it: a request, or an image it no longer wants
    /// in its Image List.
    pub fn can_reject(self) -> bool {
        matches!(self, ShareStatus::Pending | ShareStatus::Accepted)
    }
}

/// The other account's answer to a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareDecision {
    Approve,
    Reject,
}

impl ShareDecision {
    pub fn status(self) -> ShareStatus {
        match self {
            ShareDecision::Approve => ShareStatus::Accepted,
            ShareDecision::Reject => ShareStatus::Rejected,
        }
    }

    pub fn allowed_from(self, status: ShareStatus) -> bool {
        match self {
            ShareDecision::Approve => status.can_approve(),
            ShareDecision::Reject => status.can_reject(),
        }
    }
}

/// How another account appears where this account would see one of its own user names
/// (creator, editor, Work History worker): by its Account ID, never by its users' names.
pub fn other_account(account_id: &str) -> String {
    format!("account {account_id}")
}

/// An image's resource ID as typed into Get Image Share: a UUID in its 36-character form
/// (upper or lower case, spaces around ignored), stored lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageResourceId(String);

impl ImageResourceId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        let err = |m: &str| Err(FieldError::new(field::IMAGE_ID, m));
        if raw.is_empty() {
            return err("Enter the image's Resource ID, as its owner sees it on Image Details.");
        }
        let well_formed = raw.len() == 36
            && raw.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if !well_formed {
            return err(
                "A Resource ID is 36 characters: groups of 8, 4, 4, 4 and 12 digits 0-9 and letters a-f joined by '-', like 0b5d3c1e-aaaa-4bbb-8ccc-0123456789ab.",
            );
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the owner may set this visibility while `active_shares` accounts hold a share:
/// an image with shares in force cannot be made Private.
pub fn check_visibility_change(
    visibility: Visibility,
    active_shares: u64,
) -> Result<(), FieldError> {
    if visibility == Visibility::Private && active_shares > 0 {
        return Err(private_refused(active_shares));
    }
    Ok(())
}

/// Why an image that `active_shares` accounts hold a share of cannot be made Private.
pub fn private_refused(active_shares: u64) -> FieldError {
    let accounts = if active_shares == 1 {
        "1 account".to_owned()
    } else {
        format!("{} accounts", with_thousands(active_shares))
    };
    FieldError::new(
        super::image_spec::field::VISIBILITY,
        format!(
            "This image is shared with {accounts}. Stop sharing with each of them on its Share page before making it Private."
        ),
    )
}

/// One account an image is shared with, as its owner sees it (Sharing Status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShare {
    pub account_id: String,
    pub status: ShareStatus,
    /// When it was shared (again).
    pub requested_at_ms: i64,
    /// The last change: shared, approved, rejected or stopped.
    pub updated_at_ms: i64,
}

/// The image's shares and how many still count towards the limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSharing {
    pub image_id: String,
    pub image_name: String,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub shares: Vec<ImageShare>,
    pub active: u64,
    pub limit: u64,
}

/// An image another account shares with this one, as the recipient sees it (Image Share
/// Request List, Get Image Share).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedImage {
    pub image_id: String,
    pub image_name: String,
    pub owner_account_id: String,
    pub size_bytes: Option<u64>,
    /// `None`: not specified.
    pub os: Option<OperatingSystem>,
    pub image_created_at_ms: i64,
    pub status: ShareStatus,
    /// When the owner shared it.
    pub requested_at_ms: i64,
}

/// A page of the Image Share Request List (pending requests, newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRequestPage {
    pub requests: Vec<SharedImage>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// Requests per page of the Image Share Request List.
pub const SHARE_REQUESTS_PAGE_SIZE: u32 = 50;

/// Most requests one Approve or Reject takes; a page of the list.
pub const MAX_BATCH_DECISIONS: usize = SHARE_REQUESTS_PAGE_SIZE as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in ShareStatus::ALL {
            assert_eq!(ShareStatus::from_db(s.as_str()), Some(s));
        }
        assert_eq!(ShareStatus::from_db("deleted"), None);
        assert_eq!(ShareStatus::Stopped.label(), "Sharing stopped");
    }

    #[test]
    fn decisions_follow_the_status() {
        use ShareStatus::*;
        let approve: Vec<_> = ShareStatus::ALL
            .into_iter()
            .filter(|s| ShareDecision::Approve.allowed_from(*s))
            .collect();
        assert_eq!(approve, [Pending, Rejected]);
        let reject: Vec<_> = ShareStatus::ALL
            .into_iter()
            .filter(|s| ShareDecision::Reject.allowed_from(*s))
            .collect();
        assert_eq!(reject, [Pending, Accepted]);
        assert!(!Stopped.is_active());
        assert!(Rejected.is_active());
    }

    #[test]
    fn resource_ids() {
        let id = "0B5D3C1E-aaaa-4bbb-8ccc-0123456789ab";
        assert_eq!(
            ImageResourceId::parse(&format!("  {id} "))
                .unwrap()
                .as_str(),
            id.to_ascii_lowercase()
        );
        for bad in [
            "0b5d3c1e-aaaa-4bbb-8ccc-0123456789a",
            "0b5d3c1e-aaaa-4bbb-8ccc-0123456789abc",
            "0b5d3c1eaaaaa4bbb-8ccc-0123456789ab",
            "0b5d3c1e-aaaa-4bbb-8ccc-0123456789ag",
            "../../../etc/passwd-aaaa-bbbb-cccccccc",
            "0b5d3c1e-aaaa-4bbb-8ccc-0123456789a\u{e9}",
        ] {
            let error = ImageResourceId::parse(bad).unwrap_err();
            assert_eq!(error.field, "image_id");
            assert!(
                error.message.starts_with("A Resource ID is 36 characters"),
                "{bad}"
            );
        }
        assert_eq!(
            ImageResourceId::parse(" ").unwrap_err().message,
            "Enter the image's Resource ID, as its owner sees it on Image Details."
        );
    }

    #[test]
    fn private_needs_every_share_stopped() {
        assert!(check_visibility_change(Visibility::Private, 0).is_ok());
        assert!(check_visibility_change(Visibility::Shared, 3).is_ok());
        let one = check_visibility_change(Visibility::Private, 1).unwrap_err();
        assert_eq!(one.field, "visibility");
        assert!(
            one.message
                .starts_with("This image is shared with 1 account.")
        );
        let many = check_visibility_change(Visibility::Private, 1200).unwrap_err();
        assert!(many.message.contains("with 1,200 accounts"));
    }
}
