//! Glance's `img_signature*` properties through the image API: set on create, or changed
//! while the image waits for its data; the bytes are verified against them when they arrive.

use super::ApiChange;
use crate::domain::FieldError;
use crate::domain::history::FieldChange;
use crate::domain::signature::{
    CertificateRef, HashMethod, KeyType, SignatureProperties, SignatureValue, field,
};

/// The signature properties after `changes` (each value checked as it is set), or `None`
/// when no change names one.
pub(super) fn apply(
    current: &SignatureProperties,
    changes: &[ApiChange],
    errors: &mut Vec<FieldError>,
) -> Option<SignatureProperties> {
    let mut next = current.clone();
    let mut touched = false;
    for change in changes {
        let ApiChange::SignatureProperty(name, value) = change else {
            continue;
        };
        touched = true;
        let value = value.as_deref();
        let checked = match name.as_str() {
            field::SIGNATURE => value
                .map(SignatureValue::parse)
                .transpose()
                .map(|v| next.signature = v.map(|v| v.to_base64())),
            field::HASH_METHOD => value
                .map(HashMethod::parse)
                .transpose()
                .map(|v| next.hash_method = v),
            field::KEY_TYPE => value
                .map(KeyType::parse)
                .transpose()
                .map(|v| next.key_type = v),
            _ => value
                .map(CertificateRef::parse)
                .transpose()
                .map(|v| next.certificate_id = v.map(|v| v.as_str().to_owned())),
        };
        if let Err(error) = checked {
            errors.push(error);
        }
    }
    touched.then_some(next)
}

/// Work History's lines for a change of the properties (the signature itself shortened).
pub(super) fn history(
    before: &SignatureProperties,
    after: &SignatureProperties,
) -> Vec<FieldChange> {
    let shown = |p: &SignatureProperties| {
        [
            p.signature.as_ref().map(|s| {
                let head: String = s.chars().take(16).collect();
                format!("{head}…")
            }),
            p.hash_method.map(|m| m.as_str().to_owned()),
            p.key_type.map(|k| k.as_str().to_owned()),
            p.certificate_id.clone(),
        ]
    };
    crate::domain::signature::PROPERTY_NAMES
        .into_iter()
        .zip(shown(before).into_iter().zip(shown(after)))
        .filter(|(_, (old, new))| old != new)
        .map(|(name, (old, new))| FieldChange {
            field: format!("Property {name}"),
            old: old.unwrap_or_else(|| "(none)".into()),
            new: new.unwrap_or_else(|| "(none)".into()),
        })
        .collect()
}
