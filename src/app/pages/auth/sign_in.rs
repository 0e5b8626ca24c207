use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::account::{UserName, field};
use crate::domain::navigation::safe_next;
use crate::server_fns::auth::SignIn;
use crate::server_fns::error::AppError;

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let query = use_query_map();
    // The server checks `next` again; the form never even carries a foreign one.
    let next = move || safe_next(query.read().get("next").as_deref());
    let user_name = FieldState::new("signin", field::USER_NAME, "");
    let password = FieldState::new("signin", field::PASSWORD, "");
    let other_error = RwSignal::new(None::<AppError>);
    Effect::new(move |_| {
        if let Some(Err(error)) = action.value().get() {
            other_error.set(form_alert(
                &error,
                error.field_errors(),
                &[user_name, password],
            ));
        }
    });
    let user_name_error = user_name.message(UserName::parse);
    // A sign-in password is checked by the server only; its message comes from there.
    let password_error = Signal::derive(move || password.server_error.get());
    view! {
        <Title text="Sign in" />
        <main id="main" class="auth-page" tabindex="-1">
            <div class="card auth-card">
                <p class="eyebrow">"Image Service Console"</p>
                <h1>"Sign in"</h1>
                {move || other_error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <ActionForm action=action on:submit=move |_| user_name.touch()>
                    <input type="hidden" name="next" value=next />
                    <TextField
                        label="User name"
                        field=user_name
                        error=user_name_error
                        autocomplete="username"
                        required=true
                    />
                    <TextField
                        label="Password"
                        field=password
                        error=password_error
                        input_type="password"
                        autocomplete="current-password"
                        required=true
                    />
                    <button type="submit" class="btn btn-primary btn-block" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <p class="auth-switch">
                    "New to the console? "
                    <A href="/signup">"Create an account"</A>
                </p>
            </div>
        </main>
    }
}
