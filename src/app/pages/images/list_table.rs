//! The Image List's table: its rows (with live status and upload controls), sortable
//! headers and pagination.

use std::collections::BTreeMap;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::components::{A, Form};

use super::list::submit_on_change;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::selection::{
    Selection, all_selected, row_selected, toggle_all, toggle_row,
};
use crate::app::components::status_badge::StatusBadge;
use crate::app::components::upload_controls::{
    UploadActions, UploadControls, UploadProgressBar, UploadTarget,
};
use crate::domain::image::{ImageStatus, ImageSummary};
use crate::domain::list_query::{ImagePage, ListQuery, Ownership, PAGE_SIZES, SortColumn};
use crate::domain::os_catalogue;
use crate::domain::units::{format_image_size, format_rfc3339, format_timestamp};
use crate::domain::validation::with_thousands;

#[component]
pub(super) fn ImageTable(
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
                        <p class="hint">
                            "Deprecated and hidden images are left out of this view: "
                            <a href="/images?deprecated=include&hidden=include">"show them too"</a>
                            "."
                        </p>
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
    let total = PageTotal {
        label: page.total_label(),
        one: page.total == 1 && !page.more,
        more: page.more,
        has_next: page.has_next(),
        page_count: page.page_count(),
    };
    // A bounded total offers the exact count, which takes longer for a broad search.
    let count_all_href = page.more.then(|| {
        format!(
            "/images?{}",
            ListQuery {
                count_all: true,
                ..query.clone()
            }
            .to_query_string()
        )
    });

    Either::Right(view! {
        <section class="card table-card" aria-labelledby="image-table-title">
            <div class="table-toolbar">
                <div class="table-heading">
                    <h2 id="image-table-title" class="table-title">
                        "Images " <span class="count">{format!("(Total {})", total.label)}</span>
                    </h2>
                    {count_all_href.map(|href| view! {
                        <a href=href class="count-all">"Count all matches"</a>
                    })}
                </div>
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
                            <th scope="col">"Encrypted"</th>
                            <SortHeader column=SortColumn::Size query=query.clone() />
                            <SortHeader column=SortColumn::Created query=query.clone() />
                        </tr>
                    </thead>
                    <tbody>
                        {page.images.into_iter().map(|image| view! { <ImageRow image selection upload_actions /> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <Pagination query first last total />
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

/// What the pagination says of the total.
struct PageTotal {
    /// "12" or "more than 10,000".
    label: String,
    one: bool,
    /// The total is a bound: the last page is not known.
    more: bool,
    has_next: bool,
    page_count: u32,
}

#[component]
fn Pagination(query: ListQuery, first: u64, last: u64, total: PageTotal) -> impl IntoView {
    let page_count = total.page_count;
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
    // Past a bounded total the last page is not known: the pages end in a gap.
    if !total.more && pages.last() != Some(&page_count) {
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
    if total.more {
        items.push(view! { <li class="gap" aria-hidden="true">"…"</li> }.into_any());
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
                    total.label,
                    if total.one { "image" } else { "images" }
                )}
            </p>
            <Form method="GET" action="/images" attr:class="per-page">
                <label for="per-page">"Rows per page"</label>
                <select id="per-page" name="per_page" on:change=submit_on_change>{per_page_options}</select>
                <input type="hidden" name="q" value=hidden.search.clone() />
                <input type="hidden" name="status" value=hidden.status.map(|s| s.as_str()).unwrap_or_default() />
                <input type="hidden" name="family" value=hidden.os_family.map(|f| f.as_str()).unwrap_or_default() />
                <input type="hidden" name="os" value=hidden.os_platform.map(|o| o.as_str()).unwrap_or_default() />
                <input type="hidden" name="visibility" value=hidden.visibility.map(|v| v.as_str()).unwrap_or_default() />
                <input type="hidden" name="tag_key" value=hidden.tag_key.clone() />
                <input type="hidden" name="tag_value" value=hidden.tag_value.clone() />
                <input type="hidden" name="owner" value=hidden.owner.as_str() />
                {hidden.count_all.then(|| view! { <input type="hidden" name="count" value="all" /> })}
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
                        {if total.has_next {
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
                // A plain link: the router still handles the click, without a reactive
                // "current page" check per row.
                <a href=href>{image.name}</a>
                {image.protected.then(|| view! { <span class="tag" title="Protected from deletion">"Protected"</span> })}
                {shared_by.map(|owner| view! {
                    <span class="tag tag-shared" title="Shared with this account; view and download only">
                        {format!("Shared by {owner}")}
                    </span>
                })}
            </th>
            <td class:muted=image.os.is_none()>{os_catalogue::os_label(image.os.as_ref())}</td>
            <td class="status-cell">
                <StatusBadge status=image.status />
                {image.deprecated.then(|| view! { <span class="tag" title="Deprecated: it still works; default lists leave it out">"Deprecated"</span> })}
                {image.hidden.then(|| view! { <span class="tag" title="Hidden (os_hidden): default lists leave it out">"Hidden"</span> })}
                {image.progress.map(|progress| match &upload {
                    Some(target) => Either::Left(view! {
                        <UploadProgressBar image_id=target.image_id.clone() server=progress label=format!("Upload progress of {name}") />
                    }),
                    None => Either::Right(view! {
                        <ProgressBar
                            progress
                            label=if image.status == ImageStatus::Converting {
                                format!("Conversion progress of {name}")
                            } else {
                                format!("Import progress of {name}")
                            }
                        />
                    }),
                })}
                {upload.clone().map(|target| view! { <UploadControls actions=upload_actions target /> })}
                {image.api_wait.map(|wait| view! {
                    <p class="muted api-wait">
                        {match wait {
                            crate::domain::image::ApiWait::Data => "Waiting for data from the image API",
                            crate::domain::image::ApiWait::Import => "Data staged; waiting for an import",
                        }}
                    </p>
                })}
                {(image.status == ImageStatus::Failed)
                    .then(|| image.failure_reason.clone())
                    .flatten()
                    .map(|reason| view! { <p class="failure-reason">{reason}</p> })}
            </td>
            <td>{image.visibility.label()}</td>
            <td class:muted=!image.encrypted>
                {if image.encrypted { "Yes" } else { "No" }}
            </td>
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
