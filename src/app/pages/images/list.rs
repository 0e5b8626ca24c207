//! Image List: every image of the account, with live status while imports run.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::refresh_while;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::status_badge::StatusBadge;
use crate::domain::image::{ImageStatus, ImageSummary};
use crate::domain::units::{format_image_size, format_rfc3339, format_timestamp};
use crate::server_fns::images::list_images;

#[component]
pub fn ImageListPage() -> impl IntoView {
    let images = Resource::new(|| (), |_| list_images());
    let in_progress = Signal::derive(move || {
        images
            .get()
            .and_then(Result::ok)
            .is_some_and(|list| list.iter().any(|i| i.status.is_in_progress()))
    });
    refresh_while(in_progress, move || images.refetch());

    view! {
        <Title text="Image List" />
        <div class="page-header">
            <div>
                <h1>"Image List"</h1>
                <p class="lede">"Images of this account. Import an image from a URL with Create Image."</p>
            </div>
            <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading images…"</p> }>
            {move || Suspend::new(async move {
                match images.await {
                    Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                    Ok(list) => Either::Right(view! { <ImageTable images=list /> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn ImageTable(images: Vec<ImageSummary>) -> impl IntoView {
    if images.is_empty() {
        return Either::Left(view! {
            <section class="empty-state card" aria-labelledby="empty-title">
                <h2 id="empty-title">"No images yet"</h2>
                <p>
                    "Bring in a virtual-machine image from a URL. It will appear here as Queued, then Importing, then Active."
                </p>
                <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
            </section>
        });
    }
    let total = images.len();
    Either::Right(view! {
        <section class="card table-card" aria-labelledby="image-table-title">
            <div class="table-toolbar">
                <h2 id="image-table-title" class="table-title">
                    "Images " <span class="count">{format!("(Total {total})")}</span>
                </h2>
            </div>
            <div class="table-scroll">
                <table class="data-table">
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"OS type"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Visibility"</th>
                            <th scope="col" class="num">"Size"</th>
                            <th scope="col">"Created"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {images.into_iter().map(|image| view! { <ImageRow image /> }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    })
}

#[component]
fn ImageRow(image: ImageSummary) -> impl IntoView {
    let href = format!("/images/{}", image.id);
    let name = image.name.clone();
    let size = image
        .size_bytes
        .map(|b| (format_image_size(b), format!("{b} bytes")));
    view! {
        <tr>
            <th scope="row" class="name-cell">
                <A href=href>{image.name}</A>
                {image.protected.then(|| view! { <span class="tag" title="Protected from deletion">"Protected"</span> })}
            </th>
            <td>{image.os_type.label()}</td>
            <td class="status-cell">
                <StatusBadge status=image.status />
                {image.progress.map(|progress| view! {
                    <ProgressBar progress label=format!("Import progress of {name}") />
                })}
                {(image.status == ImageStatus::Failed)
                    .then(|| image.failure_reason.clone())
                    .flatten()
                    .map(|reason| view! { <p class="failure-reason">{reason}</p> })}
            </td>
            <td>{image.visibility.label()}</td>
            <td class="num">
                {match size {
                    Some((shown, exact)) => Either::Left(view! { <span title=exact>{shown}</span> }),
                    None => Either::Right(view! { <span class="muted" title="Known once the import finishes">"—"</span> }),
                }}
            </td>
            <td>
                <time datetime=format_rfc3339(image.created_at_ms)>{format_timestamp(image.created_at_ms)}</time>
            </td>
        </tr>
    }
}
