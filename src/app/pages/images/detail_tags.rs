//! The Tags tab: add, edit and remove an image's key/value tags.

use leptos::either::Either;
use leptos::prelude::*;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::tags::{MAX_TAGS, TagKey, TagPair, TagValue, field};
use crate::server_fns::error::AppError;
use crate::server_fns::images::{PutImageTag, RemoveImageTag};

#[component]
pub fn TagsTab(
    image_id: String,
    tags: Vec<TagPair>,
    put: ServerAction<PutImageTag>,
    remove: ServerAction<RemoveImageTag>,
) -> impl IntoView {
    let editing = RwSignal::new(None::<String>);
    let count = tags.len();
    let remove_error = move || remove.value().get().and_then(Result::err);
    let rows = tags
        .into_iter()
        .map(|tag| {
            let image_id = image_id.clone();
            let key = tag.key.clone();
            let is_editing = {
                let key = key.clone();
                move || editing.get().as_deref() == Some(key.as_str())
            };
            view! {
                {move || if is_editing() {
                    Either::Left(view! {
                        <tr>
                            <td colspan="3">
                                <TagForm image_id=image_id.clone() original=Some(tag.clone()) put editing />
                            </td>
                        </tr>
                    })
                } else {
                    let (edit_key, remove_key, image_id) = (tag.key.clone(), tag.key.clone(), image_id.clone());
                    Either::Right(view! {
                        <tr>
                            <th scope="row" class="mono">{tag.key.clone()}</th>
                            <td class="mono">{tag.value.clone()}</td>
                            <td class="row-actions">
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    aria-label=format!("Edit tag {}", tag.key)
                                    on:click=move |_| editing.set(Some(edit_key.clone()))
                                >
                                    "Edit"
                                </button>
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    aria-label=format!("Remove tag {}", tag.key)
                                    disabled=move || remove.pending().get()
                                    on:click=move |_| {
                                        remove.dispatch(RemoveImageTag { id: image_id.clone(), tag_key: remove_key.clone() });
                                    }
                                >
                                    "Remove"
                                </button>
                            </td>
                        </tr>
                    })
                }}
            }
        })
        .collect_view();

    view! {
        <section class="card" aria-labelledby="tags-title">
            <div class="section-header">
                <h2 id="tags-title">"Tags"</h2>
                <span class="count">{format!("{count} of {MAX_TAGS}")}</span>
            </div>
            {move || remove_error().map(|error| view! { <ErrorNotice error /> })}
            {if count == 0 {
                Either::Left(view! { <p class="muted">"This image has no tags yet."</p> })
            } else {
                Either::Right(view! {
                    <table class="data-table compact">
                        <thead>
                            <tr>
                                <th scope="col">"Key"</th>
                                <th scope="col">"Value"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                })
            }}
            // One form at a time: while a tag is edited, Add Tag waits.
            {move || (count < MAX_TAGS && editing.get().is_none()).then(|| view! {
                <h3 class="add-tag-title">"Add Tag"</h3>
                <TagForm image_id=image_id.clone() original=None put editing />
            })}
        </section>
    }
}

/// Adds a tag, or edits `original`. Checks key and value as they are typed.
#[component]
fn TagForm(
    image_id: String,
    original: Option<TagPair>,
    put: ServerAction<PutImageTag>,
    editing: RwSignal<Option<String>>,
) -> impl IntoView {
    let is_edit = original.is_some();
    let (key0, value0) = original
        .as_ref()
        .map(|t| (t.key.clone(), t.value.clone()))
        .unwrap_or_default();
    let key = FieldState::new("tag", field::TAG_KEY, &key0);
    let value = FieldState::new("tag", field::TAG_VALUE, &value0);
    let form_error = RwSignal::new(None::<AppError>);
    let opened_at = put.version().get_untracked();
    Effect::new(move |_| {
        if put.version().get() == opened_at {
            return;
        }
        match put.value().get() {
            Some(Ok(())) => {
                editing.set(None);
                key.value.set(String::new());
                value.value.set(String::new());
                key.touched.set(false);
            }
            Some(Err(error)) => {
                form_error.set(form_alert(&error, error.field_errors(), &[key, value]));
            }
            None => {}
        }
    });
    view! {
        {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
        <ActionForm action=put attr:class="tag-form" on:submit=move |_| key.touch()>
            <input type="hidden" name="id" value=image_id />
            <input type="hidden" name="original_key" value=key0.clone() />
            <TextField label=if is_edit { "Key" } else { "Tag key" } field=key error=key.message(TagKey::parse) required=true />
            <TextField label=if is_edit { "Value" } else { "Tag value" } field=value error=value.message(TagValue::parse) />
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" disabled=move || put.pending().get()>
                    {if is_edit { "Save tag" } else { "Add Tag" }}
                </button>
                {is_edit.then(|| view! {
                    <button type="button" class="btn" on:click=move |_| editing.set(None)>"Cancel"</button>
                })}
            </div>
        </ActionForm>
    }
}
