//! Image Details: status and actions (Edit, Protected, Download, Delete) over three tabs,
//! Details, Tags and Work History. The tab is in the URL (`?tab=tags`).

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::detail_actions::{InRecycleBin, OwnerActions, RecipientActions};
use super::detail_history::WorkHistoryTab;
use super::detail_info::{DeprecationPanel, DetailList, EditImagePanel};
use super::detail_tags::TagsTab;
use super::download_panel::{DownloadPanel, LinkState, track_link_state};
use super::refresh_while;
use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::status_badge::StatusBadge;
use crate::app::components::upload_controls::{
    UploadActions, UploadActionsHost, UploadControls, UploadProgressBar, UploadTarget,
};
use crate::app::pages::shares::ShareStatusBadge;
use crate::domain::image::{ImageDetail, ImageStatus};
use crate::domain::lifecycle::ImageReference;
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::server_fns::images::{
    CreateDownloadLink, DeleteImage, PutImageTag, RemoveImageTag, RevokeDownloadLinks,
    SetDeprecation, SetImageProtected, UpdateImage, get_image,
};
use crate::server_fns::lifecycle::{CancelImport, RestoreImages, SetImageActivation};
use crate::server_fns::shares::get_image_sharing;

/// The actions whose success changes what the page shows.
#[derive(Clone, Copy)]
pub struct ImageActions {
    pub set_protected: ServerAction<SetImageProtected>,
    pub update: ServerAction<UpdateImage>,
    pub put_tag: ServerAction<PutImageTag>,
    pub remove_tag: ServerAction<RemoveImageTag>,
    pub revoke_links: ServerAction<RevokeDownloadLinks>,
    pub create_link: ServerAction<CreateDownloadLink>,
    pub link_state: RwSignal<LinkState>,
    pub activation: ServerAction<SetImageActivation>,
    pub cancel_import: ServerAction<CancelImport>,
    pub restore: ServerAction<RestoreImages>,
    pub set_deprecation: ServerAction<SetDeprecation>,
}

impl ImageActions {
    fn new() -> Self {
        Self {
            set_protected: ServerAction::new(),
            update: ServerAction::new(),
            put_tag: ServerAction::new(),
            remove_tag: ServerAction::new(),
            revoke_links: ServerAction::new(),
            create_link: ServerAction::new(),
            link_state: RwSignal::new(LinkState::default()),
            activation: ServerAction::new(),
            cancel_import: ServerAction::new(),
            restore: ServerAction::new(),
            set_deprecation: ServerAction::new(),
        }
    }

    /// A number that grows each time one of them succeeds. The image is reloaded then, and
    /// only then: a refused Edit keeps its form, with what was typed and the errors.
    fn successes(self) -> ReadSignal<u32> {
        let (count, set_count) = signal(0u32);
        fn on_success<A, T, E>(action: ServerAction<A>, set_count: WriteSignal<u32>)
        where
            A: leptos::server_fn::ServerFn<Output = T, Error = E> + Clone + Send + Sync + 'static,
            T: Clone + Send + Sync + 'static,
            E: Clone + Send + Sync + 'static,
        {
            Effect::new(move |_| {
                if action.value().with(|v| matches!(v, Some(Ok(_)))) {
                    set_count.update(|n| *n += 1);
                }
            });
        }
        on_success(self.set_protected, set_count);
        on_success(self.update, set_count);
        on_success(self.put_tag, set_count);
        on_success(self.remove_tag, set_count);
        on_success(self.revoke_links, set_count);
        on_success(self.activation, set_count);
        on_success(self.cancel_import, set_count);
        on_success(self.restore, set_count);
        on_success(self.set_deprecation, set_count);
        count
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Details,
    Tags,
    History,
}

#[component]
pub fn ImageDetailPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let tab = Memo::new(move |_| match query.read().get("tab").as_deref() {
        Some("tags") => Tab::Tags,
        Some("history") => Tab::History,
        _ => Tab::Details,
    });
    let actions = ImageActions::new();
    track_link_state(
        actions.link_state,
        actions.create_link,
        actions.revoke_links,
    );
    let changes = actions.successes();
    let upload_actions = UploadActions::new();
    let image = Resource::new(
        move || (id(), changes.get(), upload_actions.version.get()),
        |(id, _, _)| get_image(id),
    );
    // Owned here, so a refresh of the image cannot reset them; and while either is open the
    // page stops refreshing, so nothing a person is typing or confirming is swept away.
    let editing = RwSignal::new(false);
    let confirm_open = RwSignal::new(false);
    let in_progress = Signal::derive(move || {
        !editing.get()
            && !confirm_open.get()
            && !upload_actions.dialog_open()
            && image
                .get()
                .and_then(Result::ok)
                .is_some_and(|i| i.changes_by_itself())
    });
    refresh_while(in_progress, move || image.refetch());

