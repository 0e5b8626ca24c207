//! Create Image: from an image file URL or a local file, with a Summary of what will be
//! created. A local file is uploaded by the tab's upload manager once the image exists.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::encryption_fields::{EncryptionFields, enabled_key_options};
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{
    FieldState, RadioGroup, RowTextField, TextField, all_fields, form_alert,
};
use crate::app::components::image_attribute_fields::{AttributeFields, ImageAttributeFields};
use crate::app::components::signature_fields::{SignatureFieldStates, SignatureFields};
use crate::app::uploads::UploadManager;
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::checksum::{ExpectedChecksum, field as checksum_field};
use crate::domain::conversion::{ConvertTo, field as conversion_field};
use crate::domain::image::DiskFormat;
use crate::domain::image_spec::{
    Description, ImageFileUrl, ImageName, MinDiskGb, MinRamGb, SourceKind, Visibility, field,
};
use crate::domain::keys::field as key_field;
use crate::domain::os_catalogue::OsRequirement;
use crate::domain::tags::{MAX_TAGS, TagPair, parse_tag_set};
use crate::domain::units::{format_bytes, format_money, monthly_cost};
use crate::domain::upload::{LocalImageFile, field as upload_field};
use crate::server_fns::error::AppError;
use crate::server_fns::images::{CreateImage, get_console_settings};

/// Convert to's choices, each saying what becomes of the file.
fn convert_options() -> Vec<(&'static str, &'static str, &'static str)> {
    ConvertTo::ALL
        .iter()
        .map(|choice| {
            let hint = match choice {
                ConvertTo::Keep => "The image keeps the format of the file you send.",
                ConvertTo::Qcow2 => "A VMDK, VHD, VHDX or raw file is converted with qemu-img once it has been received and checked. The file you sent stays listed as the Source file, with its hashes. ISO installation images are never converted.",
                ConvertTo::Raw => "Converted with qemu-img as for qcow2; a raw image is as large as its virtual disk. ISO installation images are never converted.",
            };
            (choice.as_str(), choice.label(), hint)
        })
        .collect()
}

