//! Lineage: the ancestors of an image made from another, recorded when it is made.

use super::*;

/// The most ancestors kept for one image; older ones are dropped from a longer chain.
const MAX_DEPTH: i64 = 64;

/// An ancestor as recorded, with its row as it is now (`None`: destroyed).
#[derive(Clone, Debug)]
pub struct AncestorRow {
    pub depth: u32,
    pub id: String,
    pub account_id: String,
    pub now: Option<(String, ImageStatus, String)>,
}

/// Records that `image_id` was made from `source_id` (of `source_account_id`): its lineage
/// is the source and the source's own lineage.
pub(super) async fn record(
    conn: &mut AnyConnection,
    image_id: &str,
    source_id: &str,
    source_account_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO image_lineage (image_id, depth, ancestor_id, ancestor_account_id) \
         SELECT $1, depth + 1, ancestor_id, ancestor_account_id FROM image_lineage \
         WHERE image_id = $2 AND depth < $4 \
         UNION ALL SELECT $1, 1, $2, $3",
    )
    .bind(image_id)
    .bind(source_id)
    .bind(source_account_id)
    .bind(MAX_DEPTH)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// An image's ancestors, nearest first, each with its row's name, status and account now.
    pub async fn lineage(&self, image_id: &str) -> sqlx::Result<Vec<AncestorRow>> {
        let rows = sqlx::query(
            "SELECT l.depth, l.ancestor_id, l.ancestor_account_id, i.name, i.status, i.account_id \
             FROM image_lineage l LEFT JOIN images i ON i.id = l.ancestor_id \
             WHERE l.image_id = $1 ORDER BY l.depth",
        )
        .bind(image_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let name: Option<String> = r.try_get("name")?;
                let status: Option<String> = r.try_get("status")?;
                let account: Option<String> = r.try_get("account_id")?;
                let now = match (name, status, account) {
                    (Some(name), Some(status), Some(account)) => Some((
                        name,
                        ImageStatus::from_db(&status)
                            .ok_or_else(|| decode_error("status", &status))?,
                        account,
                    )),
                    _ => None,
                };
                Ok(AncestorRow {
                    depth: u32::try_from(r.try_get::<i64, _>("depth")?).unwrap_or(u32::MAX),
                    id: r.try_get("ancestor_id")?,
                    account_id: r.try_get("ancestor_account_id")?,
                    now,
                })
            })
            .collect()
    }
}
