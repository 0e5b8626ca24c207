use leptos::prelude::*;

use crate::domain::image::SkippedImage;

/// The images a batch action (Delete, Approve, Reject) left alone, each with the reason.
#[component]
pub fn SkippedList(skipped: Vec<SkippedImage>) -> impl IntoView {
    (!skipped.is_empty()).then(|| {
        view! {
            <ul class="skipped">
                {skipped
                    .into_iter()
                    .map(|s| view! { <li><strong>{s.name}</strong>" — "{s.reason}</li> })
                    .collect_view()}
            </ul>
        }
    })
}
