//! The Details tab: every attribute of the image, and its Edit form.

use leptos::prelude::*;

use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{
    FieldState, RadioGroup, TextField, all_fields, form_alert,
};
use crate::app::components::image_attribute_fields::{AttributeFields, ImageAttributeFields};
use crate::app::components::status_badge::StatusBadge;
use crate::domain::deprecation::{self, DeprecateOn};
use crate::domain::image::{Ancestor, AncestorState, ImageDetail, ImageStatus};
use crate::domain::image_spec::{Description, ImageName, Visibility, field};
use crate::domain::keys::KeyState;
use crate::domain::os_catalogue::{self, OsRequirement};
use crate::domain::share::check_visibility_change;
use crate::domain::units::{
    format_bytes, format_image_size, format_money, format_rfc3339, format_timestamp, monthly_cost,
};
use crate::server_fns::error::AppError;
use crate::server_fns::images::{SetDeprecation, UpdateImage, get_console_settings};

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
            {image.shared_by.clone().map(|owner| row("Owner Account ID", mono(owner)))}
            {(!image.lineage.is_empty()).then(|| row("Lineage", view! { <Lineage ancestors=image.lineage.clone() /> }.into_any()))}
            {row("Image name", text(image.attributes.name.clone()))}
            {row("Status", view! {
                <StatusBadge status=image.status />
                {image.failure_reason.clone().map(|r| view! { <p class="failure-reason">{r}</p> })}
            }.into_any())}
            {image.deprecate_at_ms.map(|at| row("Deprecate on", view! {
                {image.deprecated.then(|| view! {
                    <span class="badge badge-deactivated">
                        <span class="badge-dot" aria-hidden="true"></span>
                        "Deprecated"
                    </span>
                    " "
                })}
                <time datetime=format_rfc3339(at)>{format_timestamp(at)}</time>
                <p class="hint">{if image.deprecated {
                    "Deprecated: it still works, but default lists leave it out."
                } else {
                    "From then it still works, but default lists leave it out."
                }}</p>
            }.into_any()))}
            {image.hidden.then(|| row("Hidden", text("Yes: left out of default lists (os_hidden, set through the image API)".to_owned())))}
            {row(os_catalogue::label::OS_FAMILY, match (&image.attributes.os, &image.shared_by) {
                // The image API made it without one; its owner is asked to say which.
                (None, None) => view! {
                    {os_catalogue::NOT_SPECIFIED}
                    <p class="hint">"The image API created this image without an operating system. Choose Edit to set it, so the image can be found by its system."</p>
                }.into_any(),
                (os, _) => text(os_catalogue::family_label(os.as_ref()).to_owned()),
            })}
            {row(os_catalogue::label::OS_PLATFORM, text(os_catalogue::platform_label(image.attributes.os.as_ref()).to_owned()))}
            {row(os_catalogue::label::OS_VERSION, text(os_catalogue::version_label(image.attributes.os.as_ref()).to_owned()))}
            {row("Image Type", text(image.image_type.clone()))}
            // Where the bytes came from, and what storing them costs, are the owner's.
            {match (&image.shared_by, &image.source_file_name) {
                (Some(_), _) => None,
                (None, Some(file)) => Some(row("Local file", text(file.clone()))),
                (None, None) if image.from_api() => Some(row("Source", text("Image API".to_owned()))),
                (None, None) => Some(match image.replica_of() {
                    Some(source) => row("Replicated from", view! {
                        <a href=format!("/images/{source}") class="mono break">{source.to_owned()}</a>
                        <span class="muted">" (Replicate: a copy of its bytes)"</span>
                    }.into_any()),
                    None => row("Image file URL", image.source_url.clone().map(mono).unwrap_or_else(dash)),
                }),
            }}
            {row("Image size", match size_bytes {
                Some(bytes) => view! {
                    <span title=format!("{bytes} bytes")>{format_image_size(bytes)}</span>
                    <span class="muted">{format!(" ({bytes} bytes)")}</span>
                }.into_any(),
                None => dash(),
            })}
            {row("Virtual size", image.virtual_size_bytes.map(|b| text(format!("{} ({b} bytes)", format_bytes(b)))).unwrap_or_else(dash))}
            {row("Disk format", image.disk_format.map(|f| text(f.label().to_owned())).unwrap_or_else(dash))}
            {image.convert_to.target().filter(|_| image.status == ImageStatus::Converting).map(|target| {
                row("Convert to", text(format!(
                    "{} (the received {} file is being converted with qemu-img; until it is done, the size and hashes shown are the received file's)",
                    target.label(),
                    image.disk_format.map_or("", |f| f.label())
                )))
            })}
            {image.source_file.clone().map(|source| row("Source file", view! {
                <span>{format!("{}, {} ({} bytes)", source.disk_format.label(), format_bytes(source.size_bytes), source.size_bytes)}</span>
                <dl class="source-file">
                    <dt>"SHA-512"</dt>
                    <dd class="mono break">{source.sha512}</dd>
                    <dt>"MD5"</dt>
                    <dd class="mono break">{source.md5}</dd>
                </dl>
                <p class="hint">{format!(
                    "The file as it was received and checked, before it was converted to {}. Its hashes let you verify what was sent.",
                    image.disk_format.map_or("another format", |f| f.label())
                )}</p>
            }.into_any()))}
            {match (image.verified_signature.clone(), image.signature.is_empty()) {
                (Some(verified), _) => Some(row("Signature", view! {
                    <span class="badge badge-active">
                        <span class="badge-dot" aria-hidden="true"></span>
                        "Verified"
                    </span>
                    <dl class="source-file">
                        <dt>"Certificate"</dt>
                        <dd>{verified.certificate_subject.clone()}</dd>
                        <dt>"Fingerprint (SHA-256)"</dt>
                        <dd class="mono break">{verified.certificate_fingerprint.clone()}</dd>
                        <dt>"Algorithm"</dt>
                        <dd>{verified.algorithm()}</dd>
                        <dt>"Verified"</dt>
                        <dd><time datetime=format_rfc3339(verified.verified_at_ms)>{format_timestamp(verified.verified_at_ms)}</time></dd>
                    </dl>
                    <p class="hint">{if image.source_file.is_some() {
                        "The signature covers the file as received, before conversion."
                    } else {
                        "The image's bytes were verified against the signature as they arrived."
                    }}</p>
                }.into_any())),
                (None, false) => Some(row("Signature", text(match image.status {
                    ImageStatus::Failed => "Not verified (see why the image failed)".to_owned(),
                    _ => "To be verified when the bytes arrive".to_owned(),
                }))),
                (None, true) => None,
            }}
            {row("Encryption", match image.encryption.clone() {
                None => text("Off".to_owned()),
                Some(encryption) => {
                    let key = encryption.key;
                    let badge = match key.state {
                        KeyState::Enabled => "badge badge-active",
                        KeyState::Disabled => "badge badge-deactivated",
                        KeyState::PendingDeletion | KeyState::Deleted => "badge badge-failed",
                    };
                    let name = if key.name.is_empty() {
                        "the owner account's key".to_owned()
                    } else {
                        format!("key {}", key.name)
                    };
                    view! {
                        <span>{format!("On, with {name} ")}</span>
                        <span class=badge><span class="badge-dot" aria-hidden="true"></span>{key.state.label()}</span>
                        <div class="mono break muted">{key.id.clone()}</div>
                        {encryption.data_key_version.map(|v| view! {
                            <div class="hint">{format!("Data key wrapped under key version {v}. KMS envelope encryption: AES-256-GCM in 64 KiB segments.")}</div>
                        })}
                        {key.unusable_reason().map(|reason| {
                            let reason = if key.name.is_empty() {
                                "The owner account's key for this image cannot be used now, so the image cannot be downloaded until the owner enables it.".to_owned()
                            } else {
                                reason
                            };
                            view! { <p class="failure-reason">{reason}</p> }
                        })}
                        {(!key.name.is_empty()).then(|| view! { <a href="/images/keys">"Manage keys"</a> })}
                    }.into_any()
                }
            })}
            {row("OS hash algorithm", image.hash_algorithm.clone().map(text).unwrap_or_else(dash))}
            {row("OS hash value", image.hash_value.clone().map(mono).unwrap_or_else(dash))}
            {row("MD5 checksum", image.checksum_md5.clone().map(mono).unwrap_or_else(dash))}
            {image.expected_checksum.clone().map(|c| {
                // Shown only when the creator gave one; an Active image has passed it.
                let verified = if image.status == ImageStatus::Active { " (verified)" } else { "" };
                row("Expected checksum", view! {
                    <span class="mono break">{format!("{} {}", c.algorithm.label(), c.hex)}</span>
                    <span class="muted">{verified}</span>
                }.into_any())
            })}
            {row("Minimum Disk", text(format!("{} GB", image.attributes.min_disk_gb)))}
            {row("Minimum RAM", text(format!("{} GB", image.attributes.min_ram_gb)))}
            {row("Architecture", text(image.attributes.architecture.as_str().to_owned()))}
            {row("Boot mode", text(image.attributes.boot_mode.label().to_owned()))}
            {row("Features", text(image.attributes.features.label()))}
            {row("Visibility", text(match (image.shared_by.is_none(), image.active_shares) {
                (true, n) if n > 0 => format!(
                    "{} (shared with {n} {})",
                    image.visibility.label(),
                    if n == 1 { "account" } else { "accounts" }
                ),
                _ => image.visibility.label().to_owned(),
            }))}
            {row("Protected", text(if image.attributes.protected { "Use".into() } else { "Not used".into() }))}
            {row("Description", if image.attributes.description.is_empty() { dash() } else { text(image.attributes.description.clone()) })}
            {image.shared_by.is_none().then(|| row("Tags", tags))}
            {image.shared_by.is_none().then(|| row("Estimated monthly cost", view! {
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
            }.into_any()))}
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
    let name = FieldState::new("edit", field::NAME, &image.attributes.name);
    let description = FieldState::new("edit", field::DESCRIPTION, &image.attributes.description);
    let attributes = AttributeFields::new(
        "edit",
        image.attributes.os.as_ref(),
        OsRequirement::to_edit(image.attributes.os.as_ref()),
        image.attributes.min_disk_gb,
        image.attributes.min_ram_gb,
        image.attributes.architecture,
        image.attributes.boot_mode,
        image.attributes.features,
    );
    let protected = RwSignal::new(image.attributes.protected);
    let visibility = FieldState::new("edit", field::VISIBILITY, image.visibility.as_str());
    let active_shares = image.active_shares;
    let fields: [FieldState; 10] =
        all_fields(&[&[name, description], &attributes.states(), &[visibility]]);
    let visibility_options = Visibility::ALL
        .iter()
        .map(|v| (v.as_str(), v.label(), v.hint()))
        .collect::<Vec<_>>();
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
                form_error.set(form_alert(&error, error.field_errors(), &fields));
            }
            None => {}
        }
    });

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
                    hint=ImageName::hint()
                    required=true
                />
                <TextField
                    label="Description"
                    field=description
                    error=description.message(Description::parse)
                    hint=Description::hint()
                    multiline=true
                />
                <ImageAttributeFields fields=attributes />
                <RadioGroup
                    legend="Visibility"
                    field=visibility
                    options=visibility_options
                    error=visibility.message(move |raw| {
                        Visibility::parse(raw)
                            .and_then(|v| check_visibility_change(v, active_shares))
                    })
                />
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

