//! Image List: search, filters, sorting and pages kept in the URL; select and Delete many;
//! Export CSV; usage against quotas; live status while imports run.

use std::collections::BTreeMap;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::refresh_while;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::selection::{
    Selection, all_selected, new_selection, row_selected, selected_ids, toggle_all, toggle_row,
};
use crate::app::components::skipped_list::SkippedList;
use crate::app::components::status_badge::StatusBadge;
use crate::app::components::upload_controls::{
    UploadActions, UploadActionsHost, UploadControls, UploadProgressBar, UploadTarget,
};
use crate::domain::image::{AccountUsage, BatchDeleteResult, ImageStatus, ImageSummary};
use crate::domain::image_spec::{OsType, Visibility};
use crate::domain::list_query::{ImagePage, ListQuery, Ownership, PAGE_SIZES, SortColumn};
use crate::domain::units::{format_bytes, format_image_size, format_rfc3339, format_timestamp};
use crate::domain::validation::with_thousands;
use crate::server_fns::images::{DeleteImages, get_account_usage, list_images};

#[component]
pub fn ImageListPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| ListQuery::from_params(|name| params.read().get(name)));
    let delete = ServerAction::<DeleteImages>::new();
    let upload_actions = UploadActions::new();
    let images = Resource::new(
        move || {
            (
                query.get().to_query_string(),
                delete.version().get(),
                upload_actions.version.get(),
            )
        },
        |(qs, _, _)| list_images(qs),
    );
    let usage = Resource::new(move || delete.version().get(), |_| get_account_usage());
    let selection = new_selection();
    // Owned here, not by the table, so a refresh of the rows cannot close the dialog.
    let confirm_open = RwSignal::new(false);
    // A new view starts with nothing selected.
    Effect::new(move |_| {
        query.track();
        selection.set(BTreeMap::new());
    });
    // Refresh while imports run, but not while the Delete dialog asks about the selection.
    let in_progress = Signal::derive(move || {
        !confirm_open.get()
            && !upload_actions.dialog_open()
            && images
                .get()
                .and_then(Result::ok)
                .is_some_and(|page| page.images.iter().any(|i| i.status.is_in_progress()))
    });
    let on_confirm = Callback::new(move |()| {
        delete.dispatch(DeleteImages {
            ids: selected_ids(selection),
        });
    });
    // Close the dialog and clear the selection once the server has answered.
    Effect::new(move |_| {
        if delete.value().with(Option::is_some) {
            confirm_open.set(false);
            selection.set(BTreeMap::new());
        }
    });
    refresh_while(in_progress, move || {
        images.refetch();
        usage.refetch();
    });

    view! {
        <Title text="Image List" />
        <div class="page-header">
            <div>
                <h1>"Image List"</h1>
                <p class="lede">"Images of this account and images other accounts share with it. Import one from a URL or upload a file from your computer with Create Image."</p>
            </div>
            <div class="actions header-actions">
                <MoreMenu />
                <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
            </div>
        </div>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move { usage.await.ok().map(|u| view! { <UsageSummary usage=u /> }) })}
        </Transition>
        <FilterBar query />
        <BatchDeleteOutcome delete />
        <UploadActionsHost actions=upload_actions />
        <Transition fallback=|| view! { <p class="loading">"Loading images…"</p> }>
            {move || Suspend::new(async move {
                match images.await {
                    Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                    Ok(page) => Either::Right(view! { <ImageTable page query=query.get_untracked() selection confirm_open upload_actions /> }),
                }
            })}
        </Transition>
        <ConfirmDialog
            open=confirm_open
            title="Delete Images".to_owned()
            confirm_label="Delete"
            pending=delete.pending()
            on_confirm
        >
            <p>"Delete these images? Their files are removed as well; deleted images cannot be recovered. Protected images are skipped."</p>
            <ul class="dialog-list">
                {move || {
                    let mut names: Vec<String> = selection.get().into_values().collect();
                    names.sort();
                    names.into_iter().map(|name| view! { <li>{name}</li> }).collect_view()
                }}
            </ul>
        </ConfirmDialog>
    }
}