#[component]
pub fn CreateImagePage() -> impl IntoView {
    let action = ServerAction::<CreateImage>::new();
    let settings = Resource::new(|| (), |_| get_console_settings());

    let name = FieldState::new("create", field::NAME, "");
    let source = FieldState::new("create", field::SOURCE, SourceKind::Url.as_str());
    let source_url = FieldState::new("create", field::SOURCE_URL, "");
    let local_file = LocalFileState::new();
    let is_file = move || source.value.get() == SourceKind::LocalFile.as_str();
    let import_limit = Signal::derive(move || {
        settings
            .get()
            .and_then(Result::ok)
            .map_or(u64::MAX, |s| s.import_size_limit_bytes)
    });
    let uploads = UploadManager::get();
    let checksum = FieldState::new("create", checksum_field::CHECKSUM, "");
    let encryption = FieldState::new("create", key_field::ENCRYPTION, "off");
    let encryption_key = FieldState::new("create", key_field::ENCRYPTION_KEY, "");
    let encrypted = move || encryption.value.get() == "on";
    // The account's enabled keys, the default first; loaded when Encryption is turned on.
    let key_options = enabled_key_options(encrypted);
    let key_label = move || {
        let chosen = encryption_key.value.get();
        key_options
            .get()
            .into_iter()
            .find(|(id, _)| *id == chosen)
            .map_or_else(|| "the default key".to_owned(), |(_, name)| name)
    };
    // Empty until the console's default (`CONVERT_TO`) arrives; the server reads empty as it.
    let convert_to = FieldState::new("create", conversion_field::CONVERT_TO, "");
    Effect::new(move |_| {
        if let Some(Ok(settings)) = settings.get()
            && convert_to.value.get_untracked().is_empty()
        {
            convert_to
                .value
                .set(settings.convert_to_default.as_str().to_owned());
        }
    });
    let signature = SignatureFieldStates::new("create");
    let visibility = FieldState::new("create", field::VISIBILITY, Visibility::Private.as_str());
    let description = FieldState::new("create", field::DESCRIPTION, "");
    let protected = RwSignal::new(false);
    let attributes = AttributeFields::new(
        "create",
        None,
        OsRequirement::Required,
        0,
        0,
        Architecture::default(),
        BootMode::default(),
        Features::default(),
    );
    let tags = TagRows::new();
    let (min_disk, min_ram) = (attributes.min_disk, attributes.min_ram);
    let fields: [FieldState; 21] = all_fields(&[
        &[
            name,
            source,
            source_url,
            local_file.field,
            convert_to,
            checksum,
            encryption,
            encryption_key,
            visibility,
            description,
        ],
        &signature.states(),
        &attributes.states(),
    ]);

    let form_error = RwSignal::new(None::<AppError>);
    Effect::new(move |_| {
        // A local file's image exists now: hand the file to the upload manager and show the
        // Image List, where the upload's progress appears.
        if let Some(Ok(image_id)) = action.value().get()
            && is_file()
        {
            local_file.start_upload(uploads, &image_id);
        }
        if let Some(Err(error)) = action.value().get() {
            let (tag_errors, other): (Vec<_>, Vec<_>) = error
                .field_errors()
                .iter()
                .cloned()
                .partition(|e| e.field.starts_with("tag"));
            tags.server_errors.set(tag_errors);
            form_error.set(form_alert(&error, &other, &fields));
        }
    });

    let visibility_options = Visibility::ALL
        .iter()
        .map(|v| (v.as_str(), v.label(), v.hint()))
        .collect::<Vec<_>>();

    view! {
        <Title text="Create Image" />
        <Breadcrumb current="Create Image" />
        <div class="page-header">
            <div>
                <h1>"Create Image"</h1>
                <p class="lede">
                    {format!(
                        "Import a disk image ({}) from an http or https URL, or upload one from your computer. The console checks it, converts it to qcow2 or raw if you ask, and makes it Active. How to prepare a virtual machine's disk and convert it: the ",
                        DiskFormat::every_label()
                    )}
                    <A href="/images/guide">"Image guide"</A>
                    "."
                </p>
            </div>
        </div>
        <ActionForm action=action attr:class="create-layout" attr:novalidate=true on:submit=move |_| fields.iter().filter(|f| is_file() != (f.name == field::SOURCE_URL)).for_each(|f| f.touch())>
            <div class="create-main">
                {move || form_error.get().map(|error| view! { <ErrorNotice error /> })}
                <section class="card form-section" aria-labelledby="service-info">
                    <h2 id="service-info">"Service Information"</h2>
                    <TextField
                        label="Image name"
                        field=name
                        error=name.message(ImageName::parse)
                        hint=ImageName::hint()
                        required=true
                    />
                    <RadioGroup
                        legend="Image source"
                        field=source
                        options=SourceKind::ALL.iter().map(|k| (k.as_str(), k.label(), k.hint())).collect()
                        error=source.message(SourceKind::parse)
                    />
                    {move || if is_file() {
                        Either::Left(view! { <LocalFileField state=local_file limit=import_limit uploads /> })
                    } else {
                        Either::Right(view! {
                            <TextField
                                label="Image file URL"
                                field=source_url
                                error=source_url.message(ImageFileUrl::parse)
                                hint=ImageFileUrl::hint()
                                input_type="url"
                                inputmode="url"
                                placeholder="https://storage.example.com/images/ubuntu-24.04.qcow2"
                                required=true
                            />
                        })
                    }}
                    <RadioGroup
                        legend="Convert to"
                        field=convert_to
                        options=convert_options()
                        error=convert_to.message(ConvertTo::parse)
                    />
                    <TextField
                        label="Checksum"
                        field=checksum
                        error=checksum.message(ExpectedChecksum::parse)
                        hint="Optional. The file's MD5, SHA-256 or SHA-512 in hexadecimal (sha256:… also works); the import fails if the file differs."
                        placeholder="sha256:…"
                    />
                    <EncryptionFields
                        legend="Encryption"
                        encryption
                        key=encryption_key
                        options=key_options
                        off_hint="The image's bytes are stored as they arrive."
                        on_hint="The bytes are encrypted as they arrive, with a data key of their own wrapped by one of this account's keys (KMS envelope encryption). Downloads decrypt them."
                    />
                    <SignatureFields states=signature />
                    <ImageAttributeFields fields=attributes />
                    <RadioGroup
                        legend="Visibility"
                        field=visibility
                        options=visibility_options
                        error=visibility.message(Visibility::parse)
                    />
                    <fieldset class="field">
                        <legend>"Protected"</legend>
                        <div class="checkbox">
                            <input
                                type="checkbox"
                                id="create-protected"
                                name=field::PROTECTED
                                aria-describedby="create-protected-hint"
                                bind:checked=protected
                            />
                            <label for="create-protected">"Use"</label>
                        </div>
                        <p class="hint" id="create-protected-hint">
                            "Prevents accidental deletion. You can change this after creation."
                        </p>
                    </fieldset>
                </section>
                <section class="card form-section" aria-labelledby="additional-info">
                    <h2 id="additional-info">"Additional Information"</h2>
                    <TextField
                        label="Description"
                        field=description
                        error=description.message(Description::parse)
                        hint=Description::hint()
                        multiline=true
                    />
                    <TagEditor rows=tags />
                </section>
            </div>
            <aside class="card summary" aria-labelledby="summary-title">
                <h2 id="summary-title">"Summary"</h2>
                <dl class="summary-list">
                    <dt>"Image name"</dt>
                    <dd>{move || or_dash(name.value.get())}</dd>
                    <dt>"Image file"</dt>
                    <dd class="break">
                        {move || if is_file() {
                            local_file.summary()
                        } else {
                            ImageFileUrl::parse(&source_url.value.get())
                                .map(|u| u.file_name())
                                .unwrap_or_else(|_| "—".into())
                        }}
                    </dd>
                    <dt>"Disk format"</dt>
                    <dd>{move || {
                        let file = if is_file() {
                            local_file.field.value.get()
                        } else {
                            ImageFileUrl::parse(&source_url.value.get()).map(|u| u.file_name()).unwrap_or_default()
                        };
                        DiskFormat::from_file_name(&file)
                            .map(|f| match f {
                                DiskFormat::Iso => "ISO (Installation Image)".to_owned(),
                                other => other.label().to_owned(),
                            })
                            .unwrap_or_else(|| "—".into())
                    }}</dd>
                    <dt>"Convert to"</dt>
                    <dd>{move || {
                        let file = if is_file() {
                            local_file.field.value.get()
                        } else {
                            ImageFileUrl::parse(&source_url.value.get()).map(|u| u.file_name()).unwrap_or_default()
                        };
                        match (DiskFormat::from_file_name(&file), ConvertTo::parse(&convert_to.value.get())) {
                            (Some(DiskFormat::Iso), _) => "Not converted (ISO)".to_owned(),
                            (Some(format), Ok(Some(target))) if !target.converts(format) && target != ConvertTo::Keep => {
                                format!("{} already", format.label())
                            }
                            (_, Ok(Some(target))) => target.label().to_owned(),
                            _ => "—".to_owned(),
                        }
                    }}</dd>
                    <dt>"Encryption"</dt>
                    <dd>{move || if encrypted() { format!("On ({})", key_label()) } else { "Off".to_owned() }}</dd>
                    <dt>"Signature"</dt>
                    <dd>{move || signature.summary()}</dd>
                    <dt>"Operating system"</dt>
                    <dd>{move || attributes.os_label().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Minimum Disk"</dt>
                    <dd>{move || MinDiskGb::parse(&min_disk.value.get()).map(|d| format!("{} GB", d.get())).unwrap_or_else(|_| "—".into())}</dd>
                    <dt>"Minimum RAM"</dt>
                    <dd>{move || MinRamGb::parse(&min_ram.value.get()).map(|r| format!("{} GB", r.get())).unwrap_or_else(|_| "—".into())}</dd>
                    <dt>"Visibility"</dt>
                    <dd>{move || Visibility::parse(&visibility.value.get()).map(|v| v.label()).unwrap_or("—")}</dd>
                    <dt>"Protected"</dt>
                    <dd>{move || if protected.get() { "Use" } else { "Not used" }}</dd>
                    <dt>"Tags"</dt>
                    <dd>{move || tags.rows.with(Vec::len)}</dd>
                </dl>
                <div class="estimate">
                    <h3>"Estimated monthly cost"</h3>
                    <Transition fallback=|| view! { <p class="muted">"…"</p> }>
                        {move || Suspend::new(async move {
                            settings.await.ok().map(|s| {
                                let minimum = format_money(monthly_cost(0, s.price_per_gb_month), &s.currency);
                                let rate = format_money(s.price_per_gb_month, &s.currency);
                                view! {
                                    <p class="estimate-amount">{format!("from {minimum} / month")}</p>
                                    <p class="hint">
                                        {format!(
                                            "Storage is billed at {rate} per GB-month on the imported size, with a 1 GB minimum. Images up to {} can be imported.",
                                            format_bytes(s.import_size_limit_bytes),
                                        )}
                                    </p>
                                }
                            })
                        })}
                    </Transition>
                </div>
                <button type="submit" class="btn btn-primary btn-block" disabled=move || action.pending().get()>
                    {move || match (action.pending().get(), is_file()) {
                        (true, _) => "Creating…",
                        (false, true) => "Complete and upload",
                        (false, false) => "Complete",
                    }}
                </button>
                <A href="/images" attr:class="btn btn-block">"Cancel"</A>
            </aside>
        </ActionForm>
    }
}

/// One Tag row: a stable id (for keyed rendering), its key and its value.
type TagRow = (u64, RwSignal<String>, RwSignal<String>);

/// The Tag rows of the form: each row's key and value, and the server's errors by row.
#[derive(Clone, Copy)]
struct TagRows {
    rows: RwSignal<Vec<TagRow>>,
    next_id: StoredValue<u64>,
    server_errors: RwSignal<Vec<crate::domain::FieldError>>,
}

impl TagRows {
    fn new() -> Self {
        Self {
            rows: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(0),
            server_errors: RwSignal::new(Vec::new()),
        }
    }

    fn add_row(self) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.rows.update(|rows| {
            rows.push((
                id,
                RwSignal::new(String::new()),
                RwSignal::new(String::new()),
            ))
        });
    }

    fn remove(self, id: u64) {
        self.rows
            .update(|rows| rows.retain(|(row, _, _)| *row != id));
        self.server_errors.set(Vec::new());
    }

    /// Messages for every row, from the same rules the server applies.
    fn errors(self) -> Vec<crate::domain::FieldError> {
        let pairs: Vec<TagPair> = self.rows.with(|rows| {
            rows.iter()
                .map(|(_, k, v)| TagPair {
                    key: k.get(),
                    value: v.get(),
                })
                .collect()
        });
        match parse_tag_set(&pairs) {
            Ok(_) => self.server_errors.get(),
            Err(errors) => errors,
        }
    }
}

