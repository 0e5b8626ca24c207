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
//! A search's count stops past `count_bound` (`domain::list_query::COUNT_BOUND`) unless the
//! query asks for every match: counting a broad search over a million images costs more than
//! its page, and the list then says "more than 10,000".
//!
//! The total then chooses how the page is read: few matches are fetched from the index
//! and sorted. Many matches are read a page at a time from the index in the list's order where
//! it has that order (SQLite's is creation order; PostgreSQL's table has every sort's
//! columns), and otherwise by walking the sort's index over the image rows, which fills a page
//! quickly because matches are common.

pub mod api;
mod search_index;
mod sql;

use sqlx::{AnyConnection, Row};

use search_index::*;
use sql::*;

use super::images::{COLUMNS, ImageRow};
use super::shares::accepted_by;
use super::sql::QueryParts;
use super::{Backend, Store, to_i64, to_u64};
use crate::domain::deprecation::Inclusion;
use crate::domain::image::ImageStatus;
use crate::domain::image_spec::Visibility;
use crate::domain::list_query::{ListQuery, Ownership, SortColumn, SortDirection};
use crate::domain::os_catalogue::{OsPlatform, every_os_type, stored_os_type};

/// A query as the listing reads it: the `ListQuery` (its fields through `Deref`), and whether
/// the Recycle Bin's images must be left out, which a query without a status filter needs
/// only when the account has any (most have none, and then every plan stays as it was).
pub(super) struct View<'a> {
    query: &'a ListQuery,
    pub(super) hide_bin: bool,
    /// Now, which says what is deprecated.
    pub(super) now_ms: i64,
    /// Rows only of those the query leaves out by default (to take from a counted total).
    pub(super) left_out: LeftOut,
}

/// The images a list leaves out by default, counted apart from the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LeftOut {
    /// The query's own rows.
    No,
    /// Only the hidden images it leaves out.
    Hidden,
    /// Only the deprecated images it leaves out (and does not leave out as hidden).
    Deprecated,
}

impl std::ops::Deref for View<'_> {
    type Target = ListQuery;

    fn deref(&self) -> &ListQuery {
        self.query
    }
}

impl<'a> View<'a> {
    /// The query, leaving the Recycle Bin out whenever it has no status filter.
    pub(super) fn strict(query: &'a ListQuery, now_ms: i64) -> Self {
        Self {
            query,
            hide_bin: query.status.is_none(),
            now_ms,
            left_out: LeftOut::No,
        }
    }

    /// Whether it leaves out hidden or deprecated images (the default).
    fn leaves_any_out(&self) -> bool {
        self.hidden == Inclusion::Exclude || self.deprecated == Inclusion::Exclude
    }
}

/// Above this many matches, walking the account's images in list order beats fetching every
/// match and sorting them (measured with bench/list).
pub(super) const CANDIDATE_LIMIT: i64 = 1000;

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

/// How many images match a query of the Image List.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListTotal {
    pub count: u64,
    /// More than `count` match: a search's count stopped at the store's bound.
    pub more: bool,
}

