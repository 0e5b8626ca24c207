//! The Image List's queries: one page, the total that goes with it, and the export.
//!
//! Totals are exact and cheap with 100,000 images in an account:
//! - no search: the counters that triggers keep (`image_counts`): one row for at most one
//!   filter, or the few cells of a status × OS type × visibility cube (per tag, with a tag)
//!   for several;
//! - a search: a count over the search index, which triggers keep beside the images. On SQLite that is an FTS5 trigram
//!   index (`image_search`) whose documents hold the name, the filters and the tags, so the
//!   whole query is one full-text match inside the account's rowid range; on PostgreSQL it
//!   is a narrow table (`image_search`) with one GIN index over the same terms.
//!
//! The exact total then chooses how the page is read: few matches are fetched from the index
//! and sorted. Many matches are read a page at a time from the index in the list's order where
//! it has that order (SQLite's is creation order; PostgreSQL's table has every sort's
//! columns), and otherwise by walking the sort's index over the image rows, which fills a page
//! quickly because matches are common.

use sqlx::{AnyConnection, Row};

use super::images::{COLUMNS, ImageRow};
use super::shares::accepted_by;
use super::sql::QueryParts;
use super::{Backend, Store, to_i64, to_u64};
use crate::domain::image::ImageStatus;
use crate::domain::image_spec::{OsType, Visibility};
use crate::domain::list_query::{ListQuery, Ownership, SortColumn, SortDirection};

/// Above this many matches, walking the account's images in list order beats fetching every
/// match and sorting them (measured with bench/list).
pub(super) const CANDIDATE_LIMIT: i64 = 1000;

/// SQLite search-index rowids are the account's number shifted by this many bits plus the
/// image's seq, so that each account's documents are one range.
const ACCOUNT_SHIFT: u32 = 40;

/// Separators in SQLite search documents (see the migration that creates `image_search`).
/// Names, filter values and tags cannot contain control characters, so none is ambiguous.
const NAME_MARK: char = '\u{1}';
const FACET_MARK: char = '\u{2}';
const TAG_MARK: char = '\u{4}';
const TAG_VALUE_MARK: char = '\u{5}';
/// Between the parts of a counter's value and of a PostgreSQL `image_search.tags` term
/// (`key␟value`), as the migrations write them.
const UNIT_SEPARATOR: char = '\u{1f}';

/// How a tag filter on the image rows finds its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagPath {
    /// Start from the tag's images (a rare tag).
    Drive,
    /// Walk the account's images in list order, checking each for the tag (a common tag:
    /// a page fills quickly).
    Probe,
}

/// How the page's rows are found.
enum PagePath {
    /// Conditions on the image rows, read in the sort's index order.
    Rows(TagPath),
    /// Every match from the search index, then sorted (few matches).
    Candidates(IndexFilter),
    /// The page read straight from the search index in its order: on SQLite the index's own
    /// order, which is creation order; on PostgreSQL any sort, from the index's columns.
    IndexOrder(IndexFilter),
}

/// Escapes LIKE wildcards so a search for "50%" finds names containing "50%".
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Whether the query can match anything: names are ASCII, and neither names nor tags hold
/// control characters.
fn can_match(query: &ListQuery) -> bool {
    query.search.is_ascii()
        && ![&query.search, &query.tag_key, &query.tag_value]
            .iter()
            .any(|s| s.chars().any(char::is_control))
}

/// A 1- or 2-character search as PostgreSQL's `image_search.name_grams` holds it (see
/// `name_grams()` in the migration): a character is its ASCII code, a pair 128 + a * 128 + b.
fn name_gram(search: &str) -> Option<i64> {
    match search.to_ascii_lowercase().as_bytes() {
        [c] => Some(i64::from(*c)),
        [a, b] => Some(128 + i64::from(*a) * 128 + i64::from(*b)),
        _ => None,
    }
}

