//! The SQL text of the Image List's queries over the image rows: the scope (own, shared,
//! both), the filters, the order, and the counters' cells.

use super::*;

/// Escapes LIKE wildcards so a search for "50%" finds names containing "50%".
pub(super) fn like_pattern(search: &str) -> String {
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

/// Whether the query can match anything: names are ASCII, neither names nor tags hold
/// control characters, and the operating system filters have a platform in common.
pub(super) fn can_match(query: &ListQuery) -> bool {
    query.os_types().is_none_or(|p| !p.is_empty())
        && query.search.is_ascii()
        && ![&query.search, &query.tag_key, &query.tag_value]
            .iter()
            .any(|s| s.chars().any(char::is_control))
}

/// `t.status = …`, `t.os_type IN (…)` and `t.visibility = …` for the filters the query sets,
/// over table `t` (the images, or PostgreSQL's search index, which has the same columns).
pub(super) fn push_attribute_filters(
    q: &mut QueryParts,
    t: &str,
    query: &View<'_>,
    conditions: &mut Vec<String>,
) {
    let filters = [
        ("status", query.status.map(ImageStatus::as_str)),
        ("visibility", query.visibility.map(Visibility::as_str)),
    ];
    for (column, value) in filters {
        if let Some(value) = value {
            let p = q.text(value);
            conditions.push(format!("{t}.{column} = {p}"));
        }
    }
    // An operating system filter selects its platforms; one platform is one value.
    if let Some(os_types) = query.os_types() {
        let values: Vec<String> = os_types.iter().map(|o| q.text(*o)).collect();
        conditions.push(match values.as_slice() {
            [] => "1 = 0".to_owned(),
            [one] => format!("{t}.os_type = {one}"),
            several => format!("{t}.os_type IN ({})", several.join(", ")),
        });
    }
    // The Recycle Bin's images are listed only when asked for by status.
    if query.hide_bin {
        let binned: Vec<String> = ImageStatus::ALL
            .into_iter()
            .filter(|s| s.in_recycle_bin())
            .map(|s| q.text(s.as_str()))
            .collect();
        conditions.push(format!("{t}.status NOT IN ({})", binned.join(", ")));
    }
}

/// The statuses a query selects: the one it filters on, every status, or every status
/// outside the Recycle Bin.
pub(super) fn listed_statuses(query: &View<'_>) -> Vec<ImageStatus> {
    match query.status {
        Some(status) => vec![status],
        None => ImageStatus::ALL
            .into_iter()
            .filter(|s| !(query.hide_bin && s.in_recycle_bin()))
            .collect(),
    }
}

/// Whose images a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// The account's own.
    Own,
    /// Other accounts' images shared with it and Accepted.
    Shared,
    /// Both: what the account may see.
    Visible,
}

impl Scope {
    pub(super) fn of(ownership: Ownership) -> Self {
        match ownership {
            Ownership::All => Scope::Visible,
            Ownership::Mine => Scope::Own,
            Ownership::SharedWithMe => Scope::Shared,
        }
    }

