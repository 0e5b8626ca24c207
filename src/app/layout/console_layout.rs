//! The frame around every signed-in page: product bar, navigation, account, Sign out.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::server_fns::auth::{SignOut, current_user};

#[component]
pub fn ConsoleLayout() -> impl IntoView {
    // Uploads keep running while the user moves between console pages.
    crate::app::uploads::UploadManager::provide();
    let user = Resource::new(|| (), |_| current_user());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <a class="skip-link" href="#main" on:click=skip_to_main>"Skip to content"</a>
        <header class="topbar">
            <A href="/images" attr:class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Image Service Console"
            </A>
            <nav class="topnav" aria-label="Main">
                <A href="/images" exact=true>"Image List"</A>
                <A href="/images/create">"Create Image"</A>
            </nav>
            <div class="account">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        user.await
                            .ok()
                            .flatten()
                            .map(|u| {
                                view! {
                                    <span class="account-id" title="Account ID">
                                        "Account "
                                        <strong>{u.account_id}</strong>
                                    </span>
                                    <span class="user-name">{u.user_name}</span>
                                }
                            })
                    })}
                </Transition>
                <ActionForm action=sign_out attr:class="inline-form">
                    <button type="submit" class="btn btn-quiet">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
        <main id="main" class="content" tabindex="-1">
            <Outlet />
        </main>
    }
}

/// Moves focus into the content. Done by hand because the router handles in-page links
/// itself and would only scroll.
fn skip_to_main(event: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(main) = document()
            .get_element_by_id("main")
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            event.prevent_default();
            let _ = main.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}
