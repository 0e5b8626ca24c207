//! The error a person reads beside a form field.

use serde::{Deserialize, Serialize};

/// One rule broken by one field. `Display` is the sentence shown to the user; it names the
/// field, the rule and, where it helps, the offending value. Build it once, at the rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The form field's `name` attribute, so the UI can put the message under that field.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Every error of a form at once, so the user can fix them all in one go.
pub type FieldErrors = Vec<FieldError>;

/// Finds the message for `field`, if any.
pub fn message_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// Collects the result of one field's `parse` into `errors`, returning the value when valid.
pub fn collect<T>(result: Result<T, FieldError>, errors: &mut FieldErrors) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// Shows a character in a message so that a space or a control character is visible.
pub fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

/// "a", "a or b", "a, b or c": the choices a message offers.
pub fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Formats an integer with thousands separators, as the limits are written in the guides.
pub fn with_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(with_thousands(0), "0");
        assert_eq!(with_thousands(999), "999");
        assert_eq!(with_thousands(12_288), "12,288");
        assert_eq!(with_thousands(2_097_151), "2,097,151");
    }

    #[test]
    fn visible_characters() {
        assert_eq!(describe_char(' '), "a space");
        assert_eq!(describe_char('\t'), "the control character U+0009");
        assert_eq!(describe_char('#'), "'#'");
    }
}
