//! Sharing pages: Share to another Account (the owner), the Image Share Request List and Get
//! Image Share (the account an image is shared with).

pub mod get_share;
pub mod requests;
pub mod share;

use leptos::prelude::*;

use crate::domain::share::ShareStatus;

/// A share's status as a coloured label; the text carries the meaning.
#[component]
pub fn ShareStatusBadge(status: ShareStatus) -> impl IntoView {
    view! {
        <span class=format!("badge badge-share-{}", status.as_str())>
            <span class="badge-dot" aria-hidden="true"></span>
            {status.label()}
        </span>
    }
}
