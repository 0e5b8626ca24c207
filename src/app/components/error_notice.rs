use leptos::prelude::*;

use crate::server_fns::error::AppError;

/// An error as a page-level alert; a lost session gets a way back in.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let signed_out = matches!(error, AppError::Unauthorized);
    view! {
        <div class="alert alert-error" role="alert">
            <p>{error.to_string()}</p>
            {signed_out.then(|| view! { <a href="/signin" class="btn btn-primary">"Sign in"</a> })}
        </div>
    }
}
