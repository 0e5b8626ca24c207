//! The image API's list (`GET /v2/images`) in SQL: the account's own images outside the
//! Recycle Bin and the images shared with it whose share is in force, filtered, in the
//! query's order, from a marker, one page at a time. Memory follows the page, not the account.
//!
//! Each side (own, shared) is one query in the list's order with the page's limit; with both,
//! the database merges them (`UNION ALL` under one more `ORDER BY`), so names compare in its
//! collation alike on both sides. A marker becomes a keyset condition on the marker image's
//! sort values, so a deep page costs what the first does. The own side is read one of two ways:
//! - **driven**: a filter that the counters (status, OS, visibility, a tag) or a bounded look
//!   into an index (id, name, a property) show to match at most `CANDIDATE_LIMIT` images
//!   gives their seqs, and the database sorts those few;
//! - **walked**: otherwise down the index of the first sort key, checking each image, which
//!   fills a page quickly because matches are common. SQLite is told the index (`INDEXED BY`),
//!   since its planner cannot see that a common value is common; PostgreSQL's can.

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::super::shares::{ACTIVE_STATUSES, delivered_to};
use super::*;
use crate::domain::api_list::{
    ApiField, ApiFilter, ApiListQuery, ApiSortKey, STORE_ID, api_status,
};
use crate::domain::deprecation::Inclusion;
use crate::domain::os_catalogue::{OsFamily, UNSPECIFIED_OS_TYPE};
use crate::domain::share::ShareStatus;
use crate::domain::units::format_rfc3339;

/// One page of the API's list: each image with the account's share of it (`None` for its
/// own), and whether more follow.
#[derive(Debug)]
pub struct ApiPage {
    pub images: Vec<(ImageRow, Option<ShareStatus>)>,
    pub more: bool,
}

/// What the list answers.
#[derive(Debug)]
pub enum ApiListOutcome {
    Page(ApiPage),
    /// The marker names no image the account sees (its own, in the Recycle Bin too, or one
    /// shared with it whose share is in force).
    UnknownMarker,
}

/// Whose images one of the list's queries reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Own,
    Shared,
}

/// A sort key as SQL: the expression over the image row `i`, and whether it can be NULL
/// (NULL sorts first ascending and last descending, as the API's JSON compares null).
struct SortExpr {
    sql: String,
    nullable: bool,
    integer: bool,
    descending: bool,
}

/// A sort value of the marker image.
#[derive(Clone, Debug)]
enum SortValue {
    Null,
    Text(String),
    Int(i64),
}

/// The conditions on the image row `i` for hidden and deprecated images at `now_ms`
/// (literal SQL: now is an integer).
fn listing_conditions(query: &ApiListQuery, now_ms: i64) -> Vec<String> {
    let mut conditions = Vec::new();
    match query.hidden {
        Inclusion::Exclude => conditions.push("i.os_hidden = 0".to_owned()),
        Inclusion::Only => conditions.push("i.os_hidden = 1".to_owned()),
        Inclusion::Include => {}
    }
    match query.deprecated {
        Inclusion::Exclude => conditions.push(format!(
            "(i.deprecate_at IS NULL OR i.deprecate_at > {now_ms})"
        )),
        Inclusion::Only => conditions.push(format!(
            "i.deprecate_at IS NOT NULL AND i.deprecate_at <= {now_ms}"
        )),
        Inclusion::Include => {}
    }
    conditions
}

/// The API's status name of the image row `i`, as SQL.
fn status_sql() -> String {
    let mut cases = String::from("CASE");
    for status in ImageStatus::ALL {
        let (by_url, by_body) = (api_status(status, true), api_status(status, false));
        if by_url == by_body {
            cases += &format!(" WHEN i.status = '{}' THEN '{by_url}'", status.as_str());
        } else {
            cases += &format!(
                " WHEN i.status = '{}' AND i.source_url IS NOT NULL THEN '{by_url}' WHEN i.status = '{}' THEN '{by_body}'",
                status.as_str(),
                status.as_str()
            );
        }
    }
    cases + " END"
}

