//! Where a sign-in may send the browser next.

use super::web_url::WebUrl;

/// Where a signed-in user lands when no (acceptable) destination was given.
pub const HOME: &str = "/images";

/// The path to open after signing in: `next` if it is a path on this site, the Image List
/// otherwise, so a crafted sign-in link cannot send people elsewhere. Browsers drop tabs and
/// newlines from URLs and read `\` as `/`, so `/\t/evil.example` and `/\evil.example` would
/// both become `//evil.example`, another site; such values are refused outright, and what
/// remains must resolve to this origin.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(raw) = next else {
        return HOME.to_owned();
    };
    let suspicious = raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        || percent_decoded(raw).any(|b| b.is_ascii_control() || b == b'\\');
    if !raw.starts_with('/') || raw.starts_with("//") || suspicious || raw.len() > 2048 {
        return HOME.to_owned();
    }
    const ORIGIN: &str = "http://console.invalid";
    match WebUrl::join(ORIGIN, raw) {
        Some(url) if url.origin == ORIGIN => url.path_and_after,
        _ => HOME.to_owned(),
    }
}

/// The bytes that `%XX` escapes in `raw` stand for: a value decoded once more on its way
/// (by a proxy, say) must not turn into a dangerous one either.
fn percent_decoded(raw: &str) -> impl Iterator<Item = u8> + '_ {
    raw.as_bytes()
        .windows(3)
        .filter(|w| w[0] == b'%')
        .filter_map(|w| u8::from_str_radix(std::str::from_utf8(&w[1..]).ok()?, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_kept() {
        assert_eq!(safe_next(Some("/images/abc")), "/images/abc");
        assert_eq!(
            safe_next(Some("/images?q=web&page=2")),
            "/images?q=web&page=2"
        );
        assert_eq!(
            safe_next(Some("/images/a b")),
            HOME,
            "whitespace is refused"
        );
        assert_eq!(safe_next(None), HOME);
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " /images",
            "",
            "images",
        ] {
            assert_eq!(safe_next(Some(hostile)), HOME, "{hostile:?}");
        }
        // Encoded once more, as a link may carry it.
        assert_eq!(safe_next(Some("/%09/evil.example")), HOME);
        assert_eq!(safe_next(Some("/%5Cevil.example")), HOME);
        assert_eq!(safe_next(Some("/images/caf%C3%A9")), "/images/caf%C3%A9");
        // Dot segments resolve on this site.
        assert_eq!(safe_next(Some("/images/../signup")), "/signup");
    }
}