    view! {
        <Breadcrumb current="Image Details" />
        <Transition fallback=|| view! { <p class="loading">"Loading image…"</p> }>
            {move || Suspend::new(async move {
                match image.await {
                    Err(error) => Either::Left(view! {
                        <Title text="Image Details" />
                        <h1>"Image Details"</h1>
                        <ErrorNotice error />
                        <A href="/images" attr:class="btn">"Back to the Image List"</A>
                    }),
                    Ok(image) => Either::Right(view! { <ImageDetailView image actions tab editing confirm_open upload_actions /> }),
                }
            })}
        </Transition>
        <UploadActionsHost actions=upload_actions />
    }
}

#[component]
fn ImageDetailView(
    image: ImageDetail,
    actions: ImageActions,
    tab: Memo<Tab>,
    editing: RwSignal<bool>,
    confirm_open: RwSignal<bool>,
    upload_actions: UploadActions,
) -> impl IntoView {
    let upload = UploadTarget::of_image(
        image.status,
        &image.id,
        &image.attributes.name,
        image.source_file_name.as_deref(),
        image.progress,
    );
    let delete = ServerAction::<DeleteImage>::new();
    let id = image.id.clone();
    let blocked = image.delete_blocked_reason();
    let share_blocked = image.share_blocked_reason();
    let copy_blocked = image.create_shared_blocked();
    let replicate_blocked = image.replicate_blocked_reason();
    let replicating = image.replica_of().is_some();
    let delete_error = move || delete.value().get().and_then(Result::err);
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
    let protect_error = move || actions.set_protected.value().get().and_then(Result::err);
    let tab_href = {
        let id = id.clone();
        move |t: &str| {
            if t.is_empty() {
                format!("/images/{id}")
            } else {
                format!("/images/{id}?tab={t}")
            }
        }
    };
    let tab_link = move |label: &'static str, target: Tab, query: &'static str| {
        let href = tab_href(query);
        view! {
            // Plain links: the router's <A> marks every link to this path as current,
            // whatever its query.
            <a href=href class="tab" aria-current=move || (tab.get() == target).then_some("page")>
                {label}
            </a>
        }
    };
    let name = image.attributes.name.clone();
    let shared_by = image.shared_by.clone();
    let is_owner = shared_by.is_none();
    let in_bin = image.deleted.is_some();
    let deactivated = image.status == ImageStatus::Deactivated;
    let owner_actions = (is_owner && !in_bin)
        .then(|| view! { <OwnerActions image=image.clone() editing actions confirm_open /> });
    let action_error = move || {
        [
            actions.activation.value().get(),
            actions.cancel_import.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::err)
    };

    view! {
        <Title text=format!("{} · Image Details", image.attributes.name) />
        <div class="page-header">
            <div>
                <h1 class="title-with-badge">
                    {image.attributes.name.clone()}
                    <StatusBadge status=image.status />
                </h1>
                <p class="lede mono">{image.id.clone()}</p>
            </div>
            {owner_actions}
            {shared_by.clone().map(|owner| view! { <RecipientActions image_id=id.clone() image_name=name.clone() owner /> })}
        </div>
        {shared_by.map(|owner| view! {
            <p class="notice" role="note">
                {format!("Account {owner} shares this image with this account. You can view it and download it; only account {owner} can change, share or delete it.")}
            </p>
        })}
        {image.deleted.clone().map(|deleted| view! { <InRecycleBin image_id=id.clone() deleted restore=actions.restore /> })}
        {(image.status == ImageStatus::Deactivated).then(|| view! {
            <p class="notice" id="deactivated">
                <strong>"Deactivated. "</strong>
                {if is_owner {
                    "Nobody can download this image, its download links answer that it is deactivated, and it cannot be shared. Reactivate it to allow them again."
                } else {
                    "Its owner has deactivated this image: it cannot be downloaded until it is reactivated."
                }}
            </p>
        })}
        {(is_owner && !in_bin).then(|| view! {
            // What the disabled actions above cannot do now, and why (their tooltips say the
            // same to a mouse; this says it to everyone).
            // A deactivated image's notice says it for both.
            {share_blocked.filter(|_| !deactivated).map(|reason| view! {
                <p class="notice" id="share-blocked">
                    <strong>"Share to another Account is unavailable. "</strong>
                    {reason}
                </p>
            })}
            {copy_blocked.filter(|_| !deactivated).map(|reason| view! {
                <p class="notice" id="copy-blocked">
                    <strong>"Create shared Image is unavailable. "</strong>
                    {reason}
                </p>
            })}
            {replicate_blocked.filter(|_| !deactivated).map(|reason| view! {
                <p class="notice" id="replicate-blocked">
                    <strong>"Replicate is unavailable. "</strong>
                    {reason}
                </p>
            })}
            {blocked.map(|reason| view! {
                <p class="notice" id="delete-blocked">
                    <strong>"Delete is unavailable. "</strong>
                    {reason}
                </p>
            })}
        })}
        {move || delete_error().map(|error| view! { <ErrorNotice error /> })}
        {move || action_error().map(|error| view! { <ErrorNotice error /> })}
        {move || protect_error().map(|error| view! { <ErrorNotice error /> })}
        {image.progress.map(|progress| {
            let converting = image.status == ImageStatus::Converting;
            let (heading, label) = match (&upload, replicating) {
                _ if converting => ("Converting", "Conversion progress"),
                (Some(_), _) => ("Uploading", "Upload progress"),
                (None, true) => ("Replicating", "Replicate progress"),
                (None, false) => ("Importing", "Import progress"),
            };
            view! {
                <div class="card import-progress">
                    <h2>{heading}</h2>
                    {match upload.clone() {
                        Some(target) => Either::Left(view! {
                            <UploadProgressBar image_id=target.image_id.clone() server=progress label=label.to_owned() />
                            <UploadControls actions=upload_actions target />
                        }),
                        None => Either::Right(view! { <ProgressBar progress label=label.to_owned() /> }),
                    }}
                </div>
            }
        })}
        {image.api_wait.map(|wait| view! {
            <p class="notice" id="api-wait">
                <strong>"Image API. "</strong>
                {wait.describe().replace("{id}", &image.id)}
            </p>
        })}
        {(image.status == ImageStatus::Failed).then(|| view! {
            <div class="alert alert-error" role="alert">
                <p><strong>"Import failed. "</strong>{image.failure_reason.clone().unwrap_or_default()}</p>
            </div>
        })}
        {(!in_bin).then(|| view! {
            <DownloadPanel
                image_id=id.clone()
                blocked=image.download_blocked_reason()
                can_revoke=is_owner
                create=actions.create_link
                revoke=actions.revoke_links
                state=actions.link_state
            />
        })}
        <nav class="tabs" aria-label="Image sections">
            {tab_link("Details", Tab::Details, "")}
            // The owner's tags are the owner's: an account the image is shared with sees none.
            // (In the Recycle Bin they are kept as they are, and shown under Details.)
            {(is_owner && !in_bin).then(|| tab_link("Tags", Tab::Tags, "tags"))}
            {tab_link("Work History", Tab::History, "history")}
        </nav>
        {move || match tab.get() {
            Tab::Details => EitherOf3::A(if editing.get() {
                Either::Left(view! { <EditImagePanel image=image.clone() update=actions.update editing /> })
            } else {
                Either::Right(view! {
                    <section class="card" aria-label="Details">
                        <DetailList image=image.clone() />
                    </section>
                    {(is_owner && !in_bin).then(|| view! {
                        <DeprecationPanel image=image.clone() action=actions.set_deprecation />
                    })}
                    {(!in_bin).then(|| view! {
                        <InUseBy references=image.references.clone() is_owner />
                    })}
                    {(is_owner && !in_bin).then(|| view! { <SharingStatus image_id=id.clone() /> })}
                })
            }),
            Tab::Tags if is_owner && !in_bin => EitherOf3::B(view! {
                <TagsTab image_id=id.clone() tags=image.tags.clone() put=actions.put_tag remove=actions.remove_tag />
            }),
            Tab::Tags => EitherOf3::C(view! { <WorkHistoryTab image_id=id.clone() /> }),
            Tab::History => EitherOf3::C(view! { <WorkHistoryTab image_id=id.clone() /> }),
        }}
        <ConfirmDialog
            open=confirm_open
            title="Delete Image".to_owned()
            confirm_label="Delete"
            pending=delete.pending()
            on_confirm
        >
            <p>
                "Move the image " <strong>{name}</strong> " to the Recycle Bin? You can restore it from there until the account's retention passes; then it is destroyed with its file. Its shares end now."
            </p>
        </ConfirmDialog>
    }
}