/// More: the sharing pages that start from the Image List. A disclosure (`<details>`), so it
/// opens with Enter or Space and works before the page is interactive.
#[component]
fn MoreMenu() -> impl IntoView {
    view! {
        <details class="menu">
            <summary class="btn">"More"</summary>
            <ul class="menu-list">
                <li><a href="/images/share-requests">"Image Share Request List"</a></li>
                <li><a href="/images/get-share">"Get Image Share"</a></li>
                <li><a href="/images/work-history">"Work History"</a></li>
            </ul>
        </details>
    }
}

/// Images and storage used, against the account's quotas.
#[component]
fn UsageSummary(usage: AccountUsage) -> impl IntoView {
    let percent = |used: u64, limit: u64| {
        used.saturating_mul(100)
            .checked_div(limit)
            .map_or(100, |p| p.min(100))
    };
    let images_pct = percent(usage.image_count, usage.image_limit);
    let storage_pct = percent(usage.stored_bytes, usage.storage_limit_bytes);
    view! {
        <section class="usage" aria-label="Usage and quotas">
            <div class="usage-item">
                <span class="usage-label">"Images"</span>
                <span class="usage-value">
                    {format!("{} of {}", with_thousands(usage.image_count), with_thousands(usage.image_limit))}
                </span>
                <meter class="usage-bar" aria-hidden="true" min="0" max="100" value=images_pct.to_string()></meter>
            </div>
            <div class="usage-item">
                <span class="usage-label">"Storage"</span>
                <span class="usage-value">
                    {format!("{} of {}", format_bytes(usage.stored_bytes), format_bytes(usage.storage_limit_bytes))}
                </span>
                <meter class="usage-bar" aria-hidden="true" min="0" max="100" value=storage_pct.to_string()></meter>
            </div>
        </section>
    }
}

