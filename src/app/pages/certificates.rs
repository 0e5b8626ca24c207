//! Certificates (`/images/certificates`): the X.509 certificates the account's signed images
//! are verified against. Upload one (a PEM file, or pasted), see its subject, issuer, SHA-256
//! fingerprint, key type and validity, and delete one no image waiting for its bytes needs.

use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::app::components::breadcrumb::Breadcrumb;
use crate::app::components::confirm_dialog::ConfirmDialog;
use crate::app::components::error_notice::ErrorNotice;
use crate::app::components::form_field::{FieldState, TextField, form_alert};
use crate::domain::signature::{CertificatePem, CertificateSummary, Validity, field};
use crate::domain::units::{format_rfc3339, format_timestamp};
use crate::server_fns::certificates::{AddCertificate, DeleteCertificate, list_certificates};
use crate::server_fns::error::AppError;

#[component]
pub fn CertificatesPage() -> impl IntoView {
    let add = ServerAction::<AddCertificate>::new();
    let delete = ServerAction::<DeleteCertificate>::new();
    let certificates = Resource::new(
        move || (add.version().get(), delete.version().get()),
        |_| list_certificates(),
    );
    let pem = FieldState::new("certificate", field::CERTIFICATE_PEM, "");
    let alert = RwSignal::new(None::<AppError>);
    Effect::new(move |_| match add.value().get() {
        Some(Err(error)) => alert.set(form_alert(&error, error.field_errors(), &[pem])),
        Some(Ok(_)) => {
            alert.set(None);
            pem.value.set(String::new());
            pem.touched.set(false);
        }
        None => {}
    });

    view! {
        <Title text="Certificates" />
        <Breadcrumb current="Certificates" />
        <div class="page-header">
            <div>
                <h1>"Certificates"</h1>
                <p class="lede">
                    "Signing certificates let the console verify signed images before they become Active. Sign an image file as Glance does (openssl dgst -sha256 -sign key.pem -sigopt rsa_padding_mode:pss), give its signature when you create the image, and an image whose bytes do not match the signature ends Failed and keeps nothing."
                </p>
            </div>
        </div>
        <section class="card form-section" aria-labelledby="upload-certificate-title">
            <h2 id="upload-certificate-title">"Upload Certificate"</h2>
            <ActionForm action=add attr:novalidate=true on:submit=move |_| pem.touch()>
                <div class="field">
                    <label for="certificate-file">"Certificate file"</label>
                    <input
                        id="certificate-file"
                        type="file"
                        accept=".pem,.crt,.cer,application/x-pem-file"
                        aria-describedby="certificate-file-hint"
                        on:change=move |ev| read_file_into(ev, pem)
                    />
                    <p class="hint" id="certificate-file-hint">"A PEM file (.pem, .crt); its text appears below. Only the certificate: never the private key."</p>
                </div>
                <TextField
                    label="Certificate (PEM)"
                    field=pem
                    error=pem.message(CertificatePem::parse)
                    hint="-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----. RSA (2048 bits or more), EC P-384 or EC P-521 keys."
                    multiline=true
                    rows=8
                    required=true
                />
                {move || alert.get().map(|error| view! { <ErrorNotice error /> })}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || add.pending().get()>
                        "Upload Certificate"
                    </button>
                </div>
            </ActionForm>
        </section>
        <section class="card" aria-labelledby="certificates-title">
            <div class="section-header">
                <h2 id="certificates-title">"Certificate List"</h2>
            </div>
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
            <Transition fallback=|| view! { <p class="hint">"Loading certificates…"</p> }>
                {move || Suspend::new(async move {
                    match certificates.await {
                        Err(error) => Either::Left(view! { <ErrorNotice error /> }),
                        Ok(list) => Either::Right(view! { <CertificateTable certificates=list delete /> }),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Puts the chosen file's text into the PEM field (in the browser).
fn read_file_into(ev: leptos::ev::Event, pem: FieldState) {
    #[cfg(feature = "hydrate")]
    {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        let text = file.text();
        leptos::task::spawn_local(async move {
            if let Ok(text) = wasm_bindgen_futures::JsFuture::from(text).await
                && let Some(text) = text.as_string()
            {
                pem.value.set(text);
                pem.touch();
                pem.server_error.set(None);
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, pem);
}

fn when(ms: i64) -> impl IntoView {
    view! { <time datetime=format_rfc3339(ms)>{format_timestamp(ms)}</time> }
}

fn validity_badge(validity: Validity) -> impl IntoView {
    let class = match validity {
        Validity::Valid => "badge badge-active",
        Validity::Expired => "badge badge-failed",
        Validity::NotYetValid => "badge badge-deactivated",
    };
    view! {
        <span class=class>
            <span class="badge-dot" aria-hidden="true"></span>
            {validity.label()}
        </span>
    }
}

#[component]
fn CertificateTable(
    certificates: Vec<CertificateSummary>,
    delete: ServerAction<DeleteCertificate>,
) -> impl IntoView {
    if certificates.is_empty() {
        return Either::Left(view! {
            <p class="empty-note">"This account has no certificates yet. Upload the certificate of the key your images are signed with."</p>
        });
    }
    let delete_open = RwSignal::new(false);
    let target = RwSignal::new(None::<(String, String)>);
    let confirm = Callback::new(move |()| {
        if let Some((id, _)) = target.get_untracked() {
            delete.dispatch(DeleteCertificate { id });
        }
        delete_open.set(false);
    });
    let target_subject = move || target.get().map(|(_, s)| s).unwrap_or_default();
    let rows = certificates
        .into_iter()
        .map(|c| {
            let (id, subject) = (c.id.clone(), c.subject.clone());
            let pending = c.pending_images;
            // Compared here: a `>` inside the view would end the tag.
            let needed = pending > 0;
            let aria = format!("Delete certificate {}", c.subject);
            view! {
                <tr>
                    <th scope="row">
                        {c.subject.clone()}
                        <div class="hint mono key-id">{c.id.clone()}</div>
                    </th>
                    <td>{c.issuer.clone()}</td>
                    <td>{c.key_label()}</td>
                    <td class="mono fingerprint">{c.fingerprint_sha256.clone()}</td>
                    <td>
                        {validity_badge(c.validity)}
                        <div class="hint">{when(c.not_before_ms)} " to " {when(c.not_after_ms)}</div>
                    </td>
                    <td>
                        {format!("{} verified", c.verified_images)}
                        {needed.then(|| view! { <div class="hint">{format!("{pending} waiting for bytes")}</div> })}
                    </td>
                    <td>{when(c.created_at_ms)}</td>
                    <td>
                        <DeleteButton label=aria disabled=needed pending=delete.pending() on_ask=Callback::new(move |()| {
                            target.set(Some((id.clone(), subject.clone())));
                            delete_open.set(true);
                        }) />
                    </td>
                </tr>
            }
        })
        .collect_view();
    Either::Right(view! {
        <div class="table-scroll">
            <table class="data-table">
                <thead>
                    <tr>
                        <th scope="col">"Subject and Certificate ID"</th>
                        <th scope="col">"Issuer"</th>
                        <th scope="col">"Key type"</th>
                        <th scope="col">"Fingerprint (SHA-256)"</th>
                        <th scope="col">"Validity"</th>
                        <th scope="col">"Images"</th>
                        <th scope="col">"Uploaded"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <ConfirmDialog
            open=delete_open
            title="Delete Certificate".to_owned()
            confirm_label="Delete"
            pending=delete.pending()
            on_confirm=confirm
        >
            <p>
                "Delete the certificate " <strong>{target_subject}</strong>
                "? Images verified with it stay verified; new images can no longer name it."
            </p>
        </ConfirmDialog>
    })
}

/// A row's Delete: asks for confirmation (`on_ask`); disabled while images need the
/// certificate or a deletion is under way.
#[component]
fn DeleteButton(
    label: String,
    disabled: bool,
    #[prop(into)] pending: Signal<bool>,
    on_ask: Callback<()>,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class="btn btn-small"
            aria-label=label
            disabled=move || disabled || pending.get()
            on:click=move |_| on_ask.run(())
        >
            "Delete"
        </button>
    }
}
