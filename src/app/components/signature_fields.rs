//! Create Image's optional Signature: a checkbox, and while it is ticked the signing
//! certificate, the hash method, the key type and the signature, named as Glance names the
//! properties.

use leptos::prelude::*;

use crate::app::components::form_field::{FieldState, SelectField, TextField};
use crate::domain::signature::{
    CertificateRef, HashMethod, KeyType, SignatureValue, Validity, field,
};
use crate::server_fns::certificates::list_certificates;

/// The four fields of the Signature section.
#[derive(Clone, Copy)]
pub struct SignatureFieldStates {
    pub on: RwSignal<bool>,
    pub certificate: FieldState,
    pub hash_method: FieldState,
    pub key_type: FieldState,
    pub signature: FieldState,
}

impl SignatureFieldStates {
    pub fn new(form: &'static str) -> Self {
        Self {
            on: RwSignal::new(false),
            certificate: FieldState::new(form, field::CERTIFICATE, ""),
            hash_method: FieldState::new(form, field::HASH_METHOD, HashMethod::Sha256.as_str()),
            key_type: FieldState::new(form, field::KEY_TYPE, ""),
            signature: FieldState::new(form, field::SIGNATURE, ""),
        }
    }

    pub fn states(&self) -> [FieldState; 4] {
        [
            self.certificate,
            self.hash_method,
            self.key_type,
            self.signature,
        ]
    }

    /// The Summary's line.
    pub fn summary(&self) -> String {
        if !self.on.get() {
            return "Not signed".into();
        }
        match (
            KeyType::parse(&self.key_type.value.get()),
            HashMethod::parse(&self.hash_method.value.get()),
        ) {
            (Ok(key), Ok(hash)) => format!("Verified ({} with {})", key.label(), hash.as_str()),
            _ => "Verified".into(),
        }
    }
}

/// The Signature checkbox and, while it is ticked, its fields. The certificates load when
/// it is first ticked; choosing one chooses the key type its key signs with.
#[component]
pub fn SignatureFields(states: SignatureFieldStates) -> impl IntoView {
    let SignatureFieldStates {
        on,
        certificate,
        hash_method,
        key_type,
        signature,
    } = states;
    let certificates = Resource::new(
        move || on.get(),
        |load| async move {
            if load {
                list_certificates().await.unwrap_or_default()
            } else {
                Vec::new()
            }
        },
    );
    let usable = move || {
        certificates
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.validity == Validity::Valid)
            .collect::<Vec<_>>()
    };
    let certificate_options = Signal::derive(move || {
        usable()
            .into_iter()
            .map(|c| (c.id.clone(), format!("{} ({})", c.subject, c.key_label())))
            .collect()
    });
    // The key type follows the certificate chosen.
    Effect::new(move |_| {
        let chosen = certificate.value.get();
        if let Some(found) = usable().into_iter().find(|c| c.id == chosen) {
            key_type
                .value
                .set(found.key_kind.key_type().as_str().to_owned());
        }
    });
    let hash_options = HashMethod::ALL
        .iter()
        .map(|m| (m.as_str().to_owned(), m.as_str().to_owned()))
        .collect::<Vec<_>>();
    let key_options = KeyType::ALL
        .iter()
        .map(|k| {
            (
                k.as_str().to_owned(),
                format!("{} ({})", k.as_str(), k.label()),
            )
        })
        .collect::<Vec<_>>();
    view! {
        <fieldset class="field">
            <legend>"Signature"</legend>
            <div class="checkbox">
                <input
                    type="checkbox"
                    id="create-signed"
                    aria-describedby="create-signed-hint"
                    bind:checked=on
                />
                <label for="create-signed">"Verify a signature"</label>
            </div>
            <p class="hint" id="create-signed-hint">
                "Optional. The bytes must verify against the signature made with one of this account's certificates (the Certificates page) before the image becomes Active; otherwise it ends Failed and keeps nothing."
            </p>
        </fieldset>
        {move || on.get().then(|| view! {
            <div class="subfields">
                <SelectField
                    label="Certificate"
                    field=certificate
                    options=certificate_options
                    error=certificate.message(CertificateRef::parse)
                    hint="A valid certificate of this account; upload one on the Certificates page."
                    placeholder="Choose a certificate"
                    required=true
                />
                <SelectField
                    label="Hash method"
                    field=hash_method
                    options=Signal::stored(hash_options.clone())
                    error=hash_method.message(HashMethod::parse)
                    hint="img_signature_hash_method: the hash of openssl dgst (-sha256 is SHA-256)."
                    placeholder="Choose a hash method"
                    required=true
                />
                <SelectField
                    label="Key type"
                    field=key_type
                    options=Signal::stored(key_options.clone())
                    error=key_type.message(KeyType::parse)
                    hint="img_signature_key_type: follows the certificate's key."
                    placeholder="Choose a key type"
                    required=true
                />
                <TextField
                    label="Signature (base64)"
                    field=signature
                    error=signature.message(SignatureValue::parse)
                    hint="img_signature: openssl dgst -sha256 -sign key.pem -sigopt rsa_padding_mode:pss -out image.sig image.qcow2, then base64 -w 0 image.sig."
                    multiline=true
                    rows=4
                    required=true
                />
            </div>
        })}
    }
}
