//! The pages the browser loads only when they are first opened. The main bundle carries what
//! a visitor needs first (Sign In, Sign Up, the Image List and Create Image); each page here
//! is its own wasm chunk, fetched when its route is entered (or, for Image Details, when the
//! browser is idle after hydration: it is one click from the Image List).
//!
//! On the server every page renders as before; the split happens when `scripts/build` runs
//! `wasm-split-cli` over the bundle.

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

use super::pages::account_settings::AccountSettingsPage;
use super::pages::api_access::ApiAccessPage;
use super::pages::image_guide::ImageGuidePage;
use super::pages::images::detail::ImageDetailPage;
use super::pages::images::recycle_bin::RecycleBinPage;
use super::pages::images::work_history::WorkHistoryPage;
use super::pages::shares::get_share::GetImageSharePage;
use super::pages::shares::requests::ShareRequestListPage;
use super::pages::shares::share::ImageSharePage;

// Each page loads its own data when it renders, so a route has none of its own to start
// before the chunk arrives.

pub struct ImageDetailRoute;

#[lazy_route]
impl LazyRoute for ImageDetailRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ImageDetailPage /> }.into_any()
    }
}

pub struct ImageShareRoute;

#[lazy_route]
impl LazyRoute for ImageShareRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ImageSharePage /> }.into_any()
    }
}

pub struct ShareRequestListRoute;

#[lazy_route]
impl LazyRoute for ShareRequestListRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ShareRequestListPage /> }.into_any()
    }
}

pub struct GetImageShareRoute;

#[lazy_route]
impl LazyRoute for GetImageShareRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <GetImageSharePage /> }.into_any()
    }
}

pub struct WorkHistoryRoute;

#[lazy_route]
impl LazyRoute for WorkHistoryRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <WorkHistoryPage /> }.into_any()
    }
}

pub struct ApiAccessRoute;

#[lazy_route]
impl LazyRoute for ApiAccessRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ApiAccessPage /> }.into_any()
    }
}

pub struct RecycleBinRoute;

#[lazy_route]
impl LazyRoute for RecycleBinRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <RecycleBinPage /> }.into_any()
    }
}

pub struct AccountSettingsRoute;

#[lazy_route]
impl LazyRoute for AccountSettingsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <AccountSettingsPage /> }.into_any()
    }
}

pub struct ImageGuideRoute;

#[lazy_route]
impl LazyRoute for ImageGuideRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ImageGuidePage /> }.into_any()
    }
}
