//! The image API's words for the console's: Glance's status names and its `key=value` tags.
//! Only the API speaks them; the service and the pages use the console's own.

use crate::domain::image::ImageStatus;
use crate::domain::tags::TagPair;

/// An API tag is the console tag's key, or `key=value` when it has a value.
pub fn api_tag(tag: &TagPair) -> String {
    if tag.value.is_empty() {
        tag.key.clone()
    } else {
        format!("{}={}", tag.key, tag.value)
    }
}

/// The console tag an API tag stands for.
pub fn tag_from_api(raw: &str) -> TagPair {
    match raw.split_once('=') {
        Some((key, value)) => TagPair {
            key: key.to_owned(),
            value: value.to_owned(),
        },
        None => TagPair {
            key: raw.to_owned(),
            value: String::new(),
        },
    }
}

pub use crate::domain::api_list::api_status;

/// Every status name the API uses, in the order of the console's statuses.
pub fn api_statuses() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ImageStatus::ALL
        .into_iter()
        .flat_map(|s| [api_status(s, false), api_status(s, true)])
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_both_ways() {
        for raw in ["linux", "env=prod", "a=b=c", "k="] {
            let tag = tag_from_api(raw);
            let back = api_tag(&tag);
            if raw == "k=" {
                assert_eq!(back, "k");
            } else {
                assert_eq!(back, raw);
            }
        }
        assert_eq!(tag_from_api("env=prod").key, "env");
        assert_eq!(tag_from_api("a=b=c").value, "b=c");
    }

    #[test]
    fn statuses_use_glance_words() {
        assert_eq!(api_status(ImageStatus::Failed, true), "killed");
        assert_eq!(api_status(ImageStatus::Importing, false), "saving");
        assert_eq!(api_status(ImageStatus::Importing, true), "importing");
    }

    #[test]
    fn every_status_has_its_api_names() {
        assert_eq!(
            api_statuses(),
            [
                "queued",
                "uploading",
                "saving",
                "importing",
                "active",
                "killed",
                "deactivated",
                "pending_delete",
                "deleted"
            ]
        );
    }
}
