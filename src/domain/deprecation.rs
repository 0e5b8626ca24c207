//! Deprecation and hidden images: from its Deprecate on time an image still works but shows
//! as Deprecated and leaves default lists; a hidden image (Glance's `os_hidden`) leaves them
//! from the start. Filters bring either back.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::validation::FieldError;

pub mod field {
    /// Details' Deprecate on.
    pub const DEPRECATE_ON: &str = "deprecate_on";
}

/// How far ahead a deprecation may be set: 10 years.
pub const MAX_AHEAD_MS: i64 = 3653 * 86_400_000;

/// Whether an image deprecated at `deprecate_at_ms` is Deprecated at `now_ms`.
pub fn is_deprecated(deprecate_at_ms: Option<i64>, now_ms: i64) -> bool {
    deprecate_at_ms.is_some_and(|at| at <= now_ms)
}

/// Details' Deprecate on, and the image API's `deprecation_time`.
pub struct DeprecateOn;

impl DeprecateOn {
    /// `2027-01-31T12:00` (a `datetime-local` input's value, read as UTC), with seconds too,
    /// `2027-01-31 12:00`, or RFC 3339 with its offset. Empty removes the deprecation
    /// (`None`). A time already past deprecates the image at once; at most 10 years ahead.
    pub fn parse(raw: &str, now_ms: i64) -> Result<Option<i64>, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let err = |m: String| Err(FieldError::new(field::DEPRECATE_ON, m));
        let parsed = OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
            let text = raw.replacen(' ', "T", 1);
            [
                format_description!("[year]-[month]-[day]T[hour]:[minute]"),
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            ]
            .iter()
            .find_map(|f| PrimitiveDateTime::parse(&text, f).ok())
            .map(PrimitiveDateTime::assume_utc)
        });
        let Some(at) = parsed else {
            return err(format!(
                "Enter a date and time such as 2027-01-31 12:00 (UTC) (found \"{}\").",
                raw.chars().take(40).collect::<String>()
            ));
        };
        let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        if at_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
            return err("Deprecate on can be at most 10 years ahead.".into());
        }
        if at.year() < 2000 {
            return err("Deprecate on must be in the year 2000 or later.".into());
        }
        Ok(Some(at_ms))
    }

    /// The form's value for a stored time: `2027-01-31T12:00` (UTC).
    pub fn input_value(at_ms: i64) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]"))
                    .ok()
            })
            .unwrap_or_default()
    }
}

/// Whether a list shows deprecated (or hidden) images: not at all (the default), only them,
/// or with the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Inclusion {
    #[default]
    Exclude,
    Only,
    Include,
}

impl Inclusion {
    pub const ALL: [Inclusion; 3] = [Inclusion::Exclude, Inclusion::Only, Inclusion::Include];

    /// The query string's value (`deprecated=only`); the default is empty.
    pub fn as_str(self) -> &'static str {
        match self {
            Inclusion::Exclude => "",
            Inclusion::Only => "only",
            Inclusion::Include => "include",
        }
    }

    pub fn from_query(raw: Option<&str>) -> Self {
        match raw {
            Some("only") => Inclusion::Only,
            Some("include") => Inclusion::Include,
            _ => Inclusion::Exclude,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_797_000_000_000; // 2026-12-12 18:40 UTC

    #[test]
    fn deprecate_on_takes_a_form_time_or_rfc_3339_up_to_ten_years_ahead() {
        assert_eq!(DeprecateOn::parse("", NOW).unwrap(), None);
        let at = DeprecateOn::parse("2027-01-31T12:00", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(DeprecateOn::input_value(at), "2027-01-31T12:00");
        assert_eq!(
            DeprecateOn::parse("2027-01-31 12:00", NOW).unwrap(),
            Some(at)
        );
        assert_eq!(
            DeprecateOn::parse("2027-01-31T13:00:00+01:00", NOW).unwrap(),
            Some(at)
        );
        // The past deprecates at once.
        assert!(
            DeprecateOn::parse("2020-01-01T00:00", NOW)
                .unwrap()
                .unwrap()
                < NOW
        );
        assert!(
            DeprecateOn::parse("2037-01-01T00:00", NOW)
                .unwrap_err()
                .message
                .contains("10 years")
        );
        assert!(
            DeprecateOn::parse("next week", NOW)
                .unwrap_err()
                .message
                .contains("such as")
        );
        assert!(is_deprecated(Some(NOW), NOW));
        assert!(!is_deprecated(Some(NOW + 1), NOW));
        assert!(!is_deprecated(None, NOW));
    }
}
