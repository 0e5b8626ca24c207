//! An image's tags: add or change one, remove one, each recorded in Work History with what
//! changed.

use super::*;

/// How a tag set changed, one entry per added, changed or removed key.
fn tag_changes(before: &[TagPair], after: &[tags::Tag]) -> Vec<FieldChange> {
    let none = || "(none)".to_owned();
    let mut changes = Vec::new();
    for old in before {
        match after.iter().find(|t| t.key.as_str() == old.key) {
            Some(new) if new.value.as_str() != old.value => changes.push(FieldChange {
                field: format!("Tag {}", old.key),
                old: old.value.clone(),
                new: new.value.as_str().to_owned(),
            }),
            Some(_) => {}
            None => changes.push(FieldChange {
                field: format!("Tag {}", old.key),
                old: old.value.clone(),
                new: none(),
            }),
        }
    }
    for new in after {
        if !before.iter().any(|t| t.key == new.key.as_str()) {
            changes.push(FieldChange {
                field: format!("Tag {}", new.key.as_str()),
                old: none(),
                new: new.value.as_str().to_owned(),
            });
        }
    }
    changes
}

impl Services {
    /// Adds a tag, or changes the tag `original_key` (its key and value).
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn put_image_tag(
        &self,
        actor: &Actor,
        id: &str,
        original_key: Option<&str>,
        key: &str,
        value: &str,
    ) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let mut errors = Vec::new();
        let key_ok = tags::TagKey::parse(key).map_err(|e| errors.push(e)).is_ok();
        let value_ok = tags::TagValue::parse(value)
            .map_err(|e| errors.push(e))
            .is_ok();
        if !(key_ok && value_ok) {
            return Err(ServiceError::Invalid(errors));
        }
        let row = self.owned_image(actor, &id).await?;
        let current = self.store().list_tags(&actor.account_id, &id).await?;
        let mut next = current.clone();
        match original_key {
            Some(original) => {
                let Some(slot) = next.iter_mut().find(|t| t.key == original) else {
                    return Err(ServiceError::Conflict(format!(
                        "The tag '{original}' no longer exists. Reload the page to see the current tags."
                    )));
                };
                *slot = TagPair {
                    key: key.to_owned(),
                    value: value.to_owned(),
                };
            }
            None => next.push(TagPair {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
        }
        self.replace_tags(actor, &row, &current, &next).await
    }

    /// Removes the tag `key`.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id, image.id = %id))]
    pub async fn remove_image_tag(&self, actor: &Actor, id: &str, key: &str) -> ServiceResult<()> {
        let id = parse_image_id(id)?;
        let row = self.owned_image(actor, &id).await?;
        let current = self.store().list_tags(&actor.account_id, &id).await?;
        let next: Vec<TagPair> = current.iter().filter(|t| t.key != key).cloned().collect();
        if next.len() == current.len() {
            return Ok(());
        }
        self.replace_tags(actor, &row, &current, &next).await
    }

    pub(crate) async fn replace_tags(
        &self,
        actor: &Actor,
        row: &ImageRow,
        current: &[TagPair],
        next: &[TagPair],
    ) -> ServiceResult<()> {
        let parsed = parse_tag_set(next).map_err(|errors| {
            // Single-tag edits report under the Tags tab's own fields.
            ServiceError::Invalid(
                errors
                    .into_iter()
                    .map(|e| {
                        let field = if e.field.starts_with(tags::field::TAG_VALUE) {
                            tags::field::TAG_VALUE
                        } else if e.field.starts_with(tags::field::TAG_KEY) {
                            tags::field::TAG_KEY
                        } else {
                            tags::field::TAGS
                        };
                        FieldError::new(field, e.message)
                    })
                    .collect(),
            )
        })?;
        let changes = tag_changes(current, &parsed);
        if changes.is_empty() {
            return Ok(());
        }
        let event = NewEvent {
            changes: &changes,
            ..NewEvent::succeeded(HistoryTopic::TagsChanged, &actor.user_name)
        };
        let now = now_ms().max(row.updated_at_ms + 1);
        let written = self
            .store()
            .replace_image_tags(
                &actor.account_id,
                &row.id,
                row.updated_at_ms,
                &parsed,
                &event,
                now,
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(changed_elsewhere())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tags::{Tag, TagKey, TagValue};

    #[test]
    fn tag_changes_list_additions_edits_and_removals() {
        let before = vec![
            TagPair {
                key: "env".into(),
                value: "prod".into(),
            },
            TagPair {
                key: "team".into(),
                value: "web".into(),
            },
        ];
        let tag = |k: &str, v: &str| Tag {
            key: TagKey::parse(k).unwrap(),
            value: TagValue::parse(v).unwrap(),
        };
        let after = vec![tag("env", "dev"), tag("os", "linux")];
        let changes = tag_changes(&before, &after);
        let text: Vec<String> = changes
            .iter()
            .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
            .collect();
        assert_eq!(
            text,
            [
                "Tag env: prod → dev",
                "Tag team: web → (none)",
                "Tag os: (none) → linux"
            ]
        );
    }
}