/// Add Tag: up to 50 key/value rows, checked as they are typed.
#[component]
fn TagEditor(rows: TagRows) -> impl IntoView {
    let message = move |field: String| {
        rows.errors()
            .into_iter()
            .find(|e| e.field == field)
            .map(|e| e.message)
    };
    let numbered_rows =
        move || -> Vec<(usize, TagRow)> { rows.rows.get().into_iter().enumerate().collect() };
    view! {
        <fieldset class="field tag-editor">
            <legend>"Tags"</legend>
            <p class="hint">
                {format!("Optional. Up to {MAX_TAGS} tags; keys up to 128 characters and unique, values up to 256.")}
            </p>
            <For
                each=numbered_rows
                key=|(i, (id, _, _))| (*i, *id)
                children=move |(i, (id, key, value))| {
                    let key_error = move || message(format!("tag_key.{i}"));
                    let value_error = move || message(format!("tag_value.{i}"));
                    view! {
                        <div class="tag-row">
                            <RowTextField
                                label=format!("Tag {} key", i + 1)
                                id=format!("create-tag-key-{i}")
                                name=format!("tags[{i}][key]")
                                value=key
                                error=Signal::derive(key_error)
                            />
                            <RowTextField
                                label=format!("Tag {} value", i + 1)
                                id=format!("create-tag-value-{i}")
                                name=format!("tags[{i}][value]")
                                value=value
                                error=Signal::derive(value_error)
                            />
                            <button type="button" class="btn" on:click=move |_| rows.remove(id)>
                                {format!("Remove tag {}", i + 1)}
                            </button>
                        </div>
                    }
                }
            />
            <button
                type="button"
                class="btn"
                disabled=move || { rows.rows.with(Vec::len) >= MAX_TAGS }
                on:click=move |_| rows.add_row()
            >
                "Add Tag"
            </button>
        </fieldset>
    }
}

