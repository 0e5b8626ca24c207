use leptos::prelude::*;

/// A modal confirmation built on the native `<dialog>`, which traps focus, closes on Escape
/// and returns focus to the button that opened it.
#[component]
pub fn ConfirmDialog(
    open: RwSignal<bool>,
    title: String,
    confirm_label: &'static str,
    #[prop(into)] pending: Signal<bool>,
    on_confirm: Callback<()>,
    /// Whether confirming destroys something (a red button); otherwise the primary style.
    #[prop(default = true)]
    destructive: bool,
    children: Children,
) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    // A page may hold several dialogs (Delete, Cancel Upload); each title needs its own id.
    let title_id = format!(
        "dialog-title-{}",
        title
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            })
            .collect::<String>()
    );
    Effect::new(move |_| {
        let should_open = open.get();
        #[cfg(feature = "hydrate")]
        if let Some(element) = dialog.get() {
            if should_open && !element.open() {
                let _ = element.show_modal();
            } else if !should_open && element.open() {
                element.close();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (should_open, dialog);
    });
    view! {
        <dialog
            node_ref=dialog
            class="dialog"
            aria-labelledby=title_id.clone()
            // The close event arrives as a separate task, possibly after the page around the
            // dialog has been replaced; by then there may be no signal left to update.
            on:close=move |_| {
                open.try_set(false);
            }
        >
            <h2 id=title_id.clone()>{title}</h2>
            <div class="dialog-body">{children()}</div>
            <div class="dialog-actions">
                <button type="button" class="btn" on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
                <button
                    type="button"
                    class=if destructive { "btn btn-danger" } else { "btn btn-primary" }
                    disabled=move || pending.get()
                    on:click=move |_| on_confirm.run(())
                >
                    {confirm_label}
                </button>
            </div>
        </dialog>
    }
}
