//! API access (`/images/api-access`): the image API's endpoint, commands for the OpenStack
//! clients, and the signed-in user's API tokens: create one (its secret shown once), see
//! when each was last used, revoke it.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{
    FieldState, SelectField, TextField, form_alert, select_options,
};
use crate::domain::api_token::{
    ApiTokenName, ApiTokenSummary, MAX_API_TOKENS_PER_USER, NewApiToken, TokenLifetime,
};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::server_fns::api_tokens::{CreateApiToken, RevokeApiToken, list_api_tokens};
use crate::server_fns::error::AppError;

/// This page's address, as the browser reached it: the image API's endpoint.
fn endpoint() -> String {
    #[cfg(feature = "hydrate")]
    {
        window().location().origin().unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// The commands shown for an endpoint: with the token itself right after it is made, and
/// with `$OS_TOKEN` (which the first command sets) otherwise.
pub fn client_commands(endpoint: &str, token: Option<&str>) -> Vec<(&'static str, String)> {
    let token_arg = match token {
        Some(token) => format!("'{token}'"),
        None => "\"$OS_TOKEN\"".to_owned(),
    };
    let mut commands = Vec::new();
    if token.is_none() {
        commands.push((
            "Your token, for the commands below",
            "export OS_TOKEN='<paste your API token>'".to_owned(),
        ));
    }
    commands.push((
        "openstack (python-openstackclient)",
        format!(
            "openstack --os-auth-type admin_token --os-endpoint {endpoint}/v2 --os-token {token_arg} image list"
        ),
    ));
    commands.push((
        "glance (python-glanceclient)",
        format!("glance --os-image-url {endpoint} --os-auth-token {token_arg} image-list"),
    ));
    commands
}

/// The time now, in the browser or on the server that renders the page.
fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

#[cfg(feature = "hydrate")]
fn copy_text(text: &str) {
    let _ = window().navigator().clipboard().write_text(text);
}

/// A read-only text with a Copy button.
#[component]
fn CopyRow(id: String, label: String, text: Signal<String>, multiline: bool) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        copy_text(&text.get_untracked());
        copied.set(true);
    };
    let input_id = id.clone();
    view! {
        <div class="copy-block">
            <label for=id>{label}</label>
            <div class="copy-row">
                {if multiline {
                    Either::Left(view! {
                        <textarea id=input_id class="mono" readonly rows="2" prop:value=move || text.get()></textarea>
                    })
                } else {
                    Either::Right(view! {
                        <input id=input_id class="mono" readonly prop:value=move || text.get() />
                    })
                }}
                <button type="button" class="btn" on:click=copy>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
        </div>
    }
}