/// Submits the form a select belongs to, so a filter applies as soon as it is picked.
fn submit_on_change(event: leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    if let Some(form) = event_target::<web_sys::HtmlSelectElement>(&event).form() {
        let _ = form.request_submit();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}

/// Search and filters: a GET form, so the view lives in the URL (links and Back work).
#[component]
fn FilterBar(query: Memo<ListQuery>) -> impl IntoView {
    let q = move || query.get();
    let option = move |value: &'static str, label: &'static str, current: Option<&'static str>| {
        view! { <option value=value selected=current == Some(value)>{label}</option> }
    };
    view! {
        <Form method="GET" action="/images" attr:class="filter-bar card" attr:role="search" attr:aria-label="Search and filter images">
            <div class="filter-field grow">
                <label for="filter-q">"Search by name"</label>
                <input id="filter-q" type="search" name="q" value=move || q().search placeholder="Part of an image name" />
            </div>
            <div class="filter-field">
                <label for="filter-status">"Status"</label>
                <select id="filter-status" name="status" on:change=submit_on_change>
                    {move || {
                        let current = q().status.map(|s| s.as_str());
                        view! {
                            {option("", "All", current.or(Some("")))}
                            {ImageStatus::ALL.iter().map(|s| option(s.as_str(), s.label(), current)).collect_view()}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-os">"OS type"</label>
                <select id="filter-os" name="os" on:change=submit_on_change>
                    {move || {
                        let current = q().os_type.map(|o| o.as_str());
                        view! {
                            {option("", "All", current.or(Some("")))}
                            {OsType::ALL.iter().map(|o| option(o.as_str(), o.label(), current)).collect_view()}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-visibility">"Visibility"</label>
                <select id="filter-visibility" name="visibility" on:change=submit_on_change>
                    {move || {
                        let current = q().visibility.map(|v| v.as_str());
                        view! {
                            {option("", "All", current.or(Some("")))}
                            {Visibility::ALL.iter().map(|v| option(v.as_str(), v.label(), current)).collect_view()}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-owner">"Owner"</label>
                <select id="filter-owner" name="owner" on:change=submit_on_change>
                    {move || {
                        let current = q().owner;
                        Ownership::ALL
                            .iter()
                            .map(|o| view! { <option value=o.as_str() selected=current == *o>{o.label()}</option> })
                            .collect_view()
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-tag-key">"Tag key"</label>
                <input id="filter-tag-key" type="text" name="tag_key" value=move || q().tag_key />
            </div>
            <div class="filter-field">
                <label for="filter-tag-value">"Tag value"</label>
                <input id="filter-tag-value" type="text" name="tag_value" value=move || q().tag_value />
            </div>
            <input type="hidden" name="sort" value=move || q().sort.as_str() />
            <input type="hidden" name="dir" value=move || q().direction.as_str() />
            <input type="hidden" name="per_page" value=move || q().per_page.to_string() />
            <div class="filter-actions">
                <button type="submit" class="btn btn-primary">"Search"</button>
                {move || q().has_filters().then(|| view! { <a href="/images" class="btn">"Clear filters"</a> })}
            </div>
        </Form>
    }
}

/// What the last batch Delete did.
#[component]
fn BatchDeleteOutcome(delete: ServerAction<DeleteImages>) -> impl IntoView {
    move || {
        delete.value().get().map(|result| match result {
            Err(error) => Either::Left(view! { <ErrorNotice error /> }),
            Ok(result) => Either::Right(view! { <DeleteSummary result /> }),
        })
    }
}

#[component]
fn DeleteSummary(result: BatchDeleteResult) -> impl IntoView {
    let deleted = result.deleted.len();
    let plural = |n: usize| if n == 1 { "image" } else { "images" };
    let all_deleted = result.skipped.is_empty();
    view! {
        <div class="alert" class:alert-success=all_deleted class:alert-warning=!all_deleted role="status">
            <p>
                <strong>{format!("Deleted {deleted} {}.", plural(deleted))}</strong>
                {(!result.skipped.is_empty()).then(|| format!(" {} not deleted:", result.skipped.len()))}
            </p>
            <SkippedList skipped=result.skipped />
        </div>
    }
}

#[component]
fn ImageTable(
    page: ImagePage,
    query: ListQuery,
    selection: Selection,
    confirm_open: RwSignal<bool>,
    upload_actions: UploadActions,
) -> impl IntoView {
    if page.total == 0 {
        return Either::Left(
            if query.owner == Ownership::SharedWithMe
                && !(ListQuery {
                    owner: Ownership::All,
                    ..query.clone()
                })
                .has_filters()
            {
                Either::Left(Either::Left(view! {
                    <section class="empty-state card" aria-labelledby="empty-title">
                        <h2 id="empty-title">"No images shared with this account"</h2>
                        <p>"Images other accounts share with this one appear here once you approve them in the Image Share Request List."</p>
                        <A href="/images/share-requests" attr:class="btn">"Image Share Request List"</A>
                    </section>
                }))
            } else if query.has_filters() {
                Either::Left(Either::Right(view! {
                    <section class="empty-state card" aria-labelledby="empty-title">
                        <h2 id="empty-title">"No images match"</h2>
                        <p>"No image of this account matches the search and filters."</p>
                        <a href="/images" class="btn">"Clear filters"</a>
                    </section>
                }))
            } else {
                Either::Right(view! {
                    <section class="empty-state card" aria-labelledby="empty-title">
                        <h2 id="empty-title">"No images yet"</h2>
                        <p>
                            "Bring in a virtual-machine image from a URL or from a file on your computer. It appears here as Queued and Importing, or Uploading, and then Active."
                        </p>
                        <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
                    </section>
                })
            },
        );
    }
    // Only the account's own images can be selected (for Delete).
    let page_ids: Vec<(String, String)> = page
        .images
        .iter()
        .filter(|i| i.shared_by.is_none())
        .map(|i| (i.id.clone(), i.name.clone()))
        .collect();
    let all_selected = all_selected(selection, page_ids.clone());
    let toggle_all = toggle_all(selection, page_ids.clone());
    let nothing_selectable = page_ids.is_empty();
    let selected_count = move || selection.with(BTreeMap::len);
    let export_href = {
        let mut filters = query.clone();
        filters.page = 1;
        format!("/exports/images.csv?{}", filters.to_query_string())
    };
    let first = query.offset() + 1;
    let last = query.offset() + page.images.len() as u64;
    let total = page.total;
    let page_count = page.page_count();

    Either::Right(view! {
        <section class="card table-card" aria-labelledby="image-table-title">
            <div class="table-toolbar">
                <h2 id="image-table-title" class="table-title">
                    "Images " <span class="count">{format!("(Total {})", with_thousands(total))}</span>
                </h2>
                <div class="actions">
                    <span class="selected-count" aria-live="polite">
                        {move || match selected_count() {
                            0 => String::new(),
                            n => format!("{n} selected"),
                        }}
                    </span>
                    <button
                        type="button"
                        class="btn btn-danger"
                        disabled=move || selected_count() == 0
                        on:click=move |_| confirm_open.set(true)
                    >
                        "Delete"
                    </button>
                    <a class="btn" href=export_href download="">"Export CSV"</a>
                </div>
            </div>
            <div class="table-scroll">
                <table class="data-table">
                    <thead>
                        <tr>
                            <th scope="col" class="check-cell">
                                <input
                                    type="checkbox"
                                    aria-label="Select all images on this page"
                                    disabled=nothing_selectable
                                    prop:checked=all_selected
                                    on:change=toggle_all
                                />
                            </th>
                            <SortHeader column=SortColumn::Name query=query.clone() />
                            <SortHeader column=SortColumn::OsType query=query.clone() />
                            <SortHeader column=SortColumn::Status query=query.clone() />
                            <SortHeader column=SortColumn::Visibility query=query.clone() />
                            <SortHeader column=SortColumn::Size query=query.clone() />
                            <SortHeader column=SortColumn::Created query=query.clone() />
                        </tr>
                    </thead>
                    <tbody>
                        {page.images.into_iter().map(|image| view! { <ImageRow image selection upload_actions /> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <Pagination query first last total page_count />
        </section>
    })
}

/// A column header that sorts by its column; a second click reverses the order.
#[component]
fn SortHeader(column: SortColumn, query: ListQuery) -> impl IntoView {
    let active = query.sort == column;
    let next = ListQuery {
        sort: column,
        direction: if active {
            query.direction.flip()
        } else {
            column.natural_direction()
        },
        page: 1,
        ..query.clone()
    };
    let href = format!("/images?{}", next.to_query_string());
    let aria_sort = match (active, query.direction) {
        (false, _) => "none",
        (true, crate::domain::list_query::SortDirection::Asc) => "ascending",
        (true, crate::domain::list_query::SortDirection::Desc) => "descending",
    };
    let arrow = match aria_sort {
        "ascending" => "▲",
        "descending" => "▼",
        _ => "↕",
    };
    let class = if column == SortColumn::Size {
        "num"
    } else {
        ""
    };
    view! {
        <th scope="col" aria-sort=aria_sort class=class>
            <a href=href class="sort-link">
                {column.label()}
                <span class="sort-arrow" aria-hidden="true">{arrow}</span>
            </a>
        </th>
    }
}

#[component]
fn Pagination(
    query: ListQuery,
    first: u64,
    last: u64,
    total: u64,
    page_count: u32,
) -> impl IntoView {
    let link = |page: u32| {
        format!(
            "/images?{}",
            ListQuery {
                page,
                ..query.clone()
            }
            .to_query_string()
        )
    };
    let current = query.page;
    // A window of pages around the current one, plus the first and last.
    let mut pages: Vec<u32> =
        (current.saturating_sub(2).max(1)..=(current + 2).min(page_count)).collect();
    if pages.first() != Some(&1) {
        pages.insert(0, 1);
    }
    if pages.last() != Some(&page_count) {
        pages.push(page_count);
    }
    let mut items = Vec::new();
    let mut previous = 0;
    for p in pages {
        if p > previous + 1 {
            items.push(view! { <li class="gap" aria-hidden="true">"…"</li> }.into_any());
        }
        previous = p;
        items.push(if p == current {
            view! { <li><span class="page current" aria-current="page">{p}</span></li> }.into_any()
        } else {
            view! { <li><a href=link(p) class="page" aria-label=format!("Page {p}")>{p}</a></li> }
                .into_any()
        });
    }
    let per_page_options = PAGE_SIZES
        .iter()
        .map(|n| {
            let n = *n;
            view! { <option value=n.to_string() selected=n == query.per_page>{n}</option> }
        })
        .collect_view();
    let hidden = ListQuery {
        page: 1,
        ..query.clone()
    };
    view! {
        <div class="pagination">
            <p class="range" aria-live="polite">
                {format!(
                    "{}–{} of {} {}",
                    with_thousands(first),
                    with_thousands(last),
                    with_thousands(total),
                    if total == 1 { "image" } else { "images" }
                )}
            </p>
            <Form method="GET" action="/images" attr:class="per-page">
                <label for="per-page">"Rows per page"</label>
                <select id="per-page" name="per_page" on:change=submit_on_change>{per_page_options}</select>
                <input type="hidden" name="q" value=hidden.search.clone() />
                <input type="hidden" name="status" value=hidden.status.map(|s| s.as_str()).unwrap_or_default() />
                <input type="hidden" name="os" value=hidden.os_type.map(|o| o.as_str()).unwrap_or_default() />
                <input type="hidden" name="visibility" value=hidden.visibility.map(|v| v.as_str()).unwrap_or_default() />
                <input type="hidden" name="tag_key" value=hidden.tag_key.clone() />
                <input type="hidden" name="tag_value" value=hidden.tag_value.clone() />
                <input type="hidden" name="owner" value=hidden.owner.as_str() />
                <input type="hidden" name="sort" value=hidden.sort.as_str() />
                <input type="hidden" name="dir" value=hidden.direction.as_str() />
                <noscript><button type="submit" class="btn">"Apply"</button></noscript>
            </Form>
            <nav aria-label="Pages">
                <ul class="pages">
                    <li>
                        {if current > 1 {
                            Either::Left(view! { <a href=link(current - 1) class="page" rel="prev">"Previous"</a> })
                        } else {
                            Either::Right(view! { <span class="page disabled" aria-disabled="true">"Previous"</span> })
                        }}
                    </li>
                    {items}
                    <li>
                        {if current < page_count {
                            Either::Left(view! { <a href=link(current + 1) class="page" rel="next">"Next"</a> })
                        } else {
                            Either::Right(view! { <span class="page disabled" aria-disabled="true">"Next"</span> })
                        }}
                    </li>
                </ul>
            </nav>
        </div>
    }
}

#[component]
fn ImageRow(
    image: ImageSummary,
    selection: Selection,
    upload_actions: UploadActions,
) -> impl IntoView {
    let upload = UploadTarget::of_image(
        image.status,
        &image.id,
        &image.name,
        image.source_file_name.as_deref(),
        image.progress,
    );
    let href = format!("/images/{}", image.id);
    let name = image.name.clone();
    let size = image
        .size_bytes
        .map(|b| (format_image_size(b), format!("{b} bytes")));
    let id = image.id.clone();
    let checked = row_selected(selection, id.clone());
    let toggle = toggle_row(selection, id.clone(), name.clone());
    let shared_by = image.shared_by.clone();
    let check = match &shared_by {
        Some(owner) => Either::Left(view! {
            <input
                type="checkbox"
                aria-label=format!("Select {name} (shared by account {owner}; only its owner can delete it)")
                disabled=true
            />
        }),
        None => Either::Right(view! {
            <input type="checkbox" aria-label=format!("Select {name}") prop:checked=checked on:change=toggle />
        }),
    };
    view! {
        <tr class:selected=checked>
            <td class="check-cell">{check}</td>
            <th scope="row" class="name-cell">
                <A href=href>{image.name}</A>
                {image.protected.then(|| view! { <span class="tag" title="Protected from deletion">"Protected"</span> })}
                {shared_by.map(|owner| view! {
                    <span class="tag tag-shared" title="Shared with this account; view and download only">
                        {format!("Shared by {owner}")}
                    </span>
                })}
            </th>
            <td>{image.os_type.label()}</td>
            <td class="status-cell">
                <StatusBadge status=image.status />
                {image.progress.map(|progress| match &upload {
                    Some(target) => Either::Left(view! {
                        <UploadProgressBar image_id=target.image_id.clone() server=progress label=format!("Upload progress of {name}") />
                    }),
                    None => Either::Right(view! {
                        <ProgressBar progress label=format!("Import progress of {name}") />
                    }),
                })}
                {upload.clone().map(|target| view! { <UploadControls actions=upload_actions target /> })}
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
