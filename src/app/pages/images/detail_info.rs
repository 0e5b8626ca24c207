//! The Details tab: every attribute of the image, and its Edit form.

use leptos::prelude::*;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{
    FieldState, RadioGroup, SelectField, TextField, apply_server_errors,
};
use crate::app::components::status_badge::StatusBadge;
use crate::app::error::AppError;
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::image::ImageDetail;
use crate::domain::image_spec::{Description, ImageName, MinDiskGb, MinRamGb, OsType, field};
use crate::domain::units::{
    format_bytes, format_image_size, format_money, format_rfc3339, format_timestamp, monthly_cost,
};
use crate::server_fns::images::{UpdateImage, get_console_settings};

#[component]
pub fn DetailList(image: ImageDetail) -> impl IntoView {
    let settings = Resource::new(|| (), |_| get_console_settings());
    let size_bytes = image.size_bytes;
    let row = |label: &'static str, value: AnyView| {
        view! {
            <div class="detail-row">
                <dt>{label}</dt>
                <dd>{value}</dd>
            </div>
        }
    };
    let text = |s: String| view! { {s} }.into_any();
    let dash = || view! { <span class="muted">"—"</span> }.into_any();
    let time = |ms: i64| {
        view! { <time datetime=format_rfc3339(ms)>{format_timestamp(ms)}</time> }.into_any()
    };
    let mono = |s: String| view! { <span class="mono break">{s}</span> }.into_any();
    let tags = if image.tags.is_empty() {
        dash()
    } else {
        let list = image
            .tags
            .iter()
            .map(|t| {
                let text = if t.value.is_empty() {
                    t.key.clone()
                } else {
                    format!("{}: {}", t.key, t.value)
                };
                view! { <li class="tag">{text}</li> }
            })
            .collect_view();
        view! { <ul class="tag-list">{list}</ul> }.into_any()
    };

    view! {
        <dl class="detail-list">
            {row("Resource ID", mono(image.id.clone()))}
            {row("SRN", mono(image.srn.clone()))}
            {row("Image name", text(image.name.clone()))}
            {row("Status", view! {
                <StatusBadge status=image.status />
                {image.failure_reason.clone().map(|r| view! { <p class="failure-reason">{r}</p> })}
            }.into_any())}
            {row("OS type", text(image.os_type.label().to_owned()))}
            {row("Image Type", text(image.image_type.clone()))}
            {row("Image file URL", image.source_url.clone().map(mono).unwrap_or_else(dash))}
            {row("Image size", match size_bytes {
                Some(bytes) => view! {
                    <span title=format!("{bytes} bytes")>{format_image_size(bytes)}</span>
                    <span class="muted">{format!(" ({bytes} bytes)")}</span>
                }.into_any(),
                None => dash(),
            })}
            {row("Virtual size", image.virtual_size_bytes.map(|b| text(format!("{} ({b} bytes)", format_bytes(b)))).unwrap_or_else(dash))}
            {row("Disk format", image.disk_format.map(|f| text(f.as_str().to_owned())).unwrap_or_else(dash))}
            {row("OS hash algorithm", image.hash_algorithm.clone().map(text).unwrap_or_else(dash))}
            {row("OS hash value", image.hash_value.clone().map(mono).unwrap_or_else(dash))}
            {row("MD5 checksum", image.checksum_md5.clone().map(mono).unwrap_or_else(dash))}
            {row("Minimum Disk", text(format!("{} GB", image.min_disk_gb)))}
            {row("Minimum RAM", text(format!("{} GB", image.min_ram_gb)))}
            {row("Architecture", text(image.architecture.as_str().to_owned()))}
            {row("Boot mode", text(image.boot_mode.label().to_owned()))}
            {row("Features", text(image.features.label()))}
            {row("Visibility", text(image.visibility.label().to_owned()))}
            {row("Protected", text(if image.protected { "Use".into() } else { "Not used".into() }))}
            {row("Description", if image.description.is_empty() { dash() } else { text(image.description.clone()) })}
            {row("Tags", tags)}
            {row("Estimated monthly cost", view! {
                <Transition fallback=|| "…">
                    {move || Suspend::new(async move {
                        settings.await.ok().map(|s| match size_bytes {
                            Some(bytes) => format!(
                                "{} / month",
                                format_money(monthly_cost(bytes, s.price_per_gb_month), &s.currency)
                            ),
                            None => "Known once the import finishes".to_owned(),
                        })
                    })}
                </Transition>
            }.into_any())}
            {row("Creator", text(image.created_by.clone()))}
            {row("Creation time", time(image.created_at_ms))}
            {row("Editor", text(image.updated_by.clone()))}
            {row("Modification time", time(image.updated_at_ms))}
        </dl>
    }
}

