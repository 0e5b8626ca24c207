//! The frame around every signed-in page: product bar, navigation, account, Sign out.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::use_location;

use crate::server_fns::auth::{SignOut, current_user};
use crate::server_fns::shares::count_share_requests;

/// How often the navigation asks whether new share requests arrived.
const SHARE_REQUESTS_REFRESH: std::time::Duration = std::time::Duration::from_secs(20);

/// Lets a page that approves or rejects share requests refresh the navigation's badge.
#[derive(Clone, Copy)]
pub struct ShareRequestsBadge {
    version: RwSignal<u32>,
}

impl ShareRequestsBadge {
    pub fn refresh() {
        if let Some(badge) = use_context::<ShareRequestsBadge>() {
            badge.version.update(|v| *v += 1);
        }
    }
}

#[component]
pub fn ConsoleLayout() -> impl IntoView {
    // Uploads keep running while the user moves between console pages.
    crate::app::uploads::UploadManager::provide();
    let user = Resource::new(|| (), |_| current_user());
    let sign_out = ServerAction::<SignOut>::new();
    let account_menu = NodeRef::<leptos::html::Details>::new();
    let badge = ShareRequestsBadge {
        version: RwSignal::new(0),
    };
    provide_context(badge);
    let location = use_location();
    let pending = Resource::new(
        move || (location.pathname.get(), badge.version.get()),
        |_| count_share_requests(),
    );
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || badge.version.update(|v| *v += 1),
            SHARE_REQUESTS_REFRESH,
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = SHARE_REQUESTS_REFRESH;
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
                <A href="/images/share-requests">
                    "Share Requests"
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            pending.await.ok().filter(|n| *n > 0).map(|n| view! {
                                <span class="nav-badge" aria-hidden="true">{n.to_string()}</span>
                                <span class="visually-hidden">{format!(" ({n} pending)")}</span>
                            })
                        })}
                    </Transition>
                </A>
                <A href="/images/api-access">"API access"</A>
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
                <details class="menu account-menu" node_ref=account_menu>
                    <summary class="btn btn-quiet">"Account"</summary>
                    // The layout stays while pages change: a choice closes the menu.
                    <ul class="menu-list" on:click=move |_| close_menu(account_menu)>
                        <li><a href="/images/keys">"Keys"</a></li>
                        <li><a href="/images/certificates">"Certificates"</a></li>
                        <li><a href="/images/account-settings">"Account settings"</a></li>
                        <li><a href="/images/work-history">"Work History"</a></li>
                    </ul>
                </details>
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

/// Closes a disclosure menu (its `open` attribute goes).
fn close_menu(menu: NodeRef<leptos::html::Details>) {
    #[cfg(feature = "hydrate")]
    if let Some(details) = menu.get_untracked() {
        let _ = details.remove_attribute("open");
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = menu;
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