/// The disk format the document shows: found by inspection, or else declared.
const DISK_FORMAT_SQL: &str = "COALESCE(i.disk_format, i.declared_format, 'qcow2')";

fn sort_exprs(query: &ApiListQuery) -> Vec<SortExpr> {
    query
        .sort
        .iter()
        .filter_map(|sort| {
            let (sql, nullable, integer) = match sort.key {
                ApiSortKey::Name => ("i.name".to_owned(), false, false),
                ApiSortKey::Status => (status_sql(), false, false),
                // Every image is `bare`: the key orders nothing.
                ApiSortKey::ContainerFormat => return None,
                ApiSortKey::DiskFormat => (DISK_FORMAT_SQL.to_owned(), false, false),
                ApiSortKey::Size => ("i.size_bytes".to_owned(), true, true),
                ApiSortKey::VirtualSize => ("i.virtual_size_bytes".to_owned(), true, true),
                ApiSortKey::Id => ("i.id".to_owned(), false, false),
                ApiSortKey::CreatedAt => ("i.created_at".to_owned(), false, true),
                ApiSortKey::UpdatedAt => ("i.updated_at".to_owned(), false, true),
                ApiSortKey::MinDisk => ("i.min_disk_gb".to_owned(), false, true),
                // Shown in MB, kept in GB: the same order.
                ApiSortKey::MinRam => ("i.min_ram_gb".to_owned(), false, true),
                ApiSortKey::Visibility => ("i.visibility".to_owned(), false, false),
            };
            Some(SortExpr {
                sql,
                nullable,
                integer,
                descending: sort.descending,
            })
        })
        .collect()
}

