//! Accounts and the people who sign in to them.

use serde::{Deserialize, Serialize};

use super::validation::{FieldError, FieldErrors, collect, describe_char};

pub mod field {
    pub const ACCOUNT_ID: &str = "account_id";
    pub const USER_NAME: &str = "user_name";
    pub const PASSWORD: &str = "password";
    pub const PASSWORD_CONFIRM: &str = "password_confirm";
}

/// The ID others use to share images with an account: 1–64 English letters, digits and '-'.
///
/// Stored in lower case, so "Acme" and "acme" cannot be two accounts that people confuse.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountId(String);

impl AccountId {
    /// The guides' limit for a Share Account ID.
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::ACCOUNT_ID, m));
        if raw.is_empty() {
            return err("Enter an Account ID.".into());
        }
        let count = raw.chars().count();
        if count > Self::MAX_CHARS {
            return err(format!(
                "Account ID must be at most {} characters (it has {count}).",
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return err(format!(
                "Account ID can contain only English letters, digits and '-' (found {}).",
                describe_char(bad)
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a person signs in with: 3–64 letters, digits, '.', '_', '-' and '@', so an
/// e-mail address works too. Unique across the console, compared without case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserName(String);

impl UserName {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::USER_NAME, m));
        if raw.is_empty() {
            return err("Enter a user name.".into());
        }
        let count = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&count) {
            return err(format!(
                "User name must be {} to {} characters (it has {count}).",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return err(format!(
                "User name can contain only English letters, digits, '.', '_', '-' and '@' (found {}).",
                describe_char(bad)
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed. Never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Password {
    /// NIST SP 800-63B: at least 8 characters, and allow long passphrases.
    pub const MIN_CHARS: usize = 8;
    /// Bounds the argon2 work an anonymous request can cause.
    pub const MAX_CHARS: usize = 128;

    /// Checks a new password (sign up). Sign-in takes any string and lets the hash decide.
    pub fn parse_new(raw: &str) -> Result<Self, FieldError> {
        let count = raw.chars().count();
        if count < Self::MIN_CHARS {
            return Err(FieldError::new(
                field::PASSWORD,
                format!("Password must be at least {} characters.", Self::MIN_CHARS),
            ));
        }
        if count > Self::MAX_CHARS {
            return Err(FieldError::new(
                field::PASSWORD,
                format!("Password must be at most {} characters.", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a password typed at sign-in; only the length bound applies.
    pub fn for_sign_in(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field::PASSWORD, "Enter your password."));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                field::PASSWORD,
                "The user name or password is incorrect.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The Sign Up form as sent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SignUpForm {
    pub account_id: String,
    pub user_name: String,
    pub password: String,
    pub password_confirm: String,
}

/// A validated sign-up: a new account and its first user.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub account_id: AccountId,
    pub user_name: UserName,
    pub password: Password,
}

impl SignUpForm {
    pub fn parse(&self) -> Result<NewAccount, FieldErrors> {
        let mut errors = Vec::new();
        let account_id = collect(AccountId::parse(&self.account_id), &mut errors);
        let user_name = collect(UserName::parse(&self.user_name), &mut errors);
        let password = collect(Password::parse_new(&self.password), &mut errors);
        if password.is_some() && self.password != self.password_confirm {
            errors.push(FieldError::new(
                field::PASSWORD_CONFIRM,
                "The two passwords do not match.",
            ));
        }
        match (account_id, user_name, password) {
            (Some(account_id), Some(user_name), Some(password)) if errors.is_empty() => {
                Ok(NewAccount {
                    account_id,
                    user_name,
                    password,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The signed-in person, as the UI shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub user_name: String,
    pub account_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_boundaries() {
        assert!(AccountId::parse("a").is_ok());
        assert!(AccountId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            AccountId::parse(&"a".repeat(65)).unwrap_err().message,
            "Account ID must be at most 64 characters (it has 65)."
        );
        assert_eq!(
            AccountId::parse("").unwrap_err().message,
            "Enter an Account ID."
        );
    }

    #[test]
    fn account_id_characters() {
        assert_eq!(AccountId::parse("Team-42").unwrap().as_str(), "team-42");
        for bad in ["a_b", "a b", "a.b", "a@b", "ü", "a/b"] {
            let error = AccountId::parse(bad).unwrap_err();
            assert_eq!(error.field, "account_id");
            assert!(
                error
                    .message
                    .starts_with("Account ID can contain only English letters, digits and '-'"),
                "{bad}: {error}"
            );
        }
        assert_eq!(
            AccountId::parse("a_b").unwrap_err().message,
            "Account ID can contain only English letters, digits and '-' (found '_')."
        );
    }

    #[test]
    fn user_name_rules() {
        assert!(UserName::parse("ada@example.com").is_ok());
        assert!(UserName::parse("ab").is_err());
        assert!(UserName::parse(&"a".repeat(65)).is_err());
        assert!(UserName::parse(&"a".repeat(64)).is_ok());
        assert!(UserName::parse("a b c").is_err());
        assert_eq!(UserName::parse("Ada").unwrap().as_str(), "ada");
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse_new("1234567").is_err());
        assert!(Password::parse_new("12345678").is_ok());
        assert!(Password::parse_new(&"p".repeat(128)).is_ok());
        assert!(Password::parse_new(&"p".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse_new("secret-pass").unwrap()),
            "Password(…)"
        );
    }

    #[test]
    fn sign_up_requires_matching_passwords() {
        let form = SignUpForm {
            account_id: "acme".into(),
            user_name: "ada".into(),
            password: "correct horse".into(),
            password_confirm: "correct house".into(),
        };
        let errors = form.parse().unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "password_confirm");
    }
}