    /// The tables and the condition that select the image rows `i` of this scope for the
    /// account whose id is bound at `account`. Shared images are found from the account's
    /// shares, which are few, never by looking through images.
    pub(super) fn tables_and_condition(self, account: &str) -> (&'static str, String) {
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
pub(super) struct Window {
    pub(super) offset: u64,
    pub(super) limit: u64,
}

/// The images matching `query` in `scope` as conditions on the image rows: the FROM and
/// WHERE clause for the page walk, the export and the exact count. Tag filters match the
/// account's own tags only; the owner's tags on a shared image are the owner's.
pub(super) fn row_filter(
    backend: Backend,
    account_id: &str,
    query: &View<'_>,
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
    match query.encrypted {
        Some(true) => conditions.push("i.encryption_key_id IS NOT NULL".into()),
        Some(false) => conditions.push("i.encryption_key_id IS NULL".into()),
        None => {}
    }
    match query.signed {
        Some(true) => conditions.push("i.signature_verified_at IS NOT NULL".into()),
        Some(false) => conditions.push("i.signature_verified_at IS NULL".into()),
        None => {}
    }
    conditions.extend(unlisted_conditions(query));
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

/// The conditions on the image row `i` for hidden and deprecated images: left out, only
/// them, or (`LeftOut`) only those the query leaves out. Literal SQL (now is an integer).
pub(super) fn unlisted_conditions(query: &View<'_>) -> Vec<String> {
    let now = query.now_ms;
    let deprecated = format!("i.deprecate_at IS NOT NULL AND i.deprecate_at <= {now}");
    let mut conditions = Vec::new();
    match query.left_out {
        LeftOut::Hidden => conditions.push("i.os_hidden = 1".to_owned()),
        LeftOut::Deprecated => {
            conditions.push(deprecated.clone());
            if query.hidden == Inclusion::Exclude {
                conditions.push("i.os_hidden = 0".to_owned());
            }
        }
        LeftOut::No => {}
    }
    if query.left_out != LeftOut::No {
        return conditions;
    }
    match query.hidden {
        Inclusion::Exclude => conditions.push("i.os_hidden = 0".to_owned()),
        Inclusion::Only => conditions.push("i.os_hidden = 1".to_owned()),
        Inclusion::Include => {}
    }
    match query.deprecated {
        Inclusion::Exclude => {
            conditions.push(format!(
                "(i.deprecate_at IS NULL OR i.deprecate_at > {now})"
            ));
        }
        Inclusion::Only => conditions.push(deprecated),
        Inclusion::Include => {}
    }
    conditions
}

/// The counter rows that hold the total for a query with at most one simple filter (an
/// operating system's platforms are one filter whose rows add up).
pub(super) fn single_counter(query: &ListQuery) -> Option<(&'static str, Vec<String>)> {
    if !query.search.is_empty() || query.filters_rows_only() {
        return None;
    }
    let tag = (!query.tag_key.is_empty()).then(|| {
        if query.tag_value.is_empty() {
            ("tag_key", vec![query.tag_key.clone()])
        } else {
            (
                "tag",
                vec![format!(
                    "{}{UNIT_SEPARATOR}{}",
                    query.tag_key, query.tag_value
                )],
            )
        }
    });
    let platforms = query.os_types().map(|os_types| {
        let values = os_types.iter().map(|o| (*o).to_owned()).collect();
        ("os_type", values)
    });
    let filters: Vec<(&'static str, Vec<String>)> = [
        query
            .status
            .map(|s| ("status", vec![s.as_str().to_owned()])),
        platforms,
        query
            .visibility
            .map(|v| ("visibility", vec![v.as_str().to_owned()])),
        tag,
    ]
    .into_iter()
    .flatten()
    .collect();
    match filters.len() {
        0 => Some(("all", vec![String::new()])),
        1 => filters.into_iter().next(),
        _ => None,
    }
}

/// The counter rows whose sum is the total for a query without a search: its one counter, or
/// for several filters the cells of the status × OS type × visibility cube they select, for
/// the tag if there is one (see the migration that creates the cube counters).
pub(super) fn counter_rows(query: &View<'_>) -> Option<(&'static str, Vec<String>)> {
    if !query.search.is_empty() || query.filters_rows_only() {
        return None;
    }
    // Leaving the Recycle Bin's images out takes the cube's cells.
    if !query.hide_bin
        && let Some(counter) = single_counter(query)
    {
        return Some(counter);
    }
    let (dimension, prefix) = match (query.tag_key.as_str(), query.tag_value.as_str()) {
        ("", _) => ("cube", String::new()),
        (key, "") => ("tag_key_cube", format!("{key}{UNIT_SEPARATOR}")),
        (key, value) => (
            "tag_cube",
            format!("{key}{UNIT_SEPARATOR}{value}{UNIT_SEPARATOR}"),
        ),
    };
    let statuses = listed_statuses(query);
    let os_types = query.os_types().unwrap_or_else(every_os_type);
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
                    os,
                    visibility.as_str()
                ));
            }
        }
    }
    Some((dimension, cells))
}

pub(super) fn sql_direction(direction: SortDirection) -> &'static str {
    match direction {
        SortDirection::Asc => "ASC",
        SortDirection::Desc => "DESC",
    }
}

/// ORDER BY for a sort, over the columns of table `t` (the images, or PostgreSQL's search
/// index, which has the same ones). Ties break on seq (creation order) in the sort's
/// direction, so each sort is one index scanned forwards or backwards.
pub(super) fn order_by(query: &ListQuery, t: &str) -> String {
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
pub(super) fn list_order(
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
                stored_os_type(a.attributes.os.as_ref())
                    .cmp(stored_os_type(b.attributes.os.as_ref())),
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
pub(super) async fn rows_in_order(
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

pub(super) fn decode_rows(rows: &[sqlx::any::AnyRow]) -> sqlx::Result<Vec<ImageRow>> {
    rows.iter().map(ImageRow::from_row).collect()
}