#[component]
pub fn ApiAccessPage() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_tokens(),
    );
    let origin = RwSignal::new(String::new());
    Effect::new(move |_| origin.set(endpoint()));
    let name = FieldState::new("token", "name", "");
    let lifetime = FieldState::new("token", "lifetime", "90");
    let created = move || create.value().get().and_then(Result::ok);
    let alert = RwSignal::new(None::<AppError>);
    Effect::new(move |_| match create.value().get() {
        Some(Err(error)) => alert.set(form_alert(&error, error.field_errors(), &[name, lifetime])),
        Some(Ok(_)) => {
            alert.set(None);
            // Ready for another token, without an error for the field just emptied.
            name.value.set(String::new());
            name.touched.set(false);
        }
        None => {}
    });

    view! {
        <Title text="API access" />
        <Breadcrumb current="API access" />
        <div class="page-header">
            <div>
                <h1>"API access"</h1>
                <p class="lede">
                    "Scripts, CI pipelines, Packer and Ansible can manage this account's images through the image API, which speaks OpenStack Glance v2: the openstack and glance command-line clients and openstacksdk work with it unchanged. A request carries an API token, acts as you and follows every rule the console applies."
                </p>
            </div>
        </div>
        <section class="card form-section" aria-labelledby="endpoint-title">
            <h2 id="endpoint-title">"Endpoint"</h2>
            <CopyRow id="api-endpoint".into() label="Image API endpoint".into() text=Signal::derive(move || origin.get()) multiline=false />
            <CommandRows prefix="api-command" origin token=None />
            <p class="hint">
                "The clients take the endpoint and the token as shown, with no Keystone; every other openstack image and glance command works the same way."
            </p>
        </section>
        <section class="card form-section" aria-labelledby="create-token-title">
            <h2 id="create-token-title">"Create API token"</h2>
            <ActionForm action=create attr:novalidate=true on:submit=move |_| name.touch()>
                <TextField
                    label="Token name"
                    field=name
                    error=name.message(ApiTokenName::parse)
                    hint="What will use it, such as ci-pipeline or Packer on build host. Letters, digits, spaces, '-', '_' and '.'; at most 64 characters."
                    autocomplete="off"
                    required=true
                />
                <SelectField
                    label="Expiry"
                    field=lifetime
                    options=select_options(&TokenLifetime::CHOICES)
                    error=lifetime.message(TokenLifetime::parse)
                    hint="After this the token stops working; you can revoke it sooner."
                    required=true
                    placeholder="Choose how long it works"
                />
                {move || alert.get().map(|error| view! { <ErrorNotice error /> })}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>
                        "Create token"
                    </button>
                </div>
            </ActionForm>
            {move || created().map(|token| view! { <NewTokenNotice token origin /> })}
        </section>
        <section class="card" aria-labelledby="tokens-title">
            <div class="section-header">
                <h2 id="tokens-title">"Your API tokens"</h2>
            </div>
            <p class="hint">{format!("You can have up to {MAX_API_TOKENS_PER_USER} tokens. Only a hash of each is kept: a lost token cannot be shown again; revoke it and create another.")}</p>
            {move || revoke.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
            <Transition fallback=|| view! { <p class="hint">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                        Ok(list) => Either::Right(view! { <TokenTable tokens=list revoke /> }),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The client commands for this page's endpoint, each with a Copy button.
#[component]
fn CommandRows(
    prefix: &'static str,
    origin: RwSignal<String>,
    token: Option<String>,
) -> impl IntoView {
    move || {
        client_commands(&origin.get(), token.as_deref())
            .into_iter()
            .enumerate()
            .map(|(i, (label, command))| {
                view! {
                    <CopyRow
                        id=format!("{prefix}-{i}")
                        label=label.to_owned()
                        text=Signal::derive(move || command.clone())
                        multiline=true
                    />
                }
            })
            .collect_view()
    }
}

/// The secret of a token just made, with a warning that it is shown only now, and the
/// commands with it filled in.
#[component]
fn NewTokenNotice(token: NewApiToken, origin: RwSignal<String>) -> impl IntoView {
    let secret = token.secret.clone();
    view! {
        <div class="alert alert-success new-token" role="status">
            <p>
                <strong>{format!("Token {} created.", token.summary.name)}</strong>
                " Copy it now: it is not shown again."
            </p>
            <CopyRow id="new-token-secret".into() label="API token".into() text=Signal::derive(move || secret.clone()) multiline=false />
            <CommandRows prefix="new-token-command" origin token=Some(token.secret.clone()) />
        </div>
    }
}

fn when(ms: Option<i64>, none: &'static str) -> impl IntoView {
    match ms {
        Some(ms) => {
            Either::Left(view! { <time datetime=format_rfc3339(ms)>{format_timestamp(ms)}</time> })
        }
        None => Either::Right(none),
    }
}

#[component]
fn TokenTable(tokens: Vec<ApiTokenSummary>, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    if tokens.is_empty() {
        return Either::Left(view! {
            <p class="empty-note">"You have no API tokens yet. Create one above to use the image API."</p>
        });
    }
    let now = now_ms();
    let confirm_open = RwSignal::new(false);
    let target = RwSignal::new(None::<(String, String)>);
    let on_confirm = Callback::new(move |()| {
        if let Some((id, _)) = target.get_untracked() {
            revoke.dispatch(RevokeApiToken { id });
        }
        confirm_open.set(false);
    });
    let rows = tokens
        .into_iter()
        .map(|token| {
            let expired = token.is_expired(now);
            let pick = (token.id.clone(), token.name.clone());
            let label = format!("Revoke {}", token.name);
            view! {
                <tr>
                    <th scope="row">{token.name.clone()}</th>
                    <td>{when(Some(token.created_at_ms), "")}</td>
                    <td>
                        {when(token.expires_at_ms, "No expiry")}
                        {expired.then(|| view! { <span class="badge badge-failed">"Expired"</span> })}
                    </td>
                    <td>{when(token.last_used_at_ms, "Never used")}</td>
                    <td>
                        <button
                            type="button"
                            class="btn btn-small"
                            aria-label=label
                            on:click=move |_| {
                                target.set(Some(pick.clone()));
                                confirm_open.set(true);
                            }
                        >
                            "Revoke"
                        </button>
                    </td>
                </tr>
            }
        })
        .collect_view();
    Either::Right(view! {
        <div class="table-scroll">
            <table class="data-table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <ConfirmDialog
            open=confirm_open
            title="Revoke API token".to_owned()
            confirm_label="Revoke"
            pending=revoke.pending()
            on_confirm
        >
            <p>
                "Revoke the token "
                <strong>{move || target.get().map(|(_, name)| name).unwrap_or_default()}</strong>
                "? Every request that carries it is refused from now on. This cannot be undone."
            </p>
        </ConfirmDialog>
    })
}
