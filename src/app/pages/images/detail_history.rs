//! The Work History tab: every change to the image, newest first, a page at a time.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::pager::NewerOlderPager;
use crate::app::pages::page_number;
use crate::domain::history::{HistoryEntry, HistoryPage, WorkResult};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::server_fns::images::get_image_history;

#[component]
pub fn WorkHistoryTab(image_id: String) -> impl IntoView {
    let query = use_query_map();
    let page = move || page_number(&query.read());
    let history = Resource::new(
        {
            let image_id = image_id.clone();
            move || (image_id.clone(), page())
        },
        |(id, page)| get_image_history(id, page),
    );
    view! {
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"Work History"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading history…"</p> }>
                {
                    let image_id = image_id.clone();
                    move || {
                        let image_id = image_id.clone();
                        Suspend::new(async move {
                            match history.await {
                                Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                                Ok(page) => Either::Right(view! {
                                    <HistoryTable page page_href=format!("/images/{image_id}?tab=history&page=") show_resource=false />
                                }),
                            }
                        })
                    }
                }
            </Transition>
        </section>
    }
}

/// A page of Work History entries with Newer/Older links (`page_href` + the page number).
/// `show_resource` adds the image each entry is about, for the account's Work History.
#[component]
pub fn HistoryTable(page: HistoryPage, page_href: String, show_resource: bool) -> impl IntoView {
    let pages = page.total.div_ceil(u64::from(page.per_page.max(1))).max(1);
    let link = |p: u32| format!("{page_href}{p}");
    let newer = (page.page > 1).then(|| link(page.page - 1));
    let older = (u64::from(page.page) < pages).then(|| link(page.page + 1));
    view! {
        <div class="table-scroll">
            <table class="data-table compact">
                <thead>
                    <tr>
                        <th scope="col">"Work date/time"</th>
                        {show_resource.then(|| view! {
                            <th scope="col">"Resource name"</th>
                            <th scope="col">"Resource ID"</th>
                        })}
                        <th scope="col">"Event topic"</th>
                        <th scope="col">"Work details"</th>
                        <th scope="col">"Work result"</th>
                        <th scope="col">"Worker"</th>
                    </tr>
                </thead>
                <tbody>{page.entries.into_iter().map(|entry| view! { <HistoryRow entry show_resource /> }).collect_view()}</tbody>
            </table>
        </div>
        <NewerOlderPager
            summary=format!("Page {} of {pages} · {} entries", page.page, page.total)
            newer
            older
            label="Work History pages"
        />
    }
}

#[component]
fn HistoryRow(entry: HistoryEntry, show_resource: bool) -> impl IntoView {
    let resource = show_resource.then(|| {
        view! {
            <td>{entry.image_name.clone()}</td>
            <td class="mono break">{entry.image_id.clone()}</td>
        }
    });
    let details = if entry.changes.is_empty() {
        Either::Left(if entry.message.is_empty() {
            "—".to_owned()
        } else {
            entry.message.clone()
        })
    } else {
        Either::Right(view! {
            <ul class="changes">
                {entry.changes.into_iter().map(|c| view! {
                    <li>
                        <strong>{c.field}</strong>": "
                        <span class="old">{c.old}</span>
                        " → "
                        <span class="new">{c.new}</span>
                    </li>
                }).collect_view()}
            </ul>
        })
    };
    let failed = entry.result == WorkResult::Failed;
    view! {
        <tr>
            <td><time datetime=format_rfc3339(entry.at_ms)>{format_timestamp(entry.at_ms)}</time></td>
            {resource}
            <td>{entry.topic.label()}</td>
            <td class="details-cell">{details}</td>
            <td><span class="result" class:result-failed=failed>{entry.result.label()}</span></td>
            <td>{entry.worker}</td>
        </tr>
    }
}
