//! The image API's wire format: an image as Glance's JSON, the request fields that become
//! service changes (with Glance's units: `min_ram` in MB), and the list's query (filters,
//! sort, marker and limit).

use std::cmp::Ordering;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::wire::{api_status, api_tag, tag_from_api};
use crate::domain::image::ImageStatus;
use crate::domain::os_catalogue::OsPlatform;
use crate::domain::share::ShareStatus;
use crate::domain::units::format_rfc3339;
use crate::domain::validation::or_list;
use crate::service::image_api::{ApiChange, ApiImage};

/// The id of the one store `GET /v2/info/stores` lists.
pub const STORE_ID: &str = "default";

/// Fields a client may never set: Glance answers 403 for them.
const READ_ONLY: [&str; 14] = [
    "status",
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
        "os_hidden": false,
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
        "os_distro": a.os.platform.as_str(),
        "os_type": a.os.family().as_str(),
        "architecture": a.architecture.as_str(),
        "hw_firmware_type": a.boot_mode.as_str(),
        "hw_qemu_guest_agent": if a.features.qemu_guest_agent { "yes" } else { "no" },
        "description": a.description,
    });
    if let Value::Object(fields) = fields {
        doc.extend(fields);
    }
    if let Some(version) = &a.os.version {
        doc.insert(
            "os_version".into(),
            Value::String(version.as_str().to_owned()),
        );
    }
    if matches!(d.status, ImageStatus::Active | ImageStatus::Deactivated) {
        doc.insert("stores".into(), Value::String(STORE_ID.into()));
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

/// A refusal of a request field, with the status Glance gives it.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldRefusal {
    pub status: StatusCode,
    pub message: String,
}

