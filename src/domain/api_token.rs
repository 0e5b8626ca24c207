//! API tokens: what a user names, how long one lasts, and what the API access page shows. A
//! token acts as its user, within its account, with every rule the console applies.

use serde::{Deserialize, Serialize};

use super::validation::{FieldError, describe_char};

/// At most this many tokens per user: each is a standing way in, so they stay few and named.
pub const MAX_API_TOKENS_PER_USER: usize = 20;

/// Every token starts with this, so a leaked one is recognised (and secret scanners can
/// match it).
pub const API_TOKEN_PREFIX: &str = "imgc_";

pub const API_TOKEN_NAME_MAX: usize = 64;

/// What a token is for, in its user's words: "ci-pipeline", "Packer on build host".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenName(String);

impl ApiTokenName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let error = |message: String| Err(FieldError::new("name", message));
        if name.is_empty() {
            return error(
                "Enter a name for the token, such as the machine or pipeline that will use it."
                    .into(),
            );
        }
        if name.chars().count() > API_TOKEN_NAME_MAX {
            return error(format!(
                "Token name can be at most {API_TOKEN_NAME_MAX} characters (found {}).",
                name.chars().count()
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')))
        {
            return error(format!(
                "Token name can contain only English letters, digits, spaces, '-', '_' and '.' (found {}).",
                describe_char(c)
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a token works: a number of days, or until it is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenLifetime {
    Days(u32),
    UntilRevoked,
}

impl TokenLifetime {
    /// The choices the form offers: its value and its label.
    pub const CHOICES: [(&'static str, &'static str); 4] = [
        ("30", "30 days"),
        ("90", "90 days"),
        ("365", "1 year"),
        ("never", "No expiry (until revoked)"),
    ];

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "never" => Ok(Self::UntilRevoked),
            days => match days.parse::<u32>() {
                Ok(days @ (30 | 90 | 365)) => Ok(Self::Days(days)),
                _ => Err(FieldError::new(
                    "lifetime",
                    "Choose how long the token works: 30 days, 90 days, 1 year or no expiry.",
                )),
            },
        }
    }

    /// When a token made at `now_ms` stops working.
    pub fn expires_at_ms(self, now_ms: i64) -> Option<i64> {
        match self {
            Self::Days(days) => Some(now_ms + i64::from(days) * 86_400_000),
            Self::UntilRevoked => None,
        }
    }
}

/// A token as its user sees it in the list: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenSummary {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// `None`: until revoked.
    pub expires_at_ms: Option<i64>,
    /// `None`: never used.
    pub last_used_at_ms: Option<i64>,
}

impl ApiTokenSummary {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// A token just made: the secret, shown once and never again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiToken {
    pub summary: ApiTokenSummary,
    pub secret: String,
}

/// Whether a string has a token's shape, before anything is looked up.
pub fn looks_like_api_token(raw: &str) -> bool {
    raw.strip_prefix(API_TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_the_error_names_the_rule() {
        assert_eq!(
            ApiTokenName::parse("  ci-pipeline ").unwrap().as_str(),
            "ci-pipeline"
        );
        assert_eq!(
            ApiTokenName::parse("Packer on build.host_2")
                .unwrap()
                .as_str(),
            "Packer on build.host_2"
        );
        let error = ApiTokenName::parse("   ").unwrap_err();
        assert_eq!(error.field, "name");
        assert!(error.message.starts_with("Enter a name"));
        assert!(
            ApiTokenName::parse(&"a".repeat(65))
                .unwrap_err()
                .message
                .contains("at most 64 characters (found 65)")
        );
        assert!(
            ApiTokenName::parse("ci/prod")
                .unwrap_err()
                .message
                .contains("(found '/')")
        );
    }

    #[test]
    fn lifetimes_are_the_offered_choices() {
        assert_eq!(TokenLifetime::parse("30"), Ok(TokenLifetime::Days(30)));
        assert_eq!(
            TokenLifetime::parse("never"),
            Ok(TokenLifetime::UntilRevoked)
        );
        for bad in ["", "7", "366", "forever", "-30"] {
            assert_eq!(
                TokenLifetime::parse(bad).unwrap_err().field,
                "lifetime",
                "{bad}"
            );
        }
        for (value, _) in TokenLifetime::CHOICES {
            assert!(TokenLifetime::parse(value).is_ok());
        }
        assert_eq!(
            TokenLifetime::Days(30).expires_at_ms(1_000),
            Some(1_000 + 30 * 86_400_000)
        );
        assert_eq!(TokenLifetime::UntilRevoked.expires_at_ms(1_000), None);
    }

    #[test]
    fn token_shape() {
        let token = format!("{API_TOKEN_PREFIX}{}", "A".repeat(43));
        assert!(looks_like_api_token(&token));
        assert!(!looks_like_api_token(&token[1..]));
        assert!(!looks_like_api_token(&format!("{token}A")));
        assert!(!looks_like_api_token(&format!(
            "{API_TOKEN_PREFIX}{}",
            "+".repeat(43)
        )));
    }
}
