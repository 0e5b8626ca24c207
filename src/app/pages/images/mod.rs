pub mod create;
pub mod detail;
mod detail_actions;
pub mod detail_history;
pub mod detail_info;
pub mod detail_tags;
pub mod download_panel;
pub mod list;
mod list_table;
pub mod recycle_bin;
pub mod work_history;

use std::time::Duration;

use leptos::prelude::*;

/// How often a page refreshes while an import is running.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(1000);

/// Refetches `refetch` every `REFRESH_INTERVAL` while `active` is true, until the page goes.
pub fn refresh_while(active: Signal<bool>, refetch: impl Fn() + Clone + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                if active.get_untracked() {
                    refetch();
                }
            },
            REFRESH_INTERVAL,
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (active, refetch);
}
