//! What the Image List shows: search, filters, sort and page, as kept in the page URL.

use serde::{Deserialize, Serialize};

use super::deprecation::Inclusion;
use super::image::{ImageStatus, ImageSummary};
use super::image_spec::Visibility;
use super::os_catalogue::{OsFamilyFilter, OsPlatform, selected_os_types};

/// Page sizes offered (the guides' tables use these).
pub const PAGE_SIZES: [u32; 4] = [10, 20, 50, 100];
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Longer searches cannot match a 255-character name anyway.
pub const MAX_SEARCH_CHARS: usize = 255;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortColumn {
    Name,
    OsType,
    Status,
    Visibility,
    Size,
    #[default]
    Created,
}

impl SortColumn {
    pub const ALL: [SortColumn; 6] = [
        SortColumn::Name,
        SortColumn::OsType,
        SortColumn::Status,
        SortColumn::Visibility,
        SortColumn::Size,
        SortColumn::Created,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::OsType => "os_type",
            SortColumn::Status => "status",
            SortColumn::Visibility => "visibility",
            SortColumn::Size => "size",
            SortColumn::Created => "created",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Name => "Name",
            SortColumn::OsType => "OS type",
            SortColumn::Status => "Status",
            SortColumn::Visibility => "Visibility",
            SortColumn::Size => "Size",
            SortColumn::Created => "Created",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// The direction a first click sorts in: newest and largest first, names A to Z.
    pub fn natural_direction(self) -> SortDirection {
        match self {
            SortColumn::Created | SortColumn::Size => SortDirection::Desc,
            _ => SortDirection::Asc,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortDirection {
    Asc,
    #[default]
    Desc,
}

impl SortDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDirection::Asc => "asc",
            SortDirection::Desc => "desc",
        }
    }

    pub fn flip(self) -> Self {
        match self {
            SortDirection::Asc => SortDirection::Desc,
            SortDirection::Desc => SortDirection::Asc,
        }
    }
}

/// Whose images the list shows: the account's own, those other accounts share with it
/// (approved in the Image Share Request List), or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ownership {
    #[default]
    All,
    /// Owned by this account.
    Mine,
    /// Shared with this account by another.
    SharedWithMe,
}

impl Ownership {
    pub const ALL: [Ownership; 3] = [Ownership::All, Ownership::Mine, Ownership::SharedWithMe];

    /// The URL value; the default has none.
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::All => "",
            Ownership::Mine => "me",
            Ownership::SharedWithMe => "shared",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Ownership::All => "All",
            Ownership::Mine => "Owned by this account",
            Ownership::SharedWithMe => "Shared with this account",
        }
    }

    pub fn parse(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == raw)
            .unwrap_or_default()
    }

    pub fn includes_own(self) -> bool {
        self != Ownership::SharedWithMe
    }

    pub fn includes_shared(self) -> bool {
        self != Ownership::Mine
    }
}

/// The Image List's view. Parsing is lenient (a hand-edited URL falls back to defaults
/// rather than failing) but everything kept is valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListQuery {
    pub search: String,
    pub status: Option<ImageStatus>,
    /// Operating system (`family`): Linux, Windows, or not specified.
    pub os_family: Option<OsFamilyFilter>,
    /// System platform (`os`).
    pub os_platform: Option<OsPlatform>,
    pub visibility: Option<Visibility>,
    /// Encrypted (`encrypted=yes`) or not (`encrypted=no`) images only.
    pub encrypted: Option<bool>,
    /// Images whose signature verified (`signed=yes`), or not (`signed=no`), only.
    pub signed: Option<bool>,
    /// Deprecated images: left out (the default), only them (`deprecated=only`) or with the
    /// others (`deprecated=include`).
    pub deprecated: Inclusion,
    /// Hidden images (`os_hidden`), likewise (`hidden=only`, `hidden=include`).
    pub hidden: Inclusion,
    pub tag_key: String,
    pub tag_value: String,
    pub owner: Ownership,
    pub sort: SortColumn,
    pub direction: SortDirection,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// Count every match of a search, however many (`count=all`); otherwise a search's
    /// total stops at `COUNT_BOUND`.
    pub count_all: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            search: String::new(),
            status: None,
            os_family: None,
            os_platform: None,
            visibility: None,
            encrypted: None,
            signed: None,
            deprecated: Inclusion::Exclude,
            hidden: Inclusion::Exclude,
            tag_key: String::new(),
            tag_value: String::new(),
            owner: Ownership::All,
            sort: SortColumn::Created,
            direction: SortDirection::Desc,
            page: 1,
            per_page: DEFAULT_PAGE_SIZE,
            count_all: false,
        }
    }
}

