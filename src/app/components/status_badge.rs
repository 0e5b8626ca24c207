use leptos::prelude::*;

use crate::domain::image::ImageStatus;

/// The image status as a coloured label; the text carries the meaning, not the colour.
#[component]
pub fn StatusBadge(status: ImageStatus) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{}", status.as_str())>
            <span class="badge-dot" aria-hidden="true"></span>
            {status.label()}
        </span>
    }
}
