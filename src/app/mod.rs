//! The UI: the page shell, routes, layout, pages and components. Compiled for the browser
//! and the server (which renders the same views before hydration).

pub mod components;
pub mod layout;
pub mod lazy_pages;
pub mod pages;
pub mod uploads;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{Lazy, path};

use layout::console_layout::ConsoleLayout;
use lazy_pages::*;
use pages::auth::sign_in::SignInPage;
use pages::auth::sign_up::SignUpPage;
use pages::images::create::CreateImagePage;
use pages::images::list::ImageListPage;
use pages::not_found::NotFoundPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    send_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <DeferredHydration options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Loads the browser bundle once the page has loaded and the browser is idle, then hydrates.
///
/// Leptos' own `HydrationScripts` preloads the bundle from the `<head>`, so half a megabyte
/// of WebAssembly competes with the server-rendered page for a slow connection and its
/// compilation for a slow CPU, before the page's largest text is painted. Every page is
/// complete and usable as rendered (its forms post without script), so the bundle can wait:
/// the page paints first, then becomes interactive. Instantiating the module and hydrating
/// run as two tasks, so neither blocks input for as long as both would.
#[component]
fn DeferredHydration(options: LeptosOptions) -> impl IntoView {
    let bundle = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    let script = format!(
        r#"(function (bundle) {{
  const nextTask = () => new Promise((resolve) => window.setTimeout(resolve, 0));
  const hydrate = () => import(bundle + ".js").then((mod) =>
    mod.default({{ module_or_path: bundle + ".wasm" }}).then(nextTask).then(() => mod.hydrate()));
  const whenIdle = () => "requestIdleCallback" in window
    ? window.requestIdleCallback(hydrate, {{ timeout: 1000 }})
    : window.setTimeout(hydrate, 0);
  if (document.readyState === "complete") whenIdle();
  else window.addEventListener("load", whenIdle, {{ once: true }});
}})({bundle:?});"#
    );
    view! { <script type="module" nonce=leptos::nonce::use_nonce()>{script}</script> }
}

/// The Content-Security-Policy of every page. Scripts come from this site, or are the inline
/// scripts Leptos writes into this response (the hydration bootstrap and the data of
/// resources resolved while streaming), which carry the response's nonce; anything injected
/// into a page has no nonce and does not run. WebAssembly needs `wasm-unsafe-eval` to
/// compile. Styles come from the stylesheet only: the page has no inline styles.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Sends the policy with the nonce Leptos generated for this response.
#[cfg(feature = "ssr")]
fn send_content_security_policy() {
    use axum::http::{HeaderValue, header};
    let nonce = leptos::nonce::use_nonce();
    let response = use_context::<leptos_axum::ResponseOptions>();
    if let (Some(nonce), Some(response)) = (nonce, response)
        && let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce))
    {
        response.insert_header(header::CONTENT_SECURITY_POLICY, policy);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href=concat!("/pkg/", env!("CARGO_PKG_NAME"), ".css") />
        <Title formatter=|title: String| {
            if title.is_empty() {
                "Image Service Console".to_owned()
            } else {
                format!("{title} · Image Service Console")
            }
        } />
        <Router>
            <FocusMainOnNavigation />
            <Routes fallback=NotFoundPage>
                <Route path=path!("/signin") view=SignInPage />
                <Route path=path!("/signup") view=SignUpPage />
                <ParentRoute path=path!("/images") view=ConsoleLayout>
                    <Route path=path!("") view=ImageListPage />
                    <Route path=path!("create") view=CreateImagePage />
                    <Route path=path!("share-requests") view={Lazy::<ShareRequestListRoute>::new()} />
                    <Route path=path!("get-share") view={Lazy::<GetImageShareRoute>::new()} />
                    <Route path=path!("work-history") view={Lazy::<WorkHistoryRoute>::new()} />
                    <Route path=path!("api-access") view={Lazy::<ApiAccessRoute>::new()} />
                    <Route path=path!("recycle-bin") view={Lazy::<RecycleBinRoute>::new()} />
                    <Route path=path!("account-settings") view={Lazy::<AccountSettingsRoute>::new()} />
                    <Route path=path!("keys") view={Lazy::<KeysRoute>::new()} />
                    <Route path=path!("certificates") view={Lazy::<CertificatesRoute>::new()} />
                    <Route path=path!("guide") view={Lazy::<ImageGuideRoute>::new()} />
                    <Route path=path!(":id/share") view={Lazy::<ImageShareRoute>::new()} />
                    <Route path=path!(":id") view={Lazy::<ImageDetailRoute>::new()} />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Moves focus to the page's `<main>` after each client-side navigation, so keyboard and
/// screen-reader users start at the new page's content instead of a button that is gone.
/// The first page load keeps the browser's normal focus order (the skip link comes first).
#[component]
fn FocusMainOnNavigation() -> impl IntoView {
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        #[cfg(feature = "hydrate")]
        if previous.as_ref().is_some_and(|p| *p != path) {
            request_animation_frame(|| {
                use wasm_bindgen::JsCast;
                if let Some(main) = document()
                    .get_element_by_id("main")
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = main.focus();
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = previous;
        path
    });
}