/// How far the Image List counts a search's matches unless asked for all of them. Beyond it
/// the list says "more than 10,000", as large consoles do: counting every match of a broad
/// search over a million images takes longer than reading its page. Counts without a search
/// come from counters and are always exact.
pub const COUNT_BOUND: u64 = 10_000;

fn clip(raw: &str, max: usize) -> String {
    raw.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl ListQuery {
    /// Builds a query from URL parameters; `get` looks one up by name.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let default = Self::default();
        let sort = get("sort")
            .and_then(|s| SortColumn::parse(&s))
            .unwrap_or(default.sort);
        let os_family = get("family").and_then(|s| OsFamilyFilter::from_value(&s));
        let direction = match get("dir").as_deref() {
            Some("asc") => SortDirection::Asc,
            Some("desc") => SortDirection::Desc,
            _ => sort.natural_direction(),
        };
        Self {
            search: get("q")
                .map(|q| clip(q.trim(), MAX_SEARCH_CHARS))
                .unwrap_or_default(),
            status: get("status").and_then(|s| ImageStatus::from_db(&s)),
            os_family,
            // A platform of another operating system is left out: the platform list offers
            // only the chosen system's.
            os_platform: get("os")
                .and_then(|s| OsPlatform::from_value(&s))
                .filter(|p| os_family.is_none_or(|f| f.family() == Some(p.family()))),
            visibility: get("visibility").and_then(|s| Visibility::parse(&s).ok()),
            encrypted: match get("encrypted").as_deref() {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
            signed: match get("signed").as_deref() {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
            deprecated: Inclusion::from_query(get("deprecated").as_deref()),
            hidden: Inclusion::from_query(get("hidden").as_deref()),
            tag_key: get("tag_key").map(|k| clip(&k, 128)).unwrap_or_default(),
            tag_value: get("tag_value").map(|v| clip(&v, 256)).unwrap_or_default(),
            owner: get("owner")
                .map(|o| Ownership::parse(&o))
                .unwrap_or_default(),
            sort,
            direction,
            page: get("page")
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| *p >= 1)
                .unwrap_or(1),
            per_page: get("per_page")
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| PAGE_SIZES.contains(p))
                .unwrap_or(DEFAULT_PAGE_SIZE),
            count_all: get("count").as_deref() == Some("all"),
        }
    }

    /// The URL query string (without `?`) that restores this view; defaults are left out.
    pub fn to_query_string(&self) -> String {
        let default = Self::default();
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.search.is_empty() {
            pairs.push(("q", self.search.clone()));
        }
        if let Some(s) = self.status {
            pairs.push(("status", s.as_str().into()));
        }
        if let Some(f) = self.os_family {
            pairs.push(("family", f.as_str().into()));
        }
        if let Some(o) = self.os_platform {
            pairs.push(("os", o.as_str().into()));
        }
        if let Some(v) = self.visibility {
            pairs.push(("visibility", v.as_str().into()));
        }
        if let Some(encrypted) = self.encrypted {
            pairs.push(("encrypted", if encrypted { "yes" } else { "no" }.into()));
        }
        if let Some(signed) = self.signed {
            pairs.push(("signed", if signed { "yes" } else { "no" }.into()));
        }
        if self.deprecated != Inclusion::Exclude {
            pairs.push(("deprecated", self.deprecated.as_str().into()));
        }
        if self.hidden != Inclusion::Exclude {
            pairs.push(("hidden", self.hidden.as_str().into()));
        }
        if !self.tag_key.is_empty() {
            pairs.push(("tag_key", self.tag_key.clone()));
        }
        if !self.tag_value.is_empty() {
            pairs.push(("tag_value", self.tag_value.clone()));
        }
        if self.owner != Ownership::All {
            pairs.push(("owner", self.owner.as_str().into()));
        }
        if self.sort != default.sort || self.direction != default.direction {
            pairs.push(("sort", self.sort.as_str().into()));
            pairs.push(("dir", self.direction.as_str().into()));
        }
        if self.per_page != default.per_page {
            pairs.push(("per_page", self.per_page.to_string()));
        }
        if self.page != 1 {
            pairs.push(("page", self.page.to_string()));
        }
        if self.count_all {
            pairs.push(("count", "all".into()));
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// The same filters, for an export (no sort or page).
    pub fn has_filters(&self) -> bool {
        !self.search.is_empty()
            || self.status.is_some()
            || self.os_family.is_some()
            || self.os_platform.is_some()
            || self.visibility.is_some()
            || self.encrypted.is_some()
            || self.signed.is_some()
            || self.deprecated != Inclusion::Exclude
            || self.hidden != Inclusion::Exclude
            || !self.tag_key.is_empty()
            || self.owner != Ownership::All
    }

    /// Whether a filter only the image rows know is set (encryption, a verified signature):
    /// neither the counters nor the search index can answer it.
    pub fn filters_rows_only(&self) -> bool {
        self.encrypted.is_some()
            || self.signed.is_some()
            || self.deprecated == Inclusion::Only
            || self.hidden == Inclusion::Only
    }

    /// The `os_type` values the OS filters select; `None` for every value.
    pub fn os_types(&self) -> Option<Vec<&'static str>> {
        selected_os_types(self.os_family, self.os_platform)
    }

    /// Row offset of the page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)
    }
}

