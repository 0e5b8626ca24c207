//! How the search index spells an image: the documents and terms of SQLite's FTS5 index and
//! of PostgreSQL's `image_search` table, as the migrations write them, and the queries that
//! match them.

use super::*;

/// SQLite search-index rowids are the account's number shifted by this many bits plus the
/// image's seq, so that each account's documents are one range.
pub(super) const ACCOUNT_SHIFT: u32 = 40;

/// Separators in SQLite search documents (see the migration that creates `image_search`).
/// Names, filter values and tags cannot contain control characters, so none is ambiguous.
pub(super) const NAME_MARK: char = '\u{1}';

pub(super) const FACET_MARK: char = '\u{2}';

pub(super) const TAG_MARK: char = '\u{4}';

pub(super) const TAG_VALUE_MARK: char = '\u{5}';

/// Between the parts of a counter's value and of a PostgreSQL `image_search.tags` term
/// (`key␟value`), as the migrations write them.
pub(super) const UNIT_SEPARATOR: char = '\u{1f}';

/// A 1- or 2-character search as PostgreSQL's `image_search.name_grams` holds it (see
/// `name_grams()` in the migration): a character is its ASCII code, a pair 128 + a * 128 + b.
pub(super) fn name_gram(search: &str) -> Option<i64> {
    match search.to_ascii_lowercase().as_bytes() {
        [c] => Some(i64::from(*c)),
        [a, b] => Some(128 + i64::from(*a) * 128 + i64::from(*b)),
        _ => None,
    }
}

/// An FTS5 phrase: the text in double quotes, inner quotes doubled.
pub(super) fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A search as the SQLite index finds it: 3 or more characters as a phrase of the name's
/// trigrams; 1 or 2 characters as the one token the `short` column holds for them.
pub(super) fn fts_name_term(search: &str) -> String {
    let lower = search.to_ascii_lowercase();
    let mut chars = lower.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(c), None, _) => format!(
            "short : {}",
            fts_phrase(&format!("{NAME_MARK}{c}{NAME_MARK}"))
        ),
        (Some(a), Some(b), None) => {
            format!("short : {}", fts_phrase(&format!("{a}{NAME_MARK}{b}")))
        }
        _ => format!("name : {}", fts_phrase(&lower)),
    }
}

/// The letter that stands for a status, OS type or visibility in the SQLite index's facets;
/// the migration's `search_facets` column uses the same letters.
pub(super) fn status_letter(status: ImageStatus) -> char {
    match status {
        ImageStatus::Queued => 'q',
        ImageStatus::Uploading => 'u',
        ImageStatus::Importing => 'i',
        ImageStatus::Converting => 'c',
        ImageStatus::Active => 'a',
        ImageStatus::Failed => 'f',
        ImageStatus::Deactivated => 'd',
        ImageStatus::Deleted => 'r',
        ImageStatus::Deleting => 'e',
    }
}

/// The letter of an `os_type` value: a platform's, or 'x' for an image whose operating
/// system is not specified.
pub(super) fn os_type_letter(os_type: &str) -> char {
    match OsPlatform::from_value(os_type) {
        Some(OsPlatform::Alma) => 'a',
        Some(OsPlatform::CentOS) => 'c',
        Some(OsPlatform::Oracle) => 'o',
        Some(OsPlatform::Rhel) => 'h',
        Some(OsPlatform::Rocky) => 'k',
        Some(OsPlatform::Ubuntu) => 'u',
        Some(OsPlatform::WindowsServer) => 'w',
        Some(OsPlatform::Windows) => 'n',
        None => 'x',
    }
}

pub(super) fn visibility_letter(visibility: Visibility) -> char {
    match visibility {
        Visibility::Private => 'p',
        Visibility::Shared => 's',
    }
}

