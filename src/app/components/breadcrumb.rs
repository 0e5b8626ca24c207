//! The trail above a page's heading: the Image List, an optional parent page, then this page.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Breadcrumb(
    /// This page's name.
    current: &'static str,
    /// A page between the Image List and this one: its address and name.
    #[prop(optional)]
    parent: Option<(String, String)>,
) -> impl IntoView {
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <A href="/images">"Image List"</A>
            <span aria-hidden="true">" / "</span>
            {parent.map(|(href, name)| view! {
                <A href=href>{name}</A>
                <span aria-hidden="true">" / "</span>
            })}
            <span aria-current="page">{current}</span>
        </nav>
    }
}
