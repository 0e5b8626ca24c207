//! Recycle Bin (`/images/recycle-bin`): the account's deleted images, kept with their files,
//! tags and Work History until the retention passes. Restore or Destroy now, one at a time
//! or several at once, each after a confirmation.

use std::collections::BTreeMap;

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::refresh_while;
use crate::app::components::batch_summary::{BatchSummary, FollowUp};
use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::selection::{
    Selection, all_selected, new_selection, row_selected, toggle_all, toggle_row,
};
use crate::app::components::status_badge::StatusBadge;
use crate::domain::image::{BatchOutcome, ImageStatus};
use crate::domain::lifecycle::{RecycleBin, RecycledImage};
use crate::domain::units::{format_image_size, format_rfc3339, format_timestamp};
use crate::server_fns::error::AppError;
use crate::server_fns::lifecycle::{DestroyImages, RestoreImages, get_recycle_bin};

/// The images a confirmation is about: id → name.
type Targets = RwSignal<BTreeMap<String, String>>;

#[derive(Clone, Copy)]
struct BinActions {
    restore: ServerAction<RestoreImages>,
    destroy: ServerAction<DestroyImages>,
    restore_targets: Targets,
    destroy_targets: Targets,
    restore_open: RwSignal<bool>,
    destroy_open: RwSignal<bool>,
}

impl BinActions {
    fn busy(self) -> bool {
        self.restore.pending().get() || self.destroy.pending().get()
    }

    fn ask_restore(self, targets: BTreeMap<String, String>) {
        self.restore_targets.set(targets);
        self.restore_open.set(true);
    }

    fn ask_destroy(self, targets: BTreeMap<String, String>) {
        self.destroy_targets.set(targets);
        self.destroy_open.set(true);
    }
}

