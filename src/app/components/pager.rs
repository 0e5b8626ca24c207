use leptos::either::Either;
use leptos::prelude::*;

/// Newer/Older links under a table read a page at a time, newest first, with a line saying
/// where the reader is. A missing link is shown disabled.
#[component]
pub fn NewerOlderPager(
    summary: String,
    newer: Option<String>,
    older: Option<String>,
    /// Names the navigation landmark ("Work History pages").
    label: &'static str,
) -> impl IntoView {
    let link = |href: Option<String>, text: &'static str| match href {
        Some(href) => Either::Left(view! { <a href=href class="page">{text}</a> }),
        None => {
            Either::Right(view! { <span class="page disabled" aria-disabled="true">{text}</span> })
        }
    };
    view! {
        <div class="pagination">
            <p class="range">{summary}</p>
            <nav aria-label=label>
                <ul class="pages">
                    <li>{link(newer, "Newer")}</li>
                    <li>{link(older, "Older")}</li>
                </ul>
            </nav>
        </div>
    }
}
