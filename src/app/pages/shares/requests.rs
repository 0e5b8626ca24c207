//! Image Share Request List (`/images/share-requests`): images other accounts share with this
//! one, waiting for an answer. Approve or Reject each, or several at once.

use std::collections::BTreeMap;

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::app::components::batch_summary::{BatchSummary, FollowUp};
use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::pager::NewerOlderPager;
use crate::app::components::selection::{
    Selection, all_selected, new_selection, row_selected, selected_ids, toggle_all, toggle_row,
};
use crate::app::layout::console_layout::ShareRequestsBadge;
use crate::app::pages::page_number;
use crate::domain::image::BatchOutcome;
use crate::domain::os_catalogue;
use crate::domain::share::{ShareRequestPage, SharedImage};
use crate::domain::units::{format_image_size, format_rfc3339, format_timestamp};
use crate::domain::validation::with_thousands;
use crate::server_fns::error::AppError;
use crate::server_fns::shares::{ApproveShares, RejectShares, list_share_requests};

#[component]
pub fn ShareRequestListPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || page_number(&query.read());
    let approve = ServerAction::<ApproveShares>::new();
    let reject = ServerAction::<RejectShares>::new();
    let requests = Resource::new(
        move || (page(), approve.version().get(), reject.version().get()),
        |(page, _, _)| list_share_requests(page),
    );
    let selection = new_selection();
    // The last answer, whichever button it came from.
    let outcome = RwSignal::new(None::<(&'static str, Result<BatchOutcome, AppError>)>);
    Effect::new(move |_| {
        if let Some(result) = approve.value().get() {
            outcome.set(Some(("Approved", result)));
            selection.set(BTreeMap::new());
            ShareRequestsBadge::refresh();
        }
    });
    Effect::new(move |_| {
        if let Some(result) = reject.value().get() {
            outcome.set(Some(("Rejected", result)));
            selection.set(BTreeMap::new());
            ShareRequestsBadge::refresh();
        }
    });

    view! {
        <Title text="Image Share Request List" />
        <Breadcrumb current="Image Share Request List" />
        <div class="page-header">
            <div>
                <h1>"Image Share Request List"</h1>
                <p class="lede">
                    "Images other accounts share with this account. Approve one to add it to your Image List, where you can view and download it; Reject one you do not want."
                </p>
            </div>
            <A href="/images/get-share" attr:class="btn">"Get Image Share"</A>
        </div>
        {move || outcome.get().map(|(verb, result)| match result {
            Err(error) => Either::Left(view! { <ErrorNotice error /> }),
            Ok(result) => Either::Right(view! { <DecisionSummary verb result /> }),
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading requests…"</p> }>
            {move || Suspend::new(async move {
                match requests.await {
                    Err(error) => EitherOf3::A(view! { <ErrorNotice error /> }),
                    Ok(page) if page.total == 0 => EitherOf3::B(view! {
                        <section class="empty-state card" aria-labelledby="empty-title">
                            <h2 id="empty-title">"No share requests"</h2>
                            <p>
                                "When another account shares an image with this one, it waits here for your answer. If its owner gave you the image's Resource ID, you can also look it up."
                            </p>
                            <A href="/images/get-share" attr:class="btn">"Get Image Share"</A>
                        </section>
                    }),
                    Ok(page) => EitherOf3::C(view! {
                        <RequestTable page selection approve reject />
                    }),
                }
            })}
        </Transition>
    }
}

/// What the last Approve or Reject did; after an Approve, a link to the approved images.
#[component]
pub fn DecisionSummary(verb: &'static str, result: BatchOutcome) -> impl IntoView {
    let follow_up = (verb == "Approved").then_some(FollowUp {
        href: "/images?owner=shared",
        one: "See it in the Image List",
        many: "See them in the Image List",
    });
    view! { <BatchSummary verb result follow_up=follow_up /> }
}

#[component]
fn RequestTable(
    page: ShareRequestPage,
    selection: Selection,
    approve: ServerAction<ApproveShares>,
    reject: ServerAction<RejectShares>,
) -> impl IntoView {
    let pages = page.total.div_ceil(u64::from(page.per_page.max(1))).max(1);
    let rows: Vec<(String, String)> = page
        .requests
        .iter()
        .map(|r| (r.image_id.clone(), r.image_name.clone()))
        .collect();
    let all_selected = all_selected(selection, rows.clone());
    let toggle_all = toggle_all(selection, rows);
    let busy = move || approve.pending().get() || reject.pending().get();
    let link = |p: u32| format!("/images/share-requests?page={p}");
    let newer = (page.page > 1).then(|| link(page.page - 1));
    let older = (u64::from(page.page) < pages).then(|| link(page.page + 1));
    view! {
        <section class="card table-card" aria-labelledby="requests-title">
            <div class="table-toolbar">
                <h2 id="requests-title" class="table-title">
                    "Pending requests " <span class="count">{format!("(Total {})", with_thousands(page.total))}</span>
                </h2>
                <div class="actions">
                    <span class="selected-count" aria-live="polite">
                        {move || match selection.with(BTreeMap::len) {
                            0 => String::new(),
                            n => format!("{n} selected"),
                        }}
                    </span>
                    <button
                        type="button"
                        class="btn btn-primary"
                        disabled=move || selection.with(BTreeMap::is_empty) || busy()
                        on:click=move |_| {
                            approve.dispatch(ApproveShares { ids: selected_ids(selection) });
                        }
                    >
                        "Approve selected"
                    </button>
                    <button
                        type="button"
                        class="btn"
                        disabled=move || selection.with(BTreeMap::is_empty) || busy()
                        on:click=move |_| {
                            reject.dispatch(RejectShares { ids: selected_ids(selection) });
                        }
                    >
                        "Reject selected"
                    </button>
                </div>
            </div>
            <div class="table-scroll">
                <table class="data-table">
                    <thead>
                        <tr>
                            <th scope="col" class="check-cell">
                                <input
                                    type="checkbox"
                                    aria-label="Select all requests on this page"
                                    prop:checked=all_selected
                                    on:change=toggle_all
                                />
                            </th>
                            <th scope="col">"Image name"</th>
                            <th scope="col">"Owner Account ID"</th>
                            <th scope="col" class="num">"Size"</th>
                            <th scope="col">"OS type"</th>
                            <th scope="col">"Request time"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {page.requests.into_iter().map(|request| view! { <RequestRow request selection approve reject /> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <NewerOlderPager summary=format!("Page {} of {pages}", page.page) newer older label="Request pages" />
        </section>
    }
}

#[component]
fn RequestRow(
    request: SharedImage,
    selection: Selection,
    approve: ServerAction<ApproveShares>,
    reject: ServerAction<RejectShares>,
) -> impl IntoView {
    let SharedImage {
        image_id,
        image_name,
        owner_account_id,
        size_bytes,
        os,
        requested_at_ms,
        ..
    } = request;
    let checked = row_selected(selection, image_id.clone());
    let toggle = toggle_row(selection, image_id.clone(), image_name.clone());
    let busy = move || approve.pending().get() || reject.pending().get();
    let on_approve = {
        let id = image_id.clone();
        move |_| {
            approve.dispatch(ApproveShares {
                ids: vec![id.clone()],
            });
        }
    };
    let on_reject = {
        let id = image_id.clone();
        move |_| {
            reject.dispatch(RejectShares {
                ids: vec![id.clone()],
            });
        }
    };
    view! {
        <tr class:selected=checked>
            <td class="check-cell">
                <input type="checkbox" aria-label=format!("Select {image_name}") prop:checked=checked on:change=toggle />
            </td>
            <th scope="row" class="name-cell">
                {image_name.clone()}
                <span class="muted mono small-id">{image_id.clone()}</span>
            </th>
            <td class="mono">{owner_account_id}</td>
            <td class="num">{size_bytes.map(format_image_size).unwrap_or_else(|| "—".into())}</td>
            <td>{os_catalogue::os_label(os.as_ref())}</td>
            <td><time datetime=format_rfc3339(requested_at_ms)>{format_timestamp(requested_at_ms)}</time></td>
            <td>
                <div class="row-actions">
                    <button
                        type="button"
                        class="btn btn-small btn-primary"
                        aria-label=format!("Approve {image_name}")
                        disabled=busy
                        on:click=on_approve
                    >
                        "Approve"
                    </button>
                    <button
                        type="button"
                        class="btn btn-small"
                        aria-label=format!("Reject {image_name}")
                        disabled=busy
                        on:click=on_reject
                    >
                        "Reject"
                    </button>
                </div>
            </td>
        </tr>
    }
}
