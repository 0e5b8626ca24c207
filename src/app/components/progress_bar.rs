use leptos::prelude::*;

use crate::domain::image::ImportProgress;
use crate::domain::units::format_bytes;

/// An import's progress, for sighted users and screen readers alike.
#[component]
pub fn ProgressBar(progress: ImportProgress, label: String) -> impl IntoView {
    let percent = progress.percent();
    let done = format_bytes(progress.bytes_done);
    let text = match (percent, progress.bytes_total) {
        (Some(p), Some(total)) => format!("{p}% · {done} of {}", format_bytes(total)),
        _ => format!("{done} received"),
    };
    let width = percent
        .map(|p| format!("width: {p}%"))
        .unwrap_or_else(|| "width: 100%".into());
    view! {
        <div class="progress">
            <div
                class="progress-track"
                class:indeterminate=percent.is_none()
                role="progressbar"
                aria-label=label
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=percent.map(|p| p.to_string())
                aria-valuetext=text.clone()
            >
                <div class="progress-fill" style=width></div>
            </div>
            <span class="progress-text">{text}</span>
        </div>
    }
}
