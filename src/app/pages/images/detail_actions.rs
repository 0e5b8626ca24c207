//! The actions on Image Details: the owner's (Edit, Protected, Share to another Account,
//! Create shared Image, Delete), a recipient's (Reject), and Restore from the Recycle Bin.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use super::detail::ImageActions;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::encryption_fields::{EncryptionFields, enabled_key_options};
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::image::{ImageDetail, ImageStatus};
use crate::domain::image_spec::ImageName;
use crate::domain::keys::field as key_field;
use crate::domain::units::format_timestamp;
use crate::server_fns::error::AppError;
use crate::server_fns::images::{ReplicateImage, SetImageProtected};
use crate::server_fns::lifecycle::{CancelImport, RestoreImages, SetImageActivation};
use crate::server_fns::shares::{CreateSharedImage, RejectShares};

/// The owner's actions: Edit, Protected, Share to another Account, Create shared Image and
/// Delete. A button that cannot be used now says why.
#[component]
pub(super) fn OwnerActions(
    image: ImageDetail,
    editing: RwSignal<bool>,
    actions: ImageActions,
    confirm_open: RwSignal<bool>,
) -> impl IntoView {
    let id = image.id.clone();
    let blocked = image.delete_blocked_reason();
    let activation = match image.status {
        ImageStatus::Active => Some((true, "Deactivate")),
        ImageStatus::Deactivated => Some((false, "Reactivate")),
        _ => None,
    };
    let on_activation = {
        let id = id.clone();
        move |deactivate: bool| {
            actions.activation.dispatch(SetImageActivation {
                id: id.clone(),
                deactivate,
            });
        }
    };
    // A browser's upload has its own Cancel Upload beside its progress.
    let cancellable = matches!(
        image.status,
        ImageStatus::Queued | ImageStatus::Importing | ImageStatus::Converting
    ) || image.api_wait.is_some();
    let on_cancel_import = {
        let id = id.clone();
        move |_| {
            actions
                .cancel_import
                .dispatch(CancelImport { id: id.clone() });
        }
    };
    let toggle_protected = {
        let (id, protected) = (id.clone(), image.attributes.protected);
        move |_| {
            actions.set_protected.dispatch(SetImageProtected {
                id: id.clone(),
                protected: !protected,
            });
        }
    };
    let share_blocked = image.share_blocked_reason();
    let copy_blocked = image.create_shared_blocked();
    let copy_open = RwSignal::new(false);
    let replicate_blocked = image.replicate_blocked_reason();
    // The Image List's More menu opens Details with Replicate asked for.
    let asked = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("action").as_deref() == Some("replicate"));
    let replicate_open = RwSignal::new(asked && replicate_blocked.is_none());
    // The notice that says why a button is disabled: the Deactivated notice covers both.
    let deactivated = image.status == ImageStatus::Deactivated;
    let blocked_note = move |own: &'static str| if deactivated { "deactivated" } else { own };
    view! {
        <div class="actions">
            <button
                type="button"
                class="btn"
                on:click=move |_| editing.set(true)
                disabled=move || editing.get()
            >
                "Edit"
            </button>
            <button
                type="button"
                class="btn"
                on:click=toggle_protected
                disabled=move || actions.set_protected.pending().get()
            >
                {if image.attributes.protected { "Turn off Protected" } else { "Turn on Protected" }}
            </button>
            {match share_blocked {
                None => Either::Left(view! {
                    <A href=format!("/images/{id}/share") attr:class="btn">"Share to another Account"</A>
                }),
                Some(reason) => Either::Right(view! {
                    <button type="button" class="btn" disabled=true title=reason aria-describedby=blocked_note("share-blocked")>
                        "Share to another Account"
                    </button>
                }),
            }}
            <button
                type="button"
                class="btn"
                disabled=copy_blocked.is_some()
                title=copy_blocked.clone()
                aria-describedby=copy_blocked.as_ref().map(|_| blocked_note("copy-blocked"))
                on:click=move |_| copy_open.set(true)
            >
                "Create shared Image"
            </button>
            <button
                type="button"
                class="btn"
                disabled=replicate_blocked.is_some()
                title=replicate_blocked.clone()
                aria-describedby=replicate_blocked.as_ref().map(|_| blocked_note("replicate-blocked"))
                on:click=move |_| replicate_open.set(true)
            >
                "Replicate"
            </button>
            {activation.map(|(deactivate, label)| view! {
                <button
                    type="button"
                    class="btn"
                    disabled=move || actions.activation.pending().get()
                    on:click=move |_| on_activation(deactivate)
                >
                    {label}
                </button>
            })}
            {cancellable.then(|| view! {
                <button
                    type="button"
                    class="btn"
                    disabled=move || actions.cancel_import.pending().get()
                    on:click=on_cancel_import
                >
                    "Cancel Import"
                </button>
            })}
            <button
                type="button"
                class="btn btn-danger"
                disabled=blocked.is_some()
                aria-describedby=blocked.map(|_| "delete-blocked")
                on:click=move |_| confirm_open.set(true)
            >
                "Delete"
            </button>
        </div>
        <CreateSharedImageDialog open=copy_open image_id=id.clone() image_name=image.attributes.name.clone() />
        <ReplicateDialog
            open=replicate_open
            image_id=id.clone()
            image_name=image.attributes.name.clone()
            encrypted=image.encryption.is_some()
        />
    }
}

