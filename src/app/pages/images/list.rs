//! Image List: search, filters, sorting and pages kept in the URL; select and Delete many;
//! Export CSV; usage against quotas; live status while imports run.

use std::collections::BTreeMap;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::use_query_map;

use super::list_table::ImageTable;
use super::refresh_while;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::selection::{new_selection, selected_ids};
use crate::app::components::skipped_list::SkippedList;
use crate::app::components::upload_controls::{UploadActions, UploadActionsHost};
use crate::domain::image::{AccountUsage, BatchDeleteResult, ImageStatus};
use crate::domain::image_spec::Visibility;
use crate::domain::list_query::{ListQuery, Ownership};
use crate::domain::os_catalogue::{OsFamily, OsFamilyFilter};
use crate::domain::units::format_bytes;
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
                .is_some_and(|page| page.images.iter().any(|i| i.changes_by_itself()))
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
                <p class="lede">
                    "Images of this account and images other accounts share with it. Import one from a URL or upload a file from your computer with Create Image; the "
                    <A href="/images/guide">"Image guide"</A>
                    " says how to prepare and convert a virtual machine's disk."
                </p>
            </div>
            <div class="actions header-actions">
                <MoreMenu selection />
                <A href="/images/recycle-bin" attr:class="btn">"Recycle Bin"</A>
                <A href="/images/create" attr:class="btn btn-primary">"Create Image"</A>
            </div>
        </div>
        // The placeholder takes the summary's place until it arrives, so nothing below moves.
        <Transition fallback=|| view! { <UsageSummary usage=None /> }>
            {move || Suspend::new(async move { usage.await.ok().map(|u| view! { <UsageSummary usage=Some(u) /> }) })}
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
            <p>"Move these images to the Recycle Bin? You can restore them from there until the account's retention passes; then they are destroyed with their files. Their shares end now. Images that are Protected, in use or still importing are skipped, each with the reason."</p>
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

/// More: the sharing pages that start from the Image List, and Replicate for the one image
/// selected. A disclosure (`<details>`), so it opens with Enter or Space and works before
/// the page is interactive.
#[component]
fn MoreMenu(selection: RwSignal<BTreeMap<String, String>>) -> impl IntoView {
    let replicate = move || {
        let chosen = selection.with(|s| (s.len() == 1).then(|| s.keys().next().cloned()).flatten());
        match chosen {
            Some(id) => Either::Left(view! {
                <li><a href=format!("/images/{id}?action=replicate")>"Replicate selected image"</a></li>
            }),
            None => Either::Right(view! {
                <li><span class="menu-note">"Replicate: select one image first"</span></li>
            }),
        }
    };
    view! {
        <details class="menu">
            <summary class="btn">"More"</summary>
            <ul class="menu-list">
                {replicate}
                <li><a href="/images/share-requests">"Image Share Request List"</a></li>
                <li><a href="/images/get-share">"Get Image Share"</a></li>
                <li><a href="/images/work-history">"Work History"</a></li>
                <li><a href="/images/account-settings">"Account settings"</a></li>
            </ul>
        </details>
    }
}

/// Images and storage used, against the account's quotas; `None` while they load.
#[component]
fn UsageSummary(usage: Option<AccountUsage>) -> impl IntoView {
    let percent = |used: u64, limit: u64| {
        used.saturating_mul(100)
            .checked_div(limit)
            .map_or(100, |p| p.min(100))
    };
    let loading = usage.is_none();
    let binned = usage
        .as_ref()
        .filter(|u| u.recycle_bin_images > 0)
        .map(|u| {
            format!(
                "{} {}, {}",
                with_thousands(u.recycle_bin_images),
                if u.recycle_bin_images == 1 {
                    "image"
                } else {
                    "images"
                },
                format_bytes(u.recycle_bin_bytes)
            )
        });
    let (images, images_pct, storage, storage_pct) = match &usage {
        Some(u) => (
            format!(
                "{} of {}",
                with_thousands(u.image_count),
                with_thousands(u.image_limit)
            ),
            percent(u.image_count, u.image_limit),
            format!(
                "{} of {}",
                format_bytes(u.stored_bytes),
                format_bytes(u.storage_limit_bytes)
            ),
            percent(u.stored_bytes, u.storage_limit_bytes),
        ),
        None => ("…".to_owned(), 0, "…".to_owned(), 0),
    };
    view! {
        <section class="usage" aria-label="Usage and quotas" aria-busy=loading.then_some("true")>
            <div class="usage-item">
                <span class="usage-label">"Images"</span>
                <span class="usage-value">{images}</span>
                <meter class="usage-bar" aria-hidden="true" min="0" max="100" value=images_pct.to_string()></meter>
            </div>
            <div class="usage-item">
                <span class="usage-label">"Storage"</span>
                <span class="usage-value">{storage}</span>
                <meter class="usage-bar" aria-hidden="true" min="0" max="100" value=storage_pct.to_string()></meter>
            </div>
            // Deleted images still count towards both quotas until they are destroyed.
            {binned.map(|binned| view! {
                <div class="usage-item">
                    <span class="usage-label">"Of which in the Recycle Bin"</span>
                    <span class="usage-value"><a href="/images/recycle-bin">{binned}</a></span>
                </div>
            })}
        </section>
    }
}

