//! `GET /v2/schemas/{image,images,member,members}`: JSON schemas of what the API sends and
//! accepts. Clients read them (glanceclient builds its update patches from the image
//! schema), and the contract tests check every answer against them.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error;
use super::wire::api_statuses;
use crate::domain::image::DiskFormat;
use crate::domain::image_spec::{Description, ImageName};
use crate::domain::os_catalogue::{OsFamily, OsPlatform};
use crate::domain::share::ShareStatus;

fn nullable_string(description: &str) -> Value {
    json!({ "type": ["null", "string"], "readOnly": true, "description": description })
}

/// The image schema: Glance's fields, with the values this console accepts.
pub fn image_schema() -> Value {
    let formats: Vec<&str> = DiskFormat::ALL.iter().map(|f| f.as_str()).collect();
    let families: Vec<&str> = OsFamily::ALL.iter().map(|f| f.as_str()).collect();
    let distros: Vec<&str> = OsPlatform::ALL.iter().map(|o| o.as_str()).collect();
    let mut versions: Vec<&str> = OsPlatform::ALL
        .iter()
        .flat_map(|p| p.releases().iter().map(|r| r.version))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    json!({
        "name": "image",
        "properties": {
            "id": { "type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "description": "An identifier for the image" },
            "name": { "type": ["null", "string"], "maxLength": ImageName::MAX_CHARS, "description": "Descriptive name for the image" },
            "status": { "type": "string", "readOnly": true, "enum": api_statuses(), "description": "Status of the image" },
            "visibility": { "type": "string", "enum": ["private", "shared"], "description": "Scope of image accessibility" },
            "protected": { "type": "boolean", "description": "If true, image will not be deletable." },
            "os_hidden": { "type": "boolean", "description": "If true, image will not appear in default image list response." },
            "checksum": nullable_string("md5 hash of image contents."),
            "os_hash_algo": nullable_string("Algorithm to calculate the os_hash_value"),
            "os_hash_value": nullable_string("Hexdigest of the image contents using the algorithm specified by the os_hash_algo"),
            "owner": { "type": ["null", "string"], "readOnly": true, "description": "Owner of the image: its account" },
            "size": { "type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes" },
            "virtual_size": { "type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes" },
            "min_disk": { "type": "integer", "minimum": 0, "maximum": crate::domain::image_spec::MinDiskGb::MAX, "description": "Amount of disk space (in GB) required to boot image." },
            "min_ram": { "type": "integer", "minimum": 0, "description": "Amount of ram (in MB) required to boot image; kept in whole GB, rounded up." },
            "disk_format": { "type": ["null", "string"], "enum": formats.iter().map(|f| Value::from(*f)).chain([Value::Null]).collect::<Vec<_>>(), "description": "Format of the disk" },
            "container_format": { "type": ["null", "string"], "enum": [null, "bare"], "description": "Format of the container" },
            "created_at": { "type": "string", "readOnly": true, "description": "Date and time of image registration" },
            "updated_at": { "type": "string", "readOnly": true, "description": "Date and time of the last image modification" },
            "tags": { "type": "array", "items": { "type": "string", "maxLength": 385 }, "description": "List of strings related to the image" },
            "self": { "type": "string", "readOnly": true, "description": "An image self url" },
            "file": { "type": "string", "readOnly": true, "description": "An image file url" },
            "schema": { "type": "string", "readOnly": true, "description": "An image schema url" },
            "stores": { "type": "string", "readOnly": true, "description": "Store in which image data resides." },
            "os_distro": { "type": "string", "enum": distros, "is_base": false, "description": "The system platform: a Linux distribution, windows-server or windows." },
            "os_type": { "type": "string", "enum": families, "is_base": false, "description": "The operating system installed on the image: linux or windows." },
            "os_version": { "type": "string", "enum": versions, "is_base": false, "description": "The system version, one the platform offers for the image's architecture." },
            "architecture": { "type": "string", "enum": ["x86_64", "aarch64"], "is_base": false, "description": "The CPU architecture that must be supported by the hypervisor." },
            "hw_firmware_type": { "type": "string", "enum": ["bios", "uefi"], "is_base": false, "description": "The boot mode: BIOS or UEFI." },
            "hw_qemu_guest_agent": { "type": "string", "enum": ["yes", "no"], "is_base": false, "description": "Whether the image has the QEMU guest agent." },
            "description": { "type": "string", "maxLength": Description::MAX_CHARS, "is_base": false, "description": "A description of the image." },
            "failure_reason": { "type": "string", "readOnly": true, "is_base": false, "description": "Why the image is killed (its import or upload failed)." },
            "os_encrypt_key_id": { "type": "string", "is_base": false, "description": "The key the image's data is encrypted under: on create, a key id of the account or default for its default key; fixed afterwards (replicate to change it)." },
            "convert_to": { "type": "string", "enum": ["qcow2", "raw", "none"], "is_base": false, "description": "On create: the format the image's data is converted to once it arrives (an import request may name it too). ISO files are never converted." },
            "img_signature": { "type": "string", "is_base": false, "description": "The signature of the image's data, base64 (openssl dgst -sign, then base64 -w 0); settable while the image waits for its data." },
            "img_signature_hash_method": { "type": "string", "enum": ["SHA-224", "SHA-256", "SHA-384", "SHA-512"], "is_base": false, "description": "The hash the signature was made over." },
            "img_signature_key_type": { "type": "string", "enum": ["RSA-PSS", "ECC_SECP384R1", "ECC_SECP521R1"], "is_base": false, "description": "The signature scheme." },
            "img_signature_certificate_uuid": { "type": "string", "is_base": false, "description": "The id of the signing certificate, as the console's Certificates page shows it." },
            "deprecation_time": { "type": "string", "format": "date-time", "is_base": false, "description": "When the image is deprecated: from then it still works but leaves default lists (list it with deprecated=only or deprecated=include). At most 10 years ahead; remove it to undo." },
            "source_image_id": { "type": "string", "readOnly": true, "is_base": false, "description": "The image this one was made from (Create shared Image, Replicate); its whole ancestry is at /v2/images/{id}/ancestry." },
            "source_disk_format": { "type": "string", "readOnly": true, "is_base": false, "description": "A converted image's file as received: its format." },
            "source_size": { "type": "string", "readOnly": true, "is_base": false, "description": "A converted image's file as received: its size in bytes." },
            "source_os_hash_value": { "type": "string", "readOnly": true, "is_base": false, "description": "A converted image's file as received: its SHA-512." },
            "source_checksum": { "type": "string", "readOnly": true, "is_base": false, "description": "A converted image's file as received: its MD5." },
        },
        "additionalProperties": { "type": "string" },
        "links": [
            { "rel": "self", "href": "{self}" },
            { "rel": "enclosure", "href": "{file}" },
            { "rel": "describedby", "href": "{schema}" }
        ]
    })
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": { "type": "string", "description": "Date and time of image member creation" },
            "image_id": { "type": "string", "description": "An identifier for the image" },
            "member_id": { "type": "string", "description": "An identifier for the image member (the Account ID)" },
            "schema": { "type": "string", "readOnly": true },
            "status": { "type": "string", "enum": ShareStatus::MEMBER.map(ShareStatus::as_str), "description": "The status of this image member" },
            "updated_at": { "type": "string", "description": "Date and time of last modification of image member" }
        }
    })
}

fn collection(name: &str, item: &str, schema: Value) -> Value {
    let mut links = vec![
        json!({ "rel": "first", "href": "{first}" }),
        json!({ "rel": "next", "href": "{next}" }),
    ];
    if name == "members" {
        links.clear();
    }
    links.push(json!({ "rel": "describedby", "href": "{schema}" }));
    json!({
        "name": name,
        "properties": {
            name: { "type": "array", "items": schema },
            "schema": { "type": "string" },
            "first": { "type": "string" },
            "next": { "type": "string" }
        },
        "links": links,
        "description": format!("A list of {item}s."),
    })
}

/// The schema named by the path.
pub fn named(name: &str) -> Option<Value> {
    Some(match name {
        "image" => image_schema(),
        "images" => collection("images", "image", image_schema()),
        "member" => member_schema(),
        "members" => collection("members", "member", member_schema()),
        _ => return None,
    })
}

pub async fn schema(Path(name): Path<String>) -> Response {
    match named(&name) {
        Some(schema) => Json(schema).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "There is no schema '{name}': the schemas are image, images, member and members."
            ),
        ),
    }
}