/// ORDER BY over the expressions, or over their aliases `sk0…` in the merge.
fn order_by(exprs: &[SortExpr], aliased: bool) -> String {
    exprs
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let column = if aliased {
                format!("sk{n}")
            } else {
                e.sql.clone()
            };
            let (dir, nulls) = if e.descending {
                ("DESC", " NULLS LAST")
            } else {
                ("ASC", " NULLS FIRST")
            };
            let nulls = if e.nullable { nulls } else { "" };
            format!("{column} {dir}{nulls}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The condition that a row comes after the marker whose sort values are `values`, in the
/// list's order: after it on the first key, or equal there and after it on the rest.
fn after_marker(q: &mut QueryParts, exprs: &[SortExpr], values: &[SortValue]) -> String {
    let mut condition = "1 = 0".to_owned();
    for (e, value) in exprs.iter().zip(values).rev() {
        let bind = |q: &mut QueryParts, v: &SortValue| match v {
            SortValue::Text(t) => q.text(t.clone()),
            SortValue::Int(n) => q.int(*n),
            SortValue::Null => "NULL".to_owned(),
        };
        let (after, equal) = match value {
            SortValue::Null if e.descending => ("1 = 0".to_owned(), format!("{} IS NULL", e.sql)),
            SortValue::Null => (
                format!("{} IS NOT NULL", e.sql),
                format!("{} IS NULL", e.sql),
            ),
            v => {
                let p = bind(q, v);
                let after = match (e.descending, e.nullable) {
                    (false, _) => format!("{} > {p}", e.sql),
                    (true, false) => format!("{} < {p}", e.sql),
                    (true, true) => format!("({} < {p} OR {} IS NULL)", e.sql, e.sql),
                };
                (after, format!("{} = {p}", e.sql))
            }
        };
        condition = format!("({after} OR ({equal} AND {condition}))");
    }
    // The first key's bound alone, so the database can start its index scan there.
    if let (Some(e), Some(value)) = (exprs.first(), values.first())
        && !matches!(value, SortValue::Null)
        && (!e.descending || !e.nullable)
    {
        let p = match value {
            SortValue::Text(t) => q.text(t.clone()),
            SortValue::Int(n) => q.int(*n),
            SortValue::Null => unreachable!(),
        };
        let op = if e.descending { "<=" } else { ">=" };
        condition = format!("{} {op} {p} AND {condition}", e.sql);
    }
    condition
}

/// `a OR b OR …` of the conditions, each in parentheses; no condition matches nothing.
fn any_of(conditions: impl IntoIterator<Item = String>) -> String {
    let all: Vec<String> = conditions.into_iter().map(|c| format!("({c})")).collect();
    if all.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("({})", all.join(" OR "))
    }
}

/// A number as the document writes it: decimal digits, no sign or leading zero.
fn canonical_number(text: &str) -> Option<i64> {
    let n: u64 = text.parse().ok()?;
    (n.to_string() == text).then(|| i64::try_from(n).ok())?
}

/// The whole second a time text names, as the document writes times.
fn canonical_second(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    (format_rfc3339(ms) == text).then_some(ms)
}

/// The condition that the image row `i` shows `field` as one of `values`.
fn field_condition(q: &mut QueryParts, field: ApiField, values: &[String]) -> String {
    let text_column = |q: &mut QueryParts, column: &str| {
        any_of(
            values
                .iter()
                .map(|v| format!("{column} = {}", q.text(v.clone())))
                .collect::<Vec<_>>(),
        )
    };
    let number_column = |q: &mut QueryParts, column: &str, unit: i64| {
        any_of(
            values
                .iter()
                .filter_map(|v| canonical_number(v))
                .filter(|n| n % unit == 0)
                .map(|n| format!("{column} = {}", q.int(n / unit)))
                .collect::<Vec<_>>(),
        )
    };
    let time_column = |q: &mut QueryParts, column: &str| {
        any_of(
            values
                .iter()
                .filter_map(|v| canonical_second(v))
                .map(|ms| {
                    let (from, to) = (q.int(ms), q.int(ms + 1000));
                    format!("{column} >= {from} AND {column} < {to}")
                })
                .collect::<Vec<_>>(),
        )
    };
    let image_id = |q: &mut QueryParts, prefix: &str, suffix: &str| {
        any_of(
            values
                .iter()
                .filter_map(|v| v.strip_prefix(prefix)?.strip_suffix(suffix))
                .map(|id| format!("i.id = {}", q.text(id)))
                .collect::<Vec<_>>(),
        )
    };
    let literal = |shown: &str, condition: &str| {
        any_of(
            values
                .iter()
                .filter(|v| *v == shown)
                .map(|_| condition.to_owned())
                .collect::<Vec<_>>(),
        )
    };
    match field {
        ApiField::Id => text_column(q, "i.id"),
        ApiField::Name => text_column(q, "i.name"),
        ApiField::Owner => text_column(q, "i.account_id"),
        ApiField::Visibility => text_column(q, "i.visibility"),
        // An image whose operating system is not specified has no `os_distro` to match.
        ApiField::OsDistro => any_of(
            values
                .iter()
                .filter(|v| v.as_str() != UNSPECIFIED_OS_TYPE)
                .map(|v| format!("i.os_type = {}", q.text(v.clone())))
                .collect::<Vec<_>>(),
        ),
        ApiField::OsVersion => text_column(q, "i.os_version"),
        ApiField::Architecture => text_column(q, "i.architecture"),
        ApiField::FirmwareType => text_column(q, "i.boot_mode"),
        ApiField::Description => text_column(q, "i.description"),
        ApiField::Checksum => text_column(q, "i.checksum_md5"),
        ApiField::HashValue => text_column(q, "i.hash_value"),
        ApiField::DiskFormat => text_column(q, DISK_FORMAT_SQL),
        ApiField::HashAlgo => format!(
            "i.hash_value IS NOT NULL AND {}",
            text_column(q, "i.hash_algo")
        ),
        ApiField::FailureReason => format!(
            "i.status = '{}' AND {}",
            ImageStatus::Failed.as_str(),
            text_column(q, "i.failure_reason")
        ),
        ApiField::Status => any_of(values.iter().flat_map(|v| {
            ImageStatus::ALL.into_iter().filter_map(move |s| {
                let (by_url, by_body) = (api_status(s, true) == v, api_status(s, false) == v);
                let status = format!("i.status = '{}'", s.as_str());
                match (by_url, by_body) {
                    (true, true) => Some(status),
                    (true, false) => Some(format!("{status} AND i.source_url IS NOT NULL")),
                    (false, true) => Some(format!("{status} AND i.source_url IS NULL")),
                    (false, false) => None,
                }
            })
        })),
        ApiField::OsType => {
            let platforms: Vec<String> = values
                .iter()
                .filter_map(|v| OsFamily::ALL.into_iter().find(|f| f.as_str() == v))
                .flat_map(OsFamily::platforms)
                .map(|p| q.text(p.as_str()))
                .collect();
            if platforms.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("i.os_type IN ({})", platforms.join(", "))
            }
        }
        ApiField::ContainerFormat => literal("bare", "1 = 1"),
        ApiField::Schema => literal("/v2/schemas/image", "1 = 1"),
        ApiField::Protected => any_of(
            values
                .iter()
                .filter_map(|v| match v.as_str() {
                    "true" => Some("i.protected = 1".to_owned()),
                    "false" => Some("i.protected = 0".to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ApiField::QemuGuestAgent => {
            let has = format!(
                "(',' || i.features || ',') LIKE '%,{},%'",
                crate::domain::attributes::Features::QEMU_GUEST_AGENT
            );
            any_of(
                values
                    .iter()
                    .filter_map(|v| match v.as_str() {
                        "yes" => Some(has.clone()),
                        "no" => Some(format!("NOT {has}")),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            )
        }
        ApiField::Stores => literal(
            STORE_ID,
            &format!(
                "i.status IN ('{}', '{}')",
                ImageStatus::Active.as_str(),
                ImageStatus::Deactivated.as_str()
            ),
        ),
        ApiField::MinDisk => number_column(q, "i.min_disk_gb", 1),
        ApiField::MinRam => number_column(q, "i.min_ram_gb", 1024),
        ApiField::Size => number_column(q, "i.size_bytes", 1),
        ApiField::VirtualSize => number_column(q, "i.virtual_size_bytes", 1),
        ApiField::CreatedAt => time_column(q, "i.created_at"),
        ApiField::UpdatedAt => time_column(q, "i.updated_at"),
        ApiField::SelfLink => image_id(q, "/v2/images/", ""),
        ApiField::File => image_id(q, "/v2/images/", "/file"),
    }
}

/// The conditions every image of `side` must meet for the query's filters. Tags and
/// properties are the owner's: no shared image matches one (`can_match_shared`).
fn filter_conditions(
    q: &mut QueryParts,
    backend: Backend,
    account: &str,
    query: &ApiListQuery,
) -> Vec<String> {
    let mut conditions = Vec::new();
    for filter in &query.filters {
        conditions.push(match filter {
            ApiFilter::Field(field, values) => field_condition(q, *field, values),
            ApiFilter::SizeMin(bound) => format!("i.size_bytes >= {}", q.int(to_i64(*bound))),
            ApiFilter::SizeMax(bound) => format!("i.size_bytes <= {}", q.int(to_i64(*bound))),
            ApiFilter::Tag(tag) => {
                let (key, value) = (q.text(tag.key.clone()), q.text(tag.value.clone()));
                format!(
                    "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.account_id = {account} \
                     AND t.tag_key = {key} AND t.tag_value = {value})"
                )
            }
            ApiFilter::Property(key, values) => {
                let key = q.text(key.clone());
                let values = property_values(q, backend, values);
                format!(
                    "EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = i.id AND p.account_id = {account} \
                     AND p.prop_key = {key} AND {values})"
                )
            }
        });
    }
    conditions
}

/// `p.prop_value` is one of `values`. PostgreSQL's index holds the values' MD5 (see the
/// migration), so the condition names it too.
fn property_values(q: &mut QueryParts, backend: Backend, values: &[String]) -> String {
    let binds: Vec<String> = values.iter().map(|v| q.text(v.clone())).collect();
    if binds.is_empty() {
        return "1 = 0".to_owned();
    }
    let list = binds.join(", ");
    match backend {
        Backend::Sqlite => format!("p.prop_value IN ({list})"),
        Backend::Postgres => {
            let hashes: Vec<String> = binds.iter().map(|b| format!("md5({b})")).collect();
            format!(
                "md5(p.prop_value) IN ({}) AND p.prop_value IN ({list})",
                hashes.join(", ")
            )
        }
    }
}

/// The binned statuses, which the API's list leaves out of the account's own images.
fn binned_statuses() -> String {
    ImageStatus::ALL
        .into_iter()
        .filter(|s| s.in_recycle_bin())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQLite index that holds the account's images in the order of a first sort key.
fn sqlite_walk_index(key: ApiSortKey) -> Option<&'static str> {
    match key {
        ApiSortKey::CreatedAt => Some("images_by_created_at"),
        ApiSortKey::Name => Some("images_by_name"),
        ApiSortKey::Size => Some("images_by_size"),
        ApiSortKey::Visibility => Some("images_by_visibility"),
        _ => None,
    }
}

/// How the own side finds its rows.
enum OwnPath {
    /// Among these few seqs.
    Driven(Vec<i64>),
    Walked,
}

impl Store {
    /// One page of the image API's list for the account.
    pub async fn list_api_images(
        &self,
        account_id: &str,
        query: &ApiListQuery,
        now_ms: i64,
    ) -> sqlx::Result<ApiListOutcome> {
        let listed = listing_conditions(query, now_ms);
        let mut conn = self.pool.acquire().await?;
        let exprs = sort_exprs(query);
        let marker = match &query.marker {
            Some(id) => match marker_values(&mut conn, account_id, id, &exprs).await? {
                Some(values) => Some(values),
                None => return Ok(ApiListOutcome::UnknownMarker),
            },
            None => None,
        };
        let own_path = self.own_api_path(&mut conn, account_id, query).await?;
        let fetch = i64::from(query.limit) + 1;
        let mut q = QueryParts::new();
        let account = q.text(account_id);
        let own = self.api_side_sql(
            &mut q,
            &account,
            query,
            &exprs,
            marker.as_deref(),
            (Side::Own, &listed),
            &own_path,
            fetch,
        );
        let sql = if query.can_match_shared() {
            let shared = self.api_side_sql(
                &mut q,
                &account,
                query,
                &exprs,
                marker.as_deref(),
                (Side::Shared, &listed),
                &own_path,
                fetch,
            );
            let limit = q.int(fetch);
            format!(
                "SELECT * FROM (SELECT * FROM ({own}) o UNION ALL SELECT * FROM ({shared}) s) u ORDER BY {} LIMIT {limit}",
                order_by(&exprs, true)
            )
        } else {
            own
        };
        let rows = sqlx::query_with(&sql, q.arguments())
            .fetch_all(&mut *conn)
            .await?;
        let mut images = Vec::with_capacity(rows.len());
        for r in &rows {
            let member: Option<String> = r.try_get("member_status")?;
            let member = match member {
                Some(raw) => Some(
                    ShareStatus::from_db(&raw)
                        .ok_or_else(|| super::super::images::decode_error("member_status", &raw))?,
                ),
                None => None,
            };
            images.push((ImageRow::from_row(r)?, member));
        }
        let more = images.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
        images.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(ApiListOutcome::Page(ApiPage { images, more }))
    }

    /// One side's query: its images meeting the filters after the marker, in the list's
    /// order, at most `fetch` of them, with their sort values as `sk0…` for the merge.
    #[allow(clippy::too_many_arguments)]
    fn api_side_sql(
        &self,
        q: &mut QueryParts,
        account: &str,
        query: &ApiListQuery,
        exprs: &[SortExpr],
        marker: Option<&[SortValue]>,
        (side, listed): (Side, &[String]),
        own_path: &OwnPath,
        fetch: i64,
    ) -> String {
        let (tables, member, mut conditions) = match side {
            Side::Own => {
                let index = match (self.backend, own_path) {
                    (Backend::Sqlite, OwnPath::Walked) => query
                        .sort
                        .first()
                        .and_then(|s| sqlite_walk_index(s.key))
                        .map_or(String::new(), |index| format!(" INDEXED BY {index}")),
                    _ => String::new(),
                };
                let mut conditions = vec![
                    format!("i.account_id = {account}"),
                    format!("i.status NOT IN ({})", binned_statuses()),
                ];
                if let OwnPath::Driven(seqs) = own_path {
                    // Integers read from the database, written as literals: the Any driver
                    // binds no arrays.
                    conditions.push(if seqs.is_empty() {
                        "1 = 0".to_owned()
                    } else {
                        let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
                        format!("i.seq IN ({})", list.join(","))
                    });
                }
                (
                    format!("images i{index}"),
                    "CAST(NULL AS TEXT)".to_owned(),
                    conditions,
                )
            }
            Side::Shared => {
                let status = match query.member_status {
                    Some(status) => format!("sh.status = '{}'", status.as_str()),
                    None => format!("sh.status IN {ACTIVE_STATUSES}"),
                };
                (
                    "image_shares sh JOIN images i ON i.id = sh.image_id".to_owned(),
                    "sh.status".to_owned(),
                    vec![delivered_to(account), status],
                )
            }
        };
        conditions.extend(filter_conditions(q, self.backend, account, query));
        conditions.extend(listed.iter().cloned());
        if let Some(values) = marker {
            conditions.push(after_marker(q, exprs, values));
        }
        let keys: Vec<String> = exprs
            .iter()
            .enumerate()
            .map(|(n, e)| format!(", {} AS sk{n}", e.sql))
            .collect();
        let limit = q.int(fetch);
        format!(
            "SELECT {COLUMNS}, {member} AS member_status{} FROM {tables} WHERE {} ORDER BY {} LIMIT {limit}",
            keys.concat(),
            conditions.join(" AND "),
            order_by(exprs, false)
        )
    }

    /// How the own side is best read: from the seqs of a filter that matches few images, or
    /// by walking the first sort key's index.
    async fn own_api_path(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &ApiListQuery,
    ) -> sqlx::Result<OwnPath> {
        // The counters bound what a status, OS, visibility or tag filter can match.
        let mut best: Option<(u64, &ApiFilter)> = None;
        for filter in &query.filters {
            if let Some((dimension, values)) = counter_cells(filter) {
                let n = counter_sum(conn, account_id, dimension, &values).await?;
                if best.is_none_or(|(m, _)| n < m) {
                    best = Some((n, filter));
                }
            }
        }
        let limit = to_u64(self.candidate_limit);
        if let Some((n, filter)) = best
            && n <= limit
        {
            let seqs = self.driver_seqs(conn, account_id, filter).await?;
            return Ok(OwnPath::Driven(seqs));
        }
        // An id, a name or a property: look at most one past the limit into its index.
        for filter in &query.filters {
            let probe = match filter {
                ApiFilter::Field(ApiField::Id | ApiField::Name, _) | ApiFilter::Property(..) => {
                    filter
                }
                _ => continue,
            };
            let seqs = self.driver_seqs(conn, account_id, probe).await?;
            if to_u64(i64::try_from(seqs.len()).unwrap_or(i64::MAX)) <= limit {
                return Ok(OwnPath::Driven(seqs));
            }
        }
        Ok(OwnPath::Walked)
    }

    /// The seqs of the account's images (any status) that meet one filter, at most one past
    /// the candidate limit.
    async fn driver_seqs(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        filter: &ApiFilter,
    ) -> sqlx::Result<Vec<i64>> {
        let mut q = QueryParts::new();
        let account = q.text(account_id);
        let from = match filter {
            ApiFilter::Tag(tag) => {
                let (key, value) = (q.text(tag.key.clone()), q.text(tag.value.clone()));
                format!(
                    "FROM image_tags t JOIN images i ON i.id = t.image_id WHERE t.account_id = {account} \
                     AND t.tag_key = {key} AND t.tag_value = {value}"
                )
            }
            ApiFilter::Property(key, values) => {
                let key = q.text(key.clone());
                let values = property_values(&mut q, self.backend, values);
                // With the value bound, SQLite's planner weighs the index by a common value's
                // share (every image of a bench account has `hw_disk_bus`) and scans the table:
                // 100 ms at a million images instead of 7.
                let index = match self.backend {
                    Backend::Sqlite => " INDEXED BY image_properties_by_value",
                    Backend::Postgres => "",
                };
                format!(
                    "FROM image_properties p{index} JOIN images i ON i.id = p.image_id WHERE p.account_id = {account} \
                     AND p.prop_key = {key} AND {values}"
                )
            }
            ApiFilter::Field(field, values) => {
                let condition = field_condition(&mut q, *field, values);
                format!("FROM images i WHERE i.account_id = {account} AND {condition}")
            }
            ApiFilter::SizeMin(_) | ApiFilter::SizeMax(_) => unreachable!("not a driver"),
        };
        let limit = q.int(self.candidate_limit + 1);
        let rows = sqlx::query_with(
            &format!("SELECT i.seq AS seq {from} LIMIT {limit}"),
            q.arguments(),
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(|r| r.try_get::<i64, _>("seq")).collect()
    }
}

/// The counter cells whose sum bounds what a filter matches, if it has them.
fn counter_cells(filter: &ApiFilter) -> Option<(&'static str, Vec<String>)> {
    match filter {
        ApiFilter::Field(ApiField::Status, values) => Some((
            "status",
            ImageStatus::ALL
                .into_iter()
                .filter(|s| {
                    values
                        .iter()
                        .any(|v| api_status(*s, true) == v || api_status(*s, false) == v)
                })
                .map(|s| s.as_str().to_owned())
                .collect(),
        )),
        ApiFilter::Field(ApiField::OsDistro, values) => Some((
            "os_type",
            values
                .iter()
                .filter(|v| v.as_str() != UNSPECIFIED_OS_TYPE)
                .cloned()
                .collect(),
        )),
        ApiFilter::Field(ApiField::OsType, values) => Some((
            "os_type",
            values
                .iter()
                .filter_map(|v| OsFamily::ALL.into_iter().find(|f| f.as_str() == v))
                .flat_map(OsFamily::platforms)
                .map(|p| p.as_str().to_owned())
                .collect(),
        )),
        ApiFilter::Field(ApiField::Visibility, values) => Some(("visibility", values.clone())),
        ApiFilter::Tag(tag) => Some((
            "tag",
            vec![format!("{}{UNIT_SEPARATOR}{}", tag.key, tag.value)],
        )),
        _ => None,
    }
}

async fn counter_sum(
    conn: &mut AnyConnection,
    account_id: &str,
    dimension: &str,
    values: &[String],
) -> sqlx::Result<u64> {
    if values.is_empty() {
        return Ok(0);
    }
    let mut q = QueryParts::new();
    let account = q.text(account_id);
    let dimension = q.text(dimension);
    let values: Vec<String> = values.iter().map(|v| q.text(v.clone())).collect();
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS total FROM image_counts \
         WHERE account_id = {account} AND dimension = {dimension} AND value IN ({})",
        values.join(", ")
    );
    let row = sqlx::query_with(&sql, q.arguments())
        .fetch_one(&mut *conn)
        .await?;
    Ok(to_u64(row.try_get("total")?))
}

/// The marker image's sort values, if the account sees it: its own (in the Recycle Bin too,
/// so a page goes on after an image deleted meanwhile) or one shared with it in force.
async fn marker_values(
    conn: &mut AnyConnection,
    account_id: &str,
    marker: &str,
    exprs: &[SortExpr],
) -> sqlx::Result<Option<Vec<SortValue>>> {
    let mut q = QueryParts::new();
    let account = q.text(account_id);
    let id = q.text(marker);
    let keys: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(n, e)| format!("{} AS sk{n}", e.sql))
        .collect();
    let sql = format!(
        "SELECT {} FROM images i WHERE i.id = {id} AND (i.account_id = {account} OR EXISTS \
         (SELECT 1 FROM image_shares sh WHERE sh.image_id = i.id AND {} AND sh.status IN {ACTIVE_STATUSES}))",
        keys.join(", "),
        delivered_to(&account)
    );
    let Some(row) = sqlx::query_with(&sql, q.arguments())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    exprs
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let column = format!("sk{n}");
            Ok(if e.integer {
                row.try_get::<Option<i64>, _>(column.as_str())?
                    .map_or(SortValue::Null, SortValue::Int)
            } else {
                row.try_get::<Option<String>, _>(column.as_str())?
                    .map_or(SortValue::Null, SortValue::Text)
            })
        })
        .collect::<sqlx::Result<Vec<_>>>()
        .map(Some)
}