impl ListTotal {
    fn exact(count: u64) -> Self {
        Self { count, more: false }
    }
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
        now_ms: i64,
    ) -> sqlx::Result<(Vec<ImageRow>, ListTotal)> {
        if !can_match(query) {
            return Ok((Vec::new(), ListTotal::exact(0)));
        }
        let mut conn = self.pool.acquire().await?;
        let query = &View {
            query,
            hide_bin: query.status.is_none()
                && self.has_binned_images(&mut conn, account_id).await?,
            now_ms,
            left_out: LeftOut::No,
        };
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
                return Ok((Vec::new(), ListTotal::exact(0)));
            }
            let window = Window {
                offset,
                limit: per_page,
            };
            let rows = self
                .rows_in_scope(&mut conn, account_id, query, Scope::Shared, window)
                .await?;
            return Ok((decode_rows(&rows)?, ListTotal::exact(shared_total)));
        }
        let (own, path) = self.own_plan(&mut conn, account_id, query).await?;
        // A bounded count says only that more match: the page is read as if all did.
        let (own_total, total) = if own.more {
            (u64::MAX, own)
        } else {
            (own.count, ListTotal::exact(own.count + shared_total))
        };
        if offset >= own_total.saturating_add(shared_total) {
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
        query: &View<'_>,
    ) -> sqlx::Result<(ListTotal, PagePath)> {
        // Neither the counters nor the search index know whether an image is encrypted,
        // signed, hidden or deprecated: with a filter on one of those, the total is counted
        // over the image rows (to one past the bound, as a search's is), and the page read
        // from them in list order, where the database picks its way (each of those has a
        // partial index of its own).
        if query.filters_rows_only() {
            let filter = row_filter(self.backend, account_id, query, TagPath::Drive, Scope::Own);
            let sql = if query.count_all {
                format!("SELECT COUNT(*) AS total {}", filter.sql)
            } else {
                format!(
                    "SELECT COUNT(*) AS total FROM (SELECT 1 AS one {} LIMIT {}) AS capped",
                    filter.sql,
                    self.count_bound.saturating_add(1)
                )
            };
            let row = sqlx::query_with(&sql, filter.arguments())
                .fetch_one(&mut *conn)
                .await?;
            let total = to_u64(row.try_get("total")?);
            let counted = if !query.count_all && total > self.count_bound {
                ListTotal {
                    count: self.count_bound,
                    more: true,
                }
            } else {
                ListTotal::exact(total)
            };
            return Ok((counted, PagePath::Rows(TagPath::Drive)));
        }
        let (counted, path) = self.counted_plan(conn, account_id, query).await?;
        // The counters and the search index count every image; what the list leaves out by
        // default (hidden, deprecated) is counted apart, over the few such rows, and taken
        // off. Paged in the index's order, it would leave pages short: the rows are walked.
        let left_out = self.left_out_count(conn, account_id, query).await?;
        if left_out == 0 {
            return Ok((counted, path));
        }
        let counted = if counted.more {
            counted
        } else {
            ListTotal::exact(counted.count.saturating_sub(left_out))
        };
        let path = match path {
            PagePath::IndexOrder(_) => PagePath::Rows(TagPath::Probe),
            other => other,
        };
        Ok((counted, path))
    }

    /// How many images matching the query it leaves out by default (hidden, deprecated),
    /// counted over the image rows of each kind: the partial indexes hold only those.
    async fn left_out_count(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &View<'_>,
    ) -> sqlx::Result<u64> {
        if !query.leaves_any_out() {
            return Ok(0);
        }
        let mut total = 0;
        for (kind, leaves_out) in [
            (LeftOut::Hidden, query.hidden == Inclusion::Exclude),
            (LeftOut::Deprecated, query.deprecated == Inclusion::Exclude),
        ] {
            if !leaves_out {
                continue;
            }
            let view = View {
                left_out: kind,
                ..*query
            };
            total += self
                .count_in_scope(conn, account_id, &view, Scope::Own)
                .await?;
        }
        Ok(total)
    }

    /// The total from the counters or the search index, and how the page is best read.
    async fn counted_plan(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &View<'_>,
    ) -> sqlx::Result<(ListTotal, PagePath)> {
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
                (ListTotal::exact(total), PagePath::Rows(tag))
            }
            // Several filters: few matches come from the search index, many fill a page
            // quickly on the way down the sort's index.
            Some(total) => {
                let path = if to_i64(total) <= limit {
                    PagePath::Candidates(self.index_filter(conn, account_id, query).await?)
                } else {
                    PagePath::Rows(TagPath::Probe)
                };
                (ListTotal::exact(total), path)
            }
            None => {
                let index = self.index_filter(conn, account_id, query).await?;
                // Counted to one past the bound, unless the query asks for every match.
                let sql = if query.count_all {
                    format!("SELECT COUNT(*) AS total {}", index.parts.sql)
                } else {
                    format!(
                        "SELECT COUNT(*) AS total FROM (SELECT 1 AS one {} LIMIT {}) AS capped",
                        index.parts.sql,
                        self.count_bound.saturating_add(1)
                    )
                };
                let row = sqlx::query_with(&sql, index.parts.arguments())
                    .fetch_one(&mut *conn)
                    .await?;
                let total = to_u64(row.try_get("total")?);
                let counted = if !query.count_all && total > self.count_bound {
                    ListTotal {
                        count: self.count_bound,
                        more: true,
                    }
                } else {
                    ListTotal::exact(total)
                };
                // PostgreSQL's index has every sort's columns; SQLite's is in creation order.
                let path = if to_i64(total) <= limit {
                    PagePath::Candidates(index)
                } else if self.backend == Backend::Postgres || query.sort == SortColumn::Created {
                    PagePath::IndexOrder(index)
                } else {
                    PagePath::Rows(TagPath::Probe)
                };
                (counted, path)
            }
        })
    }

    /// A window of the account's own matching images in list order, read as `path` says.
    async fn own_rows(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &View<'_>,
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
        query: &View<'_>,
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
        query: &View<'_>,
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
        query: &View<'_>,
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
        // The index found them by name and filters; what the list leaves out it cannot see.
        let left_out: String = unlisted_conditions(query)
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect();
        let mut sql = format!(
            "SELECT {COLUMNS} FROM {tables} WHERE {condition} AND i.seq IN ({list}){left_out} ORDER BY {}",
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
        query: &View<'_>,
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

    /// Whether any of the account's images is in the Recycle Bin, from the counters.
    async fn has_binned_images(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
    ) -> sqlx::Result<bool> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS total FROM image_counts \
             WHERE account_id = $1 AND dimension = 'status' AND value IN ($2, $3)",
        )
        .bind(account_id)
        .bind(ImageStatus::Deleted.as_str())
        .bind(ImageStatus::Deleting.as_str())
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get::<i64, _>("total")? > 0)
    }

    /// The kept total for a query without a search, from the counters.
    async fn counter(
        &self,
        conn: &mut AnyConnection,
        account_id: &str,
        query: &View<'_>,
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
        now_ms: i64,
    ) -> sqlx::Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let view = View::strict(query, now_ms);
        self.count_in_scope(&mut conn, account_id, &view, Scope::of(query.owner))
            .await
    }

    /// Every image matching the query's search and filters, in its sort order (for export,
    /// and as the plain answer tests compare pages with).
    pub async fn list_matching_images(
        &self,
        account_id: &str,
        query: &ListQuery,
        now_ms: i64,
    ) -> sqlx::Result<Vec<ImageRow>> {
        let filter = row_filter(
            self.backend,
            account_id,
            &View::strict(query, now_ms),
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
