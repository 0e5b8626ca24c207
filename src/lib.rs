//! Image Service Console: a web console for bringing virtual-machine images in, finding,
//! inspecting, sharing, downloading and deleting them.
//!
//! `domain`, `app` and `server_fns` compile for the browser and the server; everything that
//! touches a database, a file or a socket is server-only and gated here, so the wasm build
//! cannot link it by accident. See ARCHITECTURE.md.

// Deeply nested view types (the Create Image form) need more than the default 128.
#![recursion_limit = "256"]

pub mod app;
pub mod domain;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod inspect;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;

/// Entry point of the wasm bundle: attaches the app to the server-rendered page. Hydration
/// waits for the chunk of a page that is loaded on demand (see `app::lazy_pages`).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    use leptos_router::LazyRoute;
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::prelude::document()
            .body()
            .expect("the page has a body");
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Lets end-to-end tests (and curious people) know the page is interactive.
        let _ = body.set_attribute("data-hydrated", "true");
        // Image Details is one click from most pages: its chunk comes now, not on that click.
        app::lazy_pages::ImageDetailRoute::preload().await;
    });
}
