//! The image API's wire format: an image as Glance's JSON, and the request fields that become
//! service changes (with Glance's units: `min_ram` in MB). The list's query is `list`.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::wire::{api_status, api_tag, tag_from_api};
use crate::domain::image::ImageStatus;
use crate::domain::os_catalogue::OsPlatform;
use crate::domain::signature;
use crate::domain::units::format_rfc3339;
use crate::service::image_api::{ApiChange, ApiImage};

/// The id of the one store `GET /v2/info/stores` lists.
pub use crate::domain::api_list::STORE_ID;

/// Fields a client may never set: Glance answers 403 for them.
const READ_ONLY: [&str; 15] = [
    "status",
    "source_image_id",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "owner",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "stores",
];

/// The property that carries why an image is killed (Failed).
pub const FAILURE_REASON: &str = "failure_reason";

/// One MiB, Glance's `min_ram` unit, per GiB, the console's.
const MB_PER_GB: u64 = 1024;

/// Time as Glance writes it: whole seconds, UTC.
pub(super) fn timestamp(ms: i64) -> String {
    format_rfc3339(ms.div_euclid(1000) * 1000)
}

/// An image as Glance's JSON.
pub fn image_json(image: &ApiImage) -> Value {
    let d = &image.detail;
    let a = &d.attributes;
    let mut doc = Map::new();
    // Free-form properties first, so no field below can be shadowed by one.
    for (key, value) in &image.properties {
        doc.insert(key.clone(), Value::String(value.clone()));
    }
    let disk_format = d.disk_format.unwrap_or(image.declared_format);
    let fields = json!({
        "id": d.id,
        "name": a.name,
        "status": api_status(d.status, image.from_url),
        "visibility": d.visibility.as_str(),
        "protected": a.protected,
        "os_hidden": d.hidden,
        "checksum": d.checksum_md5,
        "os_hash_algo": d.hash_value.as_ref().and(d.hash_algorithm.clone()),
        "os_hash_value": d.hash_value,
        "owner": d.account_id,
        "size": d.size_bytes,
        "virtual_size": d.virtual_size_bytes,
        "min_disk": a.min_disk_gb,
        "min_ram": a.min_ram_gb * MB_PER_GB,
        "disk_format": disk_format.as_str(),
        "container_format": "bare",
        "created_at": timestamp(d.created_at_ms),
        "updated_at": timestamp(d.updated_at_ms),
        "tags": d.tags.iter().map(api_tag).collect::<Vec<_>>(),
        "self": format!("/v2/images/{}", d.id),
        "file": format!("/v2/images/{}/file", d.id),
        "schema": "/v2/schemas/image",
        "architecture": a.architecture.as_str(),
        "hw_firmware_type": a.boot_mode.as_str(),
        "hw_qemu_guest_agent": if a.features.qemu_guest_agent { "yes" } else { "no" },
        "description": a.description,
    });
    if let Value::Object(fields) = fields {
        doc.extend(fields);
    }
    // Like any property nobody set, an operating system that is not specified is left out.
    if let Some(os) = &a.os {
        doc.insert(
            "os_distro".into(),
            Value::String(os.platform.as_str().to_owned()),
        );
        doc.insert(
            "os_type".into(),
            Value::String(os.family().as_str().to_owned()),
        );
        if let Some(version) = &os.version {
            doc.insert(
                "os_version".into(),
                Value::String(version.as_str().to_owned()),
            );
        }
    }
    if matches!(d.status, ImageStatus::Active | ImageStatus::Deactivated) {
        doc.insert("stores".into(), Value::String(STORE_ID.into()));
    }
    if let Some(target) = d.convert_to.target() {
        doc.insert(
            CONVERT_TO_PROPERTY.into(),
            Value::String(target.as_str().to_owned()),
        );
    }
    // A converted image's file as it was received, so its sender can verify what was sent.
    if let Some(source) = &d.source_file {
        for (key, value) in [
            ("source_disk_format", source.disk_format.as_str().to_owned()),
            ("source_size", source.size_bytes.to_string()),
            ("source_os_hash_value", source.sha512.clone()),
            ("source_checksum", source.md5.clone()),
        ] {
            doc.insert(key.into(), Value::String(value));
        }
    }
    let signature = &d.signature;
    for (key, value) in signature::PROPERTY_NAMES.into_iter().zip([
        signature.signature.clone(),
        signature.hash_method.map(|m| m.as_str().to_owned()),
        signature.key_type.map(|k| k.as_str().to_owned()),
        signature.certificate_id.clone(),
    ]) {
        if let Some(value) = value {
            doc.insert(key.into(), Value::String(value));
        }
    }
    if let Some(at) = d.deprecate_at_ms {
        doc.insert(DEPRECATION_TIME.into(), Value::String(timestamp(at)));
    }
    if let Some(source) = &d.source_image_id {
        doc.insert("source_image_id".into(), Value::String(source.clone()));
    }
    if let Some(encryption) = &d.encryption {
        doc.insert(
            ENCRYPTION_KEY_PROPERTY.into(),
            Value::String(encryption.key.id.clone()),
        );
    }
    if let Some(reason) = d
        .failure_reason
        .as_ref()
        .filter(|_| d.status == ImageStatus::Failed)
    {
        doc.insert(FAILURE_REASON.into(), Value::String(reason.clone()));
    }
    Value::Object(doc)
}

