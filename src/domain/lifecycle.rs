//! The end of an image's life: the Recycle Bin and its retention, in-use references, and the
//! reasons Delete, Destroy and downloads are refused.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::image::ImageStatus;
use super::os_catalogue::OperatingSystem;

pub mod field {
    pub const RETENTION_DAYS: &str = "retention_days";
    pub const REFERENCE_KIND: &str = "kind";
    pub const REFERENCE_ID: &str = "reference_id";
}

/// How long a deleted image stays in the Recycle Bin before the purge destroys it: an account
/// setting, 1 to 365 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDays(u16);

impl RetentionDays {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 365;
    pub const DEFAULT: RetentionDays = RetentionDays(7);

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let refused = || {
            FieldError::new(
                field::RETENTION_DAYS,
                format!(
                    "Enter a whole number of days from {} to {}.",
                    Self::MIN,
                    Self::MAX
                ),
            )
        };
        let days: u16 = raw.trim().parse().map_err(|_| refused())?;
        if (Self::MIN..=Self::MAX).contains(&days) {
            Ok(Self(days))
        } else {
            Err(refused())
        }
    }

    /// A value read back from the database, which only ever holds parsed ones.
    pub fn from_db(days: i64) -> Self {
        u16::try_from(days)
            .ok()
            .filter(|d| (Self::MIN..=Self::MAX).contains(d))
            .map_or(Self::DEFAULT, Self)
    }

    pub fn days(self) -> u16 {
        self.0
    }

    pub fn as_millis(self) -> i64 {
        i64::from(self.0) * 86_400_000
    }
}

/// The account settings page's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    pub retention: RetentionDays,
}

/// What uses an image ("virtual-machine", "volume", …): lower-case letters, digits and '-',
/// starting with a letter, at most 32 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceKind(String);

impl ReferenceKind {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_CHARS
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field::REFERENCE_KIND,
                format!(
                    "A reference's kind is 1 to {} lower-case letters, digits and '-', starting with a letter (for example virtual-machine).",
                    Self::MAX_CHARS
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// "virtual-machine" reads "virtual machine".
    pub fn label(&self) -> String {
        self.0.replace('-', " ")
    }
}

/// The id of what uses an image: 1 to 128 letters, digits and `-_.:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceId(String);

impl ReferenceId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_CHARS
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                field::REFERENCE_ID,
                format!(
                    "A reference's id is 1 to {} letters, digits and - _ . :",
                    Self::MAX_CHARS
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Something that uses an image, which may not be deleted while it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReference {
    pub kind: String,
    pub reference_id: String,
    /// The account whose user added it: the owner's, or one the image is shared with. Each
    /// account has its own references: two accounts may both name `virtual-machine/vm-12`.
    pub account_id: String,
    /// The user who added it; `None` for a user of another account, whom the viewer does not
    /// see by name (as Work History names other accounts).
    pub added_by: Option<String>,
    pub added_at_ms: i64,
}

impl ImageReference {
    /// "virtual machine vm-12 (added by alice of account acme)", or "(added by account
    /// partner)" for another account's.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (added by {})",
            self.kind.replace('-', " "),
            self.reference_id,
            self.adder()
        )
    }

    /// "alice of account acme", or "account partner" when the user is not shown.
    pub fn adder(&self) -> String {
        match &self.added_by {
            Some(user) => format!("{user} of account {}", self.account_id),
            None => format!("account {}", self.account_id),
        }
    }

    /// The reference as `viewer`'s account sees it: the names of other accounts' users are
    /// not shown.
    pub fn as_seen_by(self, viewer: &str) -> Self {
        if self.account_id == viewer {
            self
        } else {
            Self {
                added_by: None,
                ..self
            }
        }
    }
}

/// Most references one account may add to one image.
pub const MAX_REFERENCES_PER_IMAGE: usize = 1000;

/// "in use by virtual machine vm-1 (…), volume v-2 (…)": the references a refusal lists,
/// at most five, then how many more.
pub fn in_use_by(references: &[ImageReference]) -> String {
    const SHOWN: usize = 5;
    let mut listed: Vec<String> = references
        .iter()
        .take(SHOWN)
        .map(ImageReference::describe)
        .collect();
    if references.len() > SHOWN {
        listed.push(format!("and {} more", references.len() - SHOWN));
    }
    format!("in use by {}", listed.join(", "))
}

/// What an image is, as far as Delete is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteCheck<'a> {
    pub status: ImageStatus,
    pub protected: bool,
    /// A local file's upload (Cancel Upload) rather than an import (Cancel Import).
    pub browser_upload: bool,
    pub references: &'a [ImageReference],
}

impl DeleteCheck<'_> {
    /// Why Delete cannot move the image to the Recycle Bin now, if it cannot.
    pub fn blocked_reason(&self) -> Option<String> {
        if self.protected {
            return Some(PROTECTED_REASON.into());
        }
        match self.status {
            ImageStatus::Deleted => {
                return Some("This image is already in the Recycle Bin.".into());
            }
            ImageStatus::Deleting => return Some("This image is being destroyed.".into()),
            ImageStatus::Uploading if self.browser_upload => {
                return Some(
                    "This image is still uploading. Cancel the upload (Cancel Upload) before deleting it."
                        .into(),
                );
            }
            ImageStatus::Converting => {
                return Some(
                    "This image is still being converted. Cancel the conversion (Cancel Import) before deleting it."
                        .into(),
                );
            }
            status if !status.can_be_deleted() => {
                return Some(
                    "This image is still being imported. Cancel the import (Cancel Import) before deleting it."
                        .into(),
                );
            }
            _ => {}
        }
        (!self.references.is_empty()).then(|| in_use_reason(self.references, "deleting"))
    }
}

