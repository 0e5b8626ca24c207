//! URLs parsed by the WHATWG URL Standard, the parser every browser has.
//!
//! On the server the `url` crate implements it; in the bundle the browser's own `URL` does, so
//! the bundle carries no second copy of the Standard's Unicode tables (IDNA), which would
//! make it about a tenth larger. The rules that read a URL (an image file URL, a sign-in's
//! next page) are written once, against [`WebUrl`].

/// The parts of a parsed absolute URL the console's rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUrl {
    /// The serialised URL, normalised by the parser.
    pub href: String,
    /// The scheme without its colon: "https".
    pub scheme: String,
    /// The host as serialised: "example.com", "[::1]"; empty for URLs without one.
    pub host: String,
    pub username: String,
    pub password: String,
    /// The serialised origin: "https://example.com:8443", or "null".
    pub origin: String,
    /// "/a/b.qcow2", percent-encoded as the parser left it.
    pub path: String,
    /// Everything from the path on: path, "?query" and "#fragment".
    pub path_and_after: String,
}

impl WebUrl {
    /// Parses an absolute URL.
    pub fn parse(raw: &str) -> Option<WebUrl> {
        parser::parse(raw, None)
    }

    /// Resolves `raw`, which may be relative, against the absolute URL `base`.
    pub fn join(base: &str, raw: &str) -> Option<WebUrl> {
        parser::parse(raw, Some(base))
    }

    /// The path's last segment: "b.qcow2" for "/a/b.qcow2".
    pub fn last_segment(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

#[cfg(not(all(target_arch = "wasm32", feature = "hydrate")))]
mod parser {
    use super::WebUrl;

    pub fn parse(raw: &str, base: Option<&str>) -> Option<WebUrl> {
        let url = match base {
            Some(base) => url::Url::parse(base).ok()?.join(raw).ok()?,
            None => url::Url::parse(raw).ok()?,
        };
        Some(WebUrl {
            href: url.to_string(),
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            username: url.username().to_owned(),
            password: url.password().unwrap_or_default().to_owned(),
            origin: url.origin().ascii_serialization(),
            path: url.path().to_owned(),
            path_and_after: url[url::Position::BeforePath..].to_owned(),
        })
    }
}

#[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
mod parser {
    use super::WebUrl;

    pub fn parse(raw: &str, base: Option<&str>) -> Option<WebUrl> {
        let url = match base {
            Some(base) => web_sys::Url::new_with_base(raw, base).ok()?,
            None => web_sys::Url::new(raw).ok()?,
        };
        let path = url.pathname();
        Some(WebUrl {
            href: url.href(),
            scheme: url.protocol().trim_end_matches(':').to_owned(),
            host: url.hostname(),
            username: url.username(),
            password: url.password(),
            origin: url.origin(),
            path_and_after: format!("{path}{}{}", url.search(), url.hash()),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_the_rules_need() {
        let url = WebUrl::parse("HTTPS://user:pw@Example.COM:8443/a/b.qcow2?sig=1#top").unwrap();
        assert_eq!(url.scheme, "https");
        assert_eq!(url.host, "example.com");
        assert_eq!(
            (url.username.as_str(), url.password.as_str()),
            ("user", "pw")
        );
        assert_eq!(url.origin, "https://example.com:8443");
        assert_eq!(url.path, "/a/b.qcow2");
        assert_eq!(url.last_segment(), "b.qcow2");
        assert_eq!(url.path_and_after, "/a/b.qcow2?sig=1#top");
        assert_eq!(
            url.href,
            "https://user:pw@example.com:8443/a/b.qcow2?sig=1#top"
        );
        assert!(WebUrl::parse("/relative").is_none());
    }

    #[test]
    fn joins_relative_references() {
        let url = WebUrl::join("http://console.invalid/", "/images/../shares?x=1").unwrap();
        assert_eq!(url.path_and_after, "/shares?x=1");
        assert_eq!(url.origin, "http://console.invalid");
        let away = WebUrl::join("http://console.invalid/", "https://other.example/").unwrap();
        assert_eq!(away.origin, "https://other.example");
    }
}