/// Sharing Status on the owner's Details tab: the accounts the image is shared with.
#[component]
fn SharingStatus(image_id: String) -> impl IntoView {
    let sharing = Resource::new(
        {
            let image_id = image_id.clone();
            move || image_id.clone()
        },
        get_image_sharing,
    );
    let manage = format!("/images/{image_id}/share");
    view! {
        <section class="card" aria-labelledby="sharing-status-title">
            <div class="section-header">
                <h2 id="sharing-status-title">"Sharing Status"</h2>
                <A href=manage attr:class="btn btn-small">"Manage sharing"</A>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading sharing…"</p> }>
                {move || Suspend::new(async move {
                    match sharing.await {
                        Err(error) => EitherOf3::A(view! { <ErrorNotice error /> }),
                        Ok(sharing) if sharing.shares.is_empty() => EitherOf3::B(view! {
                            <p class="muted">"Not shared with any account."</p>
                        }),
                        Ok(sharing) => EitherOf3::C(view! {
                            <div class="table-scroll">
                                <table class="data-table compact">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Account ID"</th>
                                            <th scope="col">"Status"</th>
                                            <th scope="col">"Modification Date/Time"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {sharing.shares.into_iter().map(|share| view! {
                                            <tr>
                                                <th scope="row" class="mono">{share.account_id}</th>
                                                <td><ShareStatusBadge status=share.status /></td>
                                                <td>
                                                    <time datetime=format_rfc3339(share.updated_at_ms)>
                                                        {format_timestamp(share.updated_at_ms)}
                                                    </time>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }),
                    }
                })}
            </Transition>
        </section>
    }
}

/// In use by: what uses the image (virtual machines and the like, added through the image
/// API). Delete is refused while anything does.
#[component]
fn InUseBy(references: Vec<ImageReference>, is_owner: bool) -> impl IntoView {
    let empty = references.is_empty();
    view! {
        <section class="card" aria-labelledby="in-use-title">
            <h2 id="in-use-title">"In use by"</h2>
            {if empty {
                Either::Left(view! {
                    <p class="muted">{if is_owner {
                        "Nothing uses this image. Services add a reference through the image API (PUT /v2/images/{id}/references/{kind}/{reference id}) while they use it."
                    } else {
                        "Nothing of this account uses this image."
                    }}</p>
                })
            } else {
                Either::Right(view! {
                    <p class="hint">"The image cannot be deleted while anything uses it."</p>
                    <div class="table-scroll">
                        <table class="data-table compact">
                            <thead>
                                <tr>
                                    <th scope="col">"Kind"</th>
                                    <th scope="col">"ID"</th>
                                    <th scope="col">"Added by"</th>
                                    <th scope="col">"Added"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {references.into_iter().map(|r| {
                                    let adder = r.adder();
                                    view! {
                                    <tr>
                                        <td>{r.kind.replace('-', " ")}</td>
                                        <th scope="row" class="mono">{r.reference_id}</th>
                                        <td>{adder}</td>
                                        <td><time datetime=format_rfc3339(r.added_at_ms)>{format_timestamp(r.added_at_ms)}</time></td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })
            }}
        </section>
    }
}
