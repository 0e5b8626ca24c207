use leptos::prelude::*;
use leptos_router::components::A;

use super::skipped_list::SkippedList;
use crate::domain::image::BatchOutcome;

/// Where to go after a batch action did something: a link under the summary.
#[derive(Clone, Copy)]
pub struct FollowUp {
    pub href: &'static str,
    /// The link's text for one image and for several.
    pub one: &'static str,
    pub many: &'static str,
}

/// What the last batch action (Approve, Reject, Restore, Destroy) did: "Restored 2 images:
/// a, b.", a follow-up link, and the images left as they were, each with the reason.
#[component]
pub fn BatchSummary(
    verb: &'static str,
    result: BatchOutcome,
    #[prop(default = None)] follow_up: Option<FollowUp>,
) -> impl IntoView {
    let done = result.done.len();
    let plural = |n: usize| if n == 1 { "image" } else { "images" };
    let all_done = result.skipped.is_empty();
    let names = result.done.join(", ");
    view! {
        <div class="alert" class:alert-success=all_done class:alert-warning=!all_done role="status">
            <p>
                <strong>{format!("{verb} {done} {}", plural(done))}</strong>
                {(!names.is_empty()).then(|| format!(": {names}."))}
                {follow_up.filter(|_| done > 0).map(|f| view! {
                    " " <A href=f.href>{if done == 1 { f.one } else { f.many }}</A> "."
                })}
                {(!result.skipped.is_empty()).then(|| format!(" {} not changed:", result.skipped.len()))}
            </p>
            <SkippedList skipped=result.skipped />
        </div>
    }
}
