//! Keys (`/images/keys`): the account's encryption keys. Create one, see its state, version
//! and the images under it, and disable, enable, rotate, make default, schedule for deletion
//! or cancel a deletion.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::keys::{
    DeletionWindow, KeyDescription, KeyName, KeyState, KeySummary, MAX_KEYS_PER_ACCOUNT,
};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::server_fns::error::AppError;
use crate::server_fns::keys::{ChangeKey, CreateKey, list_keys};

#[component]
pub fn KeysPage() -> impl IntoView {
    let create = ServerAction::<CreateKey>::new();
    let change = ServerAction::<ChangeKey>::new();
    let keys = Resource::new(
        move || (create.version().get(), change.version().get()),
        |_| list_keys(),
    );
    let name = FieldState::new("key", "name", "");
    let description = FieldState::new("key", "description", "");
    let alert = RwSignal::new(None::<AppError>);
    Effect::new(move |_| match create.value().get() {
        Some(Err(error)) => alert.set(form_alert(
            &error,
            error.field_errors(),
            &[name, description],
        )),
        Some(Ok(_)) => {
            alert.set(None);
            name.value.set(String::new());
            name.touched.set(false);
            description.value.set(String::new());
        }
        None => {}
    });

    view! {
        <Title text="Keys" />
        <Breadcrumb current="Keys" />
        <div class="page-header">
            <div>
                <h1>"Keys"</h1>
                <p class="lede">
                    "Keys protect the bytes of this account's encrypted images. Each encrypted image has its own data key, kept only wrapped by one of these keys, which never leave the key provider. Disable a key and its images cannot be downloaded, shared or replicated until you enable it again."
                </p>
            </div>
        </div>
        <section class="card form-section" aria-labelledby="create-key-title">
            <h2 id="create-key-title">"Create Key"</h2>
            <ActionForm action=create attr:novalidate=true on:submit=move |_| name.touch()>
                <TextField
                    label="Key name"
                    field=name
                    error=name.message(KeyName::parse)
                    hint="Such as prod-images. Letters, digits, '-', '_' and '.'; at most 64 characters."
                    autocomplete="off"
                    required=true
                />
                <TextField
                    label="Description"
                    field=description
                    error=description.message(KeyDescription::parse)
                    hint="Optional; at most 255 characters."
                    autocomplete="off"
                />
                <div class="checkbox">
                    <input type="checkbox" id="key-make-default" name="make_default" value="on" />
                    <label for="key-make-default">"Make it the default key (new encrypted images use it unless another is chosen)"</label>
                </div>
                {move || alert.get().map(|error| view! { <ErrorNotice error /> })}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>
                        "Create Key"
                    </button>
                </div>
            </ActionForm>
        </section>
        <section class="card" aria-labelledby="keys-title">
            <div class="section-header">
                <h2 id="keys-title">"Key List"</h2>
            </div>
            <p class="hint">{format!("An account can have up to {MAX_KEYS_PER_ACCOUNT} keys. The first one becomes the default; when an encrypted image is created without any key, the console makes one named default.")}</p>
            {move || change.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
            <Transition fallback=|| view! { <p class="hint">"Loading keys…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                        Ok(list) => Either::Right(view! { <KeyTable keys=list change /> }),
                    }
                })}
            </Transition>
        </section>
    }
}

fn when(ms: i64) -> impl IntoView {
    view! { <time datetime=format_rfc3339(ms)>{format_timestamp(ms)}</time> }
}

fn state_badge(state: KeyState) -> impl IntoView {
    let class = match state {
        KeyState::Enabled => "badge badge-active",
        KeyState::Disabled => "badge badge-deactivated",
        KeyState::PendingDeletion => "badge badge-failed",
        KeyState::Deleted => "badge badge-deleted",
    };
    view! {
        <span class=class>
            <span class="badge-dot" aria-hidden="true"></span>
            {state.label()}
        </span>
    }
}

/// What a confirmation dialog is about: the key and the action.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    id: String,
    name: String,
    action: &'static str,
}