/// Edit: the attributes a person may change, with the Create form's rules.
#[component]
pub fn EditImagePanel(
    image: ImageDetail,
    update: ServerAction<UpdateImage>,
    editing: RwSignal<bool>,
) -> impl IntoView {
    let name = FieldState::new(field::NAME, &image.name);
    let description = FieldState::new(field::DESCRIPTION, &image.description);
    let os_type = FieldState::new(field::OS_TYPE, image.os_type.as_str());
    let min_disk = FieldState::new(field::MIN_DISK, &image.min_disk_gb.to_string());
    let min_ram = FieldState::new(field::MIN_RAM, &image.min_ram_gb.to_string());
    let architecture = FieldState::new("architecture", image.architecture.as_str());
    let boot_mode = FieldState::new("boot_mode", image.boot_mode.as_str());
    let cloud_init = RwSignal::new(image.features.cloud_init);
    let qemu_guest_agent = RwSignal::new(image.features.qemu_guest_agent);
    let protected = RwSignal::new(image.protected);
    let fields = [
        name,
        description,
        os_type,
        min_disk,
        min_ram,
        architecture,
        boot_mode,
    ];
    let form_error = RwSignal::new(None::<AppError>);
    // The version when the form opened: only answers to this form's submissions count.
    let opened_at = update.version().get_untracked();
    Effect::new(move |_| {
        if update.version().get() == opened_at {
            return;
        }
        match update.value().get() {
            Some(Ok(())) => editing.set(false),
            Some(Err(error)) => {
                let unplaced = apply_server_errors(&fields, error.field_errors());
                form_error.set(match error {
                    AppError::Invalid(_) if unplaced.is_empty() => None,
                    AppError::Invalid(_) => Some(AppError::Conflict(unplaced.join(" "))),
                    other => Some(other),
                });
            }
            None => {}
        }
    });
    let os_options = OsType::ALL
        .iter()
        .map(|os| (os.as_str(), os.label()))
        .collect::<Vec<_>>();

    view! {
        <section class="card form-section" aria-labelledby="edit-title">
            <h2 id="edit-title">"Edit Image"</h2>
            {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
            <ActionForm action=update on:submit=move |_| fields.iter().for_each(|f| f.touch())>
                <input type="hidden" name="id" value=image.id.clone() />
                <input type="hidden" name="updated_at_ms" value=image.updated_at_ms.to_string() />
                <TextField
                    label="Image name"
                    field=name
                    error=name.message(ImageName::parse)
                    hint="Up to 255 English letters, digits, spaces, '-' and '_'."
                    required=true
                />
                <TextField
                    label="Description"
                    field=description
                    error=description.message(Description::parse)
                    hint="Optional, up to 255 characters."
                    multiline=true
                />
                <SelectField
                    label="OS type"
                    field=os_type
                    options=os_options
                    error=os_type.message(OsType::parse)
                    placeholder="Select an OS type"
                    required=true
                />
                <div class="field-row">
                    <TextField
                        label="Minimum Disk (GB)"
                        field=min_disk
                        error=min_disk.message(MinDiskGb::parse)
                        hint="0 to 12,288 GB."
                        inputmode="numeric"
                        required=true
                    />
                    <TextField
                        label="Minimum RAM (GB)"
                        field=min_ram
                        error=min_ram.message(MinRamGb::parse)
                        hint="0 to 2,097,151 GB."
                        inputmode="numeric"
                        required=true
                    />
                </div>
                <div class="field-row">
                    <SelectField
                        label="Architecture"
                        field=architecture
                        options=Architecture::ALL.iter().map(|a| (a.as_str(), a.as_str())).collect()
                        error=architecture.message(Architecture::parse)
                        placeholder="Select an architecture"
                    />
                    <RadioGroup
                        legend="Boot mode"
                        field=boot_mode
                        options=BootMode::ALL.iter().map(|b| (b.as_str(), b.label(), "")).collect()
                        error=boot_mode.message(BootMode::parse)
                    />
                </div>
                <fieldset class="field">
                    <legend>"Features"</legend>
                    <div class="checkbox">
                        <input type="checkbox" id="edit-cloud_init" name="cloud_init" bind:checked=cloud_init />
                        <label for="edit-cloud_init">{Features::CLOUD_INIT}</label>
                    </div>
                    <div class="checkbox">
                        <input type="checkbox" id="edit-qemu_guest_agent" name="qemu_guest_agent" bind:checked=qemu_guest_agent />
                        <label for="edit-qemu_guest_agent">{Features::QEMU_GUEST_AGENT}</label>
                    </div>
                </fieldset>
                <fieldset class="field">
                    <legend>"Protected"</legend>
                    <div class="checkbox">
                        <input type="checkbox" id="edit-protected" name="protected" bind:checked=protected />
                        <label for="edit-protected">"Use"</label>
                    </div>
                </fieldset>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || update.pending().get()>
                        {move || if update.pending().get() { "Saving…" } else { "Save" }}
                    </button>
                    <button type="button" class="btn" on:click=move |_| editing.set(false)>"Cancel"</button>
                </div>
            </ActionForm>
        </section>
    }
}
