use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::FieldError;
use crate::domain::account::{AccountId, Password, UserName, field};
use crate::server_fns::auth::SignUp;
use crate::server_fns::error::AppError;

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let account_id = FieldState::new("signup", field::ACCOUNT_ID, "");
    let user_name = FieldState::new("signup", field::USER_NAME, "");
    let password = FieldState::new("signup", field::PASSWORD, "");
    let password_confirm = FieldState::new("signup", field::PASSWORD_CONFIRM, "");
    let fields = [account_id, user_name, password, password_confirm];
    let other_error = RwSignal::new(None::<AppError>);
    Effect::new(move |_| {
        if let Some(Err(error)) = action.value().get() {
            other_error.set(form_alert(&error, error.field_errors(), &fields));
        }
    });
    let confirm_error = password_confirm.message(move |value| {
        if value == password.value.get() {
            Ok(())
        } else {
            Err(FieldError::new(
                field::PASSWORD_CONFIRM,
                "The two passwords do not match.",
            ))
        }
    });
    view! {
        <Title text="Create an account" />
        <main id="main" class="auth-page" tabindex="-1">
            <div class="card auth-card">
                <p class="eyebrow">"Image Service Console"</p>
                <h1>"Create an account"</h1>
                <p class="lede">
                    "An account holds your images. Its Account ID is what other accounts use to share images with you."
                </p>
                {move || other_error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <ActionForm action=action on:submit=move |_| fields.iter().for_each(|f| f.touch())>
                    <TextField
                        label="Account ID"
                        field=account_id
                        error=account_id.message(AccountId::parse)
                        hint="1–64 English letters, digits and '-'. Not case-sensitive."
                        autocomplete="organization"
                        required=true
                    />
                    <TextField
                        label="User name"
                        field=user_name
                        error=user_name.message(UserName::parse)
                        hint="3–64 letters, digits, '.', '_', '-' or '@'; an e-mail address works."
                        autocomplete="username"
                        required=true
                    />
                    <TextField
                        label="Password"
                        field=password
                        error=password.message(Password::parse_new)
                        hint="At least 8 characters."
                        input_type="password"
                        autocomplete="new-password"
                        required=true
                    />
                    <TextField
                        label="Confirm password"
                        field=password_confirm
                        error=confirm_error
                        input_type="password"
                        autocomplete="new-password"
                        required=true
                    />
                    <button type="submit" class="btn btn-primary btn-block" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Creating account…" } else { "Create account" }}
                    </button>
                </ActionForm>
                <p class="auth-switch">
                    "Already have an account? "
                    <A href="/signin">"Sign in"</A>
                </p>
            </div>
        </main>
    }
}
