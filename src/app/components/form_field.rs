//! Labelled form controls that show the domain's validation message beside the field.
//!
//! A field's message appears as soon as its value breaks a rule (after the first keystroke or
//! when the field loses focus), using the same `parse` the server runs. A message from the
//! server for a field replaces it until the value changes again.

use leptos::prelude::*;

use crate::domain::FieldError;
use crate::server_fns::error::AppError;

/// The state of one form field: its value, whether the user has been there, and the
/// server's last word on it. `form` names the form it belongs to: element ids are
/// `{form}-{name}`, so two forms on one page never share one.
#[derive(Clone, Copy, Debug)]
pub struct FieldState {
    pub form: &'static str,
    pub name: &'static str,
    pub value: RwSignal<String>,
    pub touched: RwSignal<bool>,
    pub server_error: RwSignal<Option<String>>,
}

impl FieldState {
    pub fn new(form: &'static str, name: &'static str, initial: &str) -> Self {
        Self {
            form,
            name,
            value: RwSignal::new(initial.to_owned()),
            touched: RwSignal::new(false),
            server_error: RwSignal::new(None),
        }
    }

    /// The message to show: the client-side check once touched, else the server's.
    pub fn message<T>(
        self,
        parse: impl Fn(&str) -> Result<T, FieldError> + Send + Sync + 'static,
    ) -> Signal<Option<String>> {
        Signal::derive(move || {
            let client = self
                .touched
                .get()
                .then(|| parse(&self.value.get()).err().map(|e| e.message))
                .flatten();
            client.or_else(|| self.server_error.get())
        })
    }

    /// Marks the field as visited, so its message shows even if it was never typed in.
    pub fn touch(self) {
        self.touched.set(true);
    }

    /// The control's element id; its hint and error are `{id}-hint` and `{id}-error`.
    pub fn id(self) -> String {
        format!("{}-{}", self.form, self.name)
    }

    fn on_edit(self) {
        self.touched.set(true);
        self.server_error.set(None);
    }
}

/// The fields of several groups as one array, for marking them visited and placing errors.
pub fn all_fields<const N: usize>(groups: &[&[FieldState]]) -> [FieldState; N] {
    let all: Vec<FieldState> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    all.try_into()
        .unwrap_or_else(|all: Vec<_>| panic!("{N} fields expected, {} given", all.len()))
}

/// Puts each server error under its field; returns the ones no field of this form shows.
pub fn apply_server_errors(fields: &[FieldState], errors: &[FieldError]) -> Vec<String> {
    let mut unplaced = Vec::new();
    for field in fields {
        field.server_error.set(None);
    }
    for error in errors {
        match fields.iter().find(|f| f.name == error.field) {
            Some(field) => field.server_error.set(Some(error.message.clone())),
            None => unplaced.push(error.message.clone()),
        }
    }
    unplaced
}

/// Shows a failed submission: errors of `field_errors` go under their fields, and what is
/// left (other errors, or field errors no field of the form shows) is returned for the
/// form's alert.
pub fn form_alert(
    error: &AppError,
    field_errors: &[FieldError],
    fields: &[FieldState],
) -> Option<AppError> {
    let unplaced = apply_server_errors(fields, field_errors);
    match error {
        AppError::Invalid(_) if unplaced.is_empty() => None,
        AppError::Invalid(_) => Some(AppError::Conflict(unplaced.join(" "))),
        other => Some(other.clone()),
    }
}

