//! `GET /v2/images`: the list's query (filters, sort, marker and limit) and the page it
//! selects from the images' JSON documents.

use std::cmp::Ordering;

use serde_json::Value;

use super::document::{FieldRefusal, bad, image_json, os_type_value};
use crate::domain::share::ShareStatus;
use crate::domain::validation::or_list;
use crate::service::image_api::ApiImage;

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
