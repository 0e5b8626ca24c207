//! Encryption keys: an account's key-encryption keys, what a user names, the states a key
//! goes through and what the Keys page shows. A key never leaves its key provider in the
//! clear; the console keeps its name, state and versions, and each encrypted image's data key
//! wrapped by it.

use serde::{Deserialize, Serialize};

use super::validation::{FieldError, describe_char};

/// At most this many keys per account that are not deleted, as KMS quotas keep keys few.
pub const MAX_KEYS_PER_ACCOUNT: usize = 20;

pub const KEY_NAME_MAX: usize = 64;

/// A key is rotated at most once in this long: each rotation re-wraps every data key under
/// it (a KMS call each with `aws-kms`), so rotations in a loop would keep the console busy.
pub const MIN_ROTATION_INTERVAL_MS: i64 = 3_600_000;
pub const KEY_DESCRIPTION_MAX: usize = 255;

/// The name the console gives the key it makes when an account first encrypts an image
/// without one.
pub const DEFAULT_KEY_NAME: &str = "default";

/// A key's name, unique among the account's keys that are not deleted: "prod-images".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let error = |message: String| Err(FieldError::new("name", message));
        if name.is_empty() {
            return error("Enter a name for the key, such as prod-images.".into());
        }
        let count = name.chars().count();
        if count > KEY_NAME_MAX {
            return error(format!(
                "Key name can be at most {KEY_NAME_MAX} characters (found {count})."
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return error(format!(
                "Key name can contain only English letters, digits, '-', '_' and '.' (found {}).",
                describe_char(c)
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return error("Key name must start with a letter or a digit.".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a key is for, in its owner's words; may be empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDescription(String);

impl KeyDescription {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim();
        let count = text.chars().count();
        if count > KEY_DESCRIPTION_MAX {
            return Err(FieldError::new(
                "description",
                format!(
                    "Description can be at most {KEY_DESCRIPTION_MAX} characters (found {count})."
                ),
            ));
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(FieldError::new(
                "description",
                format!(
                    "Description cannot contain control characters (found {}).",
                    describe_char(c)
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a key waits, once scheduled for deletion, before it is deleted: 7 to 30 days, as
/// KMS allows, so a mistake can be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionWindow(u32);

impl DeletionWindow {
    pub const MIN_DAYS: u32 = 7;
    pub const MAX_DAYS: u32 = 30;
    pub const DEFAULT_DAYS: u32 = 30;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim().parse::<u32>() {
            Ok(days) if (Self::MIN_DAYS..=Self::MAX_DAYS).contains(&days) => Ok(Self(days)),
            _ => Err(FieldError::new(
                "days",
                format!(
                    "Enter a waiting period from {} to {} days.",
                    Self::MIN_DAYS,
                    Self::MAX_DAYS
                ),
            )),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    /// When a key scheduled at `now_ms` is deleted.
    pub fn deletion_at_ms(self, now_ms: i64) -> i64 {
        now_ms + i64::from(self.0) * 86_400_000
    }
}

/// Where a key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    /// Encrypts new images and opens its images.
    Enabled,
    /// Its images cannot be used until it is enabled again; nothing new is encrypted with it.
    Disabled,
    /// Like Disabled, until the deletion time; Cancel deletion returns it to where it was.
    PendingDeletion,
    /// Gone for good: its images are Failed and can only be deleted.
    Deleted,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
            KeyState::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "enabled" => KeyState::Enabled,
            "disabled" => KeyState::Disabled,
            "pending_deletion" => KeyState::PendingDeletion,
            "deleted" => KeyState::Deleted,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "Pending deletion",
            KeyState::Deleted => "Deleted",
        }
    }

    /// Whether images under the key can be read (downloaded, replicated, shared).
    pub fn is_usable(self) -> bool {
        self == KeyState::Enabled
    }
}

/// A change a key's owner asks for on the Keys page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAction {
    Enable,
    Disable,
    ScheduleDeletion(DeletionWindow),
    CancelDeletion,
    Rotate,
    MakeDefault,
}

impl KeyAction {
    /// Whether the action applies to a key in `state`; the error is the sentence shown.
    pub fn check(self, key_name: &str, state: KeyState) -> Result<(), String> {
        let allowed = match self {
            KeyAction::Enable => state == KeyState::Disabled,
            KeyAction::Disable => state == KeyState::Enabled,
            KeyAction::ScheduleDeletion(_) => {
                matches!(state, KeyState::Enabled | KeyState::Disabled)
            }
            KeyAction::CancelDeletion => state == KeyState::PendingDeletion,
            KeyAction::Rotate | KeyAction::MakeDefault => state == KeyState::Enabled,
        };
        if allowed {
            return Ok(());
        }
        let what = match self {
            KeyAction::Enable => "enabled: only a disabled key can be",
            KeyAction::Disable => "disabled: only an enabled key can be",
            KeyAction::ScheduleDeletion(_) => {
                "scheduled for deletion: only an enabled or disabled key can be"
            }
            KeyAction::CancelDeletion => {
                "taken out of deletion: only a key pending deletion can be"
            }
            KeyAction::Rotate => "rotated: only an enabled key can be",
            KeyAction::MakeDefault => "made the default: only an enabled key can be",
        };
        Err(format!(
            "Key {key_name} is {} and cannot be {what}.",
            state.label()
        ))
    }

    pub fn label(self) -> &'static str {
        match self {
            KeyAction::Enable => "Enable",
            KeyAction::Disable => "Disable",
            KeyAction::ScheduleDeletion(_) => "Schedule deletion",
            KeyAction::CancelDeletion => "Cancel deletion",
            KeyAction::Rotate => "Rotate",
            KeyAction::MakeDefault => "Make default",
        }
    }
}

/// A key as the Keys page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub state: KeyState,
    pub is_default: bool,
    /// "Local" or "AWS KMS".
    pub provider: String,
    /// The provider's own id of the key (a KMS KeyId); empty for local keys.
    pub provider_key_id: String,
    /// The version new data keys are wrapped under; 1 until the key is rotated.
    pub version: u32,
    pub created_at_ms: i64,
    pub rotated_at_ms: Option<i64>,
    /// When a key pending deletion is deleted.
    pub deletion_at_ms: Option<i64>,
    /// Images (not destroyed) whose bytes are encrypted under it.
    pub images: u64,
    /// Those of them whose data key is still wrapped under an older version.
    pub images_on_older_versions: u64,
}

/// Field names of the Encryption choice on Create Image.
pub mod field {
    pub const ENCRYPTION: &str = "encryption";
    pub const ENCRYPTION_KEY: &str = "encryption_key";
}

/// Create Image's Encryption: off, or on with the account's default key or a chosen one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncryptionChoice {
    Off,
    /// The account's default key (made, named default, if it has none).
    DefaultKey,
    /// One of the account's keys, by id.
    Key(String),
}

impl EncryptionChoice {
    /// `encryption` is `off` (or empty) or `on`; `key` a key id, or empty (or `default`) for
    /// the account's default key.
    pub fn parse(encryption: &str, key: &str) -> Result<Self, FieldError> {
        match encryption.trim() {
            "" | "off" => Ok(Self::Off),
            "on" => match key.trim() {
                "" | "default" => Ok(Self::DefaultKey),
                id if looks_like_key_id(id) => Ok(Self::Key(id.to_ascii_lowercase())),
                _ => Err(FieldError::new(
                    field::ENCRYPTION_KEY,
                    "Choose one of this account's keys, or the default key.",
                )),
            },
            _ => Err(FieldError::new(
                field::ENCRYPTION,
                "Choose whether the image is encrypted: on or off.",
            )),
        }
    }
}

/// Whether a string has a key id's shape (a UUID), before anything is looked up.
pub fn looks_like_key_id(raw: &str) -> bool {
    raw.len() == 36
        && raw.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A key's name and id, as an image shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub id: String,
    pub name: String,
    pub state: KeyState,
    pub deletion_at_ms: Option<i64>,
}

impl KeyRef {
    /// Why an image under this key cannot be used now, naming the key; `None` if it can.
    pub fn unusable_reason(&self) -> Option<String> {
        match self.state {
            KeyState::Enabled => None,
            KeyState::Disabled => Some(format!(
                "Its encryption key {} ({}) is disabled; enable the key to use the image.",
                self.name, self.id
            )),
            KeyState::PendingDeletion => Some(format!(
                "Its encryption key {} ({}) is pending deletion; cancel the deletion to use the image.",
                self.name, self.id
            )),
            KeyState::Deleted => Some(deleted_key_reason(&self.name, &self.id)),
        }
    }
}

/// The reason an image under a deleted key is Failed.
pub fn deleted_key_reason(name: &str, id: &str) -> String {
    format!(
        "Its encryption key {name} ({id}) was deleted, so its bytes can never be read again; the image can only be deleted."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_are_checked() {
        assert_eq!(
            KeyName::parse(" prod-images ").unwrap().as_str(),
            "prod-images"
        );
        for (bad, says) in [
            ("", "Enter a name"),
            ("-x", "start with a letter"),
            ("a b", "(found a space)"),
            (&"k".repeat(65), "at most 64"),
        ] {
            let error = KeyName::parse(bad).unwrap_err();
            assert!(error.message.contains(says), "{bad}: {}", error.message);
        }
        assert_eq!(KeyDescription::parse("").unwrap().as_str(), "");
        assert!(KeyDescription::parse(&"d".repeat(256)).is_err());
        assert!(KeyDescription::parse("a\u{7}b").is_err());
    }

    #[test]
    fn the_encryption_choice_is_parsed() {
        assert_eq!(EncryptionChoice::parse("", ""), Ok(EncryptionChoice::Off));
        assert_eq!(
            EncryptionChoice::parse("on", ""),
            Ok(EncryptionChoice::DefaultKey)
        );
        let id = "8F4E2C1A-3B5D-4E6F-9A7B-0C1D2E3F4A5B";
        assert_eq!(
            EncryptionChoice::parse("on", id),
            Ok(EncryptionChoice::Key(id.to_ascii_lowercase()))
        );
        assert_eq!(
            EncryptionChoice::parse("on", "x").unwrap_err().field,
            field::ENCRYPTION_KEY
        );
        assert_eq!(
            EncryptionChoice::parse("maybe", "").unwrap_err().field,
            field::ENCRYPTION
        );
    }

    #[test]
    fn deletion_waits_seven_to_thirty_days() {
        assert!(DeletionWindow::parse("6").is_err());
        assert!(DeletionWindow::parse("31").is_err());
        assert!(DeletionWindow::parse("x").is_err());
        let week = DeletionWindow::parse("7").unwrap();
        assert_eq!(week.deletion_at_ms(1_000), 1_000 + 7 * 86_400_000);
    }

    #[test]
    fn actions_follow_the_state() {
        assert!(KeyAction::Disable.check("k", KeyState::Enabled).is_ok());
        assert!(KeyAction::Enable.check("k", KeyState::Enabled).is_err());
        assert!(
            KeyAction::CancelDeletion
                .check("k", KeyState::PendingDeletion)
                .is_ok()
        );
        let window = DeletionWindow::parse("7").unwrap();
        let refused = KeyAction::ScheduleDeletion(window)
            .check("prod", KeyState::Deleted)
            .unwrap_err();
        assert_eq!(
            refused,
            "Key prod is Deleted and cannot be scheduled for deletion: only an enabled or disabled key can be."
        );
        for state in [
            KeyState::Disabled,
            KeyState::PendingDeletion,
            KeyState::Deleted,
        ] {
            assert!(KeyAction::Rotate.check("k", state).is_err());
            assert!(!state.is_usable());
            assert_eq!(KeyState::parse(state.as_str()), Some(state));
        }
    }
}
