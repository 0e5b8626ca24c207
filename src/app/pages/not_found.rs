use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// Shown for any address the console does not have.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <main id="main" class="auth-page" tabindex="-1">
            <div class="card narrow">
                <h1>"Page not found"</h1>
                <p>"There is no page at this address."</p>
                <A href="/images" attr:class="btn btn-primary">"Go to the Image List"</A>
            </div>
        </main>
    }
}