#[component]
fn KeyTable(keys: Vec<KeySummary>, change: ServerAction<ChangeKey>) -> impl IntoView {
    if keys.is_empty() {
        return Either::Left(view! {
            <p class="empty-note">"This account has no keys yet. Create one above, or choose Encryption when you create an image and the console makes a default key."</p>
        });
    }
    let disable_open = RwSignal::new(false);
    let delete_open = RwSignal::new(false);
    let target = RwSignal::new(None::<Pending>);
    let days = FieldState::new(
        "deletion",
        "days",
        &DeletionWindow::DEFAULT_DAYS.to_string(),
    );
    let run = move |id: String, action: &str, days: Option<String>| {
        change.dispatch(ChangeKey {
            id,
            action: action.to_owned(),
            days,
        });
    };
    let confirm_disable = Callback::new(move |()| {
        if let Some(p) = target.get_untracked() {
            run(p.id, p.action, None);
        }
        disable_open.set(false);
    });
    let confirm_delete = Callback::new(move |()| {
        days.touch();
        if DeletionWindow::parse(&days.value.get_untracked()).is_err() {
            return;
        }
        if let Some(p) = target.get_untracked() {
            run(p.id, p.action, Some(days.value.get_untracked()));
        }
        delete_open.set(false);
    });
    let target_name = move || target.get().map(|p| p.name).unwrap_or_default();
    let rows = keys
        .into_iter()
        .map(|key| {
            let buttons = actions_for(&key)
                .into_iter()
                .map(|(action, label)| {
                    let (id, name) = (key.id.clone(), key.name.clone());
                    let aria = format!("{label} key {}", key.name);
                    view! {
                        <button
                            type="button"
                            class="btn btn-small"
                            aria-label=aria
                            disabled=move || change.pending().get()
                            on:click=move |_| {
                                let pending = Pending { id: id.clone(), name: name.clone(), action };
                                match action {
                                    "disable" => {
                                        target.set(Some(pending));
                                        disable_open.set(true);
                                    }
                                    "schedule_deletion" => {
                                        target.set(Some(pending));
                                        delete_open.set(true);
                                    }
                                    _ => run(pending.id, action, None),
                                }
                            }
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view();
            let older = key.images_on_older_versions;
            view! {
                <tr>
                    <th scope="row">
                        {key.name.clone()}
                        {key.is_default.then(|| view! { " " <span class="badge badge-share-accepted">"Default"</span> })}
                        {(!key.description.is_empty()).then(|| view! { <div class="hint">{key.description.clone()}</div> })}
                        <div class="hint mono key-id">{key.id.clone()}</div>
                    </th>
                    <td>
                        {state_badge(key.state)}
                        {key.deletion_at_ms.filter(|_| key.state == KeyState::PendingDeletion).map(|at| view! { <div class="hint">"Deleted on " {when(at)}</div> })}
                    </td>
                    <td>
                        {format!("Version {}", key.version)}
                        {key.rotated_at_ms.map(|at| view! { <div class="hint">"Rotated " {when(at)}</div> })}
                    </td>
                    <td>
                        {key.images.to_string()}
                        {(older > 0).then(|| view! { <div class="hint">{format!("{older} still on an older version")}</div> })}
                    </td>
                    <td>
                        {key.provider.clone()}
                        {(!key.provider_key_id.is_empty()).then(|| view! { <div class="hint mono key-id">{key.provider_key_id.clone()}</div> })}
                    </td>
                    <td>{when(key.created_at_ms)}</td>
                    <td><div class="row-actions">{buttons}</div></td>
                </tr>
            }
        })
        .collect_view();
    Either::Right(view! {
        <div class="table-scroll">
            <table class="data-table">
                <thead>
                    <tr>
                        <th scope="col">"Name and Key ID"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Images"</th>
                        <th scope="col">"Provider"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <ConfirmDialog
            open=disable_open
            title="Disable Key".to_owned()
            confirm_label="Disable"
            pending=change.pending()
            on_confirm=confirm_disable
        >
            <p>
                "Disable the key " <strong>{target_name}</strong>
                "? Until it is enabled again, its images cannot be downloaded (download links stop working), shared or replicated, and no new image can be encrypted with it."
            </p>
        </ConfirmDialog>
        <ConfirmDialog
            open=delete_open
            title="Schedule Key Deletion".to_owned()
            confirm_label="Schedule deletion"
            pending=change.pending()
            on_confirm=confirm_delete
        >
            <p>
                "Schedule the key " <strong>{target_name}</strong>
                " for deletion? Until then its images cannot be used, and you can cancel. Once it is deleted, its images can never be read again: they become Failed and can only be deleted."
            </p>
            <TextField
                label="Waiting period (days)"
                field=days
                error=days.message(DeletionWindow::parse)
                hint="7 to 30 days."
                inputmode="numeric"
                required=true
            />
        </ConfirmDialog>
    })
}

/// The actions a key's state allows: the action's name and the button's label.
fn actions_for(key: &KeySummary) -> Vec<(&'static str, &'static str)> {
    match key.state {
        KeyState::Enabled => {
            let mut actions = vec![("rotate", "Rotate")];
            if !key.is_default {
                actions.push(("make_default", "Make default"));
            }
            actions.push(("disable", "Disable"));
            actions.push(("schedule_deletion", "Schedule deletion"));
            actions
        }
        KeyState::Disabled => vec![
            ("enable", "Enable"),
            ("schedule_deletion", "Schedule deletion"),
        ],
        KeyState::PendingDeletion => vec![("cancel_deletion", "Cancel deletion")],
        KeyState::Deleted => Vec::new(),
    }
}
