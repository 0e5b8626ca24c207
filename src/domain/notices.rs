//! Sentences for refusals that are not about one field, shared by the server (plain-text
//! answers) and the browser (the error the form shows), so both say the same thing.

use std::time::Duration;

use super::units::format_bytes;

/// An image id that names nothing this account may see; the same words whether the image
/// does not exist or belongs to another account.
pub const NO_SUCH_IMAGE: &str = "No image with that ID exists in this account.";

/// Creating one more image would pass the account's image quota.
pub fn image_quota_full(images: u64, max_images: u64) -> String {
    format!(
        "This account already has {images} of its {max_images} images. Delete images you no longer need before creating more."
    )
}

/// Creating the image would pass the account's storage quota; `file` is the size the new
/// image declared, if it did.
pub fn storage_quota_full(stored: u64, max_stored: u64, file: Option<u64>) -> String {
    let file = file
        .map(|size| format!(" The file is {}.", format_bytes(size)))
        .unwrap_or_default();
    format!(
        "This account stores {} of its {} storage quota.{file} Delete images you no longer need before creating more.",
        format_bytes(stored),
        format_bytes(max_stored)
    )
}

/// An import's bytes passed what the account's storage quota has left.
pub fn storage_quota_exceeded(needed: u64, room: u64, quota: u64) -> String {
    format!(
        "Storage quota exceeded: the image needs {} and the account's quota of {} has {} left. Delete images you no longer need and try again.",
        format_bytes(needed),
        format_bytes(quota),
        format_bytes(room)
    )
}

/// "1 second", "42 seconds".
fn seconds(wait: Duration) -> String {
    let n = wait_seconds(wait);
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
}

/// A wait rounded up to whole seconds, at least 1: what `Retry-After` says.
pub fn wait_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Over a sign-in or sign-up limit.
pub fn too_many_attempts(wait: Duration) -> String {
    format!("Too many attempts; try again in {}.", seconds(wait))
}

/// At a limit of the server's own.
pub fn busy(wait: Duration) -> String {
    format!("The server is busy; try again in {}.", seconds(wait))
}

/// A request body over the limit.
pub fn body_too_large(limit: &str) -> String {
    format!(
        "The request is too large: this console accepts at most {limit} for a form or a server call."
    )
}

/// An image's stored data that cannot be read now (missing or unreachable storage); the
/// reference finds its log line.
pub fn data_unavailable(reference: &str) -> String {
    format!(
        "The image's data cannot be read on the server now (reference {reference}). Try again later; if it keeps happening, report the reference."
    )
}

/// A fault on the server's side; the reference finds its log line.
pub fn fault(reference: &str) -> String {
    format!(
        "Something went wrong on the server (reference {reference}). Try again; if it keeps happening, report the reference."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(wait_seconds(Duration::from_millis(1)), 1);
        assert_eq!(wait_seconds(Duration::ZERO), 1);
        assert_eq!(wait_seconds(Duration::from_secs(3)), 3);
        assert_eq!(wait_seconds(Duration::from_millis(2_001)), 3);
        assert_eq!(
            too_many_attempts(Duration::from_millis(200)),
            "Too many attempts; try again in 1 second."
        );
        assert_eq!(
            too_many_attempts(Duration::from_secs(6)),
            "Too many attempts; try again in 6 seconds."
        );
    }
}