/// The property that asks for an encrypted image on create (a key id, or `default`) and
/// names its key afterwards; Glance's name for an image's encryption key.
pub const ENCRYPTION_KEY_PROPERTY: &str = "os_encrypt_key_id";

/// The property that asks, on create, for the image's data to be converted once it arrives
/// (`qcow2`, `raw` or `none`); an import request may name it too.
pub const CONVERT_TO_PROPERTY: &str = "convert_to";

/// When the image is deprecated (RFC 3339): from then it leaves default lists.
pub const DEPRECATION_TIME: &str = "deprecation_time";

/// A refusal of a request field, with the status Glance gives it.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldRefusal {
    pub status: StatusCode,
    pub message: String,
}

pub(super) fn bad(message: impl Into<String>) -> FieldRefusal {
    FieldRefusal {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn forbidden(message: impl Into<String>) -> FieldRefusal {
    FieldRefusal {
        status: StatusCode::FORBIDDEN,
        message: message.into(),
    }
}

/// The console's system platform for a Glance `os_distro`, which names distributions in
/// lower case and sometimes in long form.
pub(super) fn os_type_value(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let known = match lower.as_str() {
        "almalinux" | "alma" => Some(OsPlatform::Alma),
        "centos" => Some(OsPlatform::CentOS),
        "oracle" | "oraclelinux" | "ol" => Some(OsPlatform::Oracle),
        "rhel" | "redhat" => Some(OsPlatform::Rhel),
        "rocky" | "rockylinux" => Some(OsPlatform::Rocky),
        "ubuntu" => Some(OsPlatform::Ubuntu),
        "windows-server" | "windows_server" | "windowsserver" => Some(OsPlatform::WindowsServer),
        "windows" => Some(OsPlatform::Windows),
        _ => None,
    };
    known.map_or(lower, |os| os.as_str().to_owned())
}

fn string_of(key: &str, value: &Value) -> Result<String, FieldRefusal> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(format!("'{key}' must be a string."))),
    }
}

fn whole_number(key: &str, value: &Value) -> Result<u64, FieldRefusal> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| bad(format!("'{key}' must be a whole number, 0 or more."))),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad(format!("'{key}' is too large.")))
        }
        _ => Err(bad(format!("'{key}' must be a whole number, 0 or more."))),
    }
}

fn boolean(key: &str, value: &Value) -> Result<bool, FieldRefusal> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "True" | "yes") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "false" | "False" | "no") => Ok(false),
        _ => Err(bad(format!("'{key}' must be true or false."))),
    }
}

