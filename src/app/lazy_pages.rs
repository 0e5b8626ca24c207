//! The pages the browser loads only when they are first opened. The main bundle carries what
//! a visitor needs first (Sign In, Sign Up, the Image List and Create Image); each page here
//! is its own wasm chunk, fetched when its route is entered (or, for Image Details, as soon as
//! the first page has hydrated: it is one click from the Image List).
//!
//! On the server every page renders as before; the split happens when `scripts/build` runs
//! `wasm-split-cli` over the bundle.

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

use super::pages::account_settings::AccountSettingsPage;
use super::pages::api_access::ApiAccessPage;
use super::pages::certificates::CertificatesPage;
use super::pages::image_guide::ImageGuidePage;
use super::pages::images::detail::ImageDetailPage;
use super::pages::images::recycle_bin::RecycleBinPage;
use super::pages::images::work_history::WorkHistoryPage;
use super::pages::keys::KeysPage;
use super::pages::shares::get_share::GetImageSharePage;
use super::pages::shares::requests::ShareRequestListPage;
use super::pages::shares::share::ImageSharePage;

/// A route whose view is `$page`, compiled into a chunk of its own. Each page loads its own
/// data when it renders, so the route has none to start before the chunk arrives.
macro_rules! lazy_page {
    ($route:ident => $page:ident) => {
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(ImageDetailRoute => ImageDetailPage);
lazy_page!(ImageShareRoute => ImageSharePage);
lazy_page!(ShareRequestListRoute => ShareRequestListPage);
lazy_page!(GetImageShareRoute => GetImageSharePage);
lazy_page!(WorkHistoryRoute => WorkHistoryPage);
lazy_page!(ApiAccessRoute => ApiAccessPage);
lazy_page!(RecycleBinRoute => RecycleBinPage);
lazy_page!(AccountSettingsRoute => AccountSettingsPage);
lazy_page!(ImageGuideRoute => ImageGuidePage);
lazy_page!(KeysRoute => KeysPage);
lazy_page!(CertificatesRoute => CertificatesPage);
