//! The UI: the page shell, routes, layout, pages and components. Compiled for the browser
//! and the server (which renders the same views before hydration).

pub mod components;
pub mod error;
pub mod layout;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use layout::console_layout::ConsoleLayout;
use pages::auth::sign_in::SignInPage;
use pages::auth::sign_up::SignUpPage;
use pages::images::create::CreateImagePage;
use pages::images::detail::ImageDetailPage;
use pages::images::list::ImageListPage;
use pages::not_found::NotFoundPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
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
            <Routes fallback=NotFoundPage>
                <Route path=path!("/signin") view=SignInPage />
                <Route path=path!("/signup") view=SignUpPage />
                <ParentRoute path=path!("/images") view=ConsoleLayout>
                    <Route path=path!("") view=ImageListPage />
                    <Route path=path!("create") view=CreateImagePage />
                    <Route path=path!(":id") view=ImageDetailPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