/// The SQLite index's full-text query for the search, filters and tag.
pub(super) fn fts_match(query: &View<'_>) -> String {
    let mut terms = Vec::new();
    if !query.search.is_empty() {
        terms.push(fts_name_term(&query.search));
    }
    let facets = [
        ('s', query.status.map(|s| vec![status_letter(s)])),
        (
            'o',
            query
                .os_types()
                .map(|os_types| os_types.into_iter().map(os_type_letter).collect()),
        ),
        ('v', query.visibility.map(|v| vec![visibility_letter(v)])),
    ];
    for (dimension, letters) in facets {
        let Some(letters) = letters else { continue };
        // Any of the letters: an operating system's platforms.
        let any: Vec<String> = letters
            .into_iter()
            .map(|letter| {
                let facet = format!("{FACET_MARK}{dimension}{letter}");
                format!("facets : {}", fts_phrase(&facet))
            })
            .collect();
        terms.push(match any.as_slice() {
            // No platform fits both filters (`can_match` answers first): a facet no image has.
            [] => format!(
                "facets : {}",
                fts_phrase(&format!("{FACET_MARK}{dimension}-"))
            ),
            [one] => one.clone(),
            several => format!("({})", several.join(" OR ")),
        });
    }
    if !query.tag_key.is_empty() {
        let mut tag = format!("{TAG_MARK}{}{TAG_VALUE_MARK}", query.tag_key);
        if !query.tag_value.is_empty() {
            tag.push_str(&query.tag_value);
            tag.push(TAG_MARK);
        }
        terms.push(format!("tags : {}", fts_phrase(&tag)));
    }
    let mut matching = terms.join(" AND ");
    // The Recycle Bin's images are found only when asked for by status. (NOT needs a term
    // before it; the index is used only with a search or several filters.)
    if query.hide_bin && !matching.is_empty() {
        for status in ImageStatus::ALL.into_iter().filter(|s| s.in_recycle_bin()) {
            let facet = format!("{FACET_MARK}s{}", status_letter(status));
            matching += &format!(" NOT facets : {}", fts_phrase(&facet));
        }
    }
    matching
}

/// The search-index entries matching the query: a FROM and WHERE clause, and the expression
/// that gives each entry's image seq.
pub(super) struct IndexFilter {
    pub(super) parts: QueryParts,
    pub(super) seq: String,
}