/// One page of the Image List.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePage {
    pub images: Vec<ImageSummary>,
    /// Images matching the search and filters, on every page; with `more`, a lower bound.
    pub total: u64,
    /// More than `total` match: the search's count stopped at `COUNT_BOUND`.
    pub more: bool,
    pub page: u32,
    pub per_page: u32,
}

impl ImagePage {
    /// The pages the total fills; with `more`, at least one page beyond them (and the
    /// current one).
    pub fn page_count(&self) -> u32 {
        let pages = self.total.div_ceil(u64::from(self.per_page.max(1)));
        let pages = u32::try_from(pages).unwrap_or(u32::MAX).max(1);
        if self.more {
            pages.max(self.page).saturating_add(1)
        } else {
            pages
        }
    }

    /// Whether a page follows this one.
    pub fn has_next(&self) -> bool {
        if self.more {
            self.images.len() == self.per_page as usize
        } else {
            self.page < self.page_count()
        }
    }

    /// "10,000", or "more than 10,000".
    pub fn total_label(&self) -> String {
        let count = crate::domain::validation::with_thousands(self.total);
        if self.more {
            format!("more than {count}")
        } else {
            count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> ListQuery {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListQuery::from_params(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let q = parse(&[]);
        assert_eq!(q, ListQuery::default());
        assert_eq!(q.to_query_string(), "");
    }

    #[test]
    fn round_trip_through_the_url() {
        let q = parse(&[
            ("q", "web server"),
            ("status", "active"),
            ("family", "linux"),
            ("os", "ubuntu"),
            ("visibility", "shared"),
            ("tag_key", "env"),
            ("tag_value", "prod & dev"),
            ("owner", "shared"),
            ("sort", "name"),
            ("dir", "desc"),
            ("page", "3"),
            ("per_page", "50"),
        ]);
        let s = q.to_query_string();
        let map: HashMap<String, String> = url::form_urlencoded::parse(s.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(ListQuery::from_params(|k| map.get(k).cloned()), q);
        assert_eq!(q.owner, Ownership::SharedWithMe);
        assert_eq!(q.offset(), 100);
    }

    #[test]
    fn bad_values_fall_back_to_defaults() {
        let q = parse(&[
            ("status", "pending_delete"),
            ("family", "macos"),
            ("os", "debian"),
            ("sort", "password"),
            ("page", "0"),
            ("per_page", "1000"),
            ("owner", "everyone"),
        ]);
        assert_eq!(q.owner, Ownership::All);
        assert_eq!(q.status, None);
        assert_eq!(q.os_family, None);
        assert_eq!(q.os_platform, None);
        assert_eq!(q.sort, SortColumn::Created);
        assert_eq!(q.page, 1);
        assert_eq!(q.per_page, 20);
        assert_eq!(parse(&[("q", &"x".repeat(1000))]).search.len(), 255);
        assert_eq!(parse(&[("sort", "name")]).direction, SortDirection::Asc);
    }

    #[test]
    fn the_os_filters_select_a_family_or_a_platform() {
        let windows = parse(&[("family", "windows")]);
        assert_eq!(
            windows.os_family,
            Some(OsFamilyFilter::Family(
                crate::domain::os_catalogue::OsFamily::Windows
            ))
        );
        assert_eq!(windows.os_types(), Some(vec!["windows-server", "windows"]));
        assert_eq!(windows.to_query_string(), "family=windows");
        let server = parse(&[("os", "windows-server")]);
        assert_eq!(server.os_types(), Some(vec!["windows-server"]));
        assert!(server.has_filters());
        let both = parse(&[("family", "linux"), ("os", "windows-server")]);
        assert_eq!(
            both.os_platform, None,
            "a platform of another system is left out"
        );
        assert_eq!(both.os_types().map(|p| p.len()), Some(6));
        assert_eq!(parse(&[]).os_types(), None);
        // Images whose operating system is not specified: no platform goes with them.
        let none = parse(&[("family", "none"), ("os", "ubuntu")]);
        assert_eq!(none.os_family, Some(OsFamilyFilter::NotSpecified));
        assert_eq!(none.os_platform, None);
        assert_eq!(none.os_types(), Some(vec![""]));
        assert_eq!(none.to_query_string(), "family=none");
    }

    #[test]
    fn page_count() {
        let page = |total| ImagePage {
            images: vec![],
            total,
            more: false,
            page: 1,
            per_page: 20,
        };
        assert_eq!(page(0).page_count(), 1);
        assert_eq!(page(20).page_count(), 1);
        assert_eq!(page(21).page_count(), 2);
        assert!(page(21).has_next());
        assert!(!page(20).has_next());
        assert_eq!(page(12_345).total_label(), "12,345");
    }

    #[test]
    fn a_bounded_total_has_a_page_past_the_known_ones() {
        let full_page = 20;
        let row = crate::domain::image::ImageSummary {
            id: "id".into(),
            name: "web".into(),
            os: None,
            status: ImageStatus::Active,
            visibility: Visibility::Private,
            protected: false,
            size_bytes: None,
            progress: None,
            failure_reason: None,
            source_file_name: None,
            created_at_ms: 0,
            shared_by: None,
            api_wait: None,
            encrypted: false,
            deprecate_at_ms: None,
            deprecated: false,
            hidden: false,
        };
        let bounded = |page: u32, on_page: usize| ImagePage {
            images: vec![row.clone(); on_page],
            total: COUNT_BOUND,
            more: true,
            page,
            per_page: 20,
        };
        assert_eq!(bounded(1, full_page).total_label(), "more than 10,000");
        assert_eq!(bounded(1, full_page).page_count(), 501);
        assert_eq!(bounded(700, full_page).page_count(), 701);
        assert!(bounded(700, full_page).has_next());
        // A short page is the last, whatever the bound says.
        assert!(!bounded(700, 3).has_next());
    }

    #[test]
    fn counting_every_match_is_kept_in_the_url() {
        let q = parse(&[("q", "web"), ("count", "all")]);
        assert!(q.count_all);
        assert_eq!(q.to_query_string(), "q=web&count=all");
        assert!(!parse(&[("count", "yes")]).count_all);
    }
}
