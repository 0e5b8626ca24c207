//! Share to another Account (`/images/{id}/share`): the owner enters an Account ID, and sees
//! every account the image is shared with, with Stop sharing and Share again.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::ShareStatusBadge;
use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::account::AccountId;
use crate::domain::image::ImageStatus;
use crate::domain::image_spec::Visibility;
use crate::domain::share::{ImageShare, ImageSharing, ShareStatus, field};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::domain::validation::with_thousands;
use crate::server_fns::error::AppError;
use crate::server_fns::shares::{ShareImage, StopSharing, get_image_sharing};

#[component]
pub fn ImageSharePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let share = ServerAction::<ShareImage>::new();
    let stop = ServerAction::<StopSharing>::new();
    let sharing = Resource::new(
        move || (id(), share.version().get(), stop.version().get()),
        |(id, _, _)| get_image_sharing(id),
    );
    // Owned here, not by the panel, which is rebuilt each time the list reloads after an
    // answer: the form, its outcome and the dialog stay as they are.
    let form = ShareForm {
        account: FieldState::new("share", field::ACCOUNT_ID, ""),
        error: RwSignal::new(None),
        shared_with: RwSignal::new(None),
        stopping: RwSignal::new(None),
        confirm_open: RwSignal::new(false),
    };
    Effect::new(move |_| match share.value().get() {
        Some(Ok(done)) => {
            form.error.set(None);
            form.account.value.set(String::new());
            form.account.touched.set(false);
            form.shared_with.set(Some(done.account_id));
        }
        Some(Err(error)) => {
            form.shared_with.set(None);
            form.error
                .set(form_alert(&error, error.field_errors(), &[form.account]));
        }
        None => {}
    });
    Effect::new(move |_| {
        if stop.value().with(Option::is_some) {
            form.confirm_open.set(false);
        }
    });
    Effect::new(move |_| {
        if !form.confirm_open.get() {
            form.stopping.set(None);
        }
    });

    view! {
        <Title text="Share to another Account" />
        <Transition fallback=|| view! { <p class="loading">"Loading image…"</p> }>
            {move || Suspend::new(async move {
                match sharing.await {
                    Err(error) => Either::Left(view! {
                        <nav class="breadcrumb" aria-label="Breadcrumb">
                            <A href="/images">"Image List"</A>
                        </nav>
                        <h1>"Share to another Account"</h1>
                        <ErrorNotice error />
                        <A href="/images" attr:class="btn">"Back to the Image List"</A>
                    }),
                    Ok(sharing) => Either::Right(view! { <SharePanel sharing share stop form /> }),
                }
            })}
        </Transition>
    }
}

/// The page's state that outlives a reload of the list.
#[derive(Clone, Copy)]
struct ShareForm {
    account: FieldState,
    error: RwSignal<Option<AppError>>,
    /// The account the last share went to.
    shared_with: RwSignal<Option<String>>,
    /// The account Stop sharing asks about.
    stopping: RwSignal<Option<String>>,
    confirm_open: RwSignal<bool>,
}