/// The images this one was made from, nearest first, up to its root: the viewer's own by
/// name (a link), another account's and destroyed ones by id.
#[component]
fn Lineage(ancestors: Vec<Ancestor>) -> impl IntoView {
    let last = ancestors.len();
    let items = ancestors
        .into_iter()
        .enumerate()
        .map(|(at, ancestor)| {
            let role = match (at, at + 1 == last) {
                (0, true) => "Source and root",
                (0, false) => "Source",
                (_, true) => "Root",
                _ => "Then",
            };
            let id = ancestor.id.clone();
            let shown = match &ancestor.seen {
                AncestorState::Image { name, status } => view! {
                    <a href=format!("/images/{id}")>{name.clone()}</a>
                    " "
                    <StatusBadge status=*status />
                }
                .into_any(),
                _ => view! { <span class="muted">{ancestor.describe()}</span> }.into_any(),
            };
            view! {
                <li>
                    <span class="lineage-role">{role}</span>
                    ": "
                    {shown}
                    <div class="hint mono break">{ancestor.id.clone()}</div>
                </li>
            }
        })
        .collect_view();
    view! {
        <ol class="lineage">{items}</ol>
        <p class="hint">"The images this one was made from (Create shared Image, Replicate), nearest first."</p>
    }
}

/// Deprecation on the owner's Details tab: set, change or remove Deprecate on. From then the
/// image still works but shows as Deprecated and leaves the default Image List and image API
/// list; accounts it is shared with see the date.
#[component]
pub fn DeprecationPanel(image: ImageDetail, action: ServerAction<SetDeprecation>) -> impl IntoView {
    let field = FieldState::new(
        "deprecation",
        deprecation::field::DEPRECATE_ON,
        &image
            .deprecate_at_ms
            .map(DeprecateOn::input_value)
            .unwrap_or_default(),
    );
    let alert = RwSignal::new(None::<AppError>);
    Effect::new(move |_| match action.value().get() {
        Some(Err(error)) => alert.set(form_alert(&error, error.field_errors(), &[field])),
        Some(Ok(())) => alert.set(None),
        None => {}
    });
    let id = image.id.clone();
    let remove_id = image.id.clone();
    let has_date = image.deprecate_at_ms.is_some();
    view! {
        <section class="card form-section" aria-labelledby="deprecation-title">
            <h2 id="deprecation-title">"Deprecation"</h2>
            <p class="hint">
                "From its Deprecate on time the image still works (it can be downloaded, shared and used), but it shows as Deprecated and leaves the default Image List and image API list; the Deprecated filter shows it. Accounts it is shared with see the date."
            </p>
            <ActionForm action=action attr:novalidate=true on:submit=move |_| field.touch()>
                <input type="hidden" name="id" value=id />
                <TextField
                    label="Deprecate on (UTC)"
                    field=field
                    error=field.message(|raw| DeprecateOn::parse(raw, now_ms()))
                    hint="A date and time up to 10 years ahead; one already past deprecates the image now."
                    input_type="datetime-local"
                />
                {move || alert.get().map(|error| view! { <ErrorNotice error /> })}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>
                        "Set Deprecation"
                    </button>
                    {has_date.then(|| view! {
                        <button
                            type="button"
                            class="btn"
                            disabled=move || action.pending().get()
                            on:click=move |_| {
                                action.dispatch(SetDeprecation { id: remove_id.clone(), deprecate_on: String::new() });
                            }
                        >
                            "Remove Deprecation"
                        </button>
                    })}
                </div>
            </ActionForm>
        </section>
    }
}

/// Now, in the browser or on the server, for the form's check of Deprecate on.
fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
