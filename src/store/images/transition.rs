//! One status change of one image with its Work History event: a conditional UPDATE, the
//! event under the image's name, and the commit, in one transaction. Every status change
//! made by imports, uploads, the image API and the lifecycle goes through here, so none can
//! record an event for a change it did not make.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Transaction};

use super::{ImageRow, fetch_row};
use crate::store::history::{NewEvent, insert_event};

/// A conditional UPDATE of one image row (its WHERE names the state it changes from).
pub(in crate::store) type RowUpdate<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs `update` on the image `(account_id, id)`; when it changed the row, the row as it is
/// now. `None` when the row was not in the state the update asks for.
pub(in crate::store) async fn apply(
    conn: &mut AnyConnection,
    (account_id, id): (&str, &str),
    update: RowUpdate<'_>,
) -> sqlx::Result<Option<ImageRow>> {
    if update.execute(&mut *conn).await?.rows_affected() != 1 {
        return Ok(None);
    }
    fetch_row(conn, account_id, id).await
}

/// Records `event` on the image `row` (changed in `tx`) and commits the change with it.
pub(in crate::store) async fn record_and_commit(
    mut tx: Transaction<'static, Any>,
    row: &ImageRow,
    event: &NewEvent<'_>,
    now_ms: i64,
) -> sqlx::Result<()> {
    insert_event(
        &mut tx,
        &row.account_id,
        &row.id,
        &row.attributes.name,
        event,
        now_ms,
    )
    .await?;
    tx.commit().await
}

/// `apply`, then `record_and_commit` with `event`. `false` (and nothing committed) when the
/// row was not in the state the update asks for.
pub(in crate::store) async fn change_and_record(
    mut tx: Transaction<'static, Any>,
    image: (&str, &str),
    update: RowUpdate<'_>,
    event: &NewEvent<'_>,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let Some(row) = apply(&mut tx, image, update).await? else {
        return Ok(false);
    };
    record_and_commit(tx, &row, event, now_ms).await?;
    Ok(true)
}