pub const PROTECTED_REASON: &str = "This image is Protected. Turn Protected off before deleting it; Protected prevents accidental deletion.";

/// "This image is in use by …. Remove those references before deleting it."
pub fn in_use_reason(references: &[ImageReference], doing: &str) -> String {
    format!(
        "This image is {}. Remove those references before {doing} it.",
        in_use_by(references)
    )
}

/// When and by whom an image in the Recycle Bin was deleted, and what happens next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedInfo {
    pub deleted_at_ms: i64,
    pub deleted_by: String,
    /// The status Restore brings back.
    pub restores_to: ImageStatus,
    /// When the purge destroys it.
    pub destroy_at_ms: i64,
}

/// A row of the Recycle Bin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycledImage {
    pub id: String,
    pub name: String,
    pub os: Option<OperatingSystem>,
    /// Deleted, or Deleting while its bytes are removed.
    pub status: ImageStatus,
    /// What Restore brings it back to.
    pub restores_to: ImageStatus,
    pub size_bytes: Option<u64>,
    pub deleted_at_ms: i64,
    pub deleted_by: String,
    /// When the purge destroys it.
    pub destroy_at_ms: i64,
}

/// The Recycle Bin page: every deleted image of the account, newest deletion first, and the
/// account's retention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecycleBin {
    pub images: Vec<RecycledImage>,
    pub retention: RetentionDays,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_one_to_365_days() {
        assert_eq!(RetentionDays::parse("7").unwrap().days(), 7);
        assert_eq!(RetentionDays::parse(" 365 ").unwrap().days(), 365);
        assert_eq!(RetentionDays::parse("1").unwrap().as_millis(), 86_400_000);
        for bad in ["0", "366", "-1", "", "7.5", "seven"] {
            let e = RetentionDays::parse(bad).unwrap_err();
            assert_eq!(e.field, field::RETENTION_DAYS);
            assert!(e.message.contains("1 to 365"), "{bad}: {}", e.message);
        }
        assert_eq!(RetentionDays::from_db(0), RetentionDays::DEFAULT);
        assert_eq!(RetentionDays::from_db(30).days(), 30);
    }

    #[test]
    fn reference_kinds_and_ids() {
        assert!(ReferenceKind::parse("virtual-machine").is_ok());
        assert_eq!(
            ReferenceKind::parse("virtual-machine").unwrap().label(),
            "virtual machine"
        );
        for bad in ["", "VM", "1vm", "vm_1", "a".repeat(33).as_str()] {
            assert_eq!(
                ReferenceKind::parse(bad).unwrap_err().field,
                field::REFERENCE_KIND,
                "{bad}"
            );
        }
        assert!(ReferenceId::parse("i-0abc:zone.1_x").is_ok());
        for bad in ["", "a b", "a/b", "x".repeat(129).as_str()] {
            assert_eq!(
                ReferenceId::parse(bad).unwrap_err().field,
                field::REFERENCE_ID,
                "{bad}"
            );
        }
    }

    fn reference(n: usize) -> ImageReference {
        ImageReference {
            kind: "virtual-machine".into(),
            reference_id: format!("vm-{n}"),
            account_id: "acme".into(),
            added_by: Some("alice".into()),
            added_at_ms: 0,
        }
    }

    #[test]
    fn other_accounts_users_are_not_named() {
        let own = reference(1);
        assert_eq!(own.clone().as_seen_by("acme"), own);
        let seen = ImageReference {
            account_id: "partner".into(),
            added_by: Some("bob".into()),
            ..reference(2)
        }
        .as_seen_by("acme");
        assert_eq!(seen.added_by, None);
        assert_eq!(
            seen.describe(),
            "virtual machine vm-2 (added by account partner)"
        );
        assert_eq!(own.adder(), "alice of account acme");
    }

    #[test]
    fn delete_is_refused_with_the_reason() {
        let check = |status, protected, browser_upload, references: &[ImageReference]| {
            DeleteCheck {
                status,
                protected,
                browser_upload,
                references,
            }
            .blocked_reason()
        };
        for status in [
            ImageStatus::Active,
            ImageStatus::Failed,
            ImageStatus::Deactivated,
        ] {
            assert_eq!(check(status, false, false, &[]), None);
        }
        assert!(
            check(ImageStatus::Active, true, false, &[])
                .unwrap()
                .contains("Protected")
        );
        assert!(
            check(ImageStatus::Uploading, false, true, &[])
                .unwrap()
                .contains("Cancel Upload")
        );
        for status in [
            ImageStatus::Queued,
            ImageStatus::Importing,
            ImageStatus::Uploading,
        ] {
            assert!(
                check(status, false, false, &[])
                    .unwrap()
                    .contains("Cancel Import")
            );
        }
        assert!(
            check(ImageStatus::Deleted, false, false, &[])
                .unwrap()
                .contains("Recycle Bin")
        );
        let refs: Vec<_> = (1..=7).map(reference).collect();
        let reason = check(ImageStatus::Active, false, false, &refs).unwrap();
        assert!(
            reason.starts_with(
                "This image is in use by virtual machine vm-1 (added by alice of account acme), "
            ),
            "{reason}"
        );
        assert!(reason.contains("vm-5"), "{reason}");
        assert!(!reason.contains("vm-6"), "{reason}");
        assert!(reason.contains("and 2 more"), "{reason}");
    }
}
