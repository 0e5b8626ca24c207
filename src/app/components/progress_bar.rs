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
    // A native <progress>: no inline style to size a bar, which the Content-Security-Policy
    // forbids; without a value it shows as indeterminate.
    view! {
        <div class="progress">
            <progress
                class="progress-track"
                max="100"
                value=percent.map(|p| p.to_string())
                aria-label=label
                aria-valuenow=percent.map(|p| p.to_string())
                aria-valuetext=text.clone()
            ></progress>
            <span class="progress-text">{text}</span>
        </div>
    }
}