fn bad(message: impl Into<String>) -> FieldRefusal {
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
fn os_type_value(raw: &str) -> String {
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
        "tags" => match value {
            Value::Array(items) => ApiChange::Tags(
                items
                    .iter()
                    .map(|t| string_of("tags", t).map(|t| tag_from_api(&t)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad("'tags' must be a list of strings.")),
        },
        "os_hidden" => match value {
            Value::Bool(false) => return Ok(None),
            _ => {
                return Err(bad(
                    "Hidden images are not offered: os_hidden must be false.",
                ));
            }
        },
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

/// The list's query, parsed.
#[derive(Debug, Default)]
pub struct ListParams {
    pub limit: usize,
    pub marker: Option<String>,
    /// (key, descending), most significant first.
    pub sort: Vec<(String, bool)>,
    pub filters: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub member_status: String,
}

/// Most images one page holds, and how many without `limit`.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 25;

const SORT_KEYS: [&str; 12] = [
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "virtual_size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "visibility",
];

const FILTERS: [&str; 13] = [
    "name",
    "status",
    "visibility",
    "os_type",
    "os_distro",
    "os_version",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "owner",
    "id",
    "protected",
];

impl ListParams {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, FieldRefusal> {
        let mut params = ListParams {
            limit: DEFAULT_LIMIT,
            member_status: "accepted".into(),
            ..ListParams::default()
        };
        let mut sort_keys: Vec<String> = Vec::new();
        let mut sort_dirs: Vec<String> = Vec::new();
        let mut sort: Option<String> = None;
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let limit: usize = value
                        .parse()
                        .map_err(|_| bad("limit must be a whole number, 0 or more."))?;
                    params.limit = limit.min(MAX_LIMIT);
                }
                "marker" => params.marker = Some(value.clone()),
                "sort_key" => sort_keys.extend(value.split(',').map(str::to_owned)),
                "sort_dir" => sort_dirs.extend(value.split(',').map(str::to_owned)),
                "sort" => sort = Some(value.clone()),
                "tag" => params.tags.push(value.clone()),
                "member_status" => {
                    if value != "all" && ShareStatus::from_member(value).is_none() {
                        let mut named: Vec<&str> =
                            ShareStatus::MEMBER.iter().map(|s| s.as_str()).collect();
                        named.push("all");
                        return Err(bad(format!("member_status must be {}.", or_list(&named))));
                    }
                    params.member_status = value.clone();
                }
                "size_min" | "size_max" => {
                    value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("{key} must be a whole number of bytes.")))?;
                    params.filters.push((key.clone(), value.clone()));
                }
                "os_hidden" => {}
                k if FILTERS.contains(&k) => {
                    if k == "visibility"
                        && !matches!(
                            value.as_str(),
                            "private" | "shared" | "public" | "community" | "all"
                        )
                    {
                        return Err(bad(
                            "visibility must be private, shared, public, community or all.",
                        ));
                    }
                    params.filters.push((key.clone(), value.clone()));
                }
                // Any other key filters on a free-form property, as in Glance.
                _ => params.filters.push((key.clone(), value.clone())),
            }
        }
        if let Some(sort) = sort {
            if !sort_keys.is_empty() || !sort_dirs.is_empty() {
                return Err(bad("Use either sort, or sort_key and sort_dir, not both."));
            }
            for item in sort.split(',').filter(|s| !s.is_empty()) {
                let (key, dir) = item.split_once(':').unwrap_or((item, "desc"));
                params.sort.push((sort_key(key)?, direction(dir)?));
            }
        } else {
            if sort_dirs.len() > 1 && sort_dirs.len() != sort_keys.len() {
                return Err(bad("Give one sort_dir, or one for each sort_key."));
            }
            for (i, key) in sort_keys.iter().enumerate() {
                let dir = sort_dirs
                    .get(i)
                    .or(sort_dirs.first())
                    .map_or("desc", String::as_str);
                params.sort.push((sort_key(key)?, direction(dir)?));
            }
            if sort_keys.is_empty() && !sort_dirs.is_empty() {
                params
                    .sort
                    .push(("created_at".into(), direction(&sort_dirs[0])?));
            }
        }
        if params.sort.is_empty() {
            params.sort.push(("created_at".into(), true));
        }
        // Ties are broken by creation, then id, as in Glance, so pages never overlap.
        for tie in ["created_at", "id"] {
            if !params.sort.iter().any(|(k, _)| k == tie) {
                params.sort.push((tie.into(), true));
            }
        }
        Ok(params)
    }
}

fn sort_key(raw: &str) -> Result<String, FieldRefusal> {
    if SORT_KEYS.contains(&raw) {
        Ok(raw.to_owned())
    } else {
        Err(bad(format!(
            "sort key '{raw}' is not one of {}.",
            SORT_KEYS.join(", ")
        )))
    }
}

fn direction(raw: &str) -> Result<bool, FieldRefusal> {
    match raw {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(bad(format!("sort direction '{raw}' must be asc or desc."))),
    }
}

/// One field of an image's JSON, as a filter or a sort compares it.
fn field<'a>(doc: &'a Value, key: &str) -> &'a Value {
    doc.get(key).unwrap_or(&Value::Null)
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn matches_filter(doc: &Value, key: &str, wanted: &str) -> bool {
    let size = field(doc, "size").as_u64();
    let bound = wanted.parse::<u64>().ok();
    match key {
        "size_min" => return size.zip(bound).is_some_and(|(s, m)| s >= m),
        "size_max" => return size.zip(bound).is_some_and(|(s, m)| s <= m),
        "visibility" if wanted == "all" => return true,
        _ => {}
    }
    let as_text = match field(doc, key) {
        Value::String(s) => s.clone(),
        Value::Null => return false,
        other => other.to_string(),
    };
    let wanted_value = |w: &str| {
        if key == "os_distro" {
            os_type_value(w)
        } else {
            w.to_owned()
        }
    };
    // `in:a,b` lists the values any of which match, as Glance's filters allow.
    match wanted.strip_prefix("in:") {
        Some(list) => list.split(',').any(|w| wanted_value(w) == as_text),
        None => wanted_value(wanted) == as_text,
    }
}

