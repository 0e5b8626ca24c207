//! Encryption (Off or On) and, when on, the Key: on Create Image and in Replicate's dialog.

use leptos::prelude::*;

use crate::app::components::form_field::{FieldState, RadioGroup, SelectField};
use crate::domain::keys::{EncryptionChoice, KeyState};
use crate::server_fns::keys::list_keys;

/// The account's enabled keys as choices (id, label), the default first; loaded once `load`
/// says so (when Encryption is turned on, or a dialog opens).
pub fn enabled_key_options(
    load: impl Fn() -> bool + Send + Sync + 'static,
) -> Signal<Vec<(String, String)>> {
    let keys = Resource::new(load, |load| async move {
        if load {
            list_keys().await.unwrap_or_default()
        } else {
            Vec::new()
        }
    });
    Signal::derive(move || {
        let mut keys: Vec<_> = keys
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter(|k| k.state == KeyState::Enabled)
            .collect();
        keys.sort_by_key(|k| !k.is_default);
        keys.into_iter()
            .map(|k| {
                let label = if k.is_default {
                    format!("{} (the default key)", k.name)
                } else {
                    k.name
                };
                (k.id, label)
            })
            .collect()
    })
}

/// The Encryption radio buttons, and the Key drop-down while Encryption is on (empty: the
/// account's default key).
#[component]
pub fn EncryptionFields(
    legend: &'static str,
    encryption: FieldState,
    key: FieldState,
    options: Signal<Vec<(String, String)>>,
    off_hint: &'static str,
    on_hint: &'static str,
) -> impl IntoView {
    let on = move || encryption.value.get() == "on";
    view! {
        <RadioGroup
            legend
            field=encryption
            options=vec![("off", "Off", off_hint), ("on", "On", on_hint)]
            error=encryption.message(|raw| EncryptionChoice::parse(raw, ""))
        />
        {move || on().then(|| view! {
            <SelectField
                label="Key"
                field=key
                options
                error=key.message(|raw| EncryptionChoice::parse("on", raw))
                hint="The key cannot be changed later: Replicate the image to use another. Manage keys on the Keys page."
                placeholder="The account's default key"
            />
        })}
    }
}