/// `t.status = …`, `t.os_type = …` and `t.visibility = …` for the filters the query sets,
/// over table `t` (the images, or PostgreSQL's search index, which has the same columns).
fn push_attribute_filters(
    q: &mut QueryParts,
    t: &str,
    query: &ListQuery,
    conditions: &mut Vec<String>,
) {
    let filters = [
        ("status", query.status.map(ImageStatus::as_str)),
        ("os_type", query.os_type.map(OsType::as_str)),
        ("visibility", query.visibility.map(Visibility::as_str)),
    ];
    for (column, value) in filters {
        if let Some(value) = value {
            let p = q.text(value);
            conditions.push(format!("{t}.{column} = {p}"));
        }
    }
}

/// Whose images a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The account's own.
    Own,
    /// Other accounts' images shared with it and Accepted.
    Shared,
    /// Both: what the account may see.
    Visible,
}

impl Scope {
    fn of(ownership: Ownership) -> Self {
        match ownership {
            Ownership::All => Scope::Visible,
            Ownership::Mine => Scope::Own,
            Ownership::SharedWithMe => Scope::Shared,
        }
    }

    /// The tables and the condition that select the image rows `i` of this scope for the
    /// account whose id is bound at `account`. Shared images are found from the account's
    /// shares, which are few, never by looking through images.
    fn tables_and_condition(self, account: &str) -> (&'static str, String) {
        let accepted = accepted_by(account);
        let own = format!("i.account_id = {account}");
        match self {
            Scope::Own => ("images i", own),
            Scope::Shared => (
                "image_shares sh JOIN images i ON i.id = sh.image_id",
                accepted,
            ),
            Scope::Visible => (
                "images i",
                format!(
                    "({own} OR i.id IN (SELECT sh.image_id FROM image_shares sh WHERE {accepted}))"
                ),
            ),
        }
    }
}

/// Rows of a page: `limit` rows from `offset` in list order.
#[derive(Clone, Copy, Debug)]
struct Window {
    offset: u64,
    limit: u64,
}

/// The images matching `query` in `scope` as conditions on the image rows: the FROM and
/// WHERE clause for the page walk, the export and the exact count. Tag filters match the
/// account's own tags only; the owner's tags on a shared image are the owner's.
fn row_filter(
    backend: Backend,
    account_id: &str,
    query: &ListQuery,
    tag_path: TagPath,
    scope: Scope,
) -> QueryParts {
    let mut q = QueryParts::new();
    let account = q.text(account_id);
    let (tables, scope_condition) = scope.tables_and_condition(&account);
    let mut conditions = vec![scope_condition];
    if !query.search.is_empty() {
        // Names are ASCII by rule, so comparing ASCII-lower-cased text ignores case exactly.
        let pattern = q.text(like_pattern(&query.search.to_ascii_lowercase()));
        let name = match backend {
            // SQLite's LIKE already ignores ASCII case.
            Backend::Sqlite => "i.name",
            Backend::Postgres => "lower(i.name)",
        };
        conditions.push(format!("{name} LIKE {pattern} ESCAPE '\\'"));
    }
    push_attribute_filters(&mut q, "i", query, &mut conditions);
    if !query.tag_key.is_empty() {
        let key = q.text(query.tag_key.clone());
        let mut tag = match tag_path {
            TagPath::Drive => format!(
                "i.id IN (SELECT t.image_id FROM image_tags t WHERE t.account_id = {account} AND t.tag_key = {key}"
            ),
            TagPath::Probe => format!(
                "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.account_id = {account} AND t.tag_key = {key}"
            ),
        };
        if !query.tag_value.is_empty() {
            let value = q.text(query.tag_value.clone());
            tag += &format!(" AND t.tag_value = {value}");
        }
        tag.push(')');
        conditions.push(tag);
    }
    q.sql = format!("FROM {tables} WHERE {}", conditions.join(" AND "));
    q
}