/// Submits the form a select belongs to, so a filter applies as soon as it is picked.
pub(super) fn submit_on_change(event: leptos::ev::Event) {
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
                            {option("", "All but Deleted", current.or(Some("")))}
                            {ImageStatus::ALL.iter().map(|s| option(s.as_str(), s.label(), current)).collect_view()}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-family">"Operating system"</label>
                <select id="filter-family" name="family" on:change=submit_on_change>
                    {move || {
                        let current = q().os_family.map(|f| f.as_str());
                        view! {
                            {option("", "All", current.or(Some("")))}
                            {OsFamilyFilter::ALL.iter().map(|f| option(f.as_str(), f.label(), current)).collect_view()}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-os">"System platform"</label>
                <select id="filter-os" name="os" on:change=submit_on_change>
                    {move || {
                        let query = q();
                        let current = query.os_platform.map(|o| o.as_str());
                        // The chosen operating system's platforms, or all of them by family
                        // (none for images whose operating system is not specified).
                        let families: Vec<OsFamily> = match query.os_family {
                            None => OsFamily::ALL.to_vec(),
                            Some(filter) => filter.family().into_iter().collect(),
                        };
                        view! {
                            {option("", "All", current.or(Some("")))}
                            {families
                                .into_iter()
                                .map(|family| view! {
                                    <optgroup label=family.label()>
                                        {family.platforms().map(|p| option(p.as_str(), p.label(), current)).collect_view()}
                                    </optgroup>
                                })
                                .collect_view()}
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
                <label for="filter-encrypted">"Encrypted"</label>
                <select id="filter-encrypted" name="encrypted" on:change=submit_on_change>
                    {move || {
                        let current = match q().encrypted {
                            Some(true) => Some("yes"),
                            Some(false) => Some("no"),
                            None => Some(""),
                        };
                        view! {
                            {option("", "All", current)}
                            {option("yes", "Yes", current)}
                            {option("no", "No", current)}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-signed">"Signed"</label>
                <select id="filter-signed" name="signed" on:change=submit_on_change>
                    {move || {
                        let current = match q().signed {
                            Some(true) => Some("yes"),
                            Some(false) => Some("no"),
                            None => Some(""),
                        };
                        view! {
                            {option("", "All", current)}
                            {option("yes", "Verified", current)}
                            {option("no", "Not signed", current)}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-deprecated">"Deprecated"</label>
                <select id="filter-deprecated" name="deprecated" on:change=submit_on_change>
                    {move || {
                        let current = Some(q().deprecated.as_str());
                        view! {
                            {option("", "Left out", current)}
                            {option("only", "Only deprecated", current)}
                            {option("include", "Shown too", current)}
                        }
                    }}
                </select>
            </div>
            <div class="filter-field">
                <label for="filter-hidden">"Hidden"</label>
                <select id="filter-hidden" name="hidden" on:change=submit_on_change>
                    {move || {
                        let current = Some(q().hidden.as_str());
                        view! {
                            {option("", "Left out", current)}
                            {option("only", "Only hidden", current)}
                            {option("include", "Shown too", current)}
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
                <strong>{format!("Moved {deleted} {} to the Recycle Bin.", plural(deleted))}</strong>
                {(deleted > 0).then(|| view! { " " <A href="/images/recycle-bin">"Open the Recycle Bin"</A> "." })}
                {(!result.skipped.is_empty()).then(|| format!(" {} not deleted:", result.skipped.len()))}
            </p>
            <SkippedList skipped=result.skipped />
        </div>
    }
}
