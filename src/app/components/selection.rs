//! Rows picked with checkboxes in a table (the Image List, the Image Share Request List):
//! id → name, so a confirmation can name what it acts on.

use std::collections::BTreeMap;

use leptos::prelude::*;

pub type Selection = RwSignal<BTreeMap<String, String>>;

pub fn new_selection() -> Selection {
    RwSignal::new(BTreeMap::new())
}

/// Whether every one of these rows (id, name) is picked; false when there are none.
pub fn all_selected(
    selection: Selection,
    rows: Vec<(String, String)>,
) -> impl Fn() -> bool + Send + Sync + Clone + 'static {
    move || !rows.is_empty() && selection.with(|s| rows.iter().all(|(id, _)| s.contains_key(id)))
}

/// The "select all" checkbox's handler: picks or drops every one of these rows.
pub fn toggle_all(
    selection: Selection,
    rows: Vec<(String, String)>,
) -> impl Fn(leptos::ev::Event) + Clone + 'static {
    move |ev| {
        let checked = event_target_checked(&ev);
        selection.update(|s| {
            for (id, name) in &rows {
                if checked {
                    s.insert(id.clone(), name.clone());
                } else {
                    s.remove(id);
                }
            }
        });
    }
}

/// Whether one row is picked.
pub fn row_selected(selection: Selection, id: String) -> Signal<bool> {
    Signal::derive(move || selection.with(|s| s.contains_key(&id)))
}

/// One row's checkbox handler.
pub fn toggle_row(
    selection: Selection,
    id: String,
    name: String,
) -> impl Fn(leptos::ev::Event) + Clone + 'static {
    move |ev| {
        let on = event_target_checked(&ev);
        selection.update(|s| {
            if on {
                s.insert(id.clone(), name.clone());
            } else {
                s.remove(&id);
            }
        });
    }
}

/// The ids picked, in order.
pub fn selected_ids(selection: Selection) -> Vec<String> {
    selection.with(|s| s.keys().cloned().collect())
}
