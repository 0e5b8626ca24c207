//! Accounts and users.

use sqlx::Row;

use super::{Store, is_unique_violation};

/// A user as stored, with the hash needed to check a password.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: String,
    pub account_id: String,
    pub user_name: String,
    pub password_hash: String,
}

/// Why a new account could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    #[error("account id taken")]
    AccountIdTaken,
    #[error("user name taken")]
    UserNameTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl Store {
    /// Creates an account and its first user in one transaction.
    pub async fn create_account_with_user(
        &self,
        account_id: &str,
        user: &UserRow,
        now_ms: i64,
    ) -> Result<(), CreateAccountError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(CreateAccountError::AccountIdTaken);
        }
        let name_taken = sqlx::query("SELECT 1 FROM users WHERE user_name = $1")
            .bind(&user.user_name)
            .fetch_optional(&mut *tx)
            .await?;
        if name_taken.is_some() {
            return Err(CreateAccountError::UserNameTaken);
        }
        sqlx::query("INSERT INTO accounts (id, created_at) VALUES ($1, $2)")
            .bind(account_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    CreateAccountError::AccountIdTaken
                } else {
                    e.into()
                }
            })?;
        sqlx::query(
            "INSERT INTO users (id, account_id, user_name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.id)
        .bind(account_id)
        .bind(&user.user_name)
        .bind(&user.password_hash)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                CreateAccountError::UserNameTaken
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_user_by_name(&self, user_name: &str) -> sqlx::Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, account_id, user_name, password_hash FROM users WHERE user_name = $1",
        )
        .bind(user_name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserRow {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                user_name: r.try_get("user_name")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }
}