#[component]
fn SharePanel(
    sharing: ImageSharing,
    share: ServerAction<ShareImage>,
    stop: ServerAction<StopSharing>,
    form: ShareForm,
) -> impl IntoView {
    let ImageSharing {
        image_id,
        image_name,
        status,
        visibility,
        shares,
        active,
        limit,
    } = sharing;
    let ShareForm {
        account,
        error: form_error,
        shared_with,
        stopping,
        confirm_open,
    } = form;
    let details_href = format!("/images/{image_id}");
    let dialog_name = image_name.clone();
    let crumb_name = image_name.clone();
    let can_share = status == ImageStatus::Active;
    let stop_error = move || stop.value().get().and_then(Result::err);
    let on_confirm = {
        let image_id = image_id.clone();
        Callback::new(move |()| {
            if let Some(account_id) = stopping.get_untracked() {
                stop.dispatch(StopSharing {
                    id: image_id.clone(),
                    account_id,
                });
            }
        })
    };
    let share_again = {
        let image_id = image_id.clone();
        Callback::new(move |account_id: String| {
            share.dispatch(ShareImage {
                id: image_id.clone(),
                account_id,
            });
        })
    };
    let ask_stop = Callback::new(move |account_id: String| {
        stopping.set(Some(account_id));
        confirm_open.set(true);
    });

    view! {
        <Title text=format!("{image_name} · Share to another Account") />
        <Breadcrumb
            current="Share to another Account"
            parent=(details_href.clone(), crumb_name)
        />
        <div class="page-header">
            <div>
                <h1>"Share to another Account"</h1>
                <p class="lede">
                    "The account you share with sees the image in its Image Share Request List. Once it approves, the image appears in its Image List: it can view and download it, and nothing else."
                </p>
            </div>
        </div>
        <section class="card form-section narrow-wide" aria-labelledby="share-form-title">
            <h2 id="share-form-title">"Share Image with another Account"</h2>
            <dl class="info-list">
                <dt>"Image name"</dt>
                <dd>{image_name.clone()}</dd>
                <dt>"Image ID"</dt>
                <dd class="mono break">{image_id.clone()}</dd>
                <dt>"Visibility"</dt>
                <dd>{visibility.label()}</dd>
            </dl>
            {(visibility == Visibility::Private && can_share).then(|| view! {
                <p class="notice">"This image is Private. Sharing it makes it Shared."</p>
            })}
            {(!can_share).then(|| view! {
                <p class="notice">
                    {format!("Only an Active image can be shared; this one is {}.", status.label())}
                </p>
            })}
            {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
            {move || shared_with.get().map(|account_id| view! {
                <div class="alert alert-success" role="status">
                    <p>
                        <strong>{format!("Shared with account {account_id}. ")}</strong>
                        "The share is Pending until that account approves it in its Image Share Request List."
                    </p>
                </div>
            })}
            <ActionForm action=share on:submit=move |_| account.touch()>
                <input type="hidden" name="id" value=image_id.clone() />
                <TextField
                    label="Account ID"
                    field=account
                    error=account.message(AccountId::parse)
                    hint="The Account ID of the account to share with: up to 64 English letters, digits and '-'. The console does not tell whether an Account ID exists; a share stays Pending until that account approves it."
                    autocomplete="off"
                    required=true
                />
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || !can_share || share.pending().get()>
                        {move || if share.pending().get() { "Sharing…" } else { "Share" }}
                    </button>
                    <A href=details_href attr:class="btn">"Back to Image Details"</A>
                </div>
            </ActionForm>
        </section>
        {move || stop_error().map(|error| view! { <ErrorNotice error /> })}
        <section class="card table-card" aria-labelledby="sharing-status-title">
            <div class="table-toolbar">
                <h2 id="sharing-status-title" class="table-title">
                    "Sharing Status "
                    <span class="count">
                        {format!("({} of {} accounts)", with_thousands(active), with_thousands(limit))}
                    </span>
                </h2>
            </div>
            {if shares.is_empty() {
                Either::Left(view! { <p class="empty-note">"This image is not shared with any account."</p> })
            } else {
                Either::Right(view! {
                    <div class="table-scroll">
                        <table class="data-table">
                            <thead>
                                <tr>
                                    <th scope="col">"Account ID"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Modification Date/Time"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {shares
                                    .into_iter()
                                    .map(|s| view! { <ShareRow share=s can_share ask_stop share_again pending=share.pending() /> })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            }}
        </section>
        <ConfirmDialog
            open=confirm_open
            title="Stop sharing".to_owned()
            confirm_label="Stop sharing"
            pending=stop.pending()
            on_confirm
        >
            <p>
                "Stop sharing " <strong>{dialog_name}</strong> " with account "
                <strong>{move || stopping.get().unwrap_or_default()}</strong>
                "? That account loses access at once, download links included. You can share it again later."
            </p>
        </ConfirmDialog>
    }
}

#[component]
fn ShareRow(
    share: ImageShare,
    can_share: bool,
    ask_stop: Callback<String>,
    share_again: Callback<String>,
    #[prop(into)] pending: Signal<bool>,
) -> impl IntoView {
    let account_id = share.account_id.clone();
    let action = match share.status {
        ShareStatus::Stopped if can_share => EitherOf3::A(view! {
            <button
                type="button"
                class="btn btn-small"
                aria-label=format!("Share again with {account_id}")
                disabled=move || pending.get()
                on:click={
                    let account_id = account_id.clone();
                    move |_| share_again.run(account_id.clone())
                }
            >
                "Share again"
            </button>
        }),
        ShareStatus::Stopped => EitherOf3::B(()),
        _ => EitherOf3::C(view! {
            <button
                type="button"
                class="btn btn-small"
                aria-label=format!("Stop sharing with {account_id}")
                on:click={
                    let account_id = account_id.clone();
                    move |_| ask_stop.run(account_id.clone())
                }
            >
                "Stop sharing"
            </button>
        }),
    };
    view! {
        <tr>
            <th scope="row" class="mono">{share.account_id.clone()}</th>
            <td><ShareStatusBadge status=share.status /></td>
            <td>
                <time datetime=format_rfc3339(share.updated_at_ms)>{format_timestamp(share.updated_at_ms)}</time>
            </td>
            <td>
                <div class="row-actions">{action}</div>
            </td>
        </tr>
    }
}