/// `aria-describedby` for a control with an optional hint and a possible error.
fn described_by(
    id: String,
    has_hint: bool,
    error: Signal<Option<String>>,
) -> impl Fn() -> Option<String> + Send + Sync + Clone {
    move || {
        let mut ids = Vec::new();
        if has_hint {
            ids.push(format!("{id}-hint"));
        }
        if error.get().is_some() {
            ids.push(format!("{id}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }
}

/// The hint and error lines under a control.
#[component]
fn FieldNotes(
    id: String,
    hint: Option<&'static str>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        {hint.map(|h| view! { <p class="hint" id=format!("{id}-hint")>{h}</p> })}
        {move || {
            error.get().map(|m| view! {
                <p class="field-error" id=error_id.clone()>
                    <span aria-hidden="true">"⚠ "</span>
                    {m}
                </p>
            })
        }}
    }
}

/// A text input (or a textarea with `multiline`) with its label, hint and error. The
/// required mark sits outside the label, so the label is exactly the field's name.
#[component]
pub fn TextField(
    label: &'static str,
    field: FieldState,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(default = "text")] input_type: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] required: bool,
    #[prop(optional)] multiline: bool,
    /// A textarea's height in lines.
    #[prop(default = 3)]
    rows: u32,
) -> impl IntoView {
    let id = field.id();
    let invalid = move || error.get().is_some().then_some("true");
    let describedby = described_by(field.id(), hint.is_some(), error);
    let control = if multiline {
        view! {
            <textarea
                id=id.clone()
                name=field.name
                rows=rows
                aria-invalid=invalid
                aria-describedby=describedby
                bind:value=field.value
                on:input=move |_| field.on_edit()
                on:blur=move |_| field.touch()
            ></textarea>
        }
        .into_any()
    } else {
        view! {
            <input
                id=id.clone()
                name=field.name
                type=input_type
                autocomplete=autocomplete
                inputmode=inputmode
                placeholder=placeholder
                aria-required=required.then_some("true")
                aria-invalid=invalid
                aria-describedby=describedby
                bind:value=field.value
                on:input=move |_| field.on_edit()
                on:blur=move |_| field.touch()
            />
        }
        .into_any()
    };
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id>{label}</label>
            {required.then(|| view! { <span class="required" aria-hidden="true">"*"</span> })}
            {control}
            <FieldNotes id=field.id() hint error />
        </div>
    }
}

/// A drop-down list with a placeholder option. The options may change (a list that depends
/// on other fields); the chosen one stays chosen while it is offered.
#[component]
pub fn SelectField(
    label: &'static str,
    field: FieldState,
    #[prop(into)] options: Signal<Vec<(String, String)>>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] required: bool,
    placeholder: &'static str,
) -> impl IntoView {
    let id = field.id();
    let invalid = move || error.get().is_some().then_some("true");
    let describedby = described_by(field.id(), hint.is_some(), error);
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            {required.then(|| view! { <span class="required" aria-hidden="true">"*"</span> })}
            <select
                id=id
                name=field.name
                aria-required=required.then_some("true")
                aria-invalid=invalid
                aria-describedby=describedby
                prop:value=move || field.value.get()
                on:change=move |ev| {
                    field.value.set(event_target_value(&ev));
                    field.on_edit();
                }
                on:blur=move |_| field.touch()
            >
                <option value="" selected=move || field.value.get().is_empty()>{placeholder}</option>
                {move || {
                    options
                        .get()
                        .into_iter()
                        .map(|(value, text)| {
                            let chosen = value.clone();
                            view! {
                                <option value=value selected=move || field.value.get() == chosen>
                                    {text}
                                </option>
                            }
                        })
                        .collect_view()
                }}
            </select>
            <FieldNotes id=field.id() hint error />
        </div>
    }
}

/// Fixed options for `SelectField`.
pub fn select_options(options: &[(&str, &str)]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|(value, text)| ((*value).to_owned(), (*text).to_owned()))
        .collect()
}

/// A group of radio buttons in a fieldset, each with its own label and description.
#[component]
pub fn RadioGroup(
    legend: &'static str,
    field: FieldState,
    options: Vec<(&'static str, &'static str, &'static str)>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <fieldset class="field radio-group" class:has-error=move || error.get().is_some()>
            <legend>{legend}</legend>
            {options
                .into_iter()
                .map(|(value, text, description)| {
                    let id = format!("{}-{value}", field.id());
                    view! {
                        <div class="radio">
                            <input
                                type="radio"
                                id=id.clone()
                                name=field.name
                                value=value
                                checked=move || field.value.get() == value
                                on:change=move |_| {
                                    field.value.set(value.to_owned());
                                    field.on_edit();
                                }
                            />
                            <label for=id>
                                <span class="radio-label">{text}</span>
                                <span class="radio-description">{description}</span>
                            </label>
                        </div>
                    }
                })
                .collect_view()}
            <FieldNotes id=field.id() hint=None error />
        </fieldset>
    }
}

/// A text input in one row of a list the user grows (the Create form's tags): its name and
/// label carry the row's number, and its value lives with the row.
#[component]
pub fn RowTextField(
    label: String,
    id: String,
    name: String,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let invalid = move || error.get().is_some().then_some("true");
    let describedby = described_by(id.clone(), false, error);
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            <input
                id=id.clone()
                name=name
                aria-invalid=invalid
                aria-describedby=describedby
                bind:value=value
            />
            <FieldNotes id hint=None error />
        </div>
    }
}
