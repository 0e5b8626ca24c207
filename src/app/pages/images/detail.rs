//! Image Details: status and actions (Edit, Protected, Download, Delete) over three tabs,
//! Details, Tags and Work History. The tab is in the URL (`?tab=tags`).

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::detail_history::WorkHistoryTab;
use super::detail_info::{DetailList, EditImagePanel};
use super::detail_tags::TagsTab;
use super::download_panel::{DownloadPanel, LinkState, track_link_state};
use super::refresh_while;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::progress_bar::ProgressBar;
use crate::app::components::status_badge::StatusBadge;
use crate::app::components::upload_controls::{
    UploadActions, UploadActionsHost, UploadControls, UploadProgressBar, UploadTarget,
};
use crate::domain::image::{ImageDetail, ImageStatus, delete_blocked_reason};
use crate::server_fns::images::{
    CreateDownloadLink, DeleteImage, PutImageTag, RemoveImageTag, RevokeDownloadLinks,
    SetImageProtected, UpdateImage, get_image,
};

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
        &image.name,
        image.source_file_name.as_deref(),
        image.progress,
    );
    let delete = ServerAction::<DeleteImage>::new();
    let id = image.id.clone();
    let blocked = delete_blocked_reason(image.protected);
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
    let toggle_protected = {
        let (id, protected) = (id.clone(), image.protected);
        move |_| {
            actions.set_protected.dispatch(SetImageProtected {
                id: id.clone(),
                protected: !protected,
            });
        }
    };
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
    let name = image.name.clone();
    let active = image.status == ImageStatus::Active;

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
                    on:click=move |_| editing.set(true)
                    disabled=move || editing.get()
                >
                    "Edit"
                </button>
                <button
                    type="button"
                    class="btn"
                    on:click=toggle_protected
                    disabled=move || actions.set_protected.pending().get()
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
        {image.progress.map(|progress| {
            let (heading, label) = match upload {
                Some(_) => ("Uploading", "Upload progress"),
                None => ("Importing", "Import progress"),
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
        {(image.status == ImageStatus::Failed).then(|| view! {
            <div class="alert alert-error" role="alert">
                <p><strong>"Import failed. "</strong>{image.failure_reason.clone().unwrap_or_default()}</p>
            </div>
        })}
        <DownloadPanel
            image_id=id.clone()
            active
            create=actions.create_link
            revoke=actions.revoke_links
            state=actions.link_state
        />
        <nav class="tabs" aria-label="Image sections">
            {tab_link("Details", Tab::Details, "")}
            {tab_link("Tags", Tab::Tags, "tags")}
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
                })
            }),
            Tab::Tags => EitherOf3::B(view! {
                <TagsTab image_id=id.clone() tags=image.tags.clone() put=actions.put_tag remove=actions.remove_tag />
            }),
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
                "Delete the image " <strong>{name}</strong> "? Its file is removed as well. A deleted image cannot be recovered."
            </p>
        </ConfirmDialog>
    }
}