/// The page of images the query asks for, as JSON, and whether more follow.
pub fn select_page(
    images: &[ApiImage],
    params: &ListParams,
) -> Result<(Vec<Value>, bool), FieldRefusal> {
    // Each document with its times in milliseconds: the JSON shows whole seconds, and images
    // made within one second still sort in the order they were made.
    let mut docs: Vec<(Value, Option<ShareStatus>, i64, i64)> = images
        .iter()
        .map(|image| {
            (
                image_json(image),
                image.member_status,
                image.detail.created_at_ms,
                image.detail.updated_at_ms,
            )
        })
        .collect();
    docs.retain(|(doc, member_status, ..)| {
        if let Some(status) = member_status
            && params.member_status != "all"
            && status.as_str() != params.member_status
        {
            return false;
        }
        let tags: Vec<&str> = field(doc, "tags")
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        params.tags.iter().all(|t| tags.contains(&t.as_str()))
            && params
                .filters
                .iter()
                .all(|(key, wanted)| matches_filter(doc, key, wanted))
    });
    docs.sort_by(
        |(a, _, a_created, a_updated), (b, _, b_created, b_updated)| {
            params
                .sort
                .iter()
                .map(|(key, descending)| {
                    let order = match key.as_str() {
                        "created_at" => a_created.cmp(b_created),
                        "updated_at" => a_updated.cmp(b_updated),
                        _ => compare(field(a, key), field(b, key)),
                    };
                    if *descending { order.reverse() } else { order }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        },
    );
    let start = match &params.marker {
        Some(marker) => {
            let position = docs
                .iter()
                .position(|(doc, ..)| field(doc, "id").as_str() == Some(marker.as_str()))
                .ok_or_else(|| {
                    bad(format!(
                        "marker '{marker}' is not an image in this list; start again without it."
                    ))
                })?;
            position + 1
        }
        None => 0,
    };
    let rest = docs.len().saturating_sub(start);
    let page: Vec<Value> = docs
        .into_iter()
        .skip(start)
        .take(params.limit)
        .map(|(doc, ..)| doc)
        .collect();
    Ok((page, rest > params.limit))
}

/// The query of the next page: the same, with the last image as the marker.
pub fn next_query(pairs: &[(String, String)], last_id: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(k, _)| k != "marker") {
        query.append_pair(key, value);
    }
    query.append_pair("marker", last_id);
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

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

    #[test]
    fn sorting_parameters() {
        let p = ListParams::parse(&pairs(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(
            p.sort,
            vec![
                ("name".into(), false),
                ("size".into(), true),
                ("created_at".into(), true),
                ("id".into(), true)
            ]
        );
        let p = ListParams::parse(&pairs(&[
            ("sort_key", "name"),
            ("sort_key", "size"),
            ("sort_dir", "asc"),
        ]))
        .unwrap();
        assert_eq!(
            p.sort[..2],
            [("name".into(), false), ("size".into(), false)]
        );
        assert!(ListParams::parse(&pairs(&[("sort_key", "checksum")])).is_err());
        assert!(ListParams::parse(&pairs(&[("sort", "name:up")])).is_err());
        assert!(ListParams::parse(&pairs(&[("sort", "name"), ("sort_key", "id")])).is_err());
        assert_eq!(
            ListParams::parse(&pairs(&[("limit", "5000")]))
                .unwrap()
                .limit,
            MAX_LIMIT
        );
        assert!(ListParams::parse(&pairs(&[("limit", "-1")])).is_err());
        assert!(ListParams::parse(&pairs(&[("member_status", "maybe")])).is_err());
    }

    #[test]
    fn next_query_keeps_the_filters() {
        let q = next_query(
            &pairs(&[("limit", "2"), ("marker", "a"), ("tag", "x y")]),
            "b",
        );
        assert_eq!(q, "limit=2&tag=x+y&marker=b");
    }
}
