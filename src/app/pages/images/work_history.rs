//! Work History of the account: every event of its images and of the images shared with it,
//! newest first, including those of images it can no longer see.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::detail_history::HistoryTable;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::pages::page_number;
use crate::server_fns::shares::get_account_history;

#[component]
pub fn WorkHistoryPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || page_number(&query.read());
    let history = Resource::new(page, get_account_history);
    view! {
        <Title text="Work History" />
        <div class="page-header">
            <div>
                <h1>"Work History"</h1>
                <p class="lede">
                    "Everything done to this account's images and to the images other accounts share with it, newest first. Entries stay after an image is deleted or a share ends."
                </p>
            </div>
        </div>
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title" class="visually-hidden">"Work History entries"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading history…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                        Ok(page) if page.total == 0 => Either::Right(Either::Left(view! {
                            <p class="muted">"Nothing has happened in this account yet."</p>
                        })),
                        Ok(page) => Either::Right(Either::Right(view! {
                            <HistoryTable page page_href="/images/work-history?page=".to_owned() show_resource=true />
                        })),
                    }
                })}
            </Transition>
        </section>
    }
}