/// What one request field (`key`: `value`) changes; `None` for a value that changes
/// nothing (`os_hidden: false`). `disk_format` and `container_format` are the caller's.
pub fn change_of(key: &str, value: &Value) -> Result<Option<ApiChange>, FieldRefusal> {
    if READ_ONLY.contains(&key) || key == "id" || key == FAILURE_REASON {
        return Err(forbidden(format!("Attribute '{key}' is read-only.")));
    }
    Ok(Some(match key {
        "name" => ApiChange::Name(match value {
            Value::Null => String::new(),
            v => string_of(key, v)?,
        }),
        "description" => ApiChange::Description(string_of(key, value)?),
        "os_distro" => ApiChange::OsPlatform(os_type_value(&string_of(key, value)?)),
        "os_type" => ApiChange::OsFamily(string_of(key, value)?.to_ascii_lowercase()),
        "os_version" => ApiChange::OsVersion(string_of(key, value)?),
        "min_disk" => ApiChange::MinDiskGb(whole_number(key, value)?.to_string()),
        // Glance counts MB; the console whole GB, rounded up so the minimum still holds.
        "min_ram" => ApiChange::MinRamGb(whole_number(key, value)?.div_ceil(MB_PER_GB).to_string()),
        "protected" => ApiChange::Protected(boolean(key, value)?),
        "visibility" => {
            let visibility = string_of(key, value)?;
            if matches!(visibility.as_str(), "public" | "community") {
                return Err(forbidden(format!(
                    "Visibility '{visibility}' is not offered: images in this console are private to their account, or shared with the accounts you choose (visibility 'private' or 'shared')."
                )));
            }
            ApiChange::Visibility(visibility)
        }
        "architecture" => ApiChange::Architecture(string_of(key, value)?),
        "hw_firmware_type" => ApiChange::BootMode(string_of(key, value)?),
        "hw_qemu_guest_agent" => ApiChange::QemuGuestAgent(boolean(key, value)?),
        ENCRYPTION_KEY_PROPERTY => ApiChange::EncryptionKey(string_of(key, value)?),
        CONVERT_TO_PROPERTY => ApiChange::ConvertTo(string_of(key, value)?),
        signature if signature::PROPERTY_NAMES.contains(&signature) => {
            ApiChange::SignatureProperty(key.to_owned(), Some(string_of(key, value)?))
        }
        "tags" => match value {
            Value::Array(items) => ApiChange::Tags(
                items
                    .iter()
                    .map(|t| string_of("tags", t).map(|t| tag_from_api(&t)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad("'tags' must be a list of strings.")),
        },
        "os_hidden" => ApiChange::OsHidden(boolean(key, value)?),
        DEPRECATION_TIME => ApiChange::DeprecationTime(match value {
            Value::Null => String::new(),
            v => string_of(key, v)?,
        }),
        _ => ApiChange::SetProperty(key.to_owned(), string_of(key, value)?),
    }))
}

/// The checks on `container_format` and `disk_format` values before they reach the rules.
pub fn check_container_format(value: &Value) -> Result<(), FieldRefusal> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) if s == "bare" => Ok(()),
        Value::String(s) => Err(bad(format!(
            "container_format '{s}' is not accepted: images here are plain disk images, container_format 'bare'."
        ))),
        _ => Err(bad("'container_format' must be a string.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_ram_is_rounded_up_to_whole_gb() {
        assert_eq!(
            change_of("min_ram", &json!(512)),
            Ok(Some(ApiChange::MinRamGb("1".into())))
        );
        assert_eq!(
            change_of("min_ram", &json!(2048)),
            Ok(Some(ApiChange::MinRamGb("2".into())))
        );
        assert_eq!(
            change_of("min_ram", &json!(0)),
            Ok(Some(ApiChange::MinRamGb("0".into())))
        );
        assert!(change_of("min_ram", &json!(-1)).is_err());
        assert!(change_of("min_ram", &json!("x")).is_err());
    }

    #[test]
    fn read_only_and_public_are_forbidden() {
        for key in [
            "status",
            "checksum",
            "size",
            "owner",
            "id",
            "failure_reason",
        ] {
            assert_eq!(
                change_of(key, &json!("x")).unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{key}"
            );
        }
        let public = change_of("visibility", &json!("public")).unwrap_err();
        assert_eq!(public.status, StatusCode::FORBIDDEN);
        assert!(public.message.contains("private"), "{}", public.message);
        assert_eq!(
            change_of("visibility", &json!("shared")),
            Ok(Some(ApiChange::Visibility("shared".into())))
        );
    }

    #[test]
    fn other_keys_are_string_properties() {
        assert_eq!(
            change_of("owner_specified.openstack.md5", &json!("abc")),
            Ok(Some(ApiChange::SetProperty(
                "owner_specified.openstack.md5".into(),
                "abc".into()
            )))
        );
        assert!(change_of("custom", &json!(5)).is_err());
        assert_eq!(
            change_of("os_type", &json!("Windows")),
            Ok(Some(ApiChange::OsFamily("windows".into())))
        );
        assert_eq!(
            change_of("os_distro", &json!("RockyLinux")),
            Ok(Some(ApiChange::OsPlatform("rocky".into())))
        );
        assert_eq!(
            change_of("os_distro", &json!("windows_server")),
            Ok(Some(ApiChange::OsPlatform("windows-server".into())))
        );
        assert_eq!(
            change_of("os_version", &json!("2019")),
            Ok(Some(ApiChange::OsVersion("2019".into())))
        );
    }
}