#[component]
pub fn RecycleBinPage() -> impl IntoView {
    let actions = BinActions {
        restore: ServerAction::new(),
        destroy: ServerAction::new(),
        restore_targets: RwSignal::new(BTreeMap::new()),
        destroy_targets: RwSignal::new(BTreeMap::new()),
        restore_open: RwSignal::new(false),
        destroy_open: RwSignal::new(false),
    };
    let bin = Resource::new(
        move || {
            (
                actions.restore.version().get(),
                actions.destroy.version().get(),
            )
        },
        |_| get_recycle_bin(),
    );
    let selection = new_selection();
    let outcome = RwSignal::new(None::<(&'static str, Result<BatchOutcome, AppError>)>);
    Effect::new(move |_| {
        if let Some(result) = actions.restore.value().get() {
            outcome.set(Some(("Restored", result)));
            actions.restore_open.set(false);
            selection.set(BTreeMap::new());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = actions.destroy.value().get() {
            outcome.set(Some(("Destroyed", result)));
            actions.destroy_open.set(false);
            selection.set(BTreeMap::new());
        }
    });
    // A Destroy another tab or the purge is finishing: refresh until it is gone.
    let deleting = Signal::derive(move || {
        !actions.restore_open.get()
            && !actions.destroy_open.get()
            && bin
                .get()
                .and_then(Result::ok)
                .is_some_and(|b| b.images.iter().any(|i| i.status == ImageStatus::Deleting))
    });
    refresh_while(deleting, move || bin.refetch());
    let names = |targets: Targets| {
        move || {
            targets
                .get()
                .into_values()
                .map(|name| view! { <li>{name}</li> })
                .collect_view()
        }
    };

    view! {
        <Title text="Recycle Bin" />
        <Breadcrumb current="Recycle Bin" />
        <div class="page-header">
            <div>
                <h1>"Recycle Bin"</h1>
                <p class="lede">
                    "Deleted images stay here with their files, tags and Work History until their retention passes; then they are destroyed. Restore one to bring it back as it was (its shares stay stopped), or Destroy it now."
                </p>
            </div>
            <A href="/images/account-settings" attr:class="btn">"Account settings"</A>
        </div>
        {move || outcome.get().map(|(verb, result)| match result {
            Err(error) => Either::Left(view! { <ErrorNotice error /> }),
            Ok(result) => {
                let follow_up = (verb == "Restored").then_some(FollowUp {
                    href: "/images",
                    one: "See it in the Image List",
                    many: "See them in the Image List",
                });
                Either::Right(view! { <BatchSummary verb result follow_up=follow_up /> })
            }
        })}
        <Transition fallback=|| view! { <p class="loading">"Loading the Recycle Bin…"</p> }>
            {move || Suspend::new(async move {
                match bin.await {
                    Err(error) => EitherOf3::A(view! { <ErrorNotice error /> }),
                    Ok(bin) if bin.images.is_empty() => EitherOf3::B(view! {
                        <section class="empty-state card" aria-labelledby="empty-title">
                            <h2 id="empty-title">"The Recycle Bin is empty"</h2>
                            <p>{format!(
                                "Images you delete come here and stay for {} days (the retention on Account settings), so a mistake can be undone.",
                                bin.retention.days()
                            )}</p>
                            <A href="/images" attr:class="btn">"Back to the Image List"</A>
                        </section>
                    }),
                    Ok(bin) => EitherOf3::C(view! { <BinTable bin selection actions /> }),
                }
            })}
        </Transition>
        <ConfirmDialog
            open=actions.restore_open
            title="Restore Images".to_owned()
            confirm_label="Restore"
            pending=actions.restore.pending()
            destructive=false
            on_confirm=Callback::new(move |()| {
                actions.restore.dispatch(RestoreImages {
                    ids: actions.restore_targets.get_untracked().into_keys().collect(),
                });
            })
        >
            <p>"Restore these images? Each comes back to the Image List with the status, attributes and tags it had. Their shares stay stopped: share them again if you need to."</p>
            <ul class="dialog-list">{names(actions.restore_targets)}</ul>
        </ConfirmDialog>
        <ConfirmDialog
            open=actions.destroy_open
            title="Destroy Images".to_owned()
            confirm_label="Destroy now"
            pending=actions.destroy.pending()
            on_confirm=Callback::new(move |()| {
                actions.destroy.dispatch(DestroyImages {
                    ids: actions.destroy_targets.get_untracked().into_keys().collect(),
                });
            })
        >
            <p>"Destroy these images now? Their files are removed (unless another image uses the same file) and they cannot be restored. Their Work History stays."</p>
            <ul class="dialog-list">{names(actions.destroy_targets)}</ul>
        </ConfirmDialog>
    }
}

#[component]
fn BinTable(bin: RecycleBin, selection: Selection, actions: BinActions) -> impl IntoView {
    let rows: Vec<(String, String)> = bin
        .images
        .iter()
        .map(|i| (i.id.clone(), i.name.clone()))
        .collect();
    let all_selected = all_selected(selection, rows.clone());
    let toggle_all = toggle_all(selection, rows);
    let none_selected = move || selection.with(BTreeMap::is_empty);
    let total = bin.images.len();
    view! {
        <section class="card table-card" aria-labelledby="bin-title">
            <div class="table-toolbar">
                <h2 id="bin-title" class="table-title">
                    "Deleted images " <span class="count">{format!("(Total {total})")}</span>
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
                        class="btn"
                        disabled=move || none_selected() || actions.busy()
                        on:click=move |_| actions.ask_restore(selection.get_untracked())
                    >
                        "Restore selected"
                    </button>
                    <button
                        type="button"
                        class="btn btn-danger"
                        disabled=move || none_selected() || actions.busy()
                        on:click=move |_| actions.ask_destroy(selection.get_untracked())
                    >
                        "Destroy selected"
                    </button>
                </div>
            </div>
            <p class="muted table-note">
                {format!("Retention: {} days. Images deleted before a change of retention keep the date they were given.", bin.retention.days())}
            </p>
            <div class="table-scroll">
                <table class="data-table">
                    <thead>
                        <tr>
                            <th scope="col" class="check-cell">
                                <input
                                    type="checkbox"
                                    aria-label="Select all deleted images"
                                    prop:checked=all_selected
                                    on:change=toggle_all
                                />
                            </th>
                            <th scope="col">"Image name"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Restores as"</th>
                            <th scope="col" class="num">"Size"</th>
                            <th scope="col">"Deleted"</th>
                            <th scope="col">"Deleted by"</th>
                            <th scope="col">"Destroyed on"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {bin.images.into_iter().map(|image| view! { <BinRow image selection actions /> }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn BinRow(image: RecycledImage, selection: Selection, actions: BinActions) -> impl IntoView {
    let RecycledImage {
        id,
        name,
        status,
        restores_to,
        size_bytes,
        deleted_at_ms,
        deleted_by,
        destroy_at_ms,
        ..
    } = image;
    let checked = row_selected(selection, id.clone());
    let toggle = toggle_row(selection, id.clone(), name.clone());
    let deleting = status == ImageStatus::Deleting;
    let one = BTreeMap::from([(id.clone(), name.clone())]);
    let restore_one = {
        let one = one.clone();
        move |_| actions.ask_restore(one.clone())
    };
    let destroy_one = move |_| actions.ask_destroy(one.clone());
    view! {
        <tr class:selected=checked>
            <td class="check-cell">
                <input type="checkbox" aria-label=format!("Select {name}") prop:checked=checked on:change=toggle disabled=deleting />
            </td>
            <th scope="row" class="name-cell">
                <a href=format!("/images/{id}")>{name.clone()}</a>
                <span class="muted mono small-id">{id.clone()}</span>
            </th>
            <td><StatusBadge status /></td>
            <td>{restores_to.label()}</td>
            <td class="num">{size_bytes.map(format_image_size).unwrap_or_else(|| "—".into())}</td>
            <td><time datetime=format_rfc3339(deleted_at_ms)>{format_timestamp(deleted_at_ms)}</time></td>
            <td>{deleted_by}</td>
            <td>
                {if deleting {
                    Either::Left(view! { <span>"Now"</span> })
                } else {
                    Either::Right(view! { <time datetime=format_rfc3339(destroy_at_ms)>{format_timestamp(destroy_at_ms)}</time> })
                }}
            </td>
            <td>
                <div class="row-actions">
                    <button
                        type="button"
                        class="btn btn-small"
                        aria-label=format!("Restore {name}")
                        disabled=move || deleting || actions.busy()
                        on:click=restore_one
                    >
                        "Restore"
                    </button>
                    <button
                        type="button"
                        class="btn btn-small btn-danger"
                        aria-label=format!("Destroy now: {name}")
                        disabled=move || deleting || actions.busy()
                        on:click=destroy_one
                    >
                        "Destroy now"
                    </button>
                </div>
            </td>
        </tr>
    }
}
