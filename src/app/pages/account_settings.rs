//! Account settings (`/images/account-settings`): how long the Recycle Bin keeps deleted
//! images before the purge destroys them.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::lifecycle::{AccountSettings, RetentionDays};
use crate::server_fns::error::AppError;
use crate::server_fns::lifecycle::{SetRetention, get_account_settings};

#[component]
pub fn AccountSettingsPage() -> impl IntoView {
    let save = ServerAction::<SetRetention>::new();
    let settings = Resource::new(move || save.version().get(), |_| get_account_settings());
    view! {
        <Title text="Account settings" />
        <Breadcrumb current="Account settings" />
        <div class="page-header">
            <div>
                <h1>"Account settings"</h1>
                <p class="lede">"Settings that apply to every user of this account."</p>
            </div>
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading settings…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                    Ok(current) => Either::Right(view! { <RetentionForm current save /> }),
                }
            })}
        </Transition>
    }
}

#[component]
fn RetentionForm(current: AccountSettings, save: ServerAction<SetRetention>) -> impl IntoView {
    let days = FieldState::new(
        "settings",
        "retention_days",
        &current.retention.days().to_string(),
    );
    let alert = RwSignal::new(None::<AppError>);
    let saved = RwSignal::new(false);
    Effect::new(move |_| match save.value().get() {
        Some(Err(error)) => {
            saved.set(false);
            alert.set(form_alert(&error, error.field_errors(), &[days]));
        }
        Some(Ok(())) => {
            alert.set(None);
            saved.set(true);
        }
        None => {}
    });
    view! {
        <section class="card form-section" aria-labelledby="retention-title">
            <h2 id="retention-title">"Recycle Bin"</h2>
            <p class="hint">
                "A deleted image goes to the " <A href="/images/recycle-bin">"Recycle Bin"</A>
                " with its file, tags and Work History. It can be restored until its retention passes; then it is destroyed. A change applies to images deleted from now on."
            </p>
            <ActionForm action=save attr:class="narrow" attr:novalidate=true on:submit=move |_| days.touch()>
                <TextField
                    label="Retention (days)"
                    field=days
                    error=days.message(RetentionDays::parse)
                    hint="From 1 to 365 days. New accounts keep deleted images for 7 days."
                    inputmode="numeric"
                    required=true
                />
                {move || alert.get().map(|error| view! { <ErrorNotice error /> })}
                {move || saved.get().then(|| view! {
                    <p class="alert alert-success" role="status">"Saved."</p>
                })}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || save.pending().get()>
                        "Save"
                    </button>
                </div>
            </ActionForm>
        </section>
    }
}