pub(super) fn index_filter(
    backend: Backend,
    account_id: &str,
    account_seq: i64,
    query: &View<'_>,
) -> IndexFilter {
    let mut q = QueryParts::new();
    match backend {
        Backend::Sqlite => {
            let matching = q.text(fts_match(query));
            let first = q.int(account_seq << ACCOUNT_SHIFT);
            let end = q.int((account_seq + 1) << ACCOUNT_SHIFT);
            q.sql = format!(
                "FROM image_search WHERE image_search MATCH {matching} AND rowid >= {first} AND rowid < {end}"
            );
            IndexFilter {
                seq: format!("rowid - {first}"),
                parts: q,
            }
        }
        Backend::Postgres => {
            let account = q.text(account_id);
            let mut conditions = vec![format!("s.account_id = {account}")];
            if !query.search.is_empty() {
                if let Some(gram) = name_gram(&query.search) {
                    // Trigrams cannot find 1 or 2 characters; the table keeps those substrings.
                    // (&& with one element is exact, and needs no recheck.)
                    let gram = q.int(gram);
                    conditions.push(format!("s.name_grams && ARRAY[{gram}::smallint]"));
                } else {
                    let pattern = q.text(like_pattern(&query.search.to_ascii_lowercase()));
                    conditions.push(format!("s.name_lower LIKE {pattern} ESCAPE '\\'"));
                }
            }
            push_attribute_filters(&mut q, "s", query, &mut conditions);
            if !query.tag_key.is_empty() {
                let term = if query.tag_value.is_empty() {
                    query.tag_key.clone()
                } else {
                    format!("{}{UNIT_SEPARATOR}{}", query.tag_key, query.tag_value)
                };
                let p = q.text(term);
                conditions.push(format!("s.tags @> ARRAY[{p}::text]"));
            }
            q.sql = format!("FROM image_search s WHERE {}", conditions.join(" AND "));
            IndexFilter {
                seq: "s.seq".into(),
                parts: q,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image_spec::ImageName;
    use crate::domain::os_catalogue::{OsFamily, OsFamilyFilter, UNSPECIFIED_OS_TYPE};

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("web"), "%web%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn searches_are_spelled_as_the_index_spells_names() {
        assert_eq!(fts_name_term("d"), "short : \"\u{1}d\u{1}\"");
        assert_eq!(fts_name_term("DB"), "short : \"d\u{1}b\"");
        assert_eq!(fts_name_term("Web 1"), "name : \"web 1\"");
        assert_eq!(fts_name_term("a\"b"), "name : \"a\"\"b\"");
    }

    #[test]
    fn filters_and_tags_become_index_terms() {
        let query = ListQuery {
            search: "db".into(),
            status: Some(ImageStatus::Active),
            tag_key: "env".into(),
            tag_value: "prod".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            fts_match(&View::strict(&query, 0)),
            "short : \"d\u{1}b\" AND facets : \"\u{2}sa\" AND tags : \"\u{4}env\u{5}prod\u{4}\""
        );
        let key_only = ListQuery {
            tag_key: "env".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            fts_match(&View::strict(&key_only, 0)),
            "tags : \"\u{4}env\u{5}\" NOT facets : \"\u{2}sr\" NOT facets : \"\u{2}se\""
        );
        // An operating system is any of its platforms.
        let windows = ListQuery {
            search: "db".into(),
            os_family: Some(OsFamilyFilter::Family(OsFamily::Windows)),
            ..ListQuery::default()
        };
        assert_eq!(
            fts_match(&View::strict(&windows, 0)),
            "short : \"d\u{1}b\" AND (facets : \"\u{2}ow\" OR facets : \"\u{2}on\") NOT facets : \"\u{2}sr\" NOT facets : \"\u{2}se\""
        );
        let not_specified = ListQuery {
            search: "db".into(),
            os_family: Some(OsFamilyFilter::NotSpecified),
            ..ListQuery::default()
        };
        assert!(
            fts_match(&View::strict(&not_specified, 0)).contains("facets : \"\u{2}ox\""),
            "{}",
            fts_match(&View::strict(&not_specified, 0))
        );
    }

    /// The migration's `search_facets` spells each value with the letter the queries use.
    #[test]
    fn the_index_migration_gives_every_value_its_letter() {
        // The latest definition of `search_facets`.
        let migration = include_str!("../../../migrations/sqlite/20261213000001_conversion.sql");
        let mut pairs: Vec<(&str, char)> = Vec::new();
        pairs.extend(ImageStatus::ALL.map(|s| (s.as_str(), status_letter(s))));
        pairs.extend(OsPlatform::ALL.map(|o| (o.as_str(), os_type_letter(o.as_str()))));
        pairs.push((UNSPECIFIED_OS_TYPE, os_type_letter(UNSPECIFIED_OS_TYPE)));
        pairs.extend(Visibility::ALL.map(|v| (v.as_str(), visibility_letter(v))));
        for (value, letter) in pairs {
            assert!(
                migration.contains(&format!("WHEN '{value}' THEN '{letter}'")),
                "{value} has no letter {letter} in the search index"
            );
        }
    }

    #[test]
    fn short_searches_become_the_codes_postgres_keeps() {
        assert_eq!(name_gram("d"), Some(100));
        assert_eq!(name_gram("DB"), Some(128 + 100 * 128 + 98));
        assert_eq!(name_gram("web"), None);
    }

    #[test]
    fn control_characters_match_nothing() {
        let query = |search: &str| ListQuery {
            search: search.into(),
            ..ListQuery::default()
        };
        assert!(can_match(&query("web")));
        assert!(!can_match(&query("a\u{1}b")));
        assert!(!can_match(&query("caf\u{e9}")), "names are ASCII");
        assert!(!can_match(&ListQuery {
            tag_value: "x\u{4}".into(),
            ..query("")
        }));
    }

    /// The SQLite index spells names with a mark after each character an image name may
    /// hold; the migration lists them, and must list every one.
    #[test]
    fn the_index_migration_spells_every_name_character() {
        let migration = include_str!("../../../migrations/sqlite/20261201000001_search_index.sql");
        for c in (0u8..128).map(char::from) {
            let allowed = ImageName::parse(&format!("a{c}a")).is_ok();
            if !allowed || c.is_ascii_uppercase() {
                continue;
            }
            assert!(
                migration.contains(&format!(", '{c}', '{c}' || char(1))")),
                "{c:?} is allowed in names but not spelled by the search index"
            );
        }
    }
}