/// Replicate Image: the replica's name and encryption; starts it and opens it.
#[component]
fn ReplicateDialog(
    open: RwSignal<bool>,
    image_id: String,
    image_name: String,
    encrypted: bool,
) -> impl IntoView {
    let replicate = ServerAction::<ReplicateImage>::new();
    let name = FieldState::new("replica", "replica_name", &format!("{image_name}-replica"));
    // The other way round from the image, which is what a replica is most often for.
    let encryption = FieldState::new(
        "replica",
        key_field::ENCRYPTION,
        if encrypted { "off" } else { "on" },
    );
    let key = FieldState::new("replica", key_field::ENCRYPTION_KEY, "");
    let key_options = enabled_key_options(move || open.get());
    let form_error = RwSignal::new(None::<AppError>);
    let navigate = use_navigate();
    Effect::new(move |_| match replicate.value().get() {
        Some(Ok(new_id)) => {
            open.set(false);
            navigate(&format!("/images/{new_id}"), Default::default());
        }
        Some(Err(error)) => form_error.set(form_alert(
            &error,
            error.field_errors(),
            &[name, encryption, key],
        )),
        None => {}
    });
    let on_confirm = Callback::new(move |()| {
        name.touch();
        replicate.dispatch(ReplicateImage {
            id: image_id.clone(),
            name: name.value.get_untracked(),
            encryption: Some(encryption.value.get_untracked()),
            encryption_key: Some(key.value.get_untracked()),
        });
    });
    view! {
        <ConfirmDialog
            open
            title="Replicate Image".to_owned()
            confirm_label="Replicate"
            pending=replicate.pending()
            destructive=false
            on_confirm
        >
            <p>
                "Makes a new Private image from the bytes of " <strong>{image_name.clone()}</strong>
                ", encrypted or not, or under another key. It is copied in the background and counts toward the account's storage; its SHA-512 must equal this image's. The name, attributes and tags are copied."
            </p>
            {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
            <TextField
                label="Name of the replica"
                field=name
                error=name.message(ImageName::parse)
                hint=ImageName::hint()
                required=true
            />
            <EncryptionFields
                legend="Encryption of the replica"
                encryption
                key
                options=key_options
                off_hint="The replica's bytes are stored unencrypted."
                on_hint="The replica's bytes are encrypted with a data key of their own, wrapped by the key you choose."
            />
        </ConfirmDialog>
    }
}

/// Create shared Image: asks for the new image's name, creates it and opens it.
#[component]
fn CreateSharedImageDialog(
    open: RwSignal<bool>,
    image_id: String,
    image_name: String,
) -> impl IntoView {
    let create = ServerAction::<CreateSharedImage>::new();
    // Its own field name: the page's Edit form has an Image name field too, and ids must
    // stay unique. The server's word on the name comes back under "name" and shows in the
    // dialog's alert.
    let name = FieldState::new(
        "shared-copy",
        "shared_name",
        &format!("{image_name}-shared"),
    );
    let form_error = RwSignal::new(None::<AppError>);
    let navigate = use_navigate();
    Effect::new(move |_| match create.value().get() {
        Some(Ok(new_id)) => {
            open.set(false);
            navigate(&format!("/images/{new_id}"), Default::default());
        }
        Some(Err(error)) => form_error.set(form_alert(&error, error.field_errors(), &[name])),
        None => {}
    });
    let on_confirm = Callback::new(move |()| {
        name.touch();
        create.dispatch(CreateSharedImage {
            id: image_id.clone(),
            name: name.value.get_untracked(),
        });
    });
    view! {
        <ConfirmDialog
            open
            title="Create shared Image".to_owned()
            confirm_label="Complete"
            pending=create.pending()
            destructive=false
            on_confirm
        >
            <p>
                "Creates a new Shared image of " <strong>{image_name.clone()}</strong>
                " to share with other accounts. It uses the same stored bytes: nothing is copied and no storage is added. It has its own name, Work History and shares; this image stays Private."
            </p>
            {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
            <TextField
                label="Name of the shared image"
                field=name
                error=name.message(ImageName::parse)
                hint=ImageName::hint()
                required=true
            />
        </ConfirmDialog>
    }
}

/// What an account the image is shared with can do besides viewing and downloading: take it
/// off its Image List (Reject; Get Image Share approves it again).
#[component]
pub(super) fn RecipientActions(
    image_id: String,
    image_name: String,
    owner: String,
) -> impl IntoView {
    let reject = ServerAction::<RejectShares>::new();
    let open = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| match reject.value().get() {
        Some(Ok(result)) if result.skipped.is_empty() => {
            open.set(false);
            navigate("/images", Default::default());
        }
        Some(_) => open.set(false),
        None => {}
    });
    let error = move || match reject.value().get() {
        Some(Err(error)) => Some(error),
        Some(Ok(result)) => result
            .skipped
            .first()
            .map(|s| AppError::Conflict(s.reason.clone())),
        None => None,
    };
    let on_confirm = Callback::new(move |()| {
        reject.dispatch(RejectShares {
            ids: vec![image_id.clone()],
        });
    });
    view! {
        <div class="actions">
            <button type="button" class="btn" on:click=move |_| open.set(true)>"Remove from Image List"</button>
        </div>
        {move || error().map(|error| view! { <ErrorNotice error /> })}
        <ConfirmDialog
            open
            title="Remove from Image List".to_owned()
            confirm_label="Remove"
            pending=reject.pending()
            on_confirm
        >
            <p>
                "Reject the share of " <strong>{image_name}</strong> {format!(" from account {owner}? It leaves your Image List and its download links stop working. While account {owner} shares it, you can approve it again with Get Image Share.")}
            </p>
        </ConfirmDialog>
    }
}

/// The notice on an image in the Recycle Bin: since when, by whom, until when, and Restore.
#[component]
pub(super) fn InRecycleBin(
    image_id: String,
    deleted: crate::domain::lifecycle::DeletedInfo,
    restore: ServerAction<RestoreImages>,
) -> impl IntoView {
    let error = move || match restore.value().get() {
        Some(Err(error)) => Some(error),
        Some(Ok(outcome)) => outcome
            .skipped
            .first()
            .map(|s| AppError::Conflict(s.reason.clone())),
        None => None,
    };
    view! {
        <div class="notice" id="in-recycle-bin" role="note">
            <p>
                <strong>"In the Recycle Bin. "</strong>
                {format!(
                    "Deleted by {} on {}; destroyed on {} unless restored. Restore brings it back as {}, with its attributes and tags; its shares stay stopped.",
                    deleted.deleted_by,
                    format_timestamp(deleted.deleted_at_ms),
                    format_timestamp(deleted.destroy_at_ms),
                    deleted.restores_to.label()
                )}
            </p>
            <div class="actions">
                <button
                    type="button"
                    class="btn btn-primary"
                    disabled=move || restore.pending().get()
                    on:click=move |_| {
                        restore.dispatch(RestoreImages { ids: vec![image_id.clone()] });
                    }
                >
                    "Restore"
                </button>
                <A href="/images/recycle-bin" attr:class="btn">"Open the Recycle Bin"</A>
            </div>
        </div>
        {move || error().map(|error| view! { <ErrorNotice error /> })}
    }
}