fn or_dash(value: String) -> String {
    if value.is_empty() {
        "—".to_owned()
    } else {
        value
    }
}

/// The Local file field: the chosen file (kept in the browser), its name and size as the
/// form sends them, and an earlier upload of the same file this browser remembers.
#[derive(Clone, Copy)]
struct LocalFileState {
    /// Its value is the file's name; errors about the file show under the file input.
    field: FieldState,
    size: RwSignal<String>,
    /// An Uploading image this browser was sending this very file for: id, name, percent on
    /// the server.
    earlier: RwSignal<Option<(String, String, u8)>>,
    #[cfg(feature = "hydrate")]
    file: StoredValue<Option<web_sys::File>, leptos::prelude::LocalStorage>,
}

impl LocalFileState {
    fn new() -> Self {
        Self {
            field: FieldState::new("create", upload_field::LOCAL_FILE, ""),
            size: RwSignal::new(String::new()),
            earlier: RwSignal::new(None),
            #[cfg(feature = "hydrate")]
            file: StoredValue::new_local(None),
        }
    }

    fn summary(self) -> String {
        let name = self.field.value.get();
        match self.size.get().parse::<u64>() {
            Ok(size) if !name.is_empty() => format!("{name} ({})", format_bytes(size)),
            _ => "—".into(),
        }
    }