/// An FTS5 phrase: the text in double quotes, inner quotes doubled.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A search as the SQLite index finds it: 3 or more characters as a phrase of the name's
/// trigrams; 1 or 2 characters as the one token the `short` column holds for them.
fn fts_name_term(search: &str) -> String {
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
fn status_letter(status: ImageStatus) -> char {
    match status {
        ImageStatus::Queued => 'q',
        ImageStatus::Uploading => 'u',
        ImageStatus::Importing => 'i',
        ImageStatus::Active => 'a',
        ImageStatus::Failed => 'f',
    }
}

fn os_type_letter(os: OsType) -> char {
    match os {
        OsType::Alma => 'a',
        OsType::CentOS => 'c',
        OsType::Oracle => 'o',
        OsType::Rhel => 'h',
        OsType::Rocky => 'k',
        OsType::Ubuntu => 'u',
    }
}

fn visibility_letter(visibility: Visibility) -> char {
    match visibility {
        Visibility::Private => 'p',
        Visibility::Shared => 's',
    }
}

/// The SQLite index's full-text query for the search, filters and tag.
fn fts_match(query: &ListQuery) -> String {
    let mut terms = Vec::new();
    if !query.search.is_empty() {
        terms.push(fts_name_term(&query.search));
    }
    let facets = [
        ('s', query.status.map(status_letter)),
        ('o', query.os_type.map(os_type_letter)),
        ('v', query.visibility.map(visibility_letter)),
    ];
    for (dimension, letter) in facets {
        if let Some(letter) = letter {
            let facet = format!("{FACET_MARK}{dimension}{letter}");
            terms.push(format!("facets : {}", fts_phrase(&facet)));
        }
    }
    if !query.tag_key.is_empty() {
        let mut tag = format!("{TAG_MARK}{}{TAG_VALUE_MARK}", query.tag_key);
        if !query.tag_value.is_empty() {
            tag.push_str(&query.tag_value);
            tag.push(TAG_MARK);
        }
        terms.push(format!("tags : {}", fts_phrase(&tag)));
    }
    terms.join(" AND ")
}

/// The search-index entries matching the query: a FROM and WHERE clause, and the expression
/// that gives each entry's image seq.
struct IndexFilter {
    parts: QueryParts,
    seq: String,
}

fn index_filter(
    backend: Backend,
    account_id: &str,
    account_seq: i64,
    query: &ListQuery,
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

/// The counter row that holds the total for a query with at most one simple filter.
fn single_counter(query: &ListQuery) -> Option<(&'static str, String)> {
    if !query.search.is_empty() {
        return None;
    }
    let tag = (!query.tag_key.is_empty()).then(|| {
        if query.tag_value.is_empty() {
            ("tag_key", query.tag_key.clone())
        } else {
            (
                "tag",
                format!("{}{UNIT_SEPARATOR}{}", query.tag_key, query.tag_value),
            )
        }
    });
    let filters: Vec<(&'static str, String)> = [
        query.status.map(|s| ("status", s.as_str().to_owned())),
        query.os_type.map(|o| ("os_type", o.as_str().to_owned())),
        query
            .visibility
            .map(|v| ("visibility", v.as_str().to_owned())),
        tag,
    ]
    .into_iter()
    .flatten()
    .collect();
    match filters.len() {
        0 => Some(("all", String::new())),
        1 => filters.into_iter().next(),
        _ => None,
    }
}

/// The counter rows whose sum is the total for a query without a search: its one counter, or
/// for several filters the cells of the status × OS type × visibility cube they select, for
/// the tag if there is one (see the migration that creates the cube counters).
fn counter_rows(query: &ListQuery) -> Option<(&'static str, Vec<String>)> {
    if !query.search.is_empty() {
        return None;
    }
    if let Some((dimension, value)) = single_counter(query) {
        return Some((dimension, vec![value]));
    }
    let (dimension, prefix) = match (query.tag_key.as_str(), query.tag_value.as_str()) {
        ("", _) => ("cube", String::new()),
        (key, "") => ("tag_key_cube", format!("{key}{UNIT_SEPARATOR}")),
        (key, value) => (
            "tag_cube",
            format!("{key}{UNIT_SEPARATOR}{value}{UNIT_SEPARATOR}"),
        ),
    };
    let statuses = query.status.map_or(ImageStatus::ALL.to_vec(), |s| vec![s]);
    let os_types = query.os_type.map_or(OsType::ALL.to_vec(), |o| vec![o]);
    let visibilities = query
        .visibility
        .map_or(Visibility::ALL.to_vec(), |v| vec![v]);
    let mut cells = Vec::new();
    for status in &statuses {
        for os in &os_types {
            for visibility in &visibilities {
                cells.push(format!(
                    "{prefix}{}{UNIT_SEPARATOR}{}{UNIT_SEPARATOR}{}",
                    status.as_str(),
                    os.as_str(),
                    visibility.as_str()
                ));
            }
        }
    }
    Some((dimension, cells))
}

fn sql_direction(direction: SortDirection) -> &'static str {
    match direction {
        SortDirection::Asc => "ASC",
        SortDirection::Desc => "DESC",
    }
}

/// ORDER BY for a sort, over the columns of table `t` (the images, or PostgreSQL's search
/// index, which has the same ones). Ties break on seq (creation order) in the sort's
/// direction, so each sort is one index scanned forwards or backwards.
fn order_by(query: &ListQuery, t: &str) -> String {
    let dir = sql_direction(query.direction);
    match query.sort {
        SortColumn::Name => format!("{t}.name {dir}, {t}.seq {dir}"),
        SortColumn::OsType => format!("{t}.os_type {dir}, {t}.seq {dir}"),
        SortColumn::Status => format!("{t}.status {dir}, {t}.seq {dir}"),
        SortColumn::Visibility => format!("{t}.visibility {dir}, {t}.seq {dir}"),
        // Images without a size yet (importing, failed) go last either way, on both databases.
        SortColumn::Size => format!("{t}.size_bytes {dir} NULLS LAST, {t}.seq {dir}"),
        SortColumn::Created => format!("{t}.seq {dir}"),
    }
}

/// The list's order (`order_by`) as a comparison of rows, for the sorts whose values compare
/// alike in Rust and in either database's collation: creation order, sizes, and the
/// lower-case ASCII words of status, OS type and visibility. `None` for names.
fn list_order(
    query: &ListQuery,
) -> Option<impl Fn(&ImageRow, &ImageRow) -> std::cmp::Ordering + use<>> {
    use std::cmp::Ordering;
    let (sort, direction) = (query.sort, query.direction);
    if sort == SortColumn::Name {
        return None;
    }
    Some(move |a: &ImageRow, b: &ImageRow| {
        let directed = |o: Ordering| match direction {
            SortDirection::Asc => o,
            SortDirection::Desc => o.reverse(),
        };
        let by_column = match sort {
            SortColumn::Name | SortColumn::Created => Ordering::Equal,
            SortColumn::OsType => directed(
                a.attributes
                    .os_type
                    .as_str()
                    .cmp(b.attributes.os_type.as_str()),
            ),
            SortColumn::Status => directed(a.status.as_str().cmp(b.status.as_str())),
            SortColumn::Visibility => directed(a.visibility.as_str().cmp(b.visibility.as_str())),
            // Images without a size go last in either direction (NULLS LAST).
            SortColumn::Size => match (a.size_bytes, b.size_bytes) {
                (Some(x), Some(y)) => directed(x.cmp(&y)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        by_column.then_with(|| directed(a.seq.cmp(&b.seq)))
    })
}

/// A window of the rows `filter` selects, in the query's order.
async fn rows_in_order(
    conn: &mut AnyConnection,
    mut filter: QueryParts,
    query: &ListQuery,
    window: Window,
) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
    let limit = filter.int(to_i64(window.limit));
    let offset = filter.int(to_i64(window.offset));
    let sql = format!(
        "SELECT {COLUMNS} {} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        filter.sql,
        order_by(query, "i")
    );
    sqlx::query_with(&sql, filter.arguments())
        .fetch_all(&mut *conn)
        .await
}

fn decode_rows(rows: &[sqlx::any::AnyRow]) -> sqlx::Result<Vec<ImageRow>> {
    rows.iter().map(ImageRow::from_row).collect()
}

impl Store {
    /// One page of the images the account sees matching the query (its own, those shared
    /// with it, or both, as `query.owner` says), and how many match in all.
    ///
    /// Shared images are few beside an account's own, so with both the page is merged: the
    /// shared matches that can fall before the page's end, and the own matches from the
    /// page's start less their number, sorted together by the database in the list's order.
    pub async fn list_images(
        &self,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<(Vec<ImageRow>, u64)> {
        if !can_match(query) {
            return Ok((Vec::new(), 0));
        }
        let mut conn = self.pool.acquire().await?;
        // Tag filters match the account's own tags, so no shared image can match one.
        let shared_total = if query.owner.includes_shared() && query.tag_key.is_empty() {
            self.count_in_scope(&mut conn, account_id, query, Scope::Shared)
                .await?
        } else {
            0
        };
        let (offset, per_page) = (query.offset(), u64::from(query.per_page));
        if !query.owner.includes_own() {
            if shared_total == 0 {
                return Ok((Vec::new(), 0));
            }
            let window = Window {
                offset,
                limit: per_page,
            };
            let rows = self
                .rows_in_scope(&mut conn, account_id, query, Scope::Shared, window)
                .await?;
            return Ok((decode_rows(&rows)?, shared_total));
        }
        let (own_total, path) = self.own_plan(&mut conn, account_id, query).await?;
        let total = own_total + shared_total;
        if offset >= total {
            return Ok((Vec::new(), total));
        }
        if shared_total == 0 {
            let window = Window {
                offset,
                limit: per_page,
            };
            let rows = self
                .own_rows(&mut conn, account_id, query, path, window)
                .await?;
            return Ok((decode_rows(&rows)?, total));
        }
        // Every own match before `own_start` sorts before the page, whatever the shared ones
        // do; every shared match past `offset + per_page` sorts after it.
        let own_start = offset.saturating_sub(shared_total);
        let end = offset + per_page;
        let mut rows = Vec::new();
        if own_start < own_total {
            let window = Window {
                offset: own_start,
                limit: end - own_start,
            };
            let own = self
                .own_rows(&mut conn, account_id, query, path, window)
                .await?;
            rows.extend(decode_rows(&own)?);
        }
        let window = Window {
            offset: 0,
            limit: shared_total.min(end),
        };
        let shared = self
            .rows_in_scope(&mut conn, account_id, query, Scope::Shared, window)
            .await?;
        rows.extend(decode_rows(&shared)?);
        match list_order(query) {
            Some(order) => rows.sort_by(order),
            // Names sort in the database's collation: let it merge them.
            None => {
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                let merged = self
                    .rows_by_seq(&mut conn, account_id, Scope::Visible, &seqs, query, None)
                    .await?;
                rows = decode_rows(&merged)?;
            }
        }
        // The merged rows start at `own_start` (or 0) in the list.
        let skip = usize::try_from(offset - own_start).unwrap_or(usize::MAX);
        let page = rows
            .into_iter()
            .skip(skip)
            .take(usize::try_from(per_page).unwrap_or(usize::MAX))
            .collect();
        Ok((page, total))
    }

    /// How many of the account's own images match and how their page is best read.
    async fn own_plan(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<(u64, PagePath)> {
        let limit = self.candidate_limit;
        let counted = self.counter(conn, account_id, query).await?;
        Ok(match counted {
            // At most one filter: the sort's or the filter's index over the image rows.
            Some(total) if single_counter(query).is_some() => {
                // PostgreSQL's planner picks its own way to a tag's images.
                let tag = if self.backend == Backend::Sqlite && to_i64(total) > limit {
                    TagPath::Probe
                } else {
                    TagPath::Drive
                };
                (total, PagePath::Rows(tag))
            }
            // Several filters: few matches come from the search index, many fill a page
            // quickly on the way down the sort's index.
            Some(total) => {
                let path = if to_i64(total) <= limit {
                    PagePath::Candidates(self.index_filter(conn, account_id, query).await?)
                } else {
                    PagePath::Rows(TagPath::Probe)
                };
                (total, path)
            }
            None => {
                let index = self.index_filter(conn, account_id, query).await?;
                let row = sqlx::query_with(
                    &format!("SELECT COUNT(*) AS total {}", index.parts.sql),
                    index.parts.arguments(),
                )
                .fetch_one(&mut *conn)
                .await?;
                let total = to_u64(row.try_get("total")?);
                // PostgreSQL's index has every sort's columns; SQLite's is in creation order.
                let path = if to_i64(total) <= limit {
                    PagePath::Candidates(index)
                } else if self.backend == Backend::Postgres || query.sort == SortColumn::Created {
                    PagePath::IndexOrder(index)
                } else {
                    PagePath::Rows(TagPath::Probe)
                };
                (total, path)
            }
        })
    }

    /// A window of the account's own matching images in list order, read as `path` says.
    async fn own_rows(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
        path: PagePath,
        window: Window,
    ) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
        match path {
            PagePath::Rows(tag) => {
                let filter = row_filter(self.backend, account_id, query, tag, Scope::Own);
                rows_in_order(conn, filter, query, window).await
            }
            PagePath::Candidates(index) => {
                let seqs = self.index_seqs(conn, &index, None).await?;
                self.rows_by_seq(conn, account_id, Scope::Own, &seqs, query, Some(window))
                    .await
            }
            PagePath::IndexOrder(index) => {
                let seqs = self.index_seqs(conn, &index, Some((query, window))).await?;
                self.rows_by_seq(conn, account_id, Scope::Own, &seqs, query, None)
                    .await
            }
        }
    }

    /// A window of the matching images in `scope`, straight from the image rows.
    async fn rows_in_scope(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
        scope: Scope,
        window: Window,
    ) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
        let filter = row_filter(self.backend, account_id, query, TagPath::Drive, scope);
        rows_in_order(conn, filter, query, window).await
    }

    /// How many images in `scope` match, counted row by row.
    async fn count_in_scope(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
        scope: Scope,
    ) -> sqlx::Result<u64> {
        let filter = row_filter(self.backend, account_id, query, TagPath::Drive, scope);
        let sql = format!("SELECT COUNT(*) AS total {}", filter.sql);
        let row = sqlx::query_with(&sql, filter.arguments())
            .fetch_one(&mut *conn)
            .await?;
        Ok(to_u64(row.try_get("total")?))
    }

    /// The seqs of the index entries matching; with a page, only that window of them in its
    /// order (on SQLite, creation order only).
    async fn index_seqs(
        &self,
        conn: &mut AnyConnection,
        index: &IndexFilter,
        page: Option<(&ListQuery, Window)>,
    ) -> sqlx::Result<Vec<i64>> {
        let mut parts = index.parts.clone();
        let mut sql = format!("SELECT {} AS seq {}", index.seq, parts.sql);
        if let Some((query, window)) = page {
            let order = match self.backend {
                Backend::Sqlite => format!("rowid {}", sql_direction(query.direction)),
                Backend::Postgres => order_by(query, "s"),
            };
            let limit = parts.int(to_i64(window.limit));
            let offset = parts.int(to_i64(window.offset));
            sql += &format!(" ORDER BY {order} LIMIT {limit} OFFSET {offset}");
        }
        let rows = sqlx::query_with(&sql, parts.arguments())
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(|r| r.try_get::<i64, _>("seq")).collect()
    }

    /// The images in `scope` with these seqs in the query's order; with a window, only that
    /// window of them.
    async fn rows_by_seq(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        scope: Scope,
        seqs: &[i64],
        query: &ListQuery,
        window: Option<Window>,
    ) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        // Integers read from the database, written as literals: the list can be a thousand
        // long, and the Any driver binds no arrays.
        let list = seqs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (tables, condition) = scope.tables_and_condition("$1");
        let mut sql = format!(
            "SELECT {COLUMNS} FROM {tables} WHERE {condition} AND i.seq IN ({list}) ORDER BY {}",
            order_by(query, "i")
        );
        if let Some(window) = window {
            sql += &format!(" LIMIT {} OFFSET {}", window.limit, window.offset);
        }
        sqlx::query(&sql)
            .bind(account_id)
            .fetch_all(&mut *conn)
            .await
    }

    /// The search-index conditions for the query in this account.
    async fn index_filter(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<IndexFilter> {
        let account_seq = match self.backend {
            Backend::Sqlite => self.account_seq(conn, account_id).await?,
            Backend::Postgres => 0,
        };
        Ok(index_filter(self.backend, account_id, account_seq, query))
    }

    /// The account's number, which places its documents in the SQLite search index.
    async fn account_seq(&self, conn: &mut AnyConnection, account_id: &str) -> sqlx::Result<i64> {
        let row = sqlx::query("SELECT seq FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?;
        // An unknown account has no documents; -1 names an empty range.
        Ok(match row {
            Some(row) => row.try_get("seq")?,
            None => -1,
        })
    }

    /// The kept total for a query without a search, from the counters.
    async fn counter(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<Option<u64>> {
        let Some((dimension, values)) = counter_rows(query) else {
            return Ok(None);
        };
        let mut q = QueryParts::new();
        let account = q.text(account_id);
        let dimension = q.text(dimension);
        let values: Vec<String> = values.into_iter().map(|v| q.text(v)).collect();
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS total FROM image_counts \
             WHERE account_id = {account} AND dimension = {dimension} AND value IN ({})",
            values.join(", ")
        );
        let row = sqlx::query_with(&sql, q.arguments())
            .fetch_one(&mut *conn)
            .await?;
        Ok(Some(to_u64(row.try_get("total")?)))
    }

    /// How many images match, counted row by row (tests check the counters and the search
    /// index against it).
    pub async fn count_images_exactly(
        &self,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<u64> {
        let mut conn = self.pool.acquire().await?;
        self.count_in_scope(&mut conn, account_id, query, Scope::of(query.owner))
            .await
    }

    /// Every image matching the query's search and filters, in its sort order (for export,
    /// and as the plain answer tests compare pages with).
    pub async fn list_matching_images(
        &self,
        account_id: &str,
        query: &ListQuery,
    ) -> sqlx::Result<Vec<ImageRow>> {
        let filter = row_filter(
            self.backend,
            account_id,
            query,
            TagPath::Drive,
            Scope::of(query.owner),
        );
        let sql = format!(
            "SELECT {COLUMNS} {} ORDER BY {}",
            filter.sql,
            order_by(query, "i")
        );
        let rows = sqlx::query_with(&sql, filter.arguments())
            .fetch_all(&self.pool)
            .await?;
        decode_rows(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image_spec::ImageName;

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
            fts_match(&query),
            "short : \"d\u{1}b\" AND facets : \"\u{2}sa\" AND tags : \"\u{4}env\u{5}prod\u{4}\""
        );
        let key_only = ListQuery {
            tag_key: "env".into(),
            ..ListQuery::default()
        };
        assert_eq!(fts_match(&key_only), "tags : \"\u{4}env\u{5}\"");
    }

    /// The migration's `search_facets` spells each value with the letter the queries use.
    #[test]
    fn the_index_migration_gives_every_value_its_letter() {
        // The latest definition of `search_facets`.
        let migration = include_str!("../../migrations/sqlite/20261201000003_uploads.sql");
        let mut pairs: Vec<(&str, char)> = Vec::new();
        pairs.extend(ImageStatus::ALL.map(|s| (s.as_str(), status_letter(s))));
        pairs.extend(OsType::ALL.map(|o| (o.as_str(), os_type_letter(o))));
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
        let migration = include_str!("../../migrations/sqlite/20261201000001_search_index.sql");
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
