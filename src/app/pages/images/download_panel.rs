//! Download: create a signed link valid for 24 hours, copy it, or revoke every link.

use leptos::prelude::*;

use crate::app::components::error_notice::ErrorNotice;
use crate::domain::image::{DOWNLOAD_LINK_HOURS, DownloadLink};
use crate::domain::units::format_timestamp;
use crate::server_fns::images::{CreateDownloadLink, RevokeDownloadLinks};

/// What the panel shows; kept by the page, so it survives the image being reloaded.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LinkState {
    #[default]
    Nothing,
    Issued(DownloadLink),
    Revoked,
}

/// Keeps `state` in step with the two actions' answers.
pub fn track_link_state(
    state: RwSignal<LinkState>,
    create: ServerAction<CreateDownloadLink>,
    revoke: ServerAction<RevokeDownloadLinks>,
) {
    Effect::new(move |_| {
        if let Some(Ok(link)) = create.value().get() {
            state.set(LinkState::Issued(link));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            state.set(LinkState::Revoked);
        }
    });
}

/// The page's origin, to turn a link's path into a URL people can paste elsewhere.
fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        window().location().origin().unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

#[component]
pub fn DownloadPanel(
    image_id: String,
    /// Why no link can be made now (the image is not Active), if so.
    blocked: Option<&'static str>,
    /// Only the owner account can revoke links (they are the image's, whoever holds them).
    can_revoke: bool,
    create: ServerAction<CreateDownloadLink>,
    revoke: ServerAction<RevokeDownloadLinks>,
    state: RwSignal<LinkState>,
) -> impl IntoView {
    let active = blocked.is_none();
    let copied = RwSignal::new(false);
    let create_error = move || create.value().get().and_then(Result::err);
    let revoke_error = move || revoke.value().get().and_then(Result::err);
    let on_create = {
        let id = image_id.clone();
        move |_| {
            copied.set(false);
            create.dispatch(CreateDownloadLink { id: id.clone() });
        }
    };
    let on_revoke = move |_| {
        revoke.dispatch(RevokeDownloadLinks {
            id: image_id.clone(),
        });
    };
    let link = move || match state.get() {
        LinkState::Issued(link) => Some((format!("{}{}", origin(), link.path), link.expires_at_ms)),
        _ => None,
    };
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some((url, _)) = link() {
            let _ = window().navigator().clipboard().write_text(&url);
            copied.set(true);
        }
    };
    view! {
        <section class="card download" aria-labelledby="download-title">
            <div class="section-header">
                <h2 id="download-title">"Download"</h2>
                <div class="actions">
                    <button type="button" class="btn" disabled=move || !active || create.pending().get() on:click=on_create>
                        "Create download link"
                    </button>
                    {can_revoke.then(|| view! {
                        <button type="button" class="btn" disabled=move || revoke.pending().get() on:click=on_revoke>
                            "Revoke links"
                        </button>
                    })}
                </div>
            </div>
            <p class="hint">
                {if active && can_revoke {
                    format!("A link works for {DOWNLOAD_LINK_HOURS} hours without signing in (curl, wget, a browser) and resumes interrupted downloads. Revoke links makes every link issued so far stop working.")
                } else if active {
                    format!("A link works for {DOWNLOAD_LINK_HOURS} hours without signing in (curl, wget, a browser) and resumes interrupted downloads, as long as the image is shared with this account.")
                } else {
                    blocked.unwrap_or_default().to_owned()
                }}
            </p>
            {move || create_error().map(|error| view! { <ErrorNotice error /> })}
            {move || revoke_error().map(|error| view! { <ErrorNotice error /> })}
            {move || (state.get() == LinkState::Revoked).then(|| view! {
                <p class="alert alert-success" role="status">"Every download link issued so far has been revoked."</p>
            })}
            {move || link().map(|(url, expires)| {
                // The link's last path segment is the file name, with the image's format.
                let file = url
                    .split('?')
                    .next()
                    .and_then(|path| path.rsplit('/').next())
                    .map(|f| f.replace("%20", "-"))
                    .unwrap_or_else(|| "image.img".into());
                let curl = format!("curl -C - -o '{file}' '{url}'");
                view! {
                    <div class="download-link">
                        <label for="download-url">"Download link"</label>
                        <div class="copy-row">
                            <input id="download-url" class="mono" readonly value=url.clone() />
                            <button type="button" class="btn" on:click=copy>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                            <a class="btn btn-primary" href=url download="">"Download"</a>
                        </div>
                        <p class="hint">{format!("Valid until {}. Resume an interrupted download with ", format_timestamp(expires))}<code>{curl}</code></p>
                    </div>
                }
            })}
        </section>
    }
}