    /// Starts the upload of the chosen file for a new image and opens the Image List.
    fn start_upload(self, uploads: UploadManager, image_id: &str) {
        #[cfg(feature = "hydrate")]
        if let Some(file) = self.file.get_value() {
            uploads.start(image_id, file);
            leptos_router::hooks::use_navigate()("/images", Default::default());
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (uploads, image_id);
    }
}

#[component]
fn LocalFileField(
    state: LocalFileState,
    limit: Signal<u64>,
    uploads: UploadManager,
) -> impl IntoView {
    let size = state.size;
    let error = state
        .field
        .message(move |name| LocalImageFile::parse(name, &size.get(), limit.get()));
    let id = format!("create-{}", upload_field::LOCAL_FILE);
    let on_change = move |ev: leptos::ev::Event| {
        state.field.touched.set(true);
        state.field.server_error.set(None);
        state.earlier.set(None);
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let file = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                .and_then(|input| input.files())
                .and_then(|files| files.get(0));
            state
                .field
                .value
                .set(file.as_ref().map(web_sys::File::name).unwrap_or_default());
            size.set(
                file.as_ref()
                    .map(|f| (f.size() as u64).to_string())
                    .unwrap_or_default(),
            );
            if let Some(remembered) = file
                .as_ref()
                .and_then(crate::app::uploads::remembered_upload)
            {
                leptos::task::spawn_local(async move {
                    use crate::server_fns::images::{get_image, get_image_upload};
                    if let Ok(Some(upload)) = get_image_upload(remembered.image_id.clone()).await
                        && let Ok(image) = get_image(remembered.image_id.clone()).await
                    {
                        let percent =
                            (upload.offset.saturating_mul(100) / upload.length.max(1)) as u8;
                        state.earlier.set(Some((
                            remembered.image_id,
                            image.attributes.name,
                            percent,
                        )));
                    }
                });
            }
            state.file.set_value(file);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let resume_earlier = move |_| {
        if let Some((image_id, _, _)) = state.earlier.get_untracked() {
            state.start_upload(uploads, &image_id);
        }
    };
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>"Image file"</label>
            <input
                type="file"
                id=id.clone()
                accept=DiskFormat::accept_attribute()
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby=format!("{id}-hint {id}-error")
                on:change=on_change
            />
            <input type="hidden" name=upload_field::FILE_NAME prop:value=move || state.field.value.get() />
            <input type="hidden" name=upload_field::FILE_SIZE prop:value=move || size.get() />
            <p class="hint" id=format!("{id}-hint")>
                {move || format!(
                    "A disk image from your computer ({}){}. It is sent in pieces: you can pause it, and resume it after a lost connection or a reload.",
                    DiskFormat::every_extension(),
                    match limit.get() {
                        u64::MAX => String::new(),
                        limit => format!(", up to {}", format_bytes(limit)),
                    }
                )}
            </p>
            <p class="field-error" id=format!("{id}-error")>{move || error.get()}</p>
            {move || state.earlier.get().map(|(_, image_name, percent)| view! {
                <div class="notice" role="status">
                    <p>
                        {format!("This browser already started uploading this file for the image \"{image_name}\", and {percent}% of it is on the server. Resume that upload instead of creating a new image?")}
                    </p>
                    <button type="button" class="btn" on:click=resume_earlier>"Resume Upload"</button>
                </div>
            })}
        </div>
    }
}
