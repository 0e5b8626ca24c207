//! Get Image Share (`/images/get-share?image_id=…`): look up an image shared with this account
//! by the Resource ID its owner passed on, and approve it from there.

use leptos::either::{Either, EitherOf4};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::ShareStatusBadge;
use super::requests::DecisionSummary;
use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField};
use crate::app::layout::console_layout::ShareRequestsBadge;
use crate::domain::os_catalogue;
use crate::domain::share::{ImageResourceId, ShareStatus, SharedImage, field};
use crate::domain::units::{format_image_size, format_rfc3339, format_timestamp};
use crate::server_fns::error::AppError;
use crate::server_fns::shares::{ApproveShares, RejectShares, find_shared_image};

#[component]
pub fn GetImageSharePage() -> impl IntoView {
    let query = use_query_map();
    let asked = move || query.read().get(field::IMAGE_ID).unwrap_or_default();
    let approve = ServerAction::<ApproveShares>::new();
    let reject = ServerAction::<RejectShares>::new();
    let found = Resource::new(
        move || (asked(), approve.version().get(), reject.version().get()),
        |(id, _, _)| async move {
            if id.trim().is_empty() {
                None
            } else {
                Some(find_shared_image(id).await)
            }
        },
    );
    let initial = query
        .read_untracked()
        .get(field::IMAGE_ID)
        .unwrap_or_default();
    let resource_id = FieldState::new("lookup", field::IMAGE_ID, &initial);
    // The server's word on the ID typed goes under the field.
    Effect::new(move |_| {
        let message = match found.get().flatten() {
            Some(Err(AppError::Invalid(errors))) => errors.first().map(|e| e.message.clone()),
            _ => None,
        };
        resource_id.server_error.set(message);
    });
    let outcome = RwSignal::new(None::<(&'static str, Result<_, AppError>)>);
    Effect::new(move |_| {
        if let Some(result) = approve.value().get() {
            outcome.set(Some(("Approved", result)));
            ShareRequestsBadge::refresh();
        }
    });
    Effect::new(move |_| {
        if let Some(result) = reject.value().get() {
            outcome.set(Some(("Rejected", result)));
            ShareRequestsBadge::refresh();
        }
    });

    view! {
        <Title text="Get Image Share" />
        <Breadcrumb current="Get Image Share" />
        <div class="page-header">
            <div>
                <h1>"Get Image Share"</h1>
                <p class="lede">
                    "Enter the Resource ID of an image another account shares with this one (its owner sees it on Image Details), then approve it to add it to your Image List."
                </p>
            </div>
            <A href="/images/share-requests" attr:class="btn">"Image Share Request List"</A>
        </div>
        <section class="card form-section narrow-wide" aria-labelledby="lookup-title">
            <h2 id="lookup-title">"Receive Image Share"</h2>
            <Form method="GET" action="/images/get-share" on:submit=move |_| resource_id.touch()>
                <TextField
                    label="Resource ID"
                    field=resource_id
                    error=resource_id.message(ImageResourceId::parse)
                    hint="Its owner finds it on the image's Details page."
                    autocomplete="off"
                    required=true
                />
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary">"Look up"</button>
                </div>
            </Form>
        </section>
        {move || outcome.get().map(|(verb, result)| match result {
            Err(error) => Either::Left(view! { <ErrorNotice error /> }),
            Ok(result) => Either::Right(view! { <DecisionSummary verb result /> }),
        })}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match found.await {
                    None => EitherOf4::A(()),
                    // Shown under the field.
                    Some(Err(AppError::Invalid(_))) => EitherOf4::B(()),
                    Some(Err(error)) => EitherOf4::C(view! { <ErrorNotice error /> }),
                    Some(Ok(image)) => EitherOf4::D(view! { <FoundImage image approve reject /> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn FoundImage(
    image: SharedImage,
    approve: ServerAction<ApproveShares>,
    reject: ServerAction<RejectShares>,
) -> impl IntoView {
    let busy = move || approve.pending().get() || reject.pending().get();
    let status = image.status;
    let (approve_id, reject_id) = (image.image_id.clone(), image.image_id.clone());
    let details_href = format!("/images/{}", image.image_id);
    let hint = match status {
        ShareStatus::Pending => "Waiting for your answer.",
        ShareStatus::Accepted => "Approved: the image is in your Image List.",
        ShareStatus::Rejected => {
            "You rejected it. You can still approve it while its owner shares it."
        }
        ShareStatus::Stopped => "",
    };
    view! {
        <section class="card narrow-wide" aria-labelledby="found-title">
            <div class="section-header">
                <h2 id="found-title">{image.image_name.clone()}</h2>
                <ShareStatusBadge status />
            </div>
            <p class="hint">{hint}</p>
            <dl class="info-list">
                <dt>"Resource ID"</dt>
                <dd class="mono break">{image.image_id.clone()}</dd>
                <dt>"Owner Account ID"</dt>
                <dd class="mono">{image.owner_account_id.clone()}</dd>
                <dt>"Size"</dt>
                <dd>{image.size_bytes.map(format_image_size).unwrap_or_else(|| "—".into())}</dd>
                <dt>"OS type"</dt>
                <dd>{os_catalogue::os_label(image.os.as_ref())}</dd>
                <dt>"Creation time"</dt>
                <dd><time datetime=format_rfc3339(image.image_created_at_ms)>{format_timestamp(image.image_created_at_ms)}</time></dd>
                <dt>"Shared on"</dt>
                <dd><time datetime=format_rfc3339(image.requested_at_ms)>{format_timestamp(image.requested_at_ms)}</time></dd>
            </dl>
            <div class="actions">
                {status.can_approve().then(|| view! {
                    <button
                        type="button"
                        class="btn btn-primary"
                        disabled=busy
                        on:click=move |_| {
                            approve.dispatch(ApproveShares { ids: vec![approve_id.clone()] });
                        }
                    >
                        "Approve"
                    </button>
                })}
                {(status == ShareStatus::Pending).then(|| view! {
                    <button
                        type="button"
                        class="btn"
                        disabled=busy
                        on:click=move |_| {
                            reject.dispatch(RejectShares { ids: vec![reject_id.clone()] });
                        }
                    >
                        "Reject"
                    </button>
                })}
                {(status == ShareStatus::Accepted).then(|| view! {
                    <A href=details_href attr:class="btn">"Open Image Details"</A>
                })}
            </div>
        </section>
    }
}
