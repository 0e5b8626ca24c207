//! Image Details: every attribute of one image, Protected, and Delete.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::refresh_while;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::status_badge::StatusBadge;
use crate::domain::image::{ImageDetail, ImageStatus, delete_blocked_reason};
use crate::domain::units::{
    format_bytes, format_image_size, format_money, format_rfc3339, format_timestamp, monthly_cost,
};
use crate::server_fns::images::{DeleteImage, SetImageProtected, get_console_settings, get_image};

#[component]
pub fn ImageDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let set_protected = ServerAction::<SetImageProtected>::new();
    let image = Resource::new(
        move || (id(), set_protected.version().get()),
        |(id, _)| get_image(id),
    );
    let in_progress = Signal::derive(move || {
        image
            .get()
            .and_then(Result::ok)
            .is_some_and(|i| i.status.is_in_progress())
    });
    refresh_while(in_progress, move || image.refetch());

    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <A href="/images">"Image List"</A>
            <span aria-hidden="true">" / "</span>
            <span aria-current="page">"Image Details"</span>
        </nav>
        <Transition fallback=|| view! { <p class="loading">"Loading image…"</p> }>
            {move || Suspend::new(async move {
                match image.await {
                    Err(error) => Either::Left(view! {
                        <Title text="Image Details" />
                        <h1>"Image Details"</h1>
                        <ErrorNotice error />
                        <A href="/images" attr:class="btn">"Back to the Image List"</A>
                    }),
                    Ok(image) => Either::Right(view! { <ImageDetailView image set_protected /> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn ImageDetailView(
    image: ImageDetail,
    set_protected: ServerAction<SetImageProtected>,
) -> impl IntoView {
    let delete = ServerAction::<DeleteImage>::new();
    let confirm_open = RwSignal::new(false);
    let id = image.id.clone();
    let blocked = delete_blocked_reason(image.protected);
    let delete_error = move || match delete.value().get() {
        Some(Err(error)) => Some(error),
        _ => None,
    };
    let on_confirm = {
        let id = id.clone();
        Callback::new(move |()| {
            delete.dispatch(DeleteImage { id: id.clone() });
        })
    };
    Effect::new(move |_| {
        if delete_error().is_some() {
            confirm_open.set(false);
        }
    });
    let toggle_protected = {
        let id = id.clone();
        let protected = image.protected;
        move |_| {
            set_protected.dispatch(SetImageProtected {
                id: id.clone(),
                protected: !protected,
            });
        }
    };
    let protect_error = move || match set_protected.value().get() {
        Some(Err(error)) => Some(error),
        _ => None,
    };
    let name = image.name.clone();

    view! {
        <Title text=format!("{} · Image Details", image.name) />
        <div class="page-header">
            <div>
                <h1 class="title-with-badge">
                    {image.name.clone()}
                    <StatusBadge status=image.status />
                </h1>
                <p class="lede mono">{image.id.clone()}</p>
            </div>
            <div class="actions">
                <button
                    type="button"
                    class="btn"
                    on:click=toggle_protected
                    disabled=move || set_protected.pending().get()
                >
                    {if image.protected { "Turn off Protected" } else { "Turn on Protected" }}
                </button>
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
        </div>
        {blocked.map(|reason| view! {
            <p class="notice" id="delete-blocked">
                <strong>"Delete is unavailable. "</strong>
                {reason}
            </p>
        })}
        {move || delete_error().map(|error| view! { <ErrorNotice error /> })}
        {move || protect_error().map(|error| view! { <ErrorNotice error /> })}
        {image.progress.map(|progress| view! {
            <div class="card import-progress">
                <h2>"Importing"</h2>
                <ProgressBar progress label="Import progress".to_owned() />
            </div>
        })}
        {(image.status == ImageStatus::Failed).then(|| view! {
            <div class="alert alert-error" role="alert">
                <p><strong>"Import failed. "</strong>{image.failure_reason.clone().unwrap_or_default()}</p>
            </div>
        })}
        <nav class="tabs" aria-label="Image sections">
            <span class="tab" aria-current="page">"Details"</span>
        </nav>
        <section class="card" aria-label="Details">
            <DetailList image=image.clone() />
        </section>
        <ConfirmDialog
            open=confirm_open
            title="Delete Image".to_owned()
            confirm_label="Delete"
            pending=delete.pending()
            on_confirm
        >
            <p>
                "Delete the image " <strong>{name}</strong> "? Its file is removed as well. A deleted image cannot be recovered."
            </p>
        </ConfirmDialog>
    }
}

#[component]
fn DetailList(image: ImageDetail) -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_console_settings());
    let size_bytes = image.size_bytes;
    let row = |label: &'static str, value: AnyView| {
        view! {
            <div class="detail-row">
                <dt>{label}</dt>
                <dd>{value}</dd>
            </div>
        }
    };
    let text = |s: String| view! { {s} }.into_any();
    let dash = || view! { <span class="muted">"—"</span> }.into_any();
    let time = |ms: i64| {
        view! { <time datetime=format_rfc3339(ms)>{format_timestamp(ms)}</time> }.into_any()
    };
    let mono = |s: String| view! { <span class="mono break">{s}</span> }.into_any();

    view! {
        <dl class="detail-list">
            {row("Resource ID", mono(image.id.clone()))}
            {row("SRN", mono(image.srn.clone()))}
            {row("Image name", text(image.name.clone()))}
            {row("Status", view! {
                <StatusBadge status=image.status />
                {image.failure_reason.clone().map(|r| view! { <p class="failure-reason">{r}</p> })}
            }.into_any())}
            {row("OS type", text(image.os_type.label().to_owned()))}
            {row("Image Type", text(image.image_type.clone()))}
            {row("Image file URL", image.source_url.clone().map(mono).unwrap_or_else(dash))}
            {row("Image size", match size_bytes {
                Some(bytes) => view! {
                    <span title=format!("{bytes} bytes")>{format_image_size(bytes)}</span>
                    <span class="muted">{format!(" ({bytes} bytes)")}</span>
                }.into_any(),
                None => dash(),
            })}
            {row("Virtual size", image.virtual_size_bytes.map(|b| text(format!("{} ({b} bytes)", format_bytes(b)))).unwrap_or_else(dash))}
            {row("Disk format", image.disk_format.map(|f| text(f.as_str().to_owned())).unwrap_or_else(dash))}
            {row("OS hash algorithm", image.hash_algorithm.clone().map(text).unwrap_or_else(dash))}
            {row("OS hash value", image.hash_value.clone().map(mono).unwrap_or_else(dash))}
            {row("MD5 checksum", image.checksum_md5.clone().map(mono).unwrap_or_else(dash))}
            {row("Minimum Disk", text(format!("{} GB", image.min_disk_gb)))}
            {row("Minimum RAM", text(format!("{} GB", image.min_ram_gb)))}
            {row("Visibility", text(image.visibility.label().to_owned()))}
            {row("Protected", text(if image.protected { "Use".into() } else { "Not used".into() }))}
            {row("Description", if image.description.is_empty() { dash() } else { text(image.description.clone()) })}
            {row("Estimated monthly cost", view! {
                <Transition fallback=|| "…">
                    {move || Suspend::new(async move {
                        settings.await.ok().map(|s| match size_bytes {
                            Some(bytes) => format!(
                                "{} / month",
                                format_money(monthly_cost(bytes, s.price_per_gb_month), &s.currency)
                            ),
                            None => "Known once the import finishes".to_owned(),
                        })
                    })}
                </Transition>
            }.into_any())}
            {row("Creator", text(image.created_by.clone()))}
            {row("Creation time", time(image.created_at_ms))}
            {row("Editor", text(image.updated_by.clone()))}
            {row("Modification time", time(image.updated_at_ms))}
        </dl>
    }
}
